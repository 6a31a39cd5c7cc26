"""Phones registered for push."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from backend.accounts.models import Device
from backend.accounts.permissions import Role
from tests.factories import make_town, user_client


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
