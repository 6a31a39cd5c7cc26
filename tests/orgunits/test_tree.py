"""The org tree: subtrees, point lookups, jurisdiction."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from backend.accounts.permissions import Role
from backend.core.geo import wgs84_to_gcj02
from backend.demo.town import grid_box
from backend.orgunits import service
from backend.orgunits.models import OrgLevel, OrgUnit
from tests.factories import make_town, user_client


def test_point_lookup_finds_the_grid_on_the_index(session: Session) -> None:
    town = make_town(session)
    west, south, east, north = grid_box(3, 2)
    found = service.locate(session, (west + east) / 2, (south + north) / 2)
    assert found is not None
    assert found.id == town.grids[3][2].id
    assert service.locate(session, 100.0, 20.0) is None


def test_point_lookup_stays_inside_the_given_subtree(session: Session) -> None:
    town = make_town(session)
    west, south, east, north = grid_box(3, 2)
    assert service.locate(session, (west + east) / 2, (south + north) / 2, within_path=town.villages[0].path) is None


def test_subtree_covers_descendants_only(session: Session) -> None:
    town = make_town(session)
    ids = set(session.execute(service.subtree_unit_ids(town.villages[0].path)).scalars())
    assert ids == {town.villages[0].id, *(g.id for g in town.grids[0])}


def test_subtree_range_does_not_leak_into_siblings_with_longer_ids(session: Session) -> None:
    """Path '/1/2/' must not match '/1/20/': the range bound is on the separator."""
    root = service.create_unit(session, code="A", name="A", level=OrgLevel.province, parent=None)
    units = [service.create_unit(session, code=f"B{i}", name="B", level=OrgLevel.city, parent=root) for i in range(25)]
    session.commit()
    first = units[0]
    ids = set(session.execute(service.subtree_unit_ids(first.path)).scalars())
    assert ids == {first.id}


def test_volunteer_sees_own_village_and_not_the_next(client: TestClient, session: Session) -> None:
    town = make_town(session)
    volunteer = user_client(client, session, town.villages[0], Role.volunteer)
    assert client.get(f"/api/v1/org-units/{town.grids[0][1].id}", headers=volunteer.headers).status_code == 200
    resp = client.get(f"/api/v1/org-units/{town.villages[1].id}", headers=volunteer.headers)
    assert resp.status_code == 404
    assert resp.json()["code"] == "not-found"
    # Same answer as an id that does not exist at all.
    assert client.get("/api/v1/org-units/999999", headers=volunteer.headers).json()["code"] == "not-found"


def test_locate_accepts_gcj02_fixes_from_amap_phones(client: TestClient, session: Session) -> None:
    town = make_town(session)
    volunteer = user_client(client, session, town.villages[0], Role.volunteer)
    west, south, east, north = grid_box(0, 4)
    lon, lat = wgs84_to_gcj02((west + east) / 2, (south + north) / 2)
    resp = client.get("/api/v1/org-units/locate", params={"lat": lat, "lon": lon, "crs": "gcj02"},
                      headers=volunteer.headers)
    assert resp.status_code == 200
    assert resp.json()["id"] == town.grids[0][4].id


def test_children_and_boundary_as_geojson(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    kids = client.get(f"/api/v1/org-units/{town.town.id}/children", headers=coordinator.headers).json()
    assert [k["level"] for k in kids] == ["village"] * 8
    feature = client.get(f"/api/v1/org-units/{town.villages[0].id}/boundary", headers=coordinator.headers).json()
    assert feature["geometry"]["type"] == "MultiPolygon"


def test_levels_must_descend(session: Session) -> None:
    import pytest

    from backend.core.errors import InvalidInput

    town = make_town(session)
    with pytest.raises(InvalidInput):
        service.create_unit(session, code="X", name="X", level=OrgLevel.town, parent=town.grids[0][0])
    assert session.exec(select(OrgUnit).where(OrgUnit.code == "X")).first() is None
