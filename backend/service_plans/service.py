"""Service plans of cases (服务计划): coordinators plan services of a case, each provided by one unit
(an org unit and an agency); the providing unit's staff, coordinators of the jurisdiction and the
case's helpers record its steps (planned -> referred -> in_progress -> done | declined), from the web
or offline from a phone (`record_step`, the contract the sync push calls). Overdue services tell the
providing unit and the case's coordinators once. Reads and changes go through the one scope
mechanism (backend/accounts/scope.py) and the structural audit (backend/audit/disclosure.py)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlmodel import Session, col

from backend.accounts import scope
from backend.accounts.models import Agency, User, UserRole
from backend.accounts.permissions import ACTS_FOR_UNIT, PERMISSIONS, Action, Role
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.audit import service as audit
from backend.cases import service as cases
from backend.cases.models import Case, CaseStatus
from backend.core import clock
from backend.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from backend.core.pagination import PageRequest
from backend.notifications import service as notifications
from backend.notifications.recipients import coordinators_at_or_above
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.service_plans.models import (
    CASE_CLOSED,
    FINAL,
    OPEN,
    TRANSITIONS,
    CaseService,
    ServiceKind,
    ServiceStatus,
    ServiceStep,
)
from backend.sync import revisions

# Steps may be dated a little ahead of the server's clock (a phone's clock runs fast).
STEP_CLOCK_SLACK = timedelta(minutes=5)
KIND_CODE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
# A kind's name flows into referral summaries and spreadsheets: it may not start like a formula.
FORMULA_START = ("=", "+", "-", "@")


class ServiceNotFound(NotFound):
    code = "service-not-found"
    title_zh = "未找到服务"
    title_en = "Service not found"


class ServiceTransitionInvalid(Conflict):
    code = "service-transition-invalid"
    title_zh = "服务当前状态不允许此操作"
    title_en = "The service's state does not allow this"


class ServiceCaseClosed(Conflict):
    code = "service-case-closed"
    title_zh = "个案已结案，不能再安排服务"
    title_en = "The case is closed: no service can be planned"


class ServiceStepInvalid(InvalidInput):
    code = "service-step-invalid"
    title_zh = "服务进展填写有误"
    title_en = "Invalid service step"


class ServiceKindInvalid(InvalidInput):
    code = "service-kind-invalid"
    title_zh = "服务类型无效"
    title_en = "Invalid service kind"


class ServiceStepTimeInvalid(InvalidInput):
    code = "service-step-time-invalid"
    title_zh = "服务进展时间不能早于服务创建时间或上一条进展"
    title_en = "A step cannot be dated before the service was planned or before its previous step"


class ServiceKindNameInvalid(InvalidInput):
    code = "service-kind-name-invalid"
    title_zh = "服务类型名称不能以 = + - @ 开头"
    title_en = "A kind's name cannot start with = + - @"


class ServiceKindNotAllowed(Forbidden):
    code = "service-kind-not-allowed"
    title_zh = "只有县级及以上单位的协调人可以新增服务类型"
    title_en = "Only coordinators of a county or higher unit add kinds of service"


class ServiceKindExists(Conflict):
    code = "service-kind-exists"
    title_zh = "服务类型已存在"
    title_en = "The service kind exists already"


class ServiceProviderInvalid(InvalidInput):
    code = "service-provider-invalid"
    title_zh = "服务提供单位无效"
    title_en = "Invalid providing unit"


class ServiceNotHandler(Forbidden):
    code = "service-not-handler"
    title_zh = "只有服务提供单位、辖区协调人或个案帮扶人可以记录服务进展"
    title_en = "Only the providing unit, the jurisdiction's coordinators or the case's helpers record steps"


# ---------------------------------------------------------------- kinds


def list_kinds(session: Session) -> list[ServiceKind]:
    """Every kind of service, by code."""
    return list(session.execute(select(ServiceKind).order_by(col(ServiceKind.code))).scalars())


def agency_of(value: str | None, field: str) -> str | None:
    """An Agency value or None; anything else is refused."""
    if value is None:
        return None
    allowed = [a.value for a in Agency]
    if value not in allowed:
        raise ServiceProviderInvalid(f"单位类型应为：{'、'.join(allowed)}",
                                     f"agency must be one of {', '.join(allowed)}", field=field, allowed=allowed)
    return value


def add_kind(session: Session, principal: Principal, *, code: str, name_zh: str, name_en: str,
             default_agency: str | None) -> ServiceKind:
    """A coordinator of a county or higher unit adds a kind of service (a new slug): kinds are listed for
    everyone, so a village or town does not add them (403 service-kind-not-allowed)."""
    principal.require(Action.service_manage)
    unit = session.get(OrgUnit, principal.org_unit_id)
    if unit is None or OrgLevel(unit.level).depth > OrgLevel.county.depth:
        raise ServiceKindNotAllowed()
    for field, name in (("name_zh", name_zh), ("name_en", name_en)):
        if name.strip()[:1] in FORMULA_START or not name.strip():
            raise ServiceKindNameInvalid(f"{field} 不能为空，也不能以 = + - @ 开头",
                                         f"{field} must not be empty nor start with = + - @", field=field)
    if not KIND_CODE.match(code):
        raise ServiceKindInvalid("编码应为小写字母开头的字母、数字或下划线", "code must be a lowercase slug",
                                 field="code")
    if session.get(ServiceKind, code) is not None:
        raise ServiceKindExists(f"服务类型 {code} 已存在", f"The kind {code} exists already", field="code")
    kind = ServiceKind(code=code, name_zh=name_zh.strip(), name_en=name_en.strip(),
                       default_agency=agency_of(default_agency, "default_agency"), created_by=principal.user_id)
    session.add(kind)
    session.flush()
    audit.record(session, actor=principal, action="service_kind.create", object_type="service_kind",
                 object_id=code, org_unit_id=principal.org_unit_id, details={"default_agency": kind.default_agency})
    return kind


# ---------------------------------------------------------------- who handles


def addressed(principal: Principal) -> ColumnElement[bool]:
    """The services the unit the principal acts for (org unit + agency) provides: the scope's own
    condition (`scope.unit_is`), so a helper from that body handles none of them."""
    return scope.unit_is(principal, col(CaseService.provider_unit_id), col(CaseService.provider_agency))


def handled_by(principal: Principal) -> ColumnElement[bool]:
    """The services whose steps the principal may record: those its unit provides, those of its
    jurisdiction for a coordinator (service.manage), those of its accepted children's cases for a helper."""
    reach = [addressed(principal)]
    if principal.can(Action.service_manage):
        reach.append(orgunits.in_jurisdiction(principal, col(CaseService.org_unit_id)))
    if Role.helper in principal.roles and Action.service_handle in PERMISSIONS[Role.helper]:
        assigned_cases = select(col(Case.id)).where(col(Case.child_id).in_(scope.assigned_children(principal)))
        reach.append(and_(orgunits.in_jurisdiction(principal, col(CaseService.org_unit_id)),
                          col(CaseService.case_id).in_(assigned_cases)))
    return or_(*reach)


