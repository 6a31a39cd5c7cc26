"""Org tree reads, scoped to the caller's jurisdiction."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.core.db import SessionDep
from backend.core.errors import NotFound
from backend.core.geo import CoordinateSystem, geometry_geojson, to_wgs84
from backend.core.pagination import Page, Paging
from backend.orgunits import service
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.orgunits.schemas import OrgUnitFeature, OrgUnitPublic

router = APIRouter(prefix="/org-units", tags=["org-units"])

Reader = Annotated[Principal, requires(Action.orgunit_read)]


def _public(unit: OrgUnit) -> OrgUnitPublic:
    assert unit.id is not None
    return OrgUnitPublic(id=unit.id, code=unit.code, name=unit.name, level=OrgLevel(unit.level),
                         parent_id=unit.parent_id, has_boundary=unit.boundary is not None)


@router.get("/mine", response_model=OrgUnitPublic)
def my_unit(principal: Reader, session: SessionDep) -> OrgUnitPublic:
    """The caller's own unit (the root of what they may see)."""
    return _public(service.get_visible_unit(session, principal, principal.org_unit_id))


@router.get("/locate", response_model=OrgUnitPublic)
def locate(
    principal: Reader,
    session: SessionDep,
    lat: Annotated[float, Query(ge=-90, le=90)],
    lon: Annotated[float, Query(ge=-180, le=180)],
    crs: CoordinateSystem = CoordinateSystem.wgs84,
    level: OrgLevel = OrgLevel.grid,
) -> OrgUnitPublic:
    """The unit (grid by default) containing a point, within the caller's jurisdiction."""
    wlon, wlat = to_wgs84(lon, lat, crs)
    unit = service.locate(session, wlon, wlat, level=level, within_path=principal.org_path)
    if unit is None:
        raise NotFound("该位置不在您的辖区内的任何单元中", "No unit of yours contains this point")
    return _public(unit)


@router.get("/{unit_id}", response_model=OrgUnitPublic)
def get_unit(unit_id: int, principal: Reader, session: SessionDep) -> OrgUnitPublic:
    """One unit."""
    return _public(service.get_visible_unit(session, principal, unit_id))


@router.get("/{unit_id}/children", response_model=list[OrgUnitPublic] | Page[OrgUnitPublic])
def children(unit_id: int, principal: Reader, session: SessionDep,
             page: Paging) -> list[OrgUnitPublic] | Page[OrgUnitPublic]:
    """A unit's direct children, by code."""
    return page.answer([_public(u) for u in service.children(session, principal, unit_id)], key=lambda u: (u.code,))


@router.get("/{unit_id}/boundary", response_model=OrgUnitFeature)
def boundary(unit_id: int, principal: Reader, session: SessionDep) -> OrgUnitFeature:
    """A unit's boundary as a GeoJSON Feature (WGS-84)."""
    unit = service.get_visible_unit(session, principal, unit_id)
    assert unit.id is not None
    return OrgUnitFeature(
        id=unit.id,
        geometry=geometry_geojson(unit.boundary),
        properties={"code": unit.code, "name": unit.name, "level": unit.level},
    )
