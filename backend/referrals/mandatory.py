"""Mandatory reports (强制报告) filed directly by anyone with the duty to report: schools,
kindergartens, health centres, venues (through market officers or police), villages, volunteers,
grid workers, helpers.

A report lands in the police's one queue (`referral`, backend/referrals/service.py) with the same
deadlines, escalation and notification as a visit's clue, routed to the police station of the town
of its place. `file_report` is the one entry point for POST /mandatory-reports and the sync push kind
"mandatory_report": the unique `client_uuid`, not a prior SELECT, decides what is new (INSERT ... ON
CONFLICT DO NOTHING), so a resend with the same content answers the stored report, the same uuid with
other content is a conflict, and the police are told once.

The reporter sees the status of its own reports only (filed, received, handled, with the times):
never the case, the outcome note, nor a child the police linked.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Agency
from backend.accounts.permissions import Action, Role
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.audit import service as audit
from backend.core import clock
from backend.core.config import get_settings
from backend.core.db import dialect_insert
from backend.core.errors import Conflict, InvalidInput, NotFound
from backend.core.geo import to_wgs84
from backend.core.pagination import Page, PageRequest
from backend.orgunits import service as orgunits
from backend.referrals import service as referrals
from backend.referrals.models import Referral, ReferralStatus, ReportSource
from backend.referrals.schemas import ChildDescription, MandatoryReportData, MandatoryReportMine
from backend.venues import service as venues
from backend.venues.models import Venue


class MandatoryReportNotFound(NotFound):
    code = "mandatory-report-not-found"
    title_zh = "未找到该报告"
    title_en = "Report not found"


class MandatoryReportConflict(Conflict):
    code = "mandatory-report-conflict"
    title_zh = "该报告编号已以不同内容提交"
    title_en = "This report's uuid was already used with other content"

    stored: Referral | None = None  # the stored report, when it is the caller's own


class SeenInFuture(InvalidInput):
    code = "mandatory-report-seen-in-future"
    title_zh = "发现时间不能晚于当前时间"
    title_en = "The time seen cannot be in the future"


class PlaceNotRouted(InvalidInput):
    code = "mandatory-report-place-required"
    title_zh = "请选择发生地所在的村(社区)或网格"
    title_en = "Name the place's village or grid"


# The source a reporter's unit or role implies when the report does not say (a venue named: venue).
_AGENCY_SOURCE = {Agency.education.value: ReportSource.school, Agency.health.value: ReportSource.health_centre,
                  Agency.village_committee.value: ReportSource.village}
_ROLE_SOURCE = ((Role.volunteer, ReportSource.volunteer), (Role.grid_worker, ReportSource.grid),
                (Role.market_officer, ReportSource.venue))

# What the reporter is told of the police's status.
_STATUS: dict[str, Literal["filed", "received", "handled"]] = {
    ReferralStatus.new.value: "filed", ReferralStatus.received.value: "received",
    ReferralStatus.handled.value: "handled"}


@dataclass(frozen=True)
class Filed:
    referral: Referral
    created: bool  # False: a resend of the same report (the stored one)


def default_source(principal: Principal, *, venue: bool) -> ReportSource:
    """The source of a report that does not name one: a venue's when it names a venue, else the
    reporter's agency's (school, health centre, village), else its role's (volunteer, grid, venue)."""
    if venue:
        return ReportSource.venue
    if principal.agency in _AGENCY_SOURCE:
        return _AGENCY_SOURCE[principal.agency]
    for role, source in _ROLE_SOURCE:
        if role in principal.roles:
            return source
    return ReportSource.other


def digest(data: MandatoryReportData) -> str:
    """What the report says, in one form: the same report written differently (another offset for the
    same instant, 8 or 8.0, a null or absent member) has the same digest."""
    body = data.model_dump(mode="json")
    body["seen_at"] = clock.as_utc(data.seen_at).isoformat()
    for name in ("lon", "lat"):
        if body[name] is not None:
            body[name] = float(body[name]) + 0.0
    if data.child is not None:
        body["child"] = {k: v for k, v in body["child"].items() if v is not None} or None
    raw = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def _by_uuid(session: Session, client_uuid: UUID) -> Referral | None:
    return session.execute(select(Referral).where(col(Referral.client_uuid) == client_uuid)).scalar_one_or_none()