def may_handle(session: Session, principal: Principal, service: CaseService) -> bool:
    return session.execute(
        select(col(CaseService.id)).where(col(CaseService.id) == service.id, handled_by(principal))
    ).first() is not None


# ---------------------------------------------------------------- planning


def _provider_unit(session: Session, principal: Principal, case: Case, unit_id: int | None) -> OrgUnit:
    """The providing org unit: given (inside the caller's jurisdiction, or above the case's unit: a county
    bureau), else the town of the case (司法所, 民政办 ... sit at the town)."""
    case_unit = session.get(OrgUnit, case.org_unit_id)
    assert case_unit is not None
    if unit_id is None:
        town = orgunits.nearest_ancestor(session, case_unit, OrgLevel.town)
        return town or case_unit
    unit = session.get(OrgUnit, unit_id)
    if unit is None or not (principal.covers(unit.path) or case_unit.path.startswith(unit.path)):
        raise ServiceProviderInvalid("服务提供单位应在您的辖区内或在个案所在单位之上",
                                     "The providing unit must be in your jurisdiction or above the case's unit",
                                     field="provider_unit_id")
    return unit


def plan(session: Session, principal: Principal, case_id: int, *, kind: str, provider_unit_id: int | None = None,
         provider_agency: str | None = None, due_on: date | None = None, note: str | None = None,
         client_uuid: UUID | None = None) -> CaseService:
    """A coordinator plans a service of a case that is not closed, in its jurisdiction."""
    principal.require(Action.service_manage)
    # Under the case's lock: a service planned while the case closes either waits and is refused, or
    # is planned first and declined by the closing, never left live on a closed case.
    case = cases.locked_case(session, principal, case_id, Action.service_manage)
    if case.status == CaseStatus.closed.value:
        raise ServiceCaseClosed(case_id=case.id)
    found = session.get(ServiceKind, kind)
    if found is None:
        raise ServiceKindInvalid(f"未知的服务类型 {kind}", f"Unknown service kind {kind}", field="kind",
                                 allowed=[k.code for k in list_kinds(session)])
    agency = agency_of(provider_agency, "provider_agency") or found.default_agency
    if agency is None:
        raise ServiceProviderInvalid("请指定服务提供单位类型", "provider_agency is required for this kind",
                                     field="provider_agency")
    unit = _provider_unit(session, principal, case, provider_unit_id)
    now = clock.now()
    service = CaseService(case_id=case.id or 0, org_unit_id=case.org_unit_id, kind=kind, provider_unit_id=unit.id or 0,
                          provider_agency=agency, status=ServiceStatus.planned.value, due_on=due_on,
                          note=(note or "").strip() or None, created_by=principal.user_id, created_at=now,
                          updated_at=now, client_uuid=client_uuid)
    session.add(service)
    session.flush()
    session.add(ServiceStep(service_id=service.id or 0, from_status=None, to_status=service.status, note=service.note,
                            actor_user_id=principal.user_id, at=now, recorded_at=now))
    _changed(session, service, principal, "service.plan", {"kind": kind, "provider_agency": agency})
    return service


