"""Mandatory reports (强制报告): created at once from a visit, handled by the town's police."""

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
from backend.core import clock
from backend.core.config import get_settings
from backend.core.errors import Conflict, NotFound
from backend.core.pagination import PageRequest
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.referrals.models import Referral, ReferralStatus


class ReferralNotFound(NotFound):
    code = "referral-not-found"


class ReferralStatusConflict(Conflict):
    code = "referral-status"
    title_zh = "报告状态不允许此操作"
    title_en = "The referral's status does not allow this"


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
    _tell_police(session, referral)
    # Each child the clue names gets a case (or its open case gains this source).
    cases.open_for_referral(session, referral_id=referral.id or 0, child_ids=child_ids, actor=actor)
    return referral


def _tell_police(session: Session, referral: Referral) -> None:
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
    }


def list_referrals(session: Session, principal: Principal, *, status: ReferralStatus | None,
                   page: PageRequest = PageRequest()) -> list[Referral]:
    """Referrals in the caller's jurisdiction (police and coordinators; 404 for everyone else), newest
    first (the bare list: the newest 500)."""
    principal.require(Action.referral_read)
    query = select(Referral).where(scope.visible(principal, Referral))
    if status is not None:
        query = query.where(col(Referral.status) == status.value)
    return list(session.execute(page.seek(query, col(Referral.id), descending=True, bare_limit=500)).scalars())


def get_referral(session: Session, principal: Principal, referral_id: int) -> Referral:
    principal.require(Action.referral_read)
    r = scope.get_visible(session, principal, Referral, referral_id, not_found=ReferralNotFound)
    disclosure.event(session, "referral.read", actor=principal, object_type="referral", object_id=r.id,
                     org_unit_id=r.org_unit_id)
    return r


def advance(session: Session, principal: Principal, referral_id: int, to: ReferralStatus, note: str | None) -> Referral:
    """new -> received -> handled; audited."""
    principal.require(Action.referral_manage)
    r = get_referral(session, principal, referral_id)
    expected = {ReferralStatus.received: ReferralStatus.new, ReferralStatus.handled: ReferralStatus.received}.get(to)
    if expected is None or r.status != expected.value:
        raise ReferralStatusConflict(
            f"当前状态为{r.status}，不能变为{to.value}", f"A referral in status {r.status} cannot become {to.value}"
        )
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
                     org_unit_id=r.org_unit_id)
    return r
