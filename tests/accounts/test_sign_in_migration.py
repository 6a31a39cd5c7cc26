"""Migration 0011 gives every existing refresh-token family its sign-in, so nobody signed in before
the upgrade is signed out by it (their next refresh issues access tokens that name that sign-in)."""

from __future__ import annotations

from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.core.migrate import alembic_config, upgrade
from tests.factories import make_town, make_user, sign_in


def test_existing_sign_ins_carry_on_across_the_upgrade(
    client: TestClient, session: Session, database_url: str
) -> None:
    town = make_town(session)
    user = make_user(session, town.villages[0], Role.volunteer)
    live, ended = sign_in(client, user), sign_in(client, user)
    assert client.post("/api/v1/auth/logout", json={"refresh_token": ended.refresh_token}).status_code == 204
    session.close()
    command.downgrade(alembic_config(database_url), "0010")
    try:
        assert session.execute(text("SELECT count(*) FROM refresh_token")).scalar_one() == 2
    finally:
        session.close()
        upgrade(database_url)
    revoked = session.execute(text("SELECT revoked_at IS NOT NULL FROM sign_in ORDER BY created_at")).scalars()
    assert [bool(r) for r in revoked] == [False, True]
    rotated = client.post("/api/v1/auth/refresh", json={"refresh_token": live.refresh_token})
    assert rotated.status_code == 200, rotated.text
    assert client.get("/api/v1/me", headers=live.headers).status_code == 200
    fresh = {"Authorization": f"Bearer {rotated.json()['access_token']}"}
    assert client.get("/api/v1/me", headers=fresh).status_code == 200
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": ended.refresh_token}).status_code == 401
