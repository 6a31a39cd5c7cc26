"""Coverage map (GeoJSON and vector tiles) and the never-visited lists."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.campaigns.router import PeriodDep
from backend.core.db import SessionDep, is_sqlite
from backend.core.errors import DomainError, InvalidInput
from backend.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from backend.coverage import rules, service
from backend.coverage.schemas import NotVisitedPublic

router = APIRouter(prefix="/coverage", tags=["coverage"])


class TilesNeedPostgis(DomainError):
    code = "tiles-need-postgis"
    status = 501
    title_zh = "矢量瓦片需要 PostGIS"
    title_en = "Vector tiles need PostGIS"


@router.get("", responses={200: {"content": {"application/geo+json": {}}}})
def coverage_map(
    session: SessionDep,
    principal: Annotated[Principal, requires(Action.coverage_read)],
    period: PeriodDep,
    unit_id: Annotated[int | None, Query(description="default: the caller's own unit")] = None,
    zoom: Annotated[int, Query(ge=rules.MIN_ZOOM, le=rules.MAX_ZOOM, description="map zoom the polygons are for")] = 12,
    points: Annotated[bool, Query(description="also household points, where the role and zoom allow")] = False,
) -> Any:
    """The child units of a unit as a GeoJSON FeatureCollection with coverage numbers."""
    unit = service.visible_unit(session, principal, unit_id)
    body = service.feature_collection(session, principal, unit, period, zoom=zoom, points=points)
    return JSONResponse(body, media_type="application/geo+json")


@router.get("/tiles/{z}/{x}/{y}.mvt", response_class=Response,
            responses={200: {"content": {"application/vnd.mapbox-vector-tile": {}}}})
def coverage_tile(
    session: SessionDep,
    principal: Annotated[Principal, requires(Action.coverage_read)],
    period: PeriodDep,
    z: Annotated[int, Path(ge=0, le=22)],
    x: Annotated[int, Path(ge=0)],
    y: Annotated[int, Path(ge=0)],
) -> Response:
    """A vector tile of coverage by unit (PostGIS only)."""
    if is_sqlite(session.get_bind().engine):
        raise TilesNeedPostgis("矢量瓦片仅在 PostGIS 数据库上提供，请使用 GeoJSON 接口 /api/v1/coverage",
                               "Vector tiles are served on PostGIS only; use the GeoJSON endpoint /api/v1/coverage")
    limit = 2**z
    if x >= limit or y >= limit:
        raise InvalidInput("瓦片坐标超出范围", "tile coordinates out of range for the zoom", field="x")
    tile = service.tile_mvt(session, principal, period, z, x, y)
    return Response(tile, media_type="application/vnd.mapbox-vector-tile")


@router.get("/not-visited", response_model=Page[NotVisitedPublic])
def not_visited(
    session: SessionDep,
    principal: Annotated[Principal, requires(Action.coverage_households)],
    period: PeriodDep,
    unit_id: Annotated[int | None, Query()] = None,
    ever: Annotated[bool, Query(description="never visited at all (before the period's end)")] = False,
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[NotVisitedPublic]:
    """Households not visited in the period (or never), for the people who must go; audited."""
    unit = service.visible_unit(session, principal, unit_id)
    items, next_cursor = service.not_visited_households(session, principal, unit, period, ever=ever, cursor=cursor,
                                                        limit=limit)
    return Page[NotVisitedPublic](items=[NotVisitedPublic.of(i) for i in items], next_cursor=next_cursor)
