"""The venue ledger: create, read, update within jurisdiction, and the risk score."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from backend.accounts.principal import Principal
from backend.core import clock
from backend.core.errors import Conflict, InvalidInput
from backend.core.geo import point, point_lon_lat, to_wgs84
from backend.inspections.models import OPEN_STATUSES, Inspection, Penalty, Problem, ProblemStatus
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel
from backend.venues import credit_code, risk
from backend.venues.models import Venue, VenueStatus, VenueType
from backend.venues.schemas import RiskPartPublic, RiskPublic, VenueCreate, VenuePublic, VenueUpdate


class VenueExists(Conflict):
    code = "venue-exists"
    title_zh = "该统一社会信用代码的场所已登记"
    title_en = "A venue with this credit code is already registered"


class VenueOutsideJurisdiction(InvalidInput):
    code = "venue-outside-jurisdiction"
    title_zh = "场所位置不在您的辖区内"
    title_en = "The venue lies outside your jurisdiction"


def lon_lat(venue: Venue) -> tuple[float, float]:
    ll = point_lon_lat(venue.location)
    assert ll is not None
    return ll


def public(venue: Venue, score: risk.RiskScore | None = None, high_risk_threshold: int = risk.DEFAULT_HIGH_RISK
           ) -> VenuePublic:
    assert venue.id is not None
    lon, lat = lon_lat(venue)
    vtype = VenueType(venue.venue_type)
    return VenuePublic(
        id=venue.id, venue_type=vtype, venue_type_zh=vtype.zh, name=venue.name, credit_code=venue.credit_code,
        address=venue.address, lon=lon, lat=lat, owner_name=venue.owner_name, owner_phone=venue.owner_phone,
        is_key=venue.is_key, status=VenueStatus(venue.status), org_unit_id=venue.org_unit_id,
        updated_at=venue.updated_at, risk=risk_public(score, high_risk_threshold) if score else None,
    )


def risk_public(score: risk.RiskScore, threshold: int = risk.DEFAULT_HIGH_RISK) -> RiskPublic:
    return RiskPublic(total=score.total, high_risk=score.total >= threshold, formula=score.formula,
                      parts=[RiskPartPublic(name=p.name, label_zh=p.label_zh, label_en=p.label_en, points=p.points,
                                            basis=p.basis) for p in score.parts])


def resolve_unit(session: Session, principal: Principal, lon: float, lat: float, org_unit_id: int | None) -> int:
    """The org unit a venue belongs to: the given one (if visible) or the grid containing the point."""
    if org_unit_id is not None:
        unit = orgunits.get_visible_unit(session, principal, org_unit_id)
        assert unit.id is not None
        return unit.id
    grid = orgunits.locate(session, lon, lat, level=OrgLevel.grid, within_path=principal.org_path)
    if grid is None or grid.id is None:
        raise VenueOutsideJurisdiction(
            "该坐标不在您辖区内的任何网格中，请核对坐标或指定所属单位",
            "No grid of your jurisdiction contains this point; check it or give org_unit_id",
        )
    return grid.id


def find_by_code(session: Session, code: str) -> Venue | None:
    """The venue of a credit code, however it was typed (identifiers.fold)."""
    return session.execute(
        select(Venue).where(col(Venue.credit_code) == credit_code.normalise(code))).scalar_one_or_none()


def create_venue(session: Session, principal: Principal, data: VenueCreate) -> Venue:
    """Register a venue; its credit code must be new."""
    lon, lat = to_wgs84(data.lon, data.lat, data.crs)
    unit_id = resolve_unit(session, principal, lon, lat, data.org_unit_id)
    existing = find_by_code(session, data.credit_code)
    if existing is not None:
        path = orgunits.unit_path(session, existing.org_unit_id)
        extra: dict[str, Any] = {"venue_id": existing.id} if path and principal.covers(path) else {}
        raise VenueExists(f"信用代码 {data.credit_code} 已登记", f"credit code {data.credit_code} is registered",
                          **extra)
    venue = Venue(venue_type=data.venue_type.value, name=data.name, credit_code=data.credit_code,
                  address=data.address, location=point(lon, lat), owner_name=data.owner_name,
                  owner_phone=data.owner_phone, is_key=data.is_key, org_unit_id=unit_id, status=data.status.value)
    session.add(venue)
    session.flush()
    return venue


def get_venue(session: Session, principal: Principal, venue_id: int) -> Venue:
    """A venue inside the caller's jurisdiction, else 404."""
    return orgunits.get_in_jurisdiction(session, principal, Venue, venue_id)


def update_venue(session: Session, principal: Principal, venue_id: int, data: VenueUpdate) -> Venue:
    """Change a venue's fields (the credit code never changes: it is the venue's identity)."""
    venue = get_venue(session, principal, venue_id)
    fields = data.model_dump(exclude_unset=True, exclude={"lon", "lat", "crs", "org_unit_id"})
    for name, value in fields.items():
        if value is not None:
            setattr(venue, name, value.value if hasattr(value, "value") else value)
    if (data.lon is None) != (data.lat is None):
        raise InvalidInput("经度和纬度需同时提供", "give both lon and lat")
    if data.lon is not None and data.lat is not None:
        lon, lat = to_wgs84(data.lon, data.lat, data.crs)
        venue.location = point(lon, lat)
        venue.org_unit_id = resolve_unit(session, principal, lon, lat, data.org_unit_id)
    elif data.org_unit_id is not None:
        venue.org_unit_id = resolve_unit(session, principal, 0, 0, data.org_unit_id)
    venue.updated_at = clock.now()
    session.add(venue)
    session.flush()
    return venue


