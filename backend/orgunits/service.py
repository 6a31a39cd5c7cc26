"""The org tree: subtree filters, point lookups and boundary import."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.validation import explain_validity
from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from backend.accounts.principal import Principal
from backend.core import clock
from backend.core.errors import InvalidInput, NotFound
from backend.core.geo import SRID, point
from backend.orgunits.models import OrgLevel, OrgUnit, subtree_upper_bound


def subtree_unit_ids(path: str) -> Any:
    """SELECT of every unit id at or under `path` (one range scan on the path index)."""
    return select(col(OrgUnit.id)).where(
        col(OrgUnit.path) >= path,
        col(OrgUnit.path) < subtree_upper_bound(path),
    )


def in_jurisdiction(principal: Principal, org_unit_id_column: Any) -> ColumnElement[bool]:
    """SQL condition: the record's org unit lies inside the principal's subtree."""
    return org_unit_id_column.in_(subtree_unit_ids(principal.org_path))  # type: ignore[no-any-return]


def get_unit(session: Session, unit_id: int) -> OrgUnit | None:
    return session.get(OrgUnit, unit_id)


def unit_path(session: Session, unit_id: int) -> str | None:
    return session.execute(select(col(OrgUnit.path)).where(col(OrgUnit.id) == unit_id)).scalar_one_or_none()


class _InUnit(Protocol):
    org_unit_id: int


RecordT = TypeVar("RecordT", bound=_InUnit)


def get_in_jurisdiction(
    session: Session, principal: Principal, model: type[RecordT], record_id: int, *,
    not_found: type[NotFound] = NotFound,
) -> RecordT:
    """A record by id when its org unit lies inside the caller's jurisdiction; otherwise the same
    404 as for an id that does not exist, so ids cannot be probed."""
    record = session.get(model, record_id)
    path = unit_path(session, record.org_unit_id) if record is not None else None
    if record is None or path is None or not principal.covers(path):
        raise not_found()
    return record


def get_visible_unit(session: Session, principal: Principal, unit_id: int) -> OrgUnit:
    """A unit inside the caller's jurisdiction, else 404."""
    unit = session.get(OrgUnit, unit_id)
    if unit is None:
        raise NotFound()
    principal.ensure_covers(unit.path)
    return unit


def children(session: Session, principal: Principal, unit_id: int) -> list[OrgUnit]:
    """Direct children of a visible unit, ordered by code."""
    get_visible_unit(session, principal, unit_id)
    return list(
        session.execute(select(OrgUnit).where(col(OrgUnit.parent_id) == unit_id).order_by(col(OrgUnit.code)))
        .scalars()
        .all()
    )


def create_unit(
    session: Session,
    *,
    code: str,
    name: str,
    level: OrgLevel,
    parent: OrgUnit | None,
    boundary: MultiPolygon | None = None,
) -> OrgUnit:
    """Insert a unit under `parent`, checking the level order."""
    if parent is not None and OrgLevel(parent.level).depth >= level.depth:
        raise InvalidInput(
            f"{level.zh}不能隶属于{OrgLevel(parent.level).zh}",
            f"a {level.value} cannot sit under a {parent.level}",
        )
    unit = OrgUnit(
        code=code,
        name=name,
        level=level.value,
        parent_id=parent.id if parent else None,
        boundary=from_shape(boundary, srid=SRID) if boundary is not None else None,
    )
    session.add(unit)
    session.flush()
    unit.path = (parent.path if parent else "/") + f"{unit.id}/"
    session.add(unit)
    session.flush()
    return unit


def _point_in_units_sql(session: Session) -> str:
    """Dialect-specific, index-backed point-in-polygon query over org_unit.boundary."""
    if session.get_bind().dialect.name == "postgresql":
        return (
            "SELECT id FROM org_unit WHERE level = :level "
            "AND ST_Covers(boundary, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) "
            "AND path >= :lo AND path < :hi ORDER BY id LIMIT 1"
        )
    # SpatiaLite answers ST_Covers without its R*Tree unless asked through SpatialIndex.
    return (
        "SELECT id FROM org_unit WHERE level = :level AND rowid IN ("
        "  SELECT rowid FROM SpatialIndex WHERE f_table_name = 'org_unit' "
        "  AND f_geometry_column = 'boundary' AND search_frame = MakePoint(:lon, :lat, 4326)) "
        "AND ST_Covers(boundary, MakePoint(:lon, :lat, 4326)) "
        "AND path >= :lo AND path < :hi ORDER BY id LIMIT 1"
    )


def locate(
    session: Session, lon: float, lat: float, *, level: OrgLevel = OrgLevel.grid, within_path: str = "/"
) -> OrgUnit | None:
    """The unit of `level` whose boundary contains the point (the grid, by default)."""
    unit_id = session.execute(
        text(_point_in_units_sql(session)),
        {"level": level.value, "lon": lon, "lat": lat, "lo": within_path, "hi": subtree_upper_bound(within_path)},
    ).scalar_one_or_none()
    return session.get(OrgUnit, unit_id) if unit_id is not None else None


def ancestors(session: Session, unit: OrgUnit) -> list[OrgUnit]:
    """From the root down to the unit's parent."""
    ids = [int(p) for p in unit.path.strip("/").split("/")[:-1] if p]
    if not ids:
        return []
    rows = {u.id: u for u in session.execute(select(OrgUnit).where(col(OrgUnit.id).in_(ids))).scalars()}
    return [rows[i] for i in ids if i in rows]