def _changed(session: Session, service: CaseService, principal: Principal | None, action: str,
             details: dict[str, Any] | None = None, *, named: bool = True) -> None:
    """Declare the change to the request's audit entry (named after it), or append an entry of its own."""
    session.flush()
    disclosure.changed(disclosure.SERVICE, [service.id], unit_id=service.org_unit_id)
    full = {**(details or {}), "case_id": service.case_id}
    if named:
        disclosure.event(session, action, actor=principal, object_type="case_service", object_id=service.id,
                         org_unit_id=service.org_unit_id, details=full)
    else:
        audit.record(session, actor=principal, action=action, object_type="case_service", object_id=service.id,
                     org_unit_id=service.org_unit_id, details=full)


# ---------------------------------------------------------------- reading


def is_overdue(service: CaseService, on: date | None = None) -> bool:
    due_by = on or clock.china_date(clock.now())
    return service.due_on is not None and service.due_on < due_by and service.status not in FINAL


def overdue_condition(on: date) -> ColumnElement[bool]:
    return and_(col(CaseService.due_on).is_not(None), col(CaseService.due_on) < on,
                col(CaseService.status).in_(OPEN))


def get_service(session: Session, principal: Principal, service_id: int, *,
                action: Action = Action.service_read) -> CaseService:
    """A service the caller may see (404 service-not-found otherwise, as for an id that does not exist)."""
    principal.require(action)
    return scope.get_visible(session, principal, CaseService, service_id, action=Action.service_read,
                             not_found=ServiceNotFound)


def read_audited(session: Session, principal: Principal, service: CaseService) -> None:
    disclosure.event(session, "service.read", actor=principal, object_type="case_service", object_id=service.id,
                     org_unit_id=service.org_unit_id, details={"case_id": service.case_id})


def list_services(session: Session, principal: Principal, *, case_id: int | None = None,
                  status: ServiceStatus | None = None, overdue: bool | None = None,
                  provider_unit_id: int | None = None, provider_agency: str | None = None,
                  page: PageRequest = PageRequest()) -> list[CaseService]:
    """Services the caller may see, newest first (the bare list: the newest 500)."""
    principal.require(Action.service_read)
    query = select(CaseService).where(scope.visible(principal, CaseService))
    if case_id is not None:
        query = query.where(col(CaseService.case_id) == case_id)
    if status is not None:
        query = query.where(col(CaseService.status) == status.value)
    if overdue is not None:
        condition = overdue_condition(clock.china_date(clock.now()))
        query = query.where(condition if overdue else ~condition)
    if provider_unit_id is not None:
        query = query.where(col(CaseService.provider_unit_id) == provider_unit_id)
    if provider_agency is not None:
        query = query.where(col(CaseService.provider_agency) == provider_agency)
    return list(session.execute(page.seek(query, col(CaseService.id), descending=True, bare_limit=500)).scalars())


