"""Mandatory reports (强制报告): created at once from a visit (or filed directly by a unit with the duty
to report: backend/referrals/mandatory.py), handled by the town's police."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts import scope
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.audit import service as audit
from backend.cases import service as cases
from backend.cases.models import CaseSource
from backend.core import clock
from backend.core.config import get_settings
from backend.core.errors import Conflict, InvalidInput, NotFound
from backend.core.pagination import PageRequest
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.referrals.models import Referral, ReferralStatus, ReportSource
from backend.registry.models import Person, PersonRole
from backend.sync import revisions


class ReferralNotFound(NotFound):
    code = "referral-not-found"


class ReferralStatusConflict(Conflict):
    code = "referral-status"
    title_zh = "报告状态不允许此操作"
    title_en = "The referral's status does not allow this"


class ReportChildInvalid(InvalidInput):
    code = "mandatory-report-child-invalid"
    title_zh = "所指儿童不在您可查看的登记范围内"
    title_en = "The child is not a registered child you may see"


def visible_child(session: Session, principal: Principal, *, child_id: int | None = None,
                  child_uuid: Any = None) -> tuple[int, int | None]:
    """(id, household id) of a registered child the caller may see (by id or uuid); the same 422 for a
    child that does not exist, has left the registry or lies outside the caller's view, so nothing
    about the registry is revealed."""
    refused = ReportChildInvalid("请核对儿童，或改为填写儿童情况描述",
                                 "Check the child, or describe the child instead",
                                 field="child_uuid" if child_id is None else "child_id")
    if not principal.can(Action.child_read) or (child_id is None and child_uuid is None):
        raise refused
    query = select(col(Person.id), col(Person.household_id)).where(
        col(Person.role) == PersonRole.child.value, col(Person.retired_at).is_(None),
        scope.visible(principal, Person))
    if child_id is not None:
        query = query.where(col(Person.id) == child_id)
    if child_uuid is not None:
        query = query.where(col(Person.uuid) == child_uuid)
    row = session.execute(query).first()
    if row is None:
        raise refused
    return int(row[0]), (int(row[1]) if row[1] is not None else None)


def town_of(session: Session, unit_id: int) -> int | None:
    """The town (乡镇) above a unit, whose police station receives its reports."""
    unit = session.get(OrgUnit, unit_id)
    if unit is None:
        return None
    town = orgunits.nearest_ancestor(session, unit, OrgLevel.town)
    return town.id if town else None


def create_from_visit(
    session: Session,
    *,
    visit_id: int,
    household_id: int,
    org_unit_id: int,
    child_ids: list[int],
    reasons: list[dict[str, Any]],
    actor: Principal,
) -> Referral:
    """Open a referral for a visit's clue of abuse, with its deadlines, and a case (个案) for each child
    it names; audited."""
    settings = get_settings()
    now = clock.now()
    referral = Referral(
        visit_id=visit_id,
        household_id=household_id,
        org_unit_id=org_unit_id,
        police_unit_id=town_of(session, org_unit_id),
        child_ids=child_ids,
        reasons=reasons,
        status=ReferralStatus.new.value,
        created_at=now,
        receive_due_at=now + timedelta(hours=settings.referral_receive_hours),
        handle_due_at=now + timedelta(hours=settings.referral_handle_hours),
        source_kind=ReportSource.visit.value,
        reporter_user_id=actor.user_id,
    )
    session.add(referral)
    session.flush()
    disclosure.changed(disclosure.REFERRAL, [referral.id], unit_id=org_unit_id)
    audit.record(
        session,
        actor=actor,
        action="referral.create",
        object_type="referral",
        object_id=referral.id,
        org_unit_id=org_unit_id,
        details={"visit_id": visit_id, "children": len(child_ids)},
    )
    tell_police(session, referral)
    # Each child the clue names gets a case (or its open case gains this source).
    cases.open_for_referral(session, referral_id=referral.id or 0, child_ids=child_ids, actor=actor)
    return referral


def tell_police(session: Session, referral: Referral) -> None:
    """Push the new referral to the police of its station at once (ids only, no personal data)."""
    from backend.accounts.permissions import Role
    from backend.notifications import service as notifications
    from backend.notifications.recipients import role_at_or_above
    from backend.orgunits.models import OrgUnit

    station = session.get(OrgUnit, referral.police_unit_id) if referral.police_unit_id else None
    if station is None:
        return
    _, officers = role_at_or_above(session, station, Role.police)
    notifications.enqueue(
        session,
        user_ids=officers,
        kind="referral.created",
        title_zh="新的强制报告线索",
        title_en="New mandatory report",
        body_zh="收到一条涉及未成年人的强制报告线索，请在规定时间内接收处理。",
        body_en="A mandatory report about a minor has arrived; acknowledge it within the time limit.",
        data={"referral_id": str(referral.id)},
        critical=True,
    )


def public(r: Referral) -> dict[str, Any]:
    """A referral as answers carry it: the referral and the children it names are declared to the
    request's audit entry."""
    disclosure.record(disclosure.REFERRAL, [r.id], unit_id=r.org_unit_id)
    disclosure.record(disclosure.PERSON, r.child_ids or [])

    def iso(value: Any) -> str | None:
        return clock.as_utc(value).isoformat() if value is not None else None

    now = clock.now()
    overdue = (r.status == ReferralStatus.new.value and clock.as_utc(r.receive_due_at) < now) or (
        r.status != ReferralStatus.handled.value and clock.as_utc(r.handle_due_at) < now
    )
    return {
        "id": r.id,
        "visit_id": r.visit_id,
        "household_id": r.household_id,
        "org_unit_id": r.org_unit_id,
        "police_unit_id": r.police_unit_id,
        "child_ids": r.child_ids,
        "reasons": r.reasons,
        "status": r.status,
        "created_at": iso(r.created_at),
        "receive_due_at": iso(r.receive_due_at),
        "handle_due_at": iso(r.handle_due_at),
        "received_at": iso(r.received_at),
        "handled_at": iso(r.handled_at),
        "outcome_note": r.outcome_note,
        "overdue": overdue,
        # Where it came from (visit, or a unit filing directly) and, for a direct report, what was filed.
        "source_kind": r.source_kind,
        "reporter_user_id": r.reporter_user_id,
        "reporter_unit_id": r.reporter_unit_id,
        "reporter_agency": r.reporter_agency,
        "reporter_contact": r.reporter_contact,
        "description": r.description,
        "seen_at": iso(r.seen_at),
        "place": r.place,
        "venue_id": r.venue_id,
        "lon": r.lon,
        "lat": r.lat,
        "child_description": r.child_description,
    }


