"""The "service_step" push kind: a step of a case's service recorded offline on a helper's (or any
handler's) phone arrives through the sync push and is stored by `service.record_step`, the function
the REST endpoint calls, with its refusals. Exactly once: the phone's UUID makes a resend a duplicate
(the same service, status, texts and time) or a conflict (anything else), however many pushes race.

Also the public shape of a service and of a step as phones get them (the "service" pull kind,
backend/sync/pull.py, and push answers)."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.core import clock
from backend.core.clock import AwarePhoneTime
from backend.core.errors import Conflict, DomainError
from backend.incidents.schemas import LocalTime
from backend.service_plans import service
from backend.service_plans.models import CaseService, ServiceStep
from backend.sync import revisions
from backend.sync.itemwise import in_savepoint, parse_data
from backend.sync.kinds import ItemResult, ItemStatus, PushItem, register_kind

KIND = "service_step"


class ServiceStepData(BaseModel):
    """A step of a service recorded on the phone (sync push kind "service_step"); an unknown member (a
    typo such as "att") is refused, never ignored."""

    model_config = ConfigDict(extra="forbid")

    service_id: int = Field(description="a service you handle (the case of a child you help, for a helper)")
    to_status: str = Field(max_length=12, description="in_progress | done | declined | planned (referred: only "
                                                        "by a referral to a unit, POST /cases/{id}/referrals)")
    note: str | None = Field(default=None, max_length=2000)
    outcome: str | None = Field(default=None, max_length=2000, description="required for done")
    reason: str | None = Field(default=None, max_length=2000, description="required for declined")
    at: AwarePhoneTime | None = Field(default=None, description="when it happened, with its offset; none: on receipt")


class ServiceStepRecord(BaseModel):
    id: int
    service_id: int
    client_uuid: UUID | None
    from_status: str | None
    to_status: str
    note: str | None
    outcome: str | None
    reason: str | None
    at: LocalTime
    recorded_at: LocalTime


class ServiceRecord(BaseModel):
    """A service of a case as a phone keeps it (the "service" pull kind)."""

    id: int
    case_id: int
    org_unit_id: int
    kind: str
    provider_unit_id: int
    provider_agency: str
    status: str
    due_on: date | None = Field(description="overdue when past and the status is not final (the phone works it out)")
    outcome: str | None
    decline_reason: str | None
    note: str | None
    created_at: LocalTime
    updated_at: LocalTime
    allowed: list[str] = Field(description="the statuses a step may move it to now")


def service_record(s: CaseService) -> dict[str, Any]:
    return ServiceRecord(
        id=s.id or 0, case_id=s.case_id, org_unit_id=s.org_unit_id, kind=s.kind, provider_unit_id=s.provider_unit_id,
        provider_agency=s.provider_agency, status=s.status, due_on=s.due_on,
        outcome=s.outcome, decline_reason=s.decline_reason, note=s.note, created_at=s.created_at,
        updated_at=s.updated_at, allowed=service.step_choices(s),
    ).model_dump(mode="json")


def step_record(step: ServiceStep) -> dict[str, Any]:
    return ServiceStepRecord(
        id=step.id or 0, service_id=step.service_id, client_uuid=step.client_uuid, from_status=step.from_status,
        to_status=step.to_status, note=step.note, outcome=step.outcome, reason=step.reason, at=step.at,
        recorded_at=step.recorded_at,
    ).model_dump(mode="json")


class ServiceStepConflict(Conflict):
    code = "service-step-conflict"
    title_zh = "该服务进展已以不同内容保存"
    title_en = "A service step with this UUID is stored with other content"


def _stored(session: Session, client_uuid: UUID) -> ServiceStep | None:
    return session.execute(
        select(ServiceStep).where(col(ServiceStep.client_uuid) == client_uuid)
    ).scalar_one_or_none()


def _text(value: str | None) -> str | None:
    return (value or "").strip() or None


def _same(stored: ServiceStep, data: ServiceStepData) -> bool:
    """What the phone recorded: the service, the status, the texts (as stored: trimmed) and the time
    (the same instant in any offset; none given: any; a time a slow phone clock gave, which the step was
    placed after (service.STEP_CLOCK_SLACK at most), is the time it sent)."""
    given, kept = (clock.as_utc(data.at) if data.at is not None else None), clock.as_utc(stored.at)
    same_time = given is None or kept == given or given < kept <= given + service.STEP_CLOCK_SLACK
    return (stored.service_id == data.service_id and stored.to_status == data.to_status and same_time
            and (_text(stored.note), _text(stored.outcome), _text(stored.reason))
            == (_text(data.note), _text(data.outcome), _text(data.reason)))


def _answer(session: Session, principal: Principal, stored: ServiceStep, data: ServiceStepData,
            locale: str) -> ItemResult:
    """A UUID already stored: duplicate when the content is the same, else conflict (with the stored
    copy only when the caller may see its service)."""
    try:
        service.get_service(session, principal, stored.service_id)
        visible = True
    except DomainError:
        visible = False
    if visible and _same(stored, data):
        disclosure.record(disclosure.SERVICE, [stored.service_id])
        return ItemResult(ItemStatus.duplicate, record=step_record(stored))
    problem = ServiceStepConflict(
        "该服务进展的标识已用于另一条记录，请勿修改已上传的进展",
        "This step's UUID is stored with other content; a pushed step cannot be changed",
    ).to_problem(locale)
    return ItemResult(ItemStatus.conflict, record=step_record(stored) if visible else None, problem=problem)


def push_steps(session: Session, principal: Principal, items: list[PushItem], locale: str) -> list[ItemResult]:
    """One result per pushed step: created, duplicate, conflict, or rejected with record_step's refusal."""
    results: list[ItemResult] = []
    for item in items:
        parsed = parse_data(ServiceStepData, item.data, locale)
        if isinstance(parsed, ItemResult):
            results.append(parsed)
            continue

        def work(item: PushItem = item, data: ServiceStepData = parsed) -> ItemResult:
            # The counter's lock first (as the closing of a case takes it): a push of the same UUID that
            # is committing is seen once it has, and no lock order can deadlock with a closing case.
            revisions.hold(session)
            stored = _stored(session, item.client_uuid)
            if stored is not None:
                return _answer(session, principal, stored, data, locale)
            attempt = session.begin_nested()
            try:
                step = service.record_step(session, principal, data.service_id, to_status=data.to_status,
                                           note=data.note, outcome=data.outcome, reason=data.reason,
                                           at=data.at, client_uuid=item.client_uuid)
            except (IntegrityError, DomainError):
                # The same UUID stored meanwhile by a concurrent push: answer as a resend; else refuse.
                attempt.rollback()
                stored = _stored(session, item.client_uuid)
                if stored is None:
                    raise
                return _answer(session, principal, stored, data, locale)
            except BaseException:
                attempt.rollback()
                raise
            attempt.commit()
            return ItemResult(ItemStatus.created, record=step_record(step))

        results.append(in_savepoint(session, locale, work))
    return results


register_kind(KIND, push_steps, order=310, data_model=ServiceStepData)