def services_of_case(session: Session, principal: Principal, case_id: int) -> list[CaseService]:
    """The services of a case the caller may see (404 case-not-found when it may not see the case and
    none of its services is addressed to its unit)."""
    principal.require(Action.service_read)
    rows = list(session.execute(
        select(CaseService).where(col(CaseService.case_id) == case_id, scope.visible(principal, CaseService))
        .order_by(col(CaseService.id))
    ).scalars())
    if not rows and not principal.can(Action.case_read):
        raise cases.CaseNotFound()
    if not rows:
        cases.get_case(session, principal, case_id, action=Action.service_read)
    return rows


def steps_of(session: Session, service_ids: Sequence[int]) -> dict[int, list[ServiceStep]]:
    """The steps of these services in the order they were recorded (each from the status the one before
    left; `at` says when it happened, which a phone may give)."""
    out: dict[int, list[ServiceStep]] = {i: [] for i in service_ids}
    if not service_ids:
        return out
    for step in session.execute(
        select(ServiceStep).where(col(ServiceStep.service_id).in_(service_ids)).order_by(col(ServiceStep.id))
    ).scalars():
        out[step.service_id].append(step)
    return out


def allowed_steps(service: CaseService) -> list[str]:
    """The statuses the service may move to now, by any path: `referred` only by a referral of the
    service to a unit (backend/agency_referrals), never by a step."""
    return list(TRANSITIONS.get(service.status, ()))


def step_choices(service: CaseService) -> list[str]:
    """The statuses a step (REST or the phones' sync) may move the service to now: the service's
    `allowed` list. Never `referred`: only referring the service to a unit refers it."""
    return [s for s in allowed_steps(service) if s != ServiceStatus.referred.value]


# ---------------------------------------------------------------- steps


def _refuse(service: CaseService, to_status: str, allowed: list[str]) -> ServiceTransitionInvalid:
    referral = to_status == ServiceStatus.referred.value
    hint_zh = "；转介请使用个案转介功能" if referral else ""
    hint_en = "; refer it to a unit with POST /cases/{id}/referrals" if referral else ""
    return ServiceTransitionInvalid(
        f"服务状态为{service.status}，不能变为{to_status}；可变为：{'、'.join(allowed) or '无'}{hint_zh}",
        f"A service in status {service.status} cannot become {to_status}; allowed: {', '.join(allowed) or 'none'}"
        f"{hint_en}",
        current_status=service.status, allowed=allowed,
    )


@dataclass(frozen=True)
class _Step:
    to_status: str
    note: str | None
    outcome: str | None
    reason: str | None
    at: datetime


def _last_step_at(session: Session, service: CaseService) -> datetime | None:
    """When the service's latest step (in the order recorded) happened."""
    last = session.execute(
        select(col(ServiceStep.at)).where(col(ServiceStep.service_id) == service.id)
        .order_by(col(ServiceStep.id).desc()).limit(1)
    ).scalar_one_or_none()
    return clock.as_utc(last) if last is not None else None


