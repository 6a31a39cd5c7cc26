"""Vector tiles of coverage: PostGIS only by design; SpatiaLite answers a clear problem."""

from __future__ import annotations

import math

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.permissions import Role
from tests.coverage.fixture import MONTH, build_world
from tests.factories import user_client


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def test_vector_tiles_carry_village_coverage_on_postgis_and_a_clear_problem_on_spatialite(
    client: TestClient, session: Session, backend_name: str
) -> None:
    world = build_world(session)
    coordinator = user_client(client, session, world.town.town, Role.coordinator)
    x, y = _tile(108.31, 30.01, 12)
    resp = client.get(f"/api/v1/coverage/tiles/12/{x}/{y}.mvt", params={"month": MONTH}, headers=coordinator.headers)
    if backend_name == "spatialite":
        # ST_AsMVT is PostGIS-only by design; the embedded database says so instead of failing.
        assert resp.status_code == 501
        assert resp.json()["code"] == "tiles-need-postgis"
        return
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert len(resp.content) > 0
    # MVT stores the layer name, attribute keys and string values verbatim (protobuf strings).
    assert "青山村".encode() in resp.content
    assert b"coverage" in resp.content and b"households" in resp.content
    assert b"counting" in resp.content and b"all" in resp.content  # the rule of review, as in the GeoJSON
    volunteer = user_client(client, session, world.town.grids[1][0], Role.volunteer)
    tx, ty = _tile(108.305, 30.01, 15)
    theirs = client.get(f"/api/v1/coverage/tiles/15/{tx}/{ty}.mvt", params={"month": MONTH}, headers=volunteer.headers)
    # A tile outside the volunteer's grid (village 0) carries nothing for them.
    assert theirs.status_code == 200 and theirs.content == b""