def list_referrals(session: Session, principal: Principal, *, status: ReferralStatus | None,
                   page: PageRequest = PageRequest(), source_kind: ReportSource | None = None,
                   visits_only: bool = False) -> list[Referral]:
    """Referrals in the caller's jurisdiction (police and coordinators; 404 for everyone else), newest
    first (the bare list: the newest 500); `visits_only`: the visits' clues only (the v1 list)."""
    principal.require(Action.referral_read)
    query = select(Referral).where(scope.visible(principal, Referral))
    if visits_only:
        query = query.where(col(Referral.visit_id).is_not(None))
    if status is not None:
        query = query.where(col(Referral.status) == status.value)
    if source_kind is not None:
        query = query.where(col(Referral.source_kind) == source_kind.value)
    return list(session.execute(page.seek(query, col(Referral.id), descending=True, bare_limit=500)).scalars())


def get_referral(session: Session, principal: Principal, referral_id: int) -> Referral:
    principal.require(Action.referral_read)
    r = scope.get_visible(session, principal, Referral, referral_id, not_found=ReferralNotFound)
    disclosure.event(session, "referral.read", actor=principal, object_type="referral", object_id=r.id,
                     org_unit_id=r.org_unit_id)
    return r


def advance(session: Session, principal: Principal, referral_id: int, to: ReferralStatus, note: str | None,
            *, child_id: int | None = None) -> Referral:
    """new -> received -> handled; audited. On receipt the police may link a registered child of their
    jurisdiction (`child_id`); a direct report's children get their case (个案) then, a visit's got
    theirs when it was filed (a child linked now gets one too)."""
    principal.require(Action.referral_manage)
    get_referral(session, principal, referral_id)  # visible to the caller (404 otherwise), read audited
    # Checked and changed under the row's lock: two officers acknowledging at once (each naming a child)
    # get one receipt and one 409, never two receipts and two children's cases. The sync counter first,
    # as every case change takes it (the receipt opens cases): one lock order.
    revisions.hold(session)
    r = session.get(Referral, referral_id, with_for_update=True, populate_existing=True)
    assert r is not None
    expected = {ReferralStatus.received: ReferralStatus.new, ReferralStatus.handled: ReferralStatus.received}.get(to)
    if expected is None or r.status != expected.value:
        raise ReferralStatusConflict(
            f"当前状态为{r.status}，不能变为{to.value}", f"A referral in status {r.status} cannot become {to.value}"
        )
    linked: int | None = None
    if child_id is not None:
        if to is not ReferralStatus.received:
            raise ReferralStatusConflict("仅可在接收时关联儿童", "A child is linked on receipt only")
        linked, household_id = visible_child(session, principal, child_id=child_id)
        if linked not in (r.child_ids or []):
            r.child_ids = [*(r.child_ids or []), linked]
        if r.household_id is None:
            r.household_id = household_id
    now = clock.now()
    if to is ReferralStatus.received:
        r.received_at, r.received_by = now, principal.user_id
    else:
        r.handled_at, r.handled_by, r.outcome_note = now, principal.user_id, note
    r.status = to.value
    session.add(r)
    session.flush()
    disclosure.changed(disclosure.REFERRAL, [r.id], unit_id=r.org_unit_id)
    disclosure.event(session, f"referral.{to.value}", actor=principal, object_type="referral", object_id=r.id,
                     org_unit_id=r.org_unit_id, details={"linked_child_id": linked} if linked is not None else None)
    if to is ReferralStatus.received:
        _open_cases_on_receipt(session, principal, r, linked)
    return r


def _open_cases_on_receipt(session: Session, principal: Principal, r: Referral, linked: int | None) -> None:
    """A direct report's children (named by the reporter or linked now) get their case, source
    mandatory_report; of a visit's, only a child linked now (the others got theirs at filing). A child
    who has left the registry since is skipped."""
    direct = r.source_kind != ReportSource.visit.value
    wanted = sorted(set(r.child_ids or [])) if direct else ([linked] if linked is not None else [])
    source = CaseSource.mandatory_report if direct else CaseSource.referral
    for child in wanted:
        try:
            cases.open_case(session, child_id=child, source=source, source_id=r.id, actor=principal)
        except cases.CaseChildInvalid:
            continue