def _resent(principal: Principal, stored: Referral, content: str) -> Filed:
    """A uuid already stored: the same report from the same reporter is a duplicate; anything else a
    conflict (naming nothing about a report of someone else)."""
    own = stored.reporter_user_id == principal.user_id
    if own and stored.content_hash == content:
        return Filed(stored, created=False)
    extensions: dict[str, Any] = {"report_id": stored.id} if own else {}
    refusal = MandatoryReportConflict("同一报告编号已提交过不同内容", "The uuid was used for another report",
                                      **extensions)
    refusal.stored = stored if own else None
    raise refusal


def _place(session: Session, principal: Principal, data: MandatoryReportData, venue: Venue | None
           ) -> tuple[int, float | None, float | None]:
    """(the place's unit, lon, lat in WGS-84). A unit or venue outside the caller's jurisdiction is 404
    as if it did not exist; a point alone places the report in the caller's grid containing it; else
    the report is the reporter's unit's."""
    if (data.lon is None) != (data.lat is None):
        raise InvalidInput("经度和纬度需同时提供", "Give both lon and lat", field="lon")
    lon = lat = None
    if data.lon is not None and data.lat is not None:
        lon, lat = to_wgs84(data.lon, data.lat, data.crs)
    if data.org_unit_id is not None:
        return orgunits.get_visible_unit(session, principal, data.org_unit_id).id or 0, lon, lat
    if venue is not None:
        return venue.org_unit_id, lon, lat
    if lon is not None and lat is not None:
        found = orgunits.locate(session, lon, lat, within_path=principal.org_path)
        if found is not None and found.id is not None:
            return found.id, lon, lat
    return principal.org_unit_id, lon, lat


def file_report(session: Session, principal: Principal, data: MandatoryReportData, *, client_uuid: UUID | None,
                named: bool = True) -> Filed:
    """File a report (or answer the stored one for a resend), route it to the police of its place's
    town with the referral deadlines, and tell them once. `named`: the request is named after the
    filing (REST); a push names its own entry and the filing gets an entry of its own."""
    principal.require(Action.mandatory_report_file)
    content = digest(data)
    if client_uuid is not None:
        stored = _by_uuid(session, client_uuid)
        if stored is not None:
            return _resent(principal, stored, content)
    now = clock.now()
    if clock.as_utc(data.seen_at) > now + timedelta(minutes=get_settings().device_clock_max_ahead_minutes):
        raise SeenInFuture("发现时间晚于当前时间，请核对手机时间", "seen_at is in the future", field="seen_at")
    venue = venues.get_venue(session, principal, data.venue_id) if data.venue_id is not None else None
    unit_id, lon, lat = _place(session, principal, data, venue)
    child_id = household_id = None
    if data.child_id is not None or data.child_uuid is not None:
        child_id, household_id = referrals.visible_child(session, principal, child_id=data.child_id,
                                                         child_uuid=data.child_uuid)
    police_unit_id = referrals.town_of(session, unit_id)
    if police_unit_id is None:
        raise PlaceNotRouted("无法确定发生地所属乡镇派出所，请选择村(社区)或网格",
                             "The place's town is unknown: name its village or grid", field="org_unit_id")
    settings = get_settings()
    source = data.source_kind or default_source(principal, venue=data.venue_id is not None).value
    values: dict[str, Any] = {
        "visit_id": None, "household_id": household_id, "org_unit_id": unit_id, "police_unit_id": police_unit_id,
        "child_ids": [child_id] if child_id is not None else [], "reasons": [], "status": ReferralStatus.new.value,
        "created_at": now, "receive_due_at": now + timedelta(hours=settings.referral_receive_hours),
        "handle_due_at": now + timedelta(hours=settings.referral_handle_hours), "source_kind": source,
        "reporter_user_id": principal.user_id, "reporter_unit_id": principal.org_unit_id,
        "reporter_agency": principal.agency, "reporter_contact": data.reporter_contact,
        "description": data.description, "seen_at": clock.as_utc(data.seen_at), "place": data.place,
        "venue_id": data.venue_id, "lon": lon, "lat": lat, "reported_child_id": child_id,
        "child_description": (data.child.model_dump(exclude_none=True) or None) if data.child is not None else None,
        "client_uuid": client_uuid, "content_hash": content,
    }
    insert = dialect_insert(session)(Referral).values(**values)
    if client_uuid is not None:
        insert = insert.on_conflict_do_nothing(index_elements=["client_uuid"])
    new_id = session.execute(insert.returning(col(Referral.id))).scalar_one_or_none()
    if new_id is None:  # the same uuid stored meanwhile by a concurrent request: a resend after all
        stored = _by_uuid(session, client_uuid) if client_uuid is not None else None
        assert stored is not None
        return _resent(principal, stored, content)
    referral = session.get(Referral, new_id)
    assert referral is not None
    disclosure.changed(disclosure.REFERRAL, [new_id], unit_id=unit_id)
    details = {"source_kind": source, "child_named": child_id is not None, "police_unit_id": police_unit_id}
    if named:
        disclosure.event(session, "mandatory_report.file", actor=principal, object_type="referral", object_id=new_id,
                         org_unit_id=unit_id, details=details)
    else:
        audit.record(session, actor=principal, action="mandatory_report.file", object_type="referral",
                     object_id=new_id, org_unit_id=unit_id, details=details)
    referrals.tell_police(session, referral)
    return Filed(referral, created=True)