def list_venues(
    session: Session,
    principal: Principal,
    *,
    venue_type: VenueType | None = None,
    is_key: bool | None = None,
    status: VenueStatus | None = None,
    org_unit_id: int | None = None,
    q: str | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> list[Venue]:
    """Venues in the caller's jurisdiction (or a visible sub-unit), by id."""
    stmt = select(Venue).where(orgunits.in_jurisdiction(principal, col(Venue.org_unit_id)))
    if org_unit_id is not None:
        unit = orgunits.get_visible_unit(session, principal, org_unit_id)
        stmt = stmt.where(col(Venue.org_unit_id).in_(orgunits.subtree_unit_ids(unit.path)))
    if venue_type is not None:
        stmt = stmt.where(col(Venue.venue_type) == venue_type.value)
    if is_key is not None:
        stmt = stmt.where(col(Venue.is_key) == is_key)
    if status is not None:
        stmt = stmt.where(col(Venue.status) == status.value)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(col(Venue.name).like(like), col(Venue.address).like(like),
                              col(Venue.credit_code) == credit_code.normalise(q)))
    if after_id is not None:
        stmt = stmt.where(col(Venue.id) > after_id)
    return list(session.execute(stmt.order_by(col(Venue.id)).limit(limit)).scalars())


# ---------------------------------------------------------------- risk


def _chunks(ids: Sequence[int], size: int = 900) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start:start + size])


def _counts(session: Session, stmt: Any) -> dict[int, int]:
    return {int(vid): int(n) for vid, n in session.execute(stmt)}


def risk_scores(session: Session, venues: Sequence[Venue], today: date | None = None) -> dict[int, risk.RiskScore]:
    """Risk of each venue, computed with four grouped queries per 900 venues."""
    today = today or clock.china_date(clock.now())
    since = clock.now() - timedelta(days=risk.VIOLATION_WINDOW_DAYS)
    open_values = [s.value for s in OPEN_STATUSES]
    late_values = [ProblemStatus.open.value, ProblemStatus.rectifying.value, ProblemStatus.overdue.value]
    out: dict[int, risk.RiskScore] = {}
    ids = [v.id for v in venues if v.id is not None]
    open_n: dict[int, int] = {}
    overdue_n: dict[int, int] = {}
    recent_n: dict[int, int] = {}
    last: dict[int, datetime] = {}
    for chunk in _chunks(ids):
        pid = col(Problem.venue_id)
        open_n.update(_counts(session, select(pid, func.count()).where(
            pid.in_(chunk), col(Problem.status).in_(open_values)).group_by(pid)))
        overdue_n.update(_counts(session, select(pid, func.count()).where(
            pid.in_(chunk), col(Problem.status).in_(late_values), col(Problem.deadline_date) < today).group_by(pid)))
        for vid, n in session.execute(select(pid, func.count()).where(
                pid.in_(chunk), col(Problem.created_at) >= since).group_by(pid)):
            recent_n[int(vid)] = recent_n.get(int(vid), 0) + int(n)
        qid = col(Penalty.venue_id)
        for vid, n in session.execute(select(qid, func.count()).where(
                qid.in_(chunk), col(Penalty.created_at) >= since).group_by(qid)):
            recent_n[int(vid)] = recent_n.get(int(vid), 0) + int(n)
        iid = col(Inspection.venue_id)
        for vid, at in session.execute(select(iid, func.max(col(Inspection.counted_at))).where(
                iid.in_(chunk)).group_by(iid)):
            if at is not None:
                last[int(vid)] = clock.as_utc(at)
    # Days since inspection count to the real China day, even when `today` was given.
    now_day = clock.china_date(clock.now())
    for v in venues:
        assert v.id is not None
        seen = last.get(v.id)
        days = None if seen is None else (now_day - clock.china_date(seen)).days
        overdue = overdue_n.get(v.id, 0)
        out[v.id] = risk.score(VenueType(v.venue_type), open_problems=open_n.get(v.id, 0) - overdue,
                               overdue_problems=overdue, recent_violations=recent_n.get(v.id, 0),
                               days_since_inspection=days)
    return out


def last_inspected(session: Session, venue_ids: Sequence[int]) -> dict[int, datetime]:
    """When each venue was last inspected (venues never inspected are absent)."""
    out: dict[int, datetime] = {}
    iid = col(Inspection.venue_id)
    for chunk in _chunks(venue_ids):
        for vid, at in session.execute(select(iid, func.max(col(Inspection.counted_at))).where(
                iid.in_(chunk)).group_by(iid)):
            if at is not None:
                out[int(vid)] = clock.as_utc(at)
    return out
