"""Phones registered for push."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from backend.accounts.models import Device
from backend.accounts.permissions import Role
from backend.core import clock
from backend.notifications.models import PushOutbox
from tests.factories import make_town, user_client
from tests.notifications.factories import notify


def test_a_user_may_register_several_phones(client: TestClient, session: Session) -> None:
    town = make_town(session)
    helper = user_client(client, session, town.town, Role.helper)
    for token in ("token-android-aaaa", "token-ios-bbbbbbb"):
        resp = client.post("/api/v1/devices", json={"platform": "android", "push_token": token}, headers=helper.headers)
        assert resp.status_code == 201
    listed = client.get("/api/v1/devices", headers=helper.headers).json()
    assert len(listed) == 2
    assert "push_token" not in listed[0]


def test_registering_the_same_token_twice_keeps_one_device(client: TestClient, session: Session) -> None:
    town = make_town(session)
    helper = user_client(client, session, town.town, Role.helper)
    body = {"platform": "ios", "push_token": "token-same-123456"}
    a = client.post("/api/v1/devices", json=body, headers=helper.headers).json()
    b = client.post("/api/v1/devices", json=body, headers=helper.headers).json()
    assert a["id"] == b["id"]


def test_a_phone_signed_in_by_someone_else_moves_to_them(client: TestClient, session: Session) -> None:
    town = make_town(session)
    first = user_client(client, session, town.town, Role.helper)
    second = user_client(client, session, town.town, Role.helper)
    body = {"platform": "android", "push_token": "token-shared-phone"}
    client.post("/api/v1/devices", json=body, headers=first.headers)
    client.post("/api/v1/devices", json=body, headers=second.headers)
    session.expire_all()
    owners = session.exec(select(Device.user_id).where(Device.push_token == "token-shared-phone")).all()
    assert owners == [second.user.id]
    assert client.get("/api/v1/devices", headers=first.headers).json() == []


def test_nobody_can_remove_another_users_device(client: TestClient, session: Session) -> None:
    town = make_town(session)
    owner = user_client(client, session, town.town, Role.helper)
    other = user_client(client, session, town.town, Role.coordinator)
    dev = client.post("/api/v1/devices", json={"platform": "android", "push_token": "token-owned-xyz"},
                      headers=owner.headers).json()
    assert client.delete(f"/api/v1/devices/{dev['id']}", headers=other.headers).status_code == 404
    assert client.delete(f"/api/v1/devices/{dev['id']}", headers=owner.headers).status_code == 204


def test_an_account_keeps_its_five_most_recent_phones_and_a_report_reaches_only_those(
    client: TestClient, session: Session
) -> None:
    # One signed-in account registering made-up tokens by the hundred would multiply every push to it
    # and spend the vendors' daily quotas (outside test, issue 19): the account keeps the phones it was
    # seen on most recently; registering another removes the oldest, whose pending pushes are dropped.
    town = make_town(session)
    officer = user_client(client, session, town.town, Role.police)
    for i in range(12):
        clock.advance(timedelta(seconds=1))
        resp = client.post("/api/v1/devices", json={"platform": "android", "channel": "vivo",
                                                    "push_token": f"FLOOD-{i:06d}"}, headers=officer.headers)
        assert resp.status_code == 201
    session.expire_all()
    kept = session.exec(select(Device.push_token).where(Device.user_id == officer.user.id)).all()
    assert sorted(kept) == [f"FLOOD-{i:06d}" for i in range(7, 12)]
    # The oldest kept phone registering again is the most recent one: the next new phone removes another.
    clock.advance(timedelta(seconds=1))
    client.post("/api/v1/devices", json={"platform": "android", "channel": "vivo", "push_token": "FLOOD-000007"},
                headers=officer.headers)
    clock.advance(timedelta(seconds=1))
    client.post("/api/v1/devices", json={"platform": "android", "channel": "vivo", "push_token": "FLOOD-NEW-1"},
                headers=officer.headers)
    session.expire_all()
    kept = session.exec(select(Device.push_token).where(Device.user_id == officer.user.id)).all()
    assert sorted(kept) == ["FLOOD-000007", "FLOOD-000009", "FLOOD-000010", "FLOOD-000011", "FLOOD-NEW-1"]
    [n] = notify(session, officer.user)
    pushes = session.exec(select(PushOutbox).where(PushOutbox.notification_id == n.id)).all()
    assert len(pushes) == 5


@pytest.mark.parametrize("token", ["\u200b" * 8, " " * 8, "tok\ntoken\r\nx", "token-😀-emoji", "ｔｏｋｅｎｆｕｌｌ",
                                   "token with space"])
def test_a_push_token_no_vendor_issues_is_refused(client: TestClient, session: Session, token: str) -> None:
    town = make_town(session)
    helper = user_client(client, session, town.town, Role.helper)
    resp = client.post("/api/v1/devices", json={"platform": "android", "push_token": token}, headers=helper.headers)
    assert resp.status_code == 422
    assert client.get("/api/v1/devices", headers=helper.headers).json() == []