def _checked(session: Session, service: CaseService, *, to_status: str, note: str | None, outcome: str | None,
             reason: str | None, at: datetime | None, by_referral: bool = False) -> _Step:
    statuses = [s.value for s in ServiceStatus]
    if to_status not in statuses:
        raise ServiceStepInvalid(f"状态应为：{'、'.join(statuses)}", f"to_status must be one of {', '.join(statuses)}",
                                 field="to_status", allowed=statuses)
    allowed = allowed_steps(service) if by_referral else step_choices(service)
    if to_status not in allowed:
        raise _refuse(service, to_status, allowed)
    note, outcome, reason = ((v or "").strip() or None for v in (note, outcome, reason))
    if to_status == ServiceStatus.done.value and outcome is None:
        raise ServiceStepInvalid("完成服务须填写结果", "An outcome is required to mark a service done", field="outcome")
    if to_status == ServiceStatus.declined.value and reason is None:
        raise ServiceStepInvalid("未提供服务须说明原因", "A reason is required to decline a service", field="reason")
    now = clock.now()
    when = clock.as_utc(at) if at is not None else now
    if at is not None and at.tzinfo is None:
        raise ServiceStepInvalid("时间须带时区", "The time must carry its offset", field="at")
    if when > now + STEP_CLOCK_SLACK:
        raise ServiceStepInvalid("进展时间不能晚于当前时间", "A step cannot be in the future", field="at")
    if at is not None:
        # Nor before the service was planned, nor before the step before it (the history stays in
        # order, and `completed_at` never falls in a month before the service existed). To the second:
        # phones send whole seconds.
        # A phone clock a little slow (within the slack the future bound allows too) is not refused: its
        # step is placed at the floor, so the history still never goes back.
        created, previous = clock.as_utc(service.created_at), _last_step_at(session, service)
        floor = (max(created, previous) if previous is not None else created).replace(microsecond=0)
        if floor - STEP_CLOCK_SLACK <= when < floor:
            when = floor
        if when < floor:
            raise ServiceStepTimeInvalid(
                f"进展时间不能早于 {clock.china_time(floor).isoformat()}（服务创建时间或上一条进展时间）",
                f"A step cannot be dated before {floor.isoformat()} (the service's creation or its previous step)",
                field="at", not_before=floor.isoformat())
    return _Step(to_status, note, outcome, reason, when)


def _locked(session: Session, service: CaseService) -> None:
    """Read the service again under a row lock (PostgreSQL; SQLite serialises writers)."""
    # The sync counter's lock first, as a helper's acceptance (which restamps the child's services,
    # migration 0024) and a case's closing take it before any service row: no deadlock either way.
    revisions.hold(session)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(col(CaseService.id)).where(col(CaseService.id) == service.id).with_for_update())
        session.refresh(service)


def apply_step(session: Session, service: CaseService, step: _Step, *, actor: Principal | None,
               client_uuid: UUID | None = None, follow_referral: bool = True, named: bool = True) -> ServiceStep:
    """Move the service (the caller checked who and what); the history keeps the step. A step that
    answers an open referral of the service answers it too (backend/agency_referrals)."""
    before = service.status
    service.status = step.to_status
    if step.to_status == ServiceStatus.done.value:
        service.outcome, service.completed_at = step.outcome, step.at
    if step.to_status == ServiceStatus.declined.value:
        service.decline_reason = step.reason
    if step.to_status == ServiceStatus.planned.value:
        service.overdue_notified_at = None
    service.updated_at = clock.now()
    session.add(service)
    row = ServiceStep(service_id=service.id or 0, from_status=before, to_status=step.to_status, note=step.note,
                      outcome=step.outcome, reason=step.reason, actor_user_id=actor.user_id if actor else None,
                      at=step.at, recorded_at=clock.now(), client_uuid=client_uuid)
    session.add(row)
    session.flush()
    if follow_referral:
        from backend.agency_referrals import service as referrals

        referrals.follow_service_step(session, service, row, actor)
    _changed(session, service, actor, "service.step", {"from": before, "to": step.to_status}, named=named)
    return row


def record_step(session: Session, principal: Principal, service_id: int, *, to_status: str, note: str | None = None,
                outcome: str | None = None, reason: str | None = None, at: datetime | None = None,
                client_uuid: UUID | None = None) -> ServiceStep:
    """Record a step of a service: the providing unit's staff, coordinators of the jurisdiction and the
    case's helpers (404 service-not-found for a service the caller may not see, 403 service-not-handler
    for one it sees but does not handle, 409 service-transition-invalid with the allowed statuses, 422
    service-step-invalid: no outcome for done, no reason for declined, a time in the future; 422
    service-step-time-invalid: a time before the service was planned or before its previous step; never
    `referred`, which only a referral of the service to a unit reaches). The
    REST endpoint and the phones' sync push both call it; a phone's step keeps its `client_uuid`."""
    service = get_service(session, principal, service_id, action=Action.service_handle)
    if not may_handle(session, principal, service):
        raise ServiceNotHandler(service_id=service.id)
    _locked(session, service)
    # A service referred to a unit waits for that unit's answer: a step (which answers the referral)
    # is its staff's or a coordinator's, never a helper's, even one of the child's.
    if (service.status == ServiceStatus.referred.value and not principal.can(Action.service_manage)
            and not principal.acts_for(service.provider_unit_id, service.provider_agency)):
        raise ServiceNotHandler(service_id=service.id)
    step = _checked(session, service, to_status=to_status, note=note, outcome=outcome, reason=reason, at=at)
    return apply_step(session, service, step, actor=principal, client_uuid=client_uuid)


