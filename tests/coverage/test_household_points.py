"""Household points on the map: only where the role and zoom allow, never outside one's grid."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.demo.town import grid_box
from tests.coverage.fixture import MONTH, build_world
from tests.factories import user_client


def _points(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in body["features"] if f["properties"]["kind"] == "household"]


def _inside(feature: dict[str, Any], bounds: tuple[float, float, float, float]) -> bool:
    lon, lat = feature["geometry"]["coordinates"]
    west, south, east, north = bounds
    return west <= lon <= east and south <= lat <= north


def test_volunteer_never_receives_household_points_outside_their_grid(client: TestClient, session: Session) -> None:
    world = build_world(session)
    own, other = world.town.grids[0][0], world.town.grids[0][1]
    volunteer = user_client(client, session, own, Role.volunteer)
    resp = client.get("/api/v1/coverage", params={"month": MONTH, "points": True, "zoom": 17, "unit_id": own.id},
                      headers=volunteer.headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    points = _points(body)
    assert body["points"] == "included"
    assert sorted(p["properties"]["household_id"] for p in points) == sorted(
        world.households[k].id for k in ("H1", "H2", "H3"))
    assert all(p["properties"]["grid_id"] == own.id and _inside(p, grid_box(0, 0)) for p in points)
    visited = {p["properties"]["household_id"]: p["properties"]["visited"] for p in points}
    assert visited[world.households["H1"].id] is True and visited[world.households["H3"].id] is False
    assert "address" not in points[0]["properties"] and "head_name" not in points[0]["properties"]
    # The neighbouring grid, the village and the town do not exist for this volunteer.
    for unit in (other, world.town.villages[0], world.town.town):
        resp = client.get("/api/v1/coverage", params={"month": MONTH, "points": True, "zoom": 17,
                                                      "unit_id": unit.id}, headers=volunteer.headers)
        assert resp.status_code == 404
    # Their own grid by default: still only their grid's households.
    default = client.get("/api/v1/coverage", params={"month": MONTH, "points": True, "zoom": 17},
                         headers=volunteer.headers).json()
    assert {p["properties"]["grid_id"] for p in _points(default)} == {own.id}
    audited = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "coverage.household_points")).scalars()
    assert [a.details["count"] for a in audited] == [3, 3]


def test_village_volunteer_gets_points_one_grid_at_a_time(client: TestClient, session: Session) -> None:
    world = build_world(session)
    volunteer = user_client(client, session, world.town.villages[0], Role.volunteer)
    village = client.get("/api/v1/coverage", params={"month": MONTH, "points": True, "zoom": 17},
                         headers=volunteer.headers).json()
    assert village["points"] == "withheld" and _points(village) == []
    grid = client.get("/api/v1/coverage", params={"month": MONTH, "points": True, "zoom": 17,
                                                  "unit_id": world.town.grids[0][1].id},
                      headers=volunteer.headers).json()
    assert {p["properties"]["grid_id"] for p in _points(grid)} == {world.town.grids[0][1].id}
    # H6 was registered after March: not in March's points.
    assert len(_points(grid)) == 2


def test_coordinator_sees_points_only_zoomed_in(client: TestClient, session: Session) -> None:
    world = build_world(session)
    coordinator = user_client(client, session, world.town.town, Role.coordinator)
    params = {"month": MONTH, "points": True, "unit_id": world.town.villages[0].id}
    far = client.get("/api/v1/coverage", params={**params, "zoom": 14}, headers=coordinator.headers).json()
    assert far["points"] == "withheld" and _points(far) == []
    near = client.get("/api/v1/coverage", params={**params, "zoom": 15}, headers=coordinator.headers).json()
    assert near["points"] == "included" and len(_points(near)) == 5
    town = client.get("/api/v1/coverage", params={"month": MONTH, "points": True, "zoom": 18},
                      headers=coordinator.headers).json()
    assert town["points"] == "withheld"
