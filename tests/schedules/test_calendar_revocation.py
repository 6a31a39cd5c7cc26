"""A calendar subscription URL is a credential that needs no sign-in: it stops working when its
officer is deactivated, and the officer (or whoever manages the officer) can revoke it and get a
new one (issue 14)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Agency, User
from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.demo.town import DemoTown
from tests.factories import make_town, make_user
from tests.notifications.factories import headers_for

API = "/api/v1"


@dataclass
class Town:
    town: DemoTown
    officer: User
    coordinator: User


@pytest.fixture
def world(session: Session) -> Town:
    town = make_town(session)
    officer = make_user(session, town.town, Role.police, agency=Agency.police)
    coordinator = make_user(session, town.town, Role.coordinator, agency=Agency.government)
    return Town(town, officer, coordinator)


def _feed_path(client: TestClient, headers: dict[str, str]) -> str:
    resp = client.get(f"{API}/schedules/feed-url", headers=headers)
    assert resp.status_code == 200, resp.text
    return "/" + resp.json()["url"].split("://", 1)[1].split("/", 1)[1]


def test_a_deactivated_officers_feed_stops_working(client: TestClient, session: Session, world: Town) -> None:
    feed = _feed_path(client, headers_for(session, world.officer))
    assert client.get(feed).status_code == 200
    resp = client.patch(f"{API}/users/{world.officer.id}", json={"is_active": False},
                        headers=headers_for(session, world.coordinator))
    assert resp.status_code == 200, resp.text
    assert client.get(feed).status_code == 404


def test_an_officer_revokes_their_own_feed_and_the_new_url_works(
        client: TestClient, session: Session, world: Town) -> None:
    officer = headers_for(session, world.officer)
    old = _feed_path(client, officer)
    resp = client.post(f"{API}/schedules/feed-url/revoke", headers=officer)
    assert resp.status_code == 200, resp.text
    new = "/" + resp.json()["url"].split("://", 1)[1].split("/", 1)[1]
    assert new != old
    assert client.get(old).status_code == 404
    assert client.get(new).status_code == 200
    assert _feed_path(client, officer) == new  # the URL handed out from now on is the new one
    # Revoking again retires the second URL too.
    third = client.post(f"{API}/schedules/feed-url/revoke", headers=officer).json()["url"]
    assert client.get(new).status_code == 404
    assert client.get("/" + third.split("://", 1)[1].split("/", 1)[1]).status_code == 200


def test_a_coordinator_revokes_an_officers_feed(client: TestClient, session: Session, world: Town) -> None:
    officer = headers_for(session, world.officer)
    old = _feed_path(client, officer)
    resp = client.post(f"{API}/schedules/feed-url/{world.officer.id}/revoke",
                       headers=headers_for(session, world.coordinator))
    assert resp.status_code == 204, resp.text
    assert client.get(old).status_code == 404
    assert client.get(_feed_path(client, officer)).status_code == 200
    entry = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "calendar.feed_revoked")).scalar_one()
    assert entry.object_id == str(world.officer.id) and entry.actor_user_id == world.coordinator.id


def test_only_someone_who_manages_the_officer_may_revoke_it(
        client: TestClient, session: Session, world: Town) -> None:
    officer = headers_for(session, world.officer)
    feed = _feed_path(client, officer)
    other_village = make_user(session, world.town.villages[1], Role.coordinator, agency=Agency.government)
    colleague = make_user(session, world.town.town, Role.police, agency=Agency.police)
    peer = make_user(session, world.town.town, Role.coordinator, agency=Agency.government)
    tries = {
        "a colleague without the right": (colleague, 403),
        "a coordinator outside the officer's unit": (other_village, 404),
    }
    for who, (user, status) in tries.items():
        resp = client.post(f"{API}/schedules/feed-url/{world.officer.id}/revoke", headers=headers_for(session, user))
        assert resp.status_code == status, (who, resp.text)
    # A coordinator's own feed is out of a peer coordinator's reach, as every other change to them is.
    resp = client.post(f"{API}/schedules/feed-url/{peer.id}/revoke", headers=headers_for(session, world.coordinator))
    assert resp.status_code == 403 and resp.json()["code"] == "user-not-manageable"
    assert client.post(f"{API}/schedules/feed-url/{world.officer.id}/revoke").status_code == 401
    assert client.get(feed).status_code == 200  # none of that touched the officer's URL