def move(session: Session, service: CaseService, *, to_status: str, actor: Principal | None, note: str | None = None,
         outcome: str | None = None, reason: str | None = None, named: bool = True) -> ServiceStep:
    """Move a service as a referral or its answer does (the referral checked who); refused like a step,
    except that this is the one way to `referred`."""
    _locked(session, service)
    step = _checked(session, service, to_status=to_status, note=note, outcome=outcome, reason=reason, at=None,
                    by_referral=True)
    return apply_step(session, service, step, actor=actor, follow_referral=False, named=named)


# ---------------------------------------------------------------- the case closes


def on_case_closed(session: Session, case: Case, principal: Principal | None) -> list[CaseService]:
    """Every service of the case still planned, referred or in progress is declined with the reason
    `case_closed` (a step by whoever closed the case): nothing stays open or falls overdue for a case
    that is over, and their open referrals end with them."""
    still_open = list(session.execute(
        select(CaseService).where(col(CaseService.case_id) == case.id, col(CaseService.status).in_(OPEN))
        .order_by(col(CaseService.id))
    ).scalars())
    for service in still_open:
        step = _Step(ServiceStatus.declined.value, None, None, CASE_CLOSED, clock.now())
        apply_step(session, service, step, actor=principal, named=False)
    from backend.agency_referrals import service as referrals

    referrals.end_with_case(session, case, principal)
    return still_open


# ---------------------------------------------------------------- overdue


def unit_staff(session: Session, unit_id: int, agency: str) -> list[int]:
    """Active users acting for a unit (org unit + agency: permissions.ACTS_FOR_UNIT) holding
    service.handle: who is told of what is addressed to the unit (a referral, an overdue service). A
    helper who comes from that body is not among them."""
    roles = [r.value for r in ACTS_FOR_UNIT if Action.service_handle in PERMISSIONS[r]]
    return sorted({int(i) for i in session.execute(
        select(col(User.id)).join(UserRole, col(UserRole.user_id) == col(User.id))
        .where(col(User.org_unit_id) == unit_id, col(User.agency) == agency, col(User.is_active).is_(True),
               col(UserRole.role).in_(roles))
    ).scalars()})


def coordinators_of(session: Session, unit_id: int) -> list[int]:
    """The coordinators of a case's unit (the nearest unit at or above it that has any)."""
    unit = session.get(OrgUnit, unit_id)
    return coordinators_at_or_above(session, unit)[1] if unit is not None else []


def notify_overdue(session: Session) -> int:
    """Tell the providing unit and the case's coordinators, once per service, that a service is past
    its due date (China date) and not done or declined; ids only."""
    on, now, sent = clock.china_date(clock.now()), clock.now(), 0
    due = list(session.execute(
        select(CaseService).where(overdue_condition(on), col(CaseService.overdue_notified_at).is_(None))
        .order_by(col(CaseService.id))
    ).scalars())
    for service in due:
        claimed = session.execute(
            update(CaseService).where(col(CaseService.id) == service.id, col(CaseService.overdue_notified_at).is_(None))
            .values(overdue_notified_at=now).execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if claimed != 1:
            continue
        staff = unit_staff(session, service.provider_unit_id, service.provider_agency)
        users = sorted(set(staff) | set(coordinators_of(session, service.org_unit_id)))
        if users:
            notifications.enqueue(
                session, user_ids=users, kind="service.overdue", title_zh="服务已逾期", title_en="Service overdue",
                body_zh="一项个案服务已超过计划完成日期，请尽快跟进并在系统中更新进展。",
                body_en="A service of a case is past its due date. Please follow up and record its progress.",
                data={"service_id": str(service.id), "case_id": str(service.case_id)}, critical=True,
            )
        sent += 1
    return sent
