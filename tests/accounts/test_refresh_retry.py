"""Refreshing on a bad network: a lost answer may be retried for a short while without signing the
volunteer out; any other second use of a refresh token still ends the whole sign-in."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlmodel import Session

from backend.accounts.models import RefreshToken
from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.db import get_engine
from backend.core.security import token_digest
from tests.factories import TEST_PASSWORD, make_town, make_user

PHONE_A = "install-7f3c-android"
PHONE_B = "install-91d2-android"


def _login(client: TestClient, session: Session, device: str | None = PHONE_A) -> dict[str, Any]:
    town = make_town(session)
    user = make_user(session, town.villages[0], Role.volunteer)
    headers = {"X-Device-Id": device} if device else {}
    resp = client.post("/api/v1/auth/login", json={"phone": user.phone, "password": TEST_PASSWORD}, headers=headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _refresh(client: TestClient, token: str, device: str | None = PHONE_A) -> Any:
    headers = {"X-Device-Id": device} if device else {}
    return client.post("/api/v1/auth/refresh", json={"refresh_token": token}, headers=headers)


def _bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


def _signed_out(client: TestClient, *pairs: dict[str, Any]) -> bool:
    """Every refresh and access token of these pairs is refused."""
    return all(
        client.get("/api/v1/me", headers=_bearer(p)).status_code == 401
        and _refresh(client, p["refresh_token"]).status_code == 401
        for p in pairs
    )


def test_a_retried_refresh_inside_the_window_gets_the_same_pair_and_stays_signed_in(
    client: TestClient, session: Session
) -> None:
    signed = _login(client, session)
    first = _refresh(client, signed["refresh_token"])
    assert first.status_code == 200, first.text
    clock.advance(timedelta(seconds=20))
    # The answer was lost on 2G: the phone retries, twice, with the same token.
    retries = [_refresh(client, signed["refresh_token"]) for _ in range(2)]
    for retry in retries:
        assert retry.status_code == 200, retry.text
        assert retry.json()["refresh_token"] == first.json()["refresh_token"]
        assert retry.json()["access_token"] == first.json()["access_token"]
        assert retry.json()["refresh_expires_at"] == first.json()["refresh_expires_at"]
    # Still signed in: the pair works, and rotates on as usual.
    pair = retries[-1].json()
    assert client.get("/api/v1/me", headers=_bearer(pair)).status_code == 200
    assert _refresh(client, pair["refresh_token"]).status_code == 200


def test_a_retry_after_the_window_ends_the_sign_in(client: TestClient, session: Session) -> None:
    signed = _login(client, session)
    first = _refresh(client, signed["refresh_token"]).json()
    clock.advance(timedelta(seconds=61))
    reuse = _refresh(client, signed["refresh_token"])
    assert reuse.status_code == 401
    assert reuse.json()["code"] == "refresh-token-reused"
    assert _signed_out(client, first, signed)


def test_a_retry_from_another_phone_ends_the_sign_in(client: TestClient, session: Session) -> None:
    signed = _login(client, session)
    first = _refresh(client, signed["refresh_token"]).json()
    reuse = _refresh(client, signed["refresh_token"], device=PHONE_B)
    assert reuse.status_code == 401
    assert reuse.json()["code"] == "refresh-token-reused"
    assert _signed_out(client, first, signed)


def test_without_a_device_id_a_second_use_ends_the_sign_in(client: TestClient, session: Session) -> None:
    """Without X-Device-Id the server cannot tell the phone's retry from another holder of the token."""
    signed = _login(client, session, device=None)
    first = _refresh(client, signed["refresh_token"], device=None).json()
    reuse = _refresh(client, signed["refresh_token"], device=None)
    assert reuse.status_code == 401
    assert reuse.json()["code"] == "refresh-token-reused"
    assert _signed_out(client, first, signed)


def test_an_older_generation_inside_the_window_ends_the_sign_in(client: TestClient, session: Session) -> None:
    signed = _login(client, session)
    second = _refresh(client, signed["refresh_token"]).json()
    third = _refresh(client, second["refresh_token"]).json()
    # The first token's successor has itself been spent: this is not a lost answer being retried.
    reuse = _refresh(client, signed["refresh_token"])
    assert reuse.status_code == 401
    assert reuse.json()["code"] == "refresh-token-reused"
    assert _signed_out(client, second, third)


def test_the_grace_window_is_a_setting(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.core.config import get_settings

    monkeypatch.setenv("HULEI_REFRESH_REUSE_GRACE_SECONDS", "5")
    get_settings.cache_clear()
    signed = _login(client, session)
    _refresh(client, signed["refresh_token"])
    clock.advance(timedelta(seconds=10))
    assert _refresh(client, signed["refresh_token"]).json()["code"] == "refresh-token-reused"


def test_two_refreshes_racing_with_one_token_both_get_the_same_pair(
    client: TestClient, session: Session
) -> None:
    """The retry races the first attempt whose answer is still on its way, each in its own API process."""
    from backend.main import create_app

    signed = _login(client, session)
    with ExitStack() as stack:
        apps = [stack.enter_context(TestClient(create_app())) for _ in range(2)]
        with get_engine().connect() as conn:
            # Hold the token's row (PostgreSQL) or the write lock (SQLite's BEGIN IMMEDIATE) so both
            # requests are waiting on the database when it is released.
            held = conn.begin()
            conn.execute(
                select(RefreshToken.id)  # type: ignore[call-overload]
                .where(RefreshToken.token_hash == token_digest(signed["refresh_token"]))
                .with_for_update()
            )
            with ThreadPoolExecutor(2) as pool:
                futures = [pool.submit(_refresh, app, signed["refresh_token"]) for app in apps]
                time.sleep(0.5)
                held.rollback()
                answers = [f.result(timeout=60) for f in futures]
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    one, two = (a.json() for a in answers)
    assert one["refresh_token"] == two["refresh_token"]
    assert one["access_token"] == two["access_token"]
    assert client.get("/api/v1/me", headers=_bearer(one)).status_code == 200
    assert _refresh(client, one["refresh_token"]).status_code == 200


def test_the_database_holds_no_token_a_reader_could_use(client: TestClient, session: Session) -> None:
    signed = _login(client, session)
    rotated = _refresh(client, signed["refresh_token"]).json()
    secrets = {signed["refresh_token"], rotated["refresh_token"], signed["access_token"], rotated["access_token"]}
    for table in ("refresh_token", "sign_in"):
        for row in session.execute(text(f"SELECT * FROM {table}")):
            assert not any(str(value) in secrets for value in row), table
