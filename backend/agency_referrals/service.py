"""Referrals between units (转介): a unit refers a case, or one service of it, to another unit (an org
unit and an agency), sharing only the fields it chooses; the receiving unit accepts, declines with a
reason or completes with an outcome, and a referred service follows (referred -> in_progress -> done,
or back to planned with its former provider). The receiving unit sees the shared fields only, built
from the case's child when read; every read is audited."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, false, or_, select
from sqlmodel import Session, col

from backend.accounts import scope
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.agency_referrals.models import DEFAULT_SHARED, OPEN, AgencyReferral, AgencyReferralStatus, SharedField
from backend.audit import disclosure
from backend.cases import service as cases
from backend.cases.models import Case, CaseStatus
from backend.core import clock
from backend.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from backend.core.pagination import PageRequest
from backend.notifications import service as notifications
from backend.orgunits.models import OrgUnit
from backend.registry.models import Household, Person
from backend.service_plans import service as service_plans
from backend.service_plans.models import OPEN as SERVICE_OPEN
from backend.service_plans.models import CaseService, ServiceKind, ServiceStatus, ServiceStep
from backend.sync import revisions


class AgencyReferralNotFound(NotFound):
    code = "agency-referral-not-found"
    title_zh = "未找到转介"
    title_en = "Referral not found"


class AgencyReferralTransitionInvalid(Conflict):
    code = "agency-referral-transition-invalid"
    title_zh = "转介当前状态不允许此操作"
    title_en = "The referral's state does not allow this"


class AgencyReferralInvalid(InvalidInput):
    code = "agency-referral-invalid"
    title_zh = "转介填写有误"
    title_en = "Invalid referral"


class AgencyReferralServiceBusy(Conflict):
    code = "agency-referral-service-busy"
    title_zh = "该服务不能再转介"
    title_en = "The service cannot be referred now"


class AgencyReferralNotReceiver(Forbidden):
    code = "agency-referral-not-receiver"
    title_zh = "只有接收单位可以处理转介"
    title_en = "Only the receiving unit answers a referral"


class AgencyReferralNotReferrer(Forbidden):
    code = "agency-referral-not-referrer"
    title_zh = "只有辖区协调人或当前服务提供单位可以转介"
    title_en = "Only the jurisdiction's coordinators or the service's current provider refer it"


class Direction(StrEnum):
    incoming = "incoming"  # to my unit
    outgoing = "outgoing"  # from my unit (or sent by me)


# What the receiving unit does next, by status.
ANSWERS: dict[str, tuple[str, ...]] = {
    AgencyReferralStatus.sent.value: ("accept", "decline"),
    AgencyReferralStatus.accepted.value: ("complete",),
    AgencyReferralStatus.declined.value: (),
    AgencyReferralStatus.completed.value: (),
}


# ---------------------------------------------------------------- who


def _is_unit(principal: Principal, unit_id: int | None, agency: str | None) -> bool:
    return principal.acts_for(unit_id, agency)


def _reads_case(session: Session, principal: Principal, case_id: int) -> bool:
    """Whether the caller sees the case itself (not only what a referral shares of it)."""
    if not principal.can(Action.case_read):
        return False
    return session.execute(
        select(col(Case.id)).where(col(Case.id) == case_id, scope.visible(principal, Case))
    ).first() is not None


def may_answer(session: Session, principal: Principal, referral: AgencyReferral) -> bool:
    """The receiving unit's staff, or a coordinator whose jurisdiction holds the receiving unit (for a
    unit nobody of which uses the app)."""
    if not principal.can(Action.service_handle):
        return False
    if _is_unit(principal, referral.to_unit_id, referral.to_agency):
        return True
    unit = session.get(OrgUnit, referral.to_unit_id)
    return principal.can(Action.service_manage) and unit is not None and principal.covers(unit.path)


# ---------------------------------------------------------------- sending


def _shareable(session: Session, principal: Principal, case_id: int) -> list[str] | None:
    """What the caller may share of the case: anything when it sees the case, else only what referrals
    of the case shared with its own unit (and the summary of needs); None for anything."""
    if _reads_case(session, principal, case_id):
        return None
    got = {SharedField.needs_summary.value}
    if principal.agency is not None:
        for fields in session.execute(
            select(col(AgencyReferral.shared_fields)).where(
                col(AgencyReferral.case_id) == case_id, col(AgencyReferral.to_unit_id) == principal.org_unit_id,
                col(AgencyReferral.to_agency) == principal.agency)
        ).scalars():
            got |= set(fields or [])
    return [f.value for f in SharedField if f.value in got]


def _fields(requested: Sequence[str] | None, shareable: list[str] | None) -> list[str]:
    allowed = [f.value for f in SharedField]
    chosen = list(DEFAULT_SHARED) if requested is None else list(requested)
    unknown = sorted(set(chosen) - set(allowed))
    if unknown:
        raise AgencyReferralInvalid(f"可共享的字段为：{'、'.join(allowed)}",
                                    f"shared_fields must be among {', '.join(allowed)}", field="shared_fields",
                                    allowed=allowed)
    if shareable is not None and not set(chosen) <= set(shareable):
        raise AgencyReferralInvalid("只能共享本单位经转介获得的字段",
                                    "You may share only what a referral shared with your unit", field="shared_fields",
                                    allowed=shareable)
    return [f for f in allowed if f in chosen]


def _target(session: Session, principal: Principal, case: Case, unit_id: int) -> OrgUnit:
    unit = session.get(OrgUnit, unit_id)
    case_unit = session.get(OrgUnit, case.org_unit_id)
    assert case_unit is not None
    if unit is None or not (principal.covers(unit.path) or case_unit.path.startswith(unit.path)):
        raise AgencyReferralInvalid("接收单位应在您的辖区内或在个案所在单位之上",
                                    "The receiving unit must be in your jurisdiction or above the case's unit",
                                    field="to_unit_id")
    return unit


def send(session: Session, principal: Principal, case_id: int, *, to_unit_id: int, to_agency: str,
         service_id: int | None = None, shared_fields: Sequence[str] | None = None,
         message: str | None = None) -> AgencyReferral:
    """Refer a case (coordinators, service.manage) or one of its services (coordinators of the jurisdiction
    or the service's current provider, service.handle) to another unit; a referred service moves to
    `referred` and the receiving unit becomes its provider. The receiving unit is told."""
    service: CaseService | None = None
    # Referrals of one service sent at once, or racing the case's closing, are taken one after the other
    # (the sync counter, which every case, service and referral change takes first): one is sent, the
    # others find the service busy (409), and none deadlocks.
    revisions.hold(session)
    if service_id is None:
        principal.require(Action.service_manage)
        case = cases.get_case(session, principal, case_id, action=Action.service_manage)
    else:
        principal.require(Action.service_handle)
        service = service_plans.get_service(session, principal, service_id, action=Action.service_handle)
        if service.case_id != case_id:
            raise service_plans.ServiceNotFound()
        manages = principal.can(Action.service_manage) and _reads_case(session, principal, case_id)
        if not manages and not _is_unit(principal, service.provider_unit_id, service.provider_agency):
            raise AgencyReferralNotReferrer(service_id=service.id)
        found = session.get(Case, case_id)
        assert found is not None
        case = found
    if case.status == CaseStatus.closed.value:
        raise service_plans.ServiceCaseClosed(case_id=case.id)
    agency = service_plans.agency_of(to_agency, "to_agency")
    assert agency is not None
    unit = _target(session, principal, case, to_unit_id)
    fields = _fields(shared_fields, _shareable(session, principal, case.id or 0))
    handed_on: AgencyReferral | None = None
    if service is not None:
        busy = session.execute(select(AgencyReferral).where(
            col(AgencyReferral.service_id) == service.id, col(AgencyReferral.status).in_(OPEN))).scalars().first()
        # The unit that accepted the service may hand it on: its own referral ends, completed.
        if busy is not None and busy.status == AgencyReferralStatus.accepted.value and _is_unit(
                principal, busy.to_unit_id, busy.to_agency):
            handed_on, busy = busy, None
        if busy is not None or ServiceStatus.referred.value not in service_plans.allowed_steps(service):
            raise AgencyReferralServiceBusy(
                f"服务状态为{service.status}或已有未办结的转介", f"The service is {service.status} or already referred",
                current_status=service.status, referral_id=busy.id if busy else None)
    now = clock.now()
    referral = AgencyReferral(
        case_id=case.id or 0, service_id=service.id if service else None, org_unit_id=case.org_unit_id,
        from_unit_id=principal.org_unit_id, from_agency=principal.agency, from_user_id=principal.user_id,
        to_unit_id=unit.id or 0, to_agency=agency, shared_fields=fields,
        previous_unit_id=service.provider_unit_id if service else None,
        previous_agency=service.provider_agency if service else None,
        message=(message or "").strip() or None, status=AgencyReferralStatus.sent.value, sent_at=now, updated_at=now)
    session.add(referral)
    session.flush()
    if handed_on is not None:
        handed_on.status, handed_on.completed_at, handed_on.completed_by = AgencyReferralStatus.completed.value, now, \
            principal.user_id
        handed_on.outcome, handed_on.updated_at = f"转介至其他单位 (handed on: referral {referral.id})", now
        session.add(handed_on)
        disclosure.changed(disclosure.AGENCY_REFERRAL, [handed_on.id], unit_id=handed_on.org_unit_id)
    if service is not None:
        service.provider_unit_id, service.provider_agency = unit.id or 0, agency
        service_plans.move(session, service, to_status=ServiceStatus.referred.value, actor=principal,
                           note=f"agency referral {referral.id}", named=False)
    _changed(session, referral, principal, "agency_referral.send", {"shared_fields": fields})
    receivers = service_plans.unit_staff(session, referral.to_unit_id, referral.to_agency)
    _tell(session, receivers, referral, "agency_referral.received",
          "收到新的转介", "New referral", "有单位向您所在单位转介了一项个案服务，请及时接收处理。",
          "A unit has referred a case service to your unit; please answer it.")
    return referral


def _changed(session: Session, referral: AgencyReferral, principal: Principal | None, action: str,
             details: dict[str, Any] | None = None) -> None:
    referral.updated_at = clock.now()
    session.add(referral)
    session.flush()
    disclosure.changed(disclosure.AGENCY_REFERRAL, [referral.id], unit_id=referral.org_unit_id)
    disclosure.event(session, action, actor=principal, object_type="agency_referral", object_id=referral.id,
                     org_unit_id=referral.org_unit_id,
                     details={**(details or {}), "case_id": referral.case_id, "service_id": referral.service_id})


def _tell(session: Session, user_ids: Sequence[int], referral: AgencyReferral, kind: str, title_zh: str, title_en: str,
          body_zh: str, body_en: str) -> None:
    if user_ids:
        notifications.enqueue(session, user_ids=list(user_ids), kind=kind, title_zh=title_zh, title_en=title_en,
                              body_zh=body_zh, body_en=body_en, data={"agency_referral_id": str(referral.id)})


def _tell_referrer(session: Session, referral: AgencyReferral) -> None:
    """The referrer (the user who sent it) hears the answer."""
    if referral.from_user_id is None:
        return
    words = {AgencyReferralStatus.accepted.value: ("已接收", "accepted"),
             AgencyReferralStatus.declined.value: ("已拒绝", "declined"),
             AgencyReferralStatus.completed.value: ("已办结", "completed")}
    zh, en = words.get(referral.status, (referral.status, referral.status))
    _tell(session, [referral.from_user_id], referral, f"agency_referral.{referral.status}", f"转介{zh}",
          f"Referral {en}", f"您发出的一项转介{zh}，请在系统中查看。",
          f"A referral you sent was {en}; see it in the app.")


# ---------------------------------------------------------------- answering


def _refuse(referral: AgencyReferral, what: str) -> AgencyReferralTransitionInvalid:
    allowed = list(ANSWERS.get(referral.status, ()))
    return AgencyReferralTransitionInvalid(
        f"转介状态为{referral.status}，不能{what}；可执行：{'、'.join(allowed) or '无'}",
        f"A referral in status {referral.status} cannot {what}; allowed: {', '.join(allowed) or 'none'}",
        current_status=referral.status, allowed=allowed)


def _answerable(session: Session, principal: Principal, referral_id: int, what: str) -> AgencyReferral:
    principal.require(Action.service_handle)
    referral = scope.get_visible(session, principal, AgencyReferral, referral_id, action=Action.service_read,
                                 not_found=AgencyReferralNotFound)
    # The sync counter before the referral's row, as a case's closing (which declines its referrals) and
    # a service's steps take it first: one lock order, so answers racing a closing wait, never deadlock.
    revisions.hold(session)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(col(AgencyReferral.id)).where(col(AgencyReferral.id) == referral.id).with_for_update())
        session.refresh(referral)
    if not may_answer(session, principal, referral):
        raise AgencyReferralNotReceiver(referral_id=referral.id)
    if what not in ANSWERS.get(referral.status, ()):
        raise _refuse(referral, what)
    return referral


def _service(session: Session, referral: AgencyReferral) -> CaseService | None:
    return session.get(CaseService, referral.service_id) if referral.service_id is not None else None


def accept(session: Session, principal: Principal, referral_id: int, *, note: str | None = None) -> AgencyReferral:
    """sent -> accepted; a referred service goes in progress."""
    referral = _answerable(session, principal, referral_id, "accept")
    referral.status, referral.answered_at, referral.answered_by = AgencyReferralStatus.accepted.value, clock.now(), \
        principal.user_id
    service = _service(session, referral)
    if service is not None and service.status == ServiceStatus.referred.value:
        service_plans.move(session, service, to_status=ServiceStatus.in_progress.value, actor=principal, note=note,
                           named=False)
    _changed(session, referral, principal, "agency_referral.accept")
    _tell_referrer(session, referral)
    return referral


def decline(session: Session, principal: Principal, referral_id: int, *, reason: str) -> AgencyReferral:
    """sent -> declined with a reason; a referred service goes back to planned with its former provider."""
    reason = (reason or "").strip()
    if not reason:
        raise AgencyReferralInvalid("拒绝转介须说明原因", "A reason is required to decline", field="reason")
    referral = _answerable(session, principal, referral_id, "decline")
    referral.status, referral.answered_at, referral.answered_by = AgencyReferralStatus.declined.value, clock.now(), \
        principal.user_id
    referral.decline_reason = reason
    service = _service(session, referral)
    if service is not None and service.status == ServiceStatus.referred.value:
        _restore_provider(service, referral)
        service_plans.move(session, service, to_status=ServiceStatus.planned.value, actor=principal,
                           note=f"agency referral {referral.id} declined: {reason}", named=False)
    _changed(session, referral, principal, "agency_referral.decline")
    _tell_referrer(session, referral)
    return referral


def complete(session: Session, principal: Principal, referral_id: int, *, outcome: str) -> AgencyReferral:
    """accepted -> completed with an outcome; the referred service is done with it."""
    outcome = (outcome or "").strip()
    if not outcome:
        raise AgencyReferralInvalid("办结转介须填写结果", "An outcome is required to complete", field="outcome")
    referral = _answerable(session, principal, referral_id, "complete")
    referral.status, referral.completed_at, referral.completed_by = AgencyReferralStatus.completed.value, clock.now(), \
        principal.user_id
    referral.outcome = outcome
    service = _service(session, referral)
    if service is not None and service.status == ServiceStatus.in_progress.value:
        service_plans.move(session, service, to_status=ServiceStatus.done.value, actor=principal, outcome=outcome,
                           named=False)
    _changed(session, referral, principal, "agency_referral.complete")
    _tell_referrer(session, referral)
    return referral


def _restore_provider(service: CaseService, referral: AgencyReferral) -> None:
    if referral.previous_unit_id is not None and referral.previous_agency is not None:
        service.provider_unit_id, service.provider_agency = referral.previous_unit_id, referral.previous_agency


def follow_service_step(session: Session, service: CaseService, step: ServiceStep, actor: Principal | None) -> None:
    """A step recorded on a service (from the web, a phone, or the case's closure) answers its open
    referral the same way: in progress accepts it, done completes it, declined declines it, and a
    service taken back to planned withdraws it (declined, its former provider again)."""
    referral = session.execute(
        select(AgencyReferral).where(col(AgencyReferral.service_id) == service.id,
                                     col(AgencyReferral.status).in_(OPEN))
        .order_by(col(AgencyReferral.id).desc())
    ).scalars().first()
    if referral is None:
        return
    now, actor_id = clock.now(), actor.user_id if actor else None
    state = AgencyReferralStatus
    if step.to_status == ServiceStatus.in_progress.value and referral.status == state.sent.value:
        referral.status, referral.answered_at, referral.answered_by = state.accepted.value, now, actor_id
    elif step.to_status == ServiceStatus.done.value:
        referral.status, referral.completed_at, referral.completed_by = state.completed.value, now, actor_id
        referral.outcome = step.outcome
    elif step.to_status in (ServiceStatus.declined.value, ServiceStatus.planned.value):
        referral.status, referral.answered_at, referral.answered_by = state.declined.value, now, actor_id
        referral.decline_reason = step.reason or step.note or "withdrawn"
        if step.to_status == ServiceStatus.planned.value:
            _restore_provider(service, referral)
            session.add(service)
    else:
        return
    referral.updated_at = now
    session.add(referral)
    session.flush()
    disclosure.changed(disclosure.AGENCY_REFERRAL, [referral.id], unit_id=referral.org_unit_id)
    _tell_referrer(session, referral)


def end_with_case(session: Session, case: Case, principal: Principal | None) -> None:
    """A case closes: its referrals still open that carry no service (those with one end with it)
    are declined with the reason `case_closed`."""
    now = clock.now()
    for referral in session.execute(
        select(AgencyReferral).where(col(AgencyReferral.case_id) == case.id, col(AgencyReferral.status).in_(OPEN))
    ).scalars():
        referral.status, referral.answered_at = AgencyReferralStatus.declined.value, now
        referral.answered_by = principal.user_id if principal else None
        referral.decline_reason, referral.updated_at = "case_closed", now
        session.add(referral)
        session.flush()
        disclosure.changed(disclosure.AGENCY_REFERRAL, [referral.id], unit_id=referral.org_unit_id)


# ---------------------------------------------------------------- reading


def get(session: Session, principal: Principal, referral_id: int) -> AgencyReferral:
    """A referral the caller may see (404 otherwise, as for an id that does not exist); audited."""
    principal.require(Action.service_read)
    referral = scope.get_visible(session, principal, AgencyReferral, referral_id, not_found=AgencyReferralNotFound)
    disclosure.event(session, "agency_referral.read", actor=principal, object_type="agency_referral",
                     object_id=referral.id, org_unit_id=referral.org_unit_id,
                     details={"case_id": referral.case_id, "shared_fields": referral.shared_fields})
    return referral


def list_referrals(session: Session, principal: Principal, *, direction: Direction | None = None,
                   status: AgencyReferralStatus | None = None, case_id: int | None = None,
                   page: PageRequest = PageRequest()) -> list[AgencyReferral]:
    """Referrals the caller may see, newest first: incoming (to its unit), outgoing (from its unit or sent
    by it), or all it sees (coordinators: those of cases of the jurisdiction)."""
    principal.require(Action.service_read)
    query = select(AgencyReferral).where(scope.visible(principal, AgencyReferral))
    mine = principal.agency is not None
    if direction is Direction.incoming:
        query = query.where(and_(col(AgencyReferral.to_unit_id) == principal.org_unit_id,
                                 col(AgencyReferral.to_agency) == principal.agency) if mine else false())
    elif direction is Direction.outgoing:
        from_unit = and_(col(AgencyReferral.from_unit_id) == principal.org_unit_id,
                         col(AgencyReferral.from_agency) == principal.agency) if mine else false()
        query = query.where(or_(from_unit, col(AgencyReferral.from_user_id) == principal.user_id))
    if status is not None:
        query = query.where(col(AgencyReferral.status) == status.value)
    if case_id is not None:
        query = query.where(col(AgencyReferral.case_id) == case_id)
    return list(session.execute(page.seek(query, col(AgencyReferral.id), descending=True, bare_limit=500)).scalars())


def _age(birth: date | None) -> int | None:
    if birth is None:
        return None
    today = clock.china_date(clock.now())
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def shared_view(session: Session, principal: Principal, referral: AgencyReferral) -> dict[str, Any]:
    """Exactly the fields the referral shares, read from the case's child now (never stored), and
    declared to the request's audit entry. A unit that reads the child only through referrals reads
    them as the receiver of an open referral: once it declined or completed it, or when it is the unit
    that sent (handed the service on), it has no more need of them (minimum necessary), and the answer
    shares nothing (`shared` {})."""
    fields = list(referral.shared_fields or [])
    disclosure.record(disclosure.AGENCY_REFERRAL, [referral.id], unit_id=referral.org_unit_id)
    if not fields:
        return {}
    receiving = referral.status in OPEN and _is_unit(principal, referral.to_unit_id, referral.to_agency)
    if not receiving and not _reads_case(session, principal, referral.case_id):
        return {}
    case = session.get(Case, referral.case_id)
    child = session.get(Person, case.child_id) if case is not None else None
    home = session.get(Household, child.household_id) if child is not None and child.household_id else None
    if child is not None and set(fields) - {SharedField.needs_summary.value}:
        disclosure.record(disclosure.PERSON, [child.id])
    values: dict[str, Any] = {
        SharedField.child_name.value: child.name if child else None,
        SharedField.child_age.value: _age(child.birth_date) if child else None,
        SharedField.child_gender.value: child.sex if child else None,
        SharedField.guardian_name.value: home.head_name if home else None,
        SharedField.guardian_phone.value: home.contact if home else None,
        SharedField.address.value: (home.address if home else None) or (child.residence if child else None),
    }
    if SharedField.needs_summary.value in fields:
        values[SharedField.needs_summary.value] = _needs(session, referral)
    return {f: values.get(f) for f in fields}


def _needs(session: Session, referral: AgencyReferral) -> str:
    """The kinds of the case's services still open (and the referred one), in Chinese: no personal data."""
    kinds = session.execute(
        select(col(ServiceKind.name_zh)).join(CaseService, col(CaseService.kind) == col(ServiceKind.code))
        .where(col(CaseService.case_id) == referral.case_id,
               or_(col(CaseService.status).in_(SERVICE_OPEN), col(CaseService.id) == referral.service_id))
        .order_by(col(CaseService.id))
    ).scalars()
    return "、".join(dict.fromkeys(kinds))


def allowed_answers(session: Session, principal: Principal, referral: AgencyReferral) -> list[str]:
    """What the caller may do with the referral now."""
    return list(ANSWERS.get(referral.status, ())) if may_answer(session, principal, referral) else []
