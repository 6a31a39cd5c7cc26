"""Who sees which activities: every role x an activity of its own area and of a foreign one, on every read."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.permissions import PERMISSIONS, Action, Role
from tests.factories import make_town, make_user
from tests.institutions.factories import make_institution
from tests.notifications.factories import headers_for
from tests.prevention.factories import make_activity, today

API = "/api/v1"


def _reads(c: TestClient, h: dict[str, str], activity_id: int, unit_id: int) -> dict[str, int]:
    """Each read's answer about one activity: 200 when it shows it, 404 when it is absent, else the status."""
    out: dict[str, int] = {}
    one = c.get(f"{API}/activities/{activity_id}", headers=h)
    out["get"] = one.status_code
    listing = c.get(f"{API}/activities", headers=h, params={"limit": 500})
    out["list"] = listing.status_code if listing.status_code != 200 else (
        200 if any(a["id"] == activity_id for a in listing.json()["items"]) else 404)
    counted = c.get(f"{API}/prevention/coverage", headers=h, params={"unit_id": unit_id})
    out["coverage"] = counted.status_code if counted.status_code != 200 else (
        200 if counted.json()["totals"]["activities"] == 1 else 404)
    without = c.get(f"{API}/prevention/without-activity", headers=h, params={"unit_id": unit_id, "kind": "school"})
    out["without"] = without.status_code
    return out


@pytest.mark.parametrize("role", list(Role))
def test_each_role_sees_its_areas_activities_and_never_a_foreign_one(client: TestClient, session: Session,
                                                                     role: Role) -> None:
    town = make_town(session)
    recorder = make_user(session, town.town, Role.coordinator)
    own_school = make_institution(session, town.villages[0].id or 0)
    foreign_school = make_institution(session, town.villages[1].id or 0)
    own = make_activity(session, unit_id=town.villages[0].id or 0, recorded_by=recorder.id or 0,
                        institution_id=own_school.id, students=50)
    foreign = make_activity(session, unit_id=town.villages[1].id or 0, recorded_by=recorder.id or 0,
                            institution_id=foreign_school.id, students=50)
    caller = make_user(session, town.villages[0], role)
    h = headers_for(session, caller)

    mine: dict[str, Any] = _reads(client, h, own.id or 0, town.villages[0].id or 0)
    theirs: dict[str, Any] = _reads(client, h, foreign.id or 0, town.villages[1].id or 0)

    if Action.activity_read not in PERMISSIONS[role]:
        assert set(mine.values()) == {403} and set(theirs.values()) == {403}, (mine, theirs)
        return
    assert mine == {"get": 200, "list": 200, "coverage": 200, "without": 200}, mine
    assert theirs == {"get": 404, "list": 404, "coverage": 404, "without": 404}, theirs


def test_a_recorder_moved_away_keeps_seeing_what_it_recorded_and_nothing_else(client: TestClient,
                                                                               session: Session) -> None:
    town = make_town(session)
    volunteer = make_user(session, town.villages[1], Role.volunteer)
    other = make_user(session, town.villages[1], Role.volunteer)
    mine = make_activity(session, unit_id=town.villages[0].id or 0, recorded_by=volunteer.id or 0)
    theirs = make_activity(session, unit_id=town.villages[0].id or 0, recorded_by=other.id or 0)
    h = headers_for(session, volunteer)
    assert client.get(f"{API}/activities/{mine.id}", headers=h).status_code == 200
    assert client.get(f"{API}/activities/{theirs.id}", headers=h).status_code == 404


def test_lists_filter_by_unit_period_type_and_school(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = make_user(session, town.town, Role.coordinator)
    school = make_institution(session, town.villages[0].id or 0)
    at_school = make_activity(session, unit_id=town.villages[0].id or 0, recorded_by=coordinator.id or 0,
                              institution_id=school.id, type_code="campus", days_ago=2)
    old = make_activity(session, unit_id=town.villages[0].id or 0, recorded_by=coordinator.id or 0, days_ago=40)
    elsewhere = make_activity(session, unit_id=town.villages[2].id or 0, recorded_by=coordinator.id or 0)
    h = headers_for(session, coordinator)

    def ids(**params: Any) -> set[int]:
        resp = client.get(f"{API}/activities", headers=h, params=params)
        assert resp.status_code == 200, resp.text
        return {a["id"] for a in resp.json()["items"]}

    assert ids() == {at_school.id, old.id, elsewhere.id}
    assert ids(unit_id=town.villages[0].id) == {at_school.id, old.id}
    assert ids(date_from=(today() - timedelta(days=10)).isoformat()) == {at_school.id, elsewhere.id}
    assert ids(type_code="campus") == {at_school.id}
    assert ids(institution_id=school.id) == {at_school.id}
    pages: list[int] = []
    cursor = None
    while True:
        resp = client.get(f"{API}/activities", headers=h, params={"limit": 1, **({"cursor": cursor} if cursor else {})})
        pages += [a["id"] for a in resp.json()["items"]]
        cursor = resp.json()["next_cursor"]
        if not cursor:
            break
    assert pages == sorted([at_school.id or 0, old.id or 0, elsewhere.id or 0], reverse=True)