def mine_public(r: Referral) -> MandatoryReportMine:
    """A report as its reporter sees it, declared to the request's audit entry."""
    disclosure.record(disclosure.REFERRAL, [r.id], unit_id=r.org_unit_id)
    if r.reported_child_id is not None:
        disclosure.record(disclosure.PERSON, [r.reported_child_id])

    def utc(value: Any) -> Any:
        return clock.as_utc(value) if value is not None else None

    return MandatoryReportMine(
        id=r.id or 0, client_uuid=r.client_uuid, source_kind=r.source_kind, status=_STATUS[r.status],
        filed_at=clock.as_utc(r.created_at), received_at=utc(r.received_at), handled_at=utc(r.handled_at),
        visit_id=r.visit_id, description=r.description, seen_at=utc(r.seen_at), place=r.place,
        org_unit_id=r.org_unit_id, venue_id=r.venue_id, lon=r.lon, lat=r.lat, child_id=r.reported_child_id,
        child=ChildDescription.model_validate(r.child_description) if r.child_description else None,
        reporter_contact=r.reporter_contact,
    )


def list_mine(session: Session, principal: Principal, page: PageRequest) -> Page[MandatoryReportMine]:
    """The caller's own reports (filed directly or opened by its visits), newest first."""
    principal.require(Action.mandatory_report_file)
    query = select(Referral).where(col(Referral.reporter_user_id) == principal.user_id)
    rows = list(session.execute(page.seek(query, col(Referral.id), descending=True)).scalars())
    answer = page.answer([mine_public(r) for r in rows], key=lambda r: (r.id,), descending=True)
    assert isinstance(answer, Page)
    return answer


def get_mine(session: Session, principal: Principal, report_id: int) -> Referral:
    """One of the caller's own reports; anyone else's (or none) is 404, police and coordinators too
    (they read reports at /referrals)."""
    principal.require(Action.mandatory_report_file)
    r: Referral | None = session.execute(
        select(Referral).where(col(Referral.id) == report_id, col(Referral.reporter_user_id) == principal.user_id)
    ).scalar_one_or_none()
    if r is None:
        raise MandatoryReportNotFound()
    disclosure.event(session, "mandatory_report.read", actor=principal, object_type="referral", object_id=r.id,
                     org_unit_id=r.org_unit_id)
    return r
