"""Which schools and villages had activities in a period, and which had none (零遗留)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.institutions.models import InstitutionKind
from backend.prevention.models import Activity
from tests.factories import make_town, make_user
from tests.institutions.factories import make_institution
from tests.notifications.factories import headers_for
from tests.prevention.factories import make_activity, today

API = "/api/v1"


def without(client: TestClient, headers: dict[str, str], kind: str, limit: int = 2, **params: Any) -> list[int]:
    """Every page of the list, followed to its end."""
    out: list[int] = []
    cursor = None
    while True:
        resp = client.get(f"{API}/prevention/without-activity", headers=headers,
                          params={"kind": kind, "limit": limit, **params, **({"cursor": cursor} if cursor else {})})
        assert resp.status_code == 200, resp.text
        out += [p["id"] for p in resp.json()["items"]]
        cursor = resp.json()["next_cursor"]
        if not cursor:
            return out


def test_the_town_sees_per_village_counts_and_the_places_left_out(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = make_user(session, town.town, Role.coordinator)
    h = headers_for(session, coordinator)
    schools = [make_institution(session, v.id or 0) for v in town.villages[:3]]
    kindergarten = make_institution(session, town.town.id or 0, InstitutionKind.kindergarten)
    make_institution(session, town.villages[0].id or 0, InstitutionKind.hotel)  # no school: never listed
    by = coordinator.id or 0
    make_activity(session, unit_id=town.villages[0].id or 0, recorded_by=by, institution_id=schools[0].id,
                  students=200, villagers=0)
    make_activity(session, unit_id=town.villages[0].id or 0, recorded_by=by, villagers=30)
    make_activity(session, unit_id=town.villages[1].id or 0, recorded_by=by, villagers=20, days_ago=60)  # outside
    make_activity(session, unit_id=town.grids[3][1].id or 0, recorded_by=by, villagers=7)  # a point in village 4

    period = {"date_from": (today() - timedelta(days=30)).isoformat(), "date_to": today().isoformat()}
    resp = client.get(f"{API}/prevention/coverage", headers=h, params={"unit_id": town.town.id, **period})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    totals = body["totals"]
    assert totals["activities"] == 3
    assert totals["audience"] == {"students": 200, "parents": 0, "villagers": 37, "others": 0, "total": 237}
    assert (totals["schools"], totals["schools_reached"]) == (4, 1)
    assert (totals["villages"], totals["villages_reached"]) == (8, 2)
    rows = {c["unit_id"]: c for c in body["children"]}
    assert len(rows) == 8
    assert rows[town.villages[0].id]["activities"] == 2 and rows[town.villages[0].id]["schools_reached"] == 1
    assert rows[town.villages[1].id]["activities"] == 0 and rows[town.villages[1].id]["schools"] == 1
    assert rows[town.villages[3].id]["villages_reached"] == 1

    assert without(client, h, "school", **period) == sorted([schools[1].id, schools[2].id, kindergarten.id])
    assert without(client, h, "village", **period) == sorted(
        v.id for n, v in enumerate(town.villages) if n not in (0, 3))
    # The whole year: village 2's activity of two months ago counts.
    year = {"date_from": (today() - timedelta(days=90)).isoformat(), "date_to": today().isoformat()}
    assert town.villages[1].id not in without(client, h, "village", **year)


def test_a_period_the_wrong_way_round_or_too_long_is_refused(client: TestClient, session: Session) -> None:
    town = make_town(session)
    h = headers_for(session, make_user(session, town.town, Role.coordinator))
    for params in ({"date_from": "2026-05-02", "date_to": "2026-05-01"},
                   {"date_from": "2020-01-01", "date_to": "2026-01-01"}):
        resp = client.get(f"{API}/prevention/coverage", headers=h, params=params)
        assert resp.status_code == 422 and resp.json()["code"] == "activity-period-invalid"
    resp = client.get(f"{API}/prevention/without-activity", headers=h, params={"kind": "field"})
    assert resp.status_code == 422


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000))
def test_reached_and_left_out_villages_always_partition_the_area(client: TestClient, session: Session,
                                                                  seed: int) -> None:
    """Whatever activities were held where and when: every village is either counted as reached or
    listed as left out, never both and never neither, and the counts agree with the list."""
    rng = random.Random(seed)
    if "town" not in session.info:  # one town for every example of this test's database
        session.info["town"] = make_town(session)
        session.info["coordinator"] = make_user(session, session.info["town"].town, Role.coordinator)
    session.execute(delete(Activity))
    session.commit()
    town, coordinator = session.info["town"], session.info["coordinator"]
    h = headers_for(session, coordinator)
    held: set[int] = set()
    for _ in range(rng.randrange(0, 10)):
        village = rng.randrange(8)
        unit = town.villages[village] if rng.random() < 0.5 else town.grids[village][rng.randrange(5)]
        days = rng.randrange(0, 60)
        make_activity(session, unit_id=unit.id or 0, recorded_by=coordinator.id or 0, days_ago=days)
        if days <= 30:
            held.add(town.villages[village].id or 0)
    period = {"date_from": (today() - timedelta(days=30)).isoformat(), "date_to": today().isoformat()}
    left_out = without(client, h, "village", limit=3, **period)
    assert set(left_out) == {v.id for v in town.villages} - held
    body = client.get(f"{API}/prevention/coverage", headers=h, params={"unit_id": town.town.id, **period}).json()
    assert body["totals"]["villages_reached"] == len(held) == 8 - len(left_out)
