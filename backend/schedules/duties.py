"""执法职责 (enforcement duties): which agency inspects which type of venue, and how often, per county.

Seeds 001 and 002 put the joint enforcement in the hands of the police station and the
market-supervision office, once a month (seed 002: 每月组织1次联合执法), for every kind of venue: that
is the national default. A county brings in its other inspecting bodies (文旅, 教育, 综合执法, 卫健,
named in seed 002) by writing its own list, which then replaces the default for every unit inside it.
Key venues stay weekly whatever the duties say (seed 001: 重点场所每周至少检查1次).
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlmodel import Session, col

from backend.accounts.grants import AGENCY_ZH
from backend.accounts.models import Agency
from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.core import clock
from backend.core.errors import InvalidInput
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.schedules.models import EnforcementDuty
from backend.schedules.rules import Duty
from backend.schedules.schemas import DutiesIn, DutiesPublic, DutyPublic
from backend.venues.models import VenueType

NATIONAL_INTERVAL_DAYS = 28  # seed 002: once a month

# The bodies whose officers inspect venues (the police role, or market_officer 行业执法人员 for the rest).
INSPECTING_AGENCIES: tuple[Agency, ...] = (
    Agency.police, Agency.market_supervision, Agency.culture_tourism, Agency.education,
    Agency.comprehensive_enforcement, Agency.health,
)

NATIONAL: tuple[Duty, ...] = tuple(
    Duty(agency.value, t.value, NATIONAL_INTERVAL_DAYS)
    for agency in (Agency.police, Agency.market_supervision) for t in VenueType
)


class DutiesNotAtCounty(InvalidInput):
    code = "duties-at-county-only"
    title_zh = "执法职责按县（区）配置"
    title_en = "Enforcement duties are set per county"


class InvalidDuty(InvalidInput):
    code = "invalid-duty"
    title_zh = "执法职责有误"
    title_en = "An enforcement duty is not valid"


def county_of(session: Session, unit: OrgUnit) -> OrgUnit | None:
    """The county a unit lies in (itself when it is one); None above county level."""
    ids = [int(p) for p in unit.path.strip("/").split("/") if p]
    return session.execute(select(OrgUnit).where(col(OrgUnit.id).in_(ids),
                                                 col(OrgUnit.level) == OrgLevel.county.value)).scalar_one_or_none()


def duties_for(session: Session, unit: OrgUnit) -> tuple[tuple[Duty, ...], int | None]:
    """The duties in force at a unit and the county that set them (None: the national default)."""
    county = county_of(session, unit)
    if county is None:
        return NATIONAL, None
    rows = list(session.execute(select(EnforcementDuty).where(col(EnforcementDuty.org_unit_id) == county.id)
                                .order_by(col(EnforcementDuty.agency), col(EnforcementDuty.venue_type))).scalars())
    if not rows:
        return NATIONAL, None
    return tuple(Duty(r.agency, r.venue_type, r.interval_days) for r in rows), county.id


def _public(unit_id: int, duties: tuple[Duty, ...], county_id: int | None) -> DutiesPublic:
    return DutiesPublic(
        org_unit_id=unit_id, county_unit_id=county_id, national_default=county_id is None,
        duties=[DutyPublic(agency=Agency(d.agency), venue_type=VenueType(d.venue_type), interval_days=d.interval_days,
                           agency_zh=AGENCY_ZH[Agency(d.agency)], venue_type_zh=VenueType(d.venue_type).zh)
                for d in sorted(duties, key=lambda d: (d.agency, d.venue_type))])


def get(session: Session, principal: Principal, unit_id: int) -> DutiesPublic:
    """The duties in force at a unit of the caller's jurisdiction: its county's, or the national default."""
    unit = orgunits.get_visible_unit(session, principal, unit_id)
    duties, county_id = duties_for(session, unit)
    return _public(unit_id, duties, county_id)


def put(session: Session, principal: Principal, unit_id: int, data: DutiesIn) -> DutiesPublic:
    """Replace a county's duties (an empty list returns it to the national default). Audited."""
    unit = orgunits.get_visible_unit(session, principal, unit_id)
    if unit.level != OrgLevel.county.value:
        raise DutiesNotAtCounty("执法职责只能在县（区）一级配置", "duties are set on a county", level=unit.level)
    seen: set[tuple[str, str]] = set()
    for n, d in enumerate(data.duties):
        if d.agency not in INSPECTING_AGENCIES:
            raise InvalidDuty(f"{AGENCY_ZH[d.agency]}不是执法检查单位", f"{d.agency.value} does not inspect venues",
                              reason="agency-does-not-inspect", field=f"duties.{n}.agency",
                              allowed=[a.value for a in INSPECTING_AGENCIES])
        key = (d.agency.value, d.venue_type.value)
        if key in seen:
            raise InvalidDuty("同一单位对同一类场所只能有一条职责", "one duty per agency and venue type",
                              reason="duplicate", field=f"duties.{n}")
        seen.add(key)
    assert unit.id is not None
    session.execute(delete(EnforcementDuty).where(col(EnforcementDuty.org_unit_id) == unit.id))
    now = clock.now()
    for d in data.duties:
        session.add(EnforcementDuty(org_unit_id=unit.id, agency=d.agency.value, venue_type=d.venue_type.value,
                                    interval_days=d.interval_days, updated_at=now,
                                    updated_by_user_id=principal.user_id))
    session.flush()
    audit.record(session, actor=principal, action="schedule.duties_set", object_type="org_unit", object_id=unit.id,
                 org_unit_id=unit.id, details={
                     "duties": sorted(f"{d.agency.value}:{d.venue_type.value}:{d.interval_days}" for d in data.duties),
                     "national_default": not data.duties})
    duties, county_id = duties_for(session, unit)
    return _public(unit.id, duties, county_id)
