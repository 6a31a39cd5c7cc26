"""Enforcement duties per county (执法职责, issue 18) over HTTP: the national default, a county's own list
with 文旅/教育/综合执法/卫健, who may set it, and the weekly plan following it end to end (a 文旅 officer
is planned to the amusement arcade whose duty lapsed, inspects it, and the duty is served)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.core import clock
from backend.inspections.models import InspectionInspector
from backend.schedules import service
from backend.venues.models import Venue, VenueType
from tests.factories import make_town, user_client
from tests.venues.factories import inspection_body, make_venue

API = "/api/v1/schedules"
COUNTY_DUTIES = [
    {"agency": "culture_tourism", "venue_type": "amusement_arcade", "interval_days": 28},
    {"agency": "culture_tourism", "venue_type": "script_game", "interval_days": 60},
    {"agency": "education", "venue_type": "training", "interval_days": 30},
    {"agency": "comprehensive_enforcement", "venue_type": "school_shop", "interval_days": 45},
    {"agency": "health", "venue_type": "hotel", "interval_days": 90},
    {"agency": "police", "venue_type": "hotel", "interval_days": 28},
    {"agency": "market_supervision", "venue_type": "hotel", "interval_days": 28},
]


def _pairs(body: dict[str, Any]) -> set[tuple[str, str, int]]:
    return {(d["agency"], d["venue_type"], d["interval_days"]) for d in body["duties"]}


def test_without_a_county_list_the_national_default_applies(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator, agency=Agency.government)
    got = client.get(f"{API}/duties", params={"unit_id": town.town.id}, headers=coordinator.headers)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["national_default"] and body["county_unit_id"] is None
    # Seeds 001/002: the police station and market supervision, monthly, for every kind of venue.
    assert _pairs(body) == {(a, t.value, 28) for a in ("police", "market_supervision") for t in VenueType}
    hotel = next(d for d in body["duties"] if d["venue_type"] == "hotel" and d["agency"] == "police")
    assert hotel["agency_zh"] == "公安（派出所）" and hotel["venue_type_zh"] == "旅馆/酒店"


def test_a_county_sets_its_duties_and_every_unit_inside_follows_them(client: TestClient, session: Session) -> None:
    town = make_town(session)
    county = user_client(client, session, town.county, Role.coordinator, agency=Agency.government)
    put = client.put(f"{API}/duties", params={"unit_id": town.county.id}, json={"duties": COUNTY_DUTIES},
                     headers=county.headers)
    assert put.status_code == 200, put.text
    assert _pairs(put.json()) == _pairs({"duties": COUNTY_DUTIES}) and not put.json()["national_default"]
    village = client.get(f"{API}/duties", params={"unit_id": town.villages[2].id}, headers=county.headers).json()
    assert village["county_unit_id"] == town.county.id and _pairs(village) == _pairs({"duties": COUNTY_DUTIES})
    [entry] = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "schedule.duties_set")).scalars()
    assert entry.object_id == str(town.county.id)
    assert "culture_tourism:amusement_arcade:28" in entry.details["duties"]  # type: ignore[operator]
    # An empty list returns the county to the national default.
    back = client.put(f"{API}/duties", params={"unit_id": town.county.id}, json={"duties": []}, headers=county.headers)
    assert back.status_code == 200 and back.json()["national_default"]


@pytest.mark.parametrize(("duty", "reason"), [
    ({"agency": "womens_federation", "venue_type": "hotel", "interval_days": 28}, "agency-does-not-inspect"),
    ({"agency": "police", "venue_type": "casino", "interval_days": 28}, None),
    ({"agency": "police", "venue_type": "hotel", "interval_days": 0}, None),
    ({"agency": "police", "venue_type": "hotel", "interval_days": 366}, None),
])
def test_a_duty_of_a_body_that_does_not_inspect_or_out_of_range_is_refused(
        client: TestClient, session: Session, duty: dict[str, Any], reason: str | None) -> None:
    town = make_town(session)
    county = user_client(client, session, town.county, Role.coordinator, agency=Agency.government)
    resp = client.put(f"{API}/duties", params={"unit_id": town.county.id}, json={"duties": [duty]},
                      headers=county.headers)
    assert resp.status_code == 422, resp.text
    if reason:
        assert resp.json()["code"] == "invalid-duty" and resp.json()["reason"] == reason


def test_duties_are_set_on_a_county_once_per_agency_and_type_by_a_planner_above_it(
        client: TestClient, session: Session) -> None:
    town = make_town(session)
    county = user_client(client, session, town.county, Role.coordinator, agency=Agency.government)
    local = user_client(client, session, town.town, Role.coordinator, agency=Agency.government)
    police = user_client(client, session, town.town, Role.police, agency=Agency.police)
    body = {"duties": COUNTY_DUTIES[:1]}
    at_town = client.put(f"{API}/duties", params={"unit_id": town.town.id}, json=body, headers=county.headers)
    assert at_town.status_code == 422 and at_town.json()["code"] == "duties-at-county-only"
    twice = client.put(f"{API}/duties", params={"unit_id": town.county.id}, headers=county.headers,
                       json={"duties": COUNTY_DUTIES[:1] * 2})
    assert twice.status_code == 422 and twice.json()["reason"] == "duplicate"
    # The town's coordinator cannot see the county; the police may read the duties but never set them.
    assert client.put(f"{API}/duties", params={"unit_id": town.county.id}, json=body,
                      headers=local.headers).status_code == 404
    assert client.put(f"{API}/duties", params={"unit_id": town.town.id}, json=body,
                      headers=police.headers).status_code == 403
    assert client.get(f"{API}/duties", params={"unit_id": town.town.id}, headers=police.headers).status_code == 200
    assert client.get(f"{API}/duties", params={"unit_id": town.county.id}, headers=police.headers).status_code == 404


def test_a_coordinator_opens_accounts_of_every_inspecting_body_and_no_other(
        client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator, agency=Agency.government)
    for n, agency in enumerate(("culture_tourism", "education", "comprehensive_enforcement", "health",
                                "market_supervision", "womens_federation")):
        resp = client.post("/api/v1/users", headers=coordinator.headers, json={
            "phone": f"1990077{n:04d}", "display_name": f"执法{n}", "password": "Long-enough-9",
            "org_unit_id": town.town.id, "roles": ["market_officer"], "agency": agency})
        expected = 403 if agency == "womens_federation" else 201
        assert resp.status_code == expected, (agency, resp.text)


def test_the_weekly_plan_sends_the_culture_officer_to_the_arcade_whose_duty_lapsed(
        client: TestClient, session: Session) -> None:
    town = make_town(session)
    county = user_client(client, session, town.county, Role.coordinator, agency=Agency.government)
    coordinator = user_client(client, session, town.town, Role.coordinator, agency=Agency.government)
    police = user_client(client, session, town.town, Role.police, agency=Agency.police)
    culture = user_client(client, session, town.town, Role.market_officer, agency=Agency.culture_tourism)
    assert client.put(f"{API}/rules/{town.town.id}", headers=coordinator.headers,
                      json={"min_team_size": 1, "joint_ops_per_month": 0}).status_code == 200
    client.put(f"{API}/duties", params={"unit_id": town.county.id}, headers=county.headers, json={"duties": [
        {"agency": "culture_tourism", "venue_type": "amusement_arcade", "interval_days": 28},
        {"agency": "police", "venue_type": "hotel", "interval_days": 28}]})
    arcade = make_venue(session, town, venue_type=VenueType.amusement_arcade, village=1)
    arcade.created_at = clock.now() - timedelta(days=40)  # listed 40 days ago, never inspected by 文旅
    session.add(arcade)
    session.commit()
    hotel = make_venue(session, town, village=1)

    plan = client.post(f"{API}/generate", json={"org_unit_id": town.town.id}, headers=coordinator.headers)
    assert plan.status_code == 201, plan.text
    assert plan.json()["violations"] == []
    visits = {v["venue_id"]: (t, v) for t in plan.json()["teams"] for v in t["visits"]}
    team, visit = visits[arcade.id]
    assert [m["user_id"] for m in team["members"]] == [culture.user.id] and visit["reason"] == "duty_lapsed"
    assert [m["user_id"] for m in visits[hotel.id][0]["members"]] == [police.user.id]

    # The 文旅 officer inspects it, recorded under 文旅; the regenerated plan no longer needs it.
    done = client.post("/api/v1/inspections", json=inspection_body(arcade), headers=culture.headers)
    assert done.status_code == 201, done.text
    agency = session.execute(select(col(InspectionInspector.agency)).where(
        col(InspectionInspector.inspection_id) == done.json()["id"])).scalar_one()
    assert agency == "culture_tourism"
    again = client.post(f"{API}/generate", json={"org_unit_id": town.town.id}, headers=coordinator.headers).json()
    assert arcade.id not in {v["venue_id"] for t in again["teams"] for v in t["visits"]}
    assert again["violations"] == []


def test_a_duty_nobody_in_the_town_can_serve_is_named_in_the_plan(client: TestClient, session: Session) -> None:
    town = make_town(session)
    county = user_client(client, session, town.county, Role.coordinator, agency=Agency.government)
    coordinator = user_client(client, session, town.town, Role.coordinator, agency=Agency.government)
    user_client(client, session, town.town, Role.police, agency=Agency.police)
    client.put(f"{API}/duties", params={"unit_id": town.county.id}, headers=county.headers, json={"duties": [
        {"agency": "education", "venue_type": "training", "interval_days": 30},
        {"agency": "police", "venue_type": "training", "interval_days": 30}]})
    venue = make_venue(session, town, venue_type=VenueType.training)
    venue.created_at = clock.now() - timedelta(days=60)
    session.add(venue)
    session.commit()
    plan = client.post(f"{API}/generate", json={"org_unit_id": town.town.id}, headers=coordinator.headers).json()
    codes = [(v["code"], v["refs"].get("agency")) for v in plan["violations"]]
    assert ("duty_unstaffed", "education") in codes
    recheck = client.get(f"{API}/{plan['id']}/check", headers=coordinator.headers).json()
    assert any(v["code"] == "duty_unstaffed" for v in recheck)
    stored = session.get(Venue, venue.id)
    assert stored is not None and service.reason_zh("duty_lapsed") == "执法职责检查已逾期"
