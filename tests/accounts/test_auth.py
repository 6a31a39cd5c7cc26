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
