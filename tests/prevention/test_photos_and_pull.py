"""Photos of activities through the media path, and the pull kind `activity` a phone keeps."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.permissions import Role
from backend.media.models import MediaItem
from backend.sync import revisions
from tests.factories import make_town, make_user
from tests.institutions.factories import make_institution
from tests.media.conftest import camera_jpeg, media_root  # noqa: F401 (a fixture)
from tests.notifications.factories import headers_for
from tests.prevention.factories import item, make_activity, school_data, today, village_data

API = "/api/v1"
JPEG = camera_jpeg(64, 48)


def upload(client: TestClient, headers: dict[str, str], activity_uuid: str) -> str:
    photo = str(uuid.uuid4())
    resp = client.put(f"{API}/media/{photo}", content=JPEG, headers=headers,
                      params={"parent_kind": "activity", "parent_uuid": activity_uuid})
    assert resp.status_code == 201, resp.text
    return photo


def photo_row(session: Session, photo: str) -> MediaItem:
    session.expire_all()
    return session.execute(select(MediaItem).where(col(MediaItem.client_uuid) == uuid.UUID(photo))).scalar_one()


@pytest.mark.usefixtures("media_root")  # photos go to this test's own directory
def test_photos_sent_before_or_after_their_activity_are_linked_to_it(client: TestClient, session: Session) -> None:
    town = make_town(session)
    worker = make_user(session, town.grids[0][1], Role.grid_worker)
    h = headers_for(session, worker)
    one = item(village_data(town.villages[0].id))
    early = upload(client, h, one["client_uuid"])
    assert photo_row(session, early).linked_at is None  # waits for its activity
    one["data"]["photos"] = [early]
    [result] = client.post(f"{API}/sync/push", json={"items": [one]}, headers=h).json()["results"]
    assert result["status"] == "created" and result["record"]["photos"] == [early]
    late = upload(client, h, one["client_uuid"])
    for photo in (early, late):
        row = photo_row(session, photo)
        assert row.linked_at is not None and row.link_error is None
    listed = client.get(f"{API}/media", headers=h, params={"parent_kind": "activity",
                                                            "parent_uuid": one["client_uuid"]})
    assert listed.status_code == 200
    assert {p["client_uuid"] for p in listed.json()} == {early, late}
    # The village's coordinator sees them too; the neighbouring village's volunteer does not.
    village_volunteer = headers_for(session, make_user(session, town.villages[0], Role.volunteer))
    stranger = headers_for(session, make_user(session, town.villages[1], Role.volunteer))
    assert client.get(f"{API}/media/{early}", headers=village_volunteer).status_code == 200
    assert client.get(f"{API}/media/{early}", headers=stranger).status_code == 404


def pull_all(client: TestClient, headers: dict[str, str], cursor: str | None = None, limit: int = 3
             ) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Every page from the cursor on; the activities it delivered by client UUID, and the last cursor."""
    got: dict[str, dict[str, Any]] = {}
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        body = client.get(f"{API}/sync/pull", headers=headers, params=params).json()
        got |= {i["record"]["client_uuid"]: i["record"] for i in body["items"] if i["kind"] == "activity"}
        cursor = body["next_cursor"]
        if not body["has_more"]:
            return got, cursor


def test_a_phone_pulls_its_areas_recent_activities_and_its_own(client: TestClient, session: Session) -> None:
    town = make_town(session)
    school = make_institution(session, town.villages[0].id or 0)
    volunteer = make_user(session, town.villages[0], Role.volunteer)
    h = headers_for(session, volunteer)
    coordinator = make_user(session, town.town, Role.coordinator)
    by = coordinator.id or 0
    recent = make_activity(session, unit_id=town.villages[0].id or 0, recorded_by=by,
                           rev=revisions.allocate(session))
    old = make_activity(session, unit_id=town.villages[0].id or 0, recorded_by=by, days_ago=120,
                        rev=revisions.allocate(session))
    foreign = make_activity(session, unit_id=town.villages[1].id or 0, recorded_by=by,
                            rev=revisions.allocate(session))
    session.commit()

    first, cursor = pull_all(client, h)
    assert set(first) == {str(recent.client_uuid)}
    assert str(old.client_uuid) not in first and str(foreign.client_uuid) not in first

    pushed = item(school_data(school.id))
    client.post(f"{API}/sync/push", json={"items": [pushed]}, headers=h)
    then, _ = pull_all(client, h, cursor)
    assert set(then) == {pushed["client_uuid"]}  # only what changed since the cursor
    assert then[pushed["client_uuid"]]["institution_id"] == school.id

    fresh, _ = pull_all(client, h, limit=500)
    assert set(fresh) == {str(recent.client_uuid), pushed["client_uuid"]}

    # Officers and member-unit staff hold no household.read, so no pull at all: they read GET /activities.
    market = make_user(session, town.town, Role.market_officer)
    assert client.get(f"{API}/sync/pull", headers=headers_for(session, market)).status_code == 404
    listed = client.get(f"{API}/activities", headers=headers_for(session, market)).json()["items"]
    assert {a["client_uuid"] for a in listed} >= {str(recent.client_uuid), pushed["client_uuid"]}


def test_the_demo_seeds_activities_that_leave_some_places_uncovered(client: TestClient, session: Session) -> None:
    from backend.prevention.demo import COORDINATOR_PHONE, seed_demo

    town = make_town(session)
    coordinator = make_user(session, town.town, Role.coordinator, phone=COORDINATOR_PHONE)
    for village in town.villages:
        make_institution(session, village.id or 0)
    assert seed_demo(session, town) == 8
    session.commit()
    assert seed_demo(session, town) == 0  # deterministic client UUIDs: a second run stores nothing new
    since = (today() - timedelta(days=60)).isoformat()  # not "this year": the demo reaches back weeks
    body = client.get(f"{API}/prevention/coverage", headers=headers_for(session, coordinator),
                      params={"date_from": since}).json()
    assert body["totals"]["activities"] == 8
    assert 0 < body["totals"]["schools_reached"] < body["totals"]["schools"]
    assert 0 < body["totals"]["villages_reached"] < body["totals"]["villages"]