def nearest_ancestor(session: Session, unit: OrgUnit, level: OrgLevel) -> OrgUnit | None:
    """The unit itself or its ancestor at `level`."""
    if unit.level == level.value:
        return unit
    for anc in reversed(ancestors(session, unit)):
        if anc.level == level.value:
            return anc
    return None


# ---------------------------------------------------------------- boundary import


@dataclass
class ImportReport:
    """Outcome of a boundary import: every bad feature by index, or what was written."""

    created: int = 0
    updated: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _to_multipolygon(geom: Any) -> MultiPolygon:
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    return cast(MultiPolygon, geom)


def _check_feature(index: int, feature: Any, known_codes: set[str]) -> tuple[dict[str, Any] | None, str | None]:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        return None, "not a GeoJSON Feature"
    props = feature.get("properties") or {}
    code, name, level = props.get("code"), props.get("name"), props.get("level")
    if not code or not isinstance(code, str):
        return None, "properties.code is missing"
    if not name or not isinstance(name, str):
        return None, "properties.name is missing"
    try:
        lvl = OrgLevel(str(level))
    except ValueError:
        return None, f"properties.level must be one of {[lv.value for lv in OrgLevel]}"
    parent_code = props.get("parent_code")
    if lvl is not OrgLevel.province and not parent_code:
        return None, "properties.parent_code is missing"
    if parent_code and parent_code not in known_codes:
        return None, f"parent_code {parent_code} is neither in the file before this feature nor stored"
    raw_geom = feature.get("geometry")
    geom = None
    if raw_geom is not None:
        try:
            geom = shape(raw_geom)
        except Exception as exc:  # shapely raises several types for malformed GeoJSON
            return None, f"geometry cannot be read: {exc}"
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            return None, f"geometry must be a Polygon or MultiPolygon, not {geom.geom_type}"
        if geom.is_empty:
            return None, "geometry is empty"
        if not geom.is_valid:
            return None, f"geometry is invalid: {explain_validity(geom)}"
        minx, miny, maxx, maxy = geom.bounds
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            return None, "coordinates are not WGS-84 longitude/latitude"
    elif lvl.depth >= OrgLevel.town.depth:
        return None, "geometry is required from town level down"
    return {
        "code": code,
        "name": name,
        "level": lvl,
        "parent_code": parent_code,
        "geometry": _to_multipolygon(geom) if geom is not None else None,
    }, None


def import_boundaries(session: Session, source: Path | dict[str, Any]) -> ImportReport:
    """Create or update units from a GeoJSON FeatureCollection. Features need properties code,
    name, level and parent_code (parents before children, or already stored). All or nothing:
    any bad feature means nothing is written, and every bad feature is reported by index."""
    report = ImportReport()
    try:
        doc = json.loads(source.read_text(encoding="utf-8")) if isinstance(source, Path) else source
    except (OSError, ValueError) as exc:
        report.errors.append({"index": None, "reason": f"file cannot be read as JSON: {exc}"})
        return report
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        report.errors.append({"index": None, "reason": "not a GeoJSON FeatureCollection"})
        return report

    parent_unit = aliased(OrgUnit, name="parent")
    stored: dict[str, tuple[str, str | None]] = {
        code: (level, parent_code)
        for code, level, parent_code in session.execute(
            select(col(OrgUnit.code), col(OrgUnit.level), col(parent_unit.code)).outerjoin(
                parent_unit, col(parent_unit.id) == col(OrgUnit.parent_id)
            )
        )
    }
    known = set(stored)
    checked: list[dict[str, Any]] = []
    seen_in_file: set[str] = set()
    for index, feature in enumerate(doc["features"]):
        item, reason = _check_feature(index, feature, known)
        code = item["code"] if item is not None else None
        if item is not None and code in seen_in_file:
            item, reason = None, f"code {code} appears twice in the file"
        if item is not None and code in stored:
            level, parent_code = stored[item["code"]]
            if level != item["level"].value or parent_code != item["parent_code"]:
                item, reason = None, f"code {code} is stored with another level or parent"
        if reason:
            report.errors.append({"index": index, "reason": reason})
            continue
        assert item is not None
        seen_in_file.add(item["code"])
        known.add(item["code"])
        checked.append(item)
    if report.errors:
        return report

    by_code: dict[str, OrgUnit] = {}
    for item in checked:
        existing = session.execute(select(OrgUnit).where(col(OrgUnit.code) == item["code"])).scalar_one_or_none()
        if existing is not None:
            existing.name = item["name"]
            if item["geometry"] is not None:
                existing.boundary = from_shape(item["geometry"], srid=SRID)
            existing.updated_at = clock.now()
            session.add(existing)
            by_code[item["code"]] = existing
            report.updated += 1
            continue
        parent = None
        if item["parent_code"]:
            parent = (
                by_code.get(item["parent_code"])
                or session.execute(select(OrgUnit).where(col(OrgUnit.code) == item["parent_code"])).scalar_one()
            )
        by_code[item["code"]] = create_unit(
            session,
            code=item["code"],
            name=item["name"],
            level=item["level"],
            parent=parent,
            boundary=item["geometry"],
        )
        report.created += 1
    session.flush()
    return report


def unit_contains(session: Session, unit: OrgUnit, lon: float, lat: float) -> bool:
    """Whether the unit's boundary covers the point (False when it has no boundary)."""
    if unit.boundary is None:
        return False
    return bool(
        session.execute(
            select(func.ST_Covers(col(OrgUnit.boundary), point(lon, lat))).where(col(OrgUnit.id) == unit.id)
        ).scalar()
    )
