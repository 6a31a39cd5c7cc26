"""Coverage numbers per unit against the hand-counted world of fixture.py, over HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.campaigns import service as campaigns
from backend.core import clock
from backend.core.config import get_settings
from backend.coverage import service as coverage
from tests.coverage.fixture import MONTH, build_world
from tests.factories import user_client


def _by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["properties"]["name"]: f["properties"] for f in body["features"] if f["properties"]["kind"] == "unit"}


def _numbers(p: dict[str, Any]) -> dict[str, Any]:
    keys = ("households", "visited", "percent", "not_visited", "never_visited", "mismatch_visits", "children",
            "high_risk_children", "problems_open", "problems_overdue", "referrals", "overdue_followups")
    return {k: p[k] for k in keys}


VILLAGE0 = {
    "households": 5, "visited": 2, "percent": 40.0, "not_visited": 3, "never_visited": 2, "mismatch_visits": 1,
    "children": {"low": 1, "general": 0, "major": 1, "severe": 1, "none": 1}, "high_risk_children": 2,
    "problems_open": 2, "problems_overdue": 1,
    "referrals": {"new": 1, "received": 0, "handled": 0, "overdue": 2}, "overdue_followups": 2,
}
VILLAGE1 = {
    "households": 2, "visited": 1, "percent": 50.0, "not_visited": 1, "never_visited": 1, "mismatch_visits": 0,
    "children": {"low": 0, "general": 1, "major": 0, "severe": 0, "none": 0}, "high_risk_children": 0,
    "problems_open": 0, "problems_overdue": 0,
    "referrals": {"new": 0, "received": 0, "handled": 1, "overdue": 0}, "overdue_followups": 1,
}
EMPTY = {
    "households": 0, "visited": 0, "percent": None, "not_visited": 0, "never_visited": 0, "mismatch_visits": 0,
    "children": {"low": 0, "general": 0, "major": 0, "severe": 0, "none": 0}, "high_risk_children": 0,
    "problems_open": 0, "problems_overdue": 0,
    "referrals": {"new": 0, "received": 0, "handled": 0, "overdue": 0}, "overdue_followups": 0,
}


def test_town_map_shows_each_village_with_hand_counted_numbers(client: TestClient, session: Session) -> None:
    world = build_world(session)
    coordinator = user_client(client, session, world.town.town, Role.coordinator)
    resp = client.get("/api/v1/coverage", params={"month": MONTH, "zoom": 13}, headers=coordinator.headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/geo+json")
    body = resp.json()
    assert body["type"] == "FeatureCollection"
    assert body["period"]["start_date"] == "2026-03-01" and body["period"]["end_date"] == "2026-03-31"
    assert body["source"] == "live"
    villages = _by_name(body)
    assert len(villages) == 8
    assert _numbers(villages["青山村"]) == VILLAGE0
    assert _numbers(villages["溪口村"]) == VILLAGE1
    for name in ("柳湾村", "石桥村", "桃源村", "云岭村", "河坝社区", "新街社区"):
        assert _numbers(villages[name]) == EMPTY
    assert body["totals"]["households"] == 7 and body["totals"]["visited"] == 3
    assert body["totals"]["referrals"]["overdue"] == 2
    assert body["totals"]["overdue_followups"] == 3 and body["unavailable"] == []
    geometry = next(f["geometry"] for f in body["features"] if f["properties"]["name"] == "青山村")
    assert geometry["type"] in ("Polygon", "MultiPolygon")
    ring = geometry["coordinates"][0] if geometry["type"] == "Polygon" else geometry["coordinates"][0][0]
    lons = sorted({round(c[0], 6) for c in ring})
    assert lons == [108.3, 108.32]
    assert body["points"] == "not_requested"


def test_drill_down_to_grids_splits_the_village_numbers(client: TestClient, session: Session) -> None:
    world = build_world(session)
    coordinator = user_client(client, session, world.town.town, Role.coordinator)
    resp = client.get("/api/v1/coverage", params={"month": MONTH, "unit_id": world.town.villages[0].id},
                      headers=coordinator.headers)
    assert resp.status_code == 200, resp.text
    grids = _by_name(resp.json())
    assert len(grids) == 5
    g0, g1 = grids["青山村第1网格"], grids["青山村第2网格"]
    assert (g0["households"], g0["visited"], g0["never_visited"], g0["mismatch_visits"]) == (3, 1, 1, 0)
    assert (g1["households"], g1["visited"], g1["never_visited"], g1["mismatch_visits"]) == (2, 1, 1, 1)
    # Both overdue follow-ups are of H1's children (grid 0); H4's ended assignment never is.
    assert (g0["overdue_followups"], g1["overdue_followups"]) == (2, 0)
    assert g0["drill_down"] is False
    # A grid asked for directly answers itself.
    resp = client.get("/api/v1/coverage", params={"month": MONTH, "unit_id": world.town.grids[0][0].id},
                      headers=coordinator.headers)
    only = resp.json()["features"]
    assert len(only) == 1 and only[0]["properties"]["households"] == 3


def test_a_campaign_phase_counts_its_own_dates(client: TestClient, session: Session) -> None:
    world = build_world(session)
    coordinator = user_client(client, session, world.town.town, Role.coordinator)
    resp = client.get("/api/v1/coverage", params={"phase": "investigation", "year": 2026},
                      headers=coordinator.headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["period"]["start_date"] == "2026-01-11" and body["period"]["end_date"] == "2026-06-30"
    villages = _by_name(body)
    # H6 (registered and visited in April) is in scope; H2 (Feb) and H8 (1 Apr) count as visited.
    assert (villages["青山村"]["households"], villages["青山村"]["visited"]) == (6, 4)
    assert (villages["溪口村"]["households"], villages["溪口村"]["visited"]) == (2, 2)


def test_explicit_dates_use_china_days(client: TestClient, session: Session) -> None:
    world = build_world(session)
    coordinator = user_client(client, session, world.town.town, Role.coordinator)
    resp = client.get("/api/v1/coverage", params={"from": "2026-04-01", "to": "2026-04-01"},
                      headers=coordinator.headers)
    villages = _by_name(resp.json())
    assert villages["溪口村"]["visited"] == 1  # H8 at 00:30 on 1 April, China time
    assert villages["青山村"]["visited"] == 0


def test_large_areas_read_the_refreshed_summary_with_the_same_numbers(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = build_world(session)
    coordinator = user_client(client, session, world.town.town, Role.coordinator)
    live = client.get("/api/v1/coverage", params={"month": MONTH}, headers=coordinator.headers).json()
    coverage.refresh_summary(session, campaigns.month_period(MONTH))
    session.commit()
    monkeypatch.setenv("HULEI_COVERAGE_LIVE_MAX_GRIDS", "0")
    get_settings.cache_clear()
    summary = client.get("/api/v1/coverage", params={"month": MONTH}, headers=coordinator.headers).json()
    assert live["source"] == "live" and summary["source"] == "summary"
    assert {k: _numbers(v) for k, v in _by_name(summary).items()} == {k: _numbers(v) for k, v in _by_name(live).items()}
    # Arbitrary dates are never in the summary: counted live.
    ranged = client.get("/api/v1/coverage", params={"from": "2026-03-01", "to": "2026-03-31"},
                        headers=coordinator.headers).json()
    assert ranged["source"] == "live"
    assert _numbers(_by_name(ranged)["青山村"]) == VILLAGE0


def test_not_visited_list_shows_where_to_go_and_is_audited(client: TestClient, session: Session) -> None:
    world = build_world(session)
    worker = user_client(client, session, world.town.grids[0][0], Role.grid_worker)
    resp = client.get("/api/v1/coverage/not-visited", params={"month": MONTH}, headers=worker.headers)
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    assert [i["household_id"] for i in items] == [world.households["H2"].id, world.households["H3"].id]
    assert items[0]["head_name_masked"] == "王**" and items[0]["address"].endswith("H2号")
    ever = client.get("/api/v1/coverage/not-visited", params={"month": MONTH, "ever": True},
                      headers=worker.headers).json()["items"]
    assert [i["household_id"] for i in ever] == [world.households["H3"].id]
    first = client.get("/api/v1/coverage/not-visited", params={"month": MONTH, "limit": 1}, headers=worker.headers)
    cursor = first.json()["next_cursor"]
    second = client.get("/api/v1/coverage/not-visited", params={"month": MONTH, "limit": 1, "cursor": cursor},
                        headers=worker.headers).json()
    assert [i["household_id"] for i in second["items"]] == [world.households["H3"].id]
    actions = session.execute(select(col(AuditEntry.action)).where(
        col(AuditEntry.action) == "coverage.not_visited.list")).scalars().all()
    assert len(actions) == 4
    # Outside the worker's own grid the unit does not exist for them.
    other = client.get("/api/v1/coverage/not-visited", params={"month": MONTH, "unit_id": world.town.grids[0][1].id},
                       headers=worker.headers)
    assert other.status_code == 404


def test_roles_without_household_access_see_aggregates_only(client: TestClient, session: Session) -> None:
    world = build_world(session)
    market = user_client(client, session, world.town.town, Role.market_officer)
    assert client.get("/api/v1/coverage", params={"month": MONTH}, headers=market.headers).status_code == 403
    helper = user_client(client, session, world.town.town, Role.helper)
    body = client.get("/api/v1/coverage", params={"month": MONTH, "points": True, "zoom": 18,
                                                  "unit_id": world.town.grids[0][0].id},
                      headers=helper.headers).json()
    assert body["points"] == "withheld"
    assert all(f["properties"]["kind"] == "unit" for f in body["features"])
    lists = client.get("/api/v1/coverage/not-visited", params={"month": MONTH}, headers=helper.headers)
    assert lists.status_code == 403


def test_overdue_follow_ups_are_counted_by_the_childs_risk_level_as_the_clock_moves(session: Session) -> None:
    world = build_world(session)  # 5 April: A1 (重大, last 20 Mar) and A3 (较大, none since 10 Mar); B1 (一般)
    period = campaigns.month_period(MONTH)

    def overdue() -> dict[str, int]:
        kids, result = coverage.unit_coverage(session, world.town.town, period)
        return {k.name: result.numbers[k.id or 0].overdue_followups for k in kids if k.name in ("青山村", "溪口村")}

    assert overdue() == {"青山村": 2, "溪口村": 1}
    clock.freeze(datetime(2026, 4, 8, 9, 59, tzinfo=clock.SHANGHAI))
    assert overdue() == {"青山村": 2, "溪口村": 1}  # A2 (重大, last 1 Apr 10:00) falls due at 10:00 on 8 April
    clock.freeze(datetime(2026, 4, 8, 10, 1, tzinfo=clock.SHANGHAI))
    assert overdue() == {"青山村": 3, "溪口村": 1}
    # A follow-up visit of A1 (as the helpers' write path records it) takes it off the count.
    a1 = world.assignments["A1"]
    a1.last_followup_at = clock.now()
    session.add(a1)
    session.flush()
    assert overdue() == {"青山村": 2, "溪口村": 1}


def test_bad_periods_are_refused_clearly(client: TestClient, session: Session) -> None:
    world = build_world(session)
    coordinator = user_client(client, session, world.town.town, Role.coordinator)
    for params in ({"month": "2026-13"}, {"month": MONTH, "phase": "investigation"}, {"from": "2026-03-01"},
                   {"from": "2026-03-10", "to": "2026-03-01"}, {"phase": "no-such-phase"}):
        resp = client.get("/api/v1/coverage", params=params, headers=coordinator.headers)
        assert resp.status_code == 422, (params, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
