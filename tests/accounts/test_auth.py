"""Sign-in, token rotation, lockout."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.core import clock
from tests.factories import TEST_PASSWORD, make_town, make_user, sign_in


def test_volunteer_signs_in_with_phone_and_password(client: TestClient, session: Session) -> None:
    town = make_town(session)
    user = make_user(session, town.villages[0], Role.volunteer)
    resp = client.post("/api/v1/auth/login", json={"phone": "+86 " + user.phone, "password": TEST_PASSWORD})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "bearer"
    assert body["user"]["roles"] == ["volunteer"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == user.id


def test_wrong_password_is_a_problem_in_the_callers_language(client: TestClient, session: Session) -> None:
    town = make_town(session)
    user = make_user(session, town.villages[0], Role.volunteer)
    resp = client.post("/api/v1/auth/login", json={"phone": user.phone, "password": "nope"})
    assert resp.status_code == 401
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["type"] == "urn:hulei:problem:invalid-credentials"
    assert resp.json()["title"] == "手机号或密码错误"
    en = client.post("/api/v1/auth/login", json={"phone": user.phone, "password": "nope"},
                     headers={"Accept-Language": "en-US,en;q=0.9"})
    assert en.json()["title"] == "Wrong phone number or password"


def test_malformed_phone_gets_the_same_answer_as_a_wrong_password(client: TestClient, session: Session) -> None:
    make_town(session)
    resp = client.post("/api/v1/auth/login", json={"phone": "12345", "password": "x"})
    assert resp.status_code == 401
    assert resp.json()["code"] == "invalid-credentials"


def test_five_failures_lock_the_number_even_for_the_right_password(client: TestClient, session: Session) -> None:
    town = make_town(session)
    user = make_user(session, town.villages[0], Role.volunteer)
    for _ in range(5):
        assert client.post("/api/v1/auth/login", json={"phone": user.phone, "password": "bad"}).status_code == 401
    locked = client.post("/api/v1/auth/login", json={"phone": user.phone, "password": TEST_PASSWORD})
    assert locked.status_code == 429
    assert locked.json()["code"] == "login-locked"
    assert int(locked.headers["Retry-After"]) > 0
    clock.advance(timedelta(minutes=16))
    assert client.post("/api/v1/auth/login", json={"phone": user.phone, "password": TEST_PASSWORD}).status_code == 200


def test_lockout_is_shared_by_every_api_process(client: TestClient, session: Session, database_url: str) -> None:
    """The counter lives in the database: a second app instance sees the lock."""
    from backend.main import create_app

    town = make_town(session)
    user = make_user(session, town.villages[0], Role.volunteer)
    for _ in range(5):
        client.post("/api/v1/auth/login", json={"phone": user.phone, "password": "bad"})
    with TestClient(create_app()) as other:
        resp = other.post("/api/v1/auth/login", json={"phone": user.phone, "password": TEST_PASSWORD})
    assert resp.status_code == 429


def test_refresh_rotates_and_the_old_token_is_spent(client: TestClient, session: Session) -> None:
    town = make_town(session)
    signed = sign_in(client, make_user(session, town.villages[0], Role.volunteer))
    first = client.post("/api/v1/auth/refresh", json={"refresh_token": signed.refresh_token})
    assert first.status_code == 200
    new_refresh = first.json()["refresh_token"]
    assert new_refresh != signed.refresh_token
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": new_refresh})
    assert second.status_code == 200


def test_reusing_a_spent_refresh_token_revokes_the_whole_family(client: TestClient, session: Session) -> None:
    town = make_town(session)
    signed = sign_in(client, make_user(session, town.villages[0], Role.volunteer))
    rotated = client.post("/api/v1/auth/refresh", json={"refresh_token": signed.refresh_token}).json()
    reuse = client.post("/api/v1/auth/refresh", json={"refresh_token": signed.refresh_token})
    assert reuse.status_code == 401
    assert reuse.json()["code"] == "refresh-token-reused"
    # The thief's fresh token dies with the family too.
    after = client.post("/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert after.status_code == 401


def test_logout_ends_refresh(client: TestClient, session: Session) -> None:
    town = make_town(session)
    signed = sign_in(client, make_user(session, town.villages[0], Role.volunteer))
    assert client.post("/api/v1/auth/logout", json={"refresh_token": signed.refresh_token}).status_code == 204
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": signed.refresh_token}).status_code == 401


def test_access_token_expires_after_its_lifetime(client: TestClient, session: Session) -> None:
    town = make_town(session)
    signed = sign_in(client, make_user(session, town.villages[0], Role.volunteer))
    assert client.get("/api/v1/me", headers=signed.headers).status_code == 200
    clock.advance(timedelta(minutes=16))
    resp = client.get("/api/v1/me", headers=signed.headers)
    assert resp.status_code == 401
    assert resp.json()["code"] == "unauthenticated"


def test_deactivated_user_is_refused_at_once(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = sign_in(client, make_user(session, town.town, Role.coordinator))
    volunteer = sign_in(client, make_user(session, town.villages[0], Role.volunteer))
    resp = client.patch(f"/api/v1/users/{volunteer.user.id}", json={"is_active": False}, headers=coordinator.headers)
    assert resp.status_code == 200
    assert client.get("/api/v1/me", headers=volunteer.headers).status_code == 401
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": volunteer.refresh_token}).status_code == 401


def test_requests_without_a_token_are_refused(client: TestClient, session: Session) -> None:
    resp = client.get("/api/v1/me")
    assert resp.status_code == 401
    assert resp.json()["type"] == "urn:hulei:problem:unauthenticated"


def test_changing_password_signs_out_other_sessions(client: TestClient, session: Session) -> None:
    town = make_town(session)
    user = make_user(session, town.villages[0], Role.volunteer)
    one, two = sign_in(client, user), sign_in(client, user)
    resp = client.post("/api/v1/me/password", headers=one.headers,
                       json={"current_password": TEST_PASSWORD, "new_password": "a-new-long-password"})
    assert resp.status_code == 204
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": two.refresh_token}).status_code == 401
    assert sign_in(client, user, "a-new-long-password").headers


def test_logout_ends_the_access_token_at_once(client: TestClient, session: Session) -> None:
    town = make_town(session)
    user = make_user(session, town.villages[0], Role.volunteer)
    signed, elsewhere = sign_in(client, user), sign_in(client, user)
    assert client.get("/api/v1/me", headers=signed.headers).status_code == 200
    assert client.post("/api/v1/auth/logout", json={"refresh_token": signed.refresh_token}).status_code == 204
    resp = client.get("/api/v1/me", headers=signed.headers)
    assert resp.status_code == 401
    assert resp.json()["code"] == "unauthenticated"
    # Only that sign-in ended: the same user on another phone carries on.
    assert client.get("/api/v1/me", headers=elsewhere.headers).status_code == 200


def test_reuse_of_a_spent_refresh_token_ends_the_access_tokens_of_the_sign_in(
    client: TestClient, session: Session
) -> None:
    town = make_town(session)
    signed = sign_in(client, make_user(session, town.villages[0], Role.volunteer))
    rotated = client.post("/api/v1/auth/refresh", json={"refresh_token": signed.refresh_token}).json()
    clock.advance(timedelta(minutes=5))
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": signed.refresh_token}).status_code == 401
    for access in (signed.headers, {"Authorization": f"Bearer {rotated['access_token']}"}):
        assert client.get("/api/v1/me", headers=access).status_code == 401


def test_changing_password_ends_other_sessions_access_but_keeps_this_one(
    client: TestClient, session: Session
) -> None:
    town = make_town(session)
    user = make_user(session, town.villages[0], Role.volunteer)
    one, two = sign_in(client, user), sign_in(client, user)
    resp = client.post("/api/v1/me/password", headers=one.headers,
                       json={"current_password": TEST_PASSWORD, "new_password": "a-new-long-password"})
    assert resp.status_code == 204
    assert client.get("/api/v1/me", headers=two.headers).status_code == 401
    assert client.get("/api/v1/me", headers=one.headers).status_code == 200
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": one.refresh_token}).status_code == 200


def test_reactivating_a_user_does_not_revive_the_old_sign_ins(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = sign_in(client, make_user(session, town.town, Role.coordinator))
    volunteer = sign_in(client, make_user(session, town.villages[0], Role.volunteer))
    url = f"/api/v1/users/{volunteer.user.id}"
    assert client.patch(url, json={"is_active": False}, headers=coordinator.headers).status_code == 200
    assert client.patch(url, json={"is_active": True}, headers=coordinator.headers).status_code == 200
    assert client.get("/api/v1/me", headers=volunteer.headers).status_code == 401
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": volunteer.refresh_token}).status_code == 401
    assert sign_in(client, volunteer.user).headers


def test_stale_sign_ins_are_purged_with_their_tokens(client: TestClient, session: Session) -> None:
    from sqlalchemy import text

    from backend.core.jobs import run_due_jobs

    town = make_town(session)
    sign_in(client, make_user(session, town.villages[0], Role.volunteer))
    clock.advance(timedelta(days=32))
    run_due_jobs()
    assert session.execute(text("SELECT count(*) FROM sign_in")).scalar_one() == 0
    assert session.execute(text("SELECT count(*) FROM refresh_token")).scalar_one() == 0
