"""Service plans of cases: coordinators plan services; the providing unit's staff, coordinators and the
case's helpers record their steps. Who sees which service is the one scope mechanism
(backend/accounts/scope.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from sqlmodel import Session

from backend.accounts.deps import CurrentPrincipal, requires
from backend.accounts.models import Agency
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.core.db import SessionDep
from backend.core.pagination import Page, Paging
from backend.service_plans import service
from backend.service_plans.models import CaseService, ServiceStatus
from backend.service_plans.schemas import (
    ServiceDetail,
    ServiceKindCreate,
    ServiceKindPublic,
    ServicePlan,
    ServicePublic,
    ServiceStepCreate,
    ServiceStepPublic,
)

kinds_router = APIRouter(prefix="/service-kinds", tags=["services"])
router = APIRouter(tags=["services"])

Reader = Annotated[Principal, requires(Action.service_read)]
Handler = Annotated[Principal, requires(Action.service_handle)]
Manager = Annotated[Principal, requires(Action.service_manage)]


@kinds_router.get("", response_model=list[ServiceKindPublic] | Page[ServiceKindPublic])
def list_kinds(principal: CurrentPrincipal, session: SessionDep, page: Paging
               ) -> list[ServiceKindPublic] | Page[ServiceKindPublic]:
    """The kinds of service (法律援助, 生活救助 ...) with the agency that usually provides each, by code."""
    kinds = [ServiceKindPublic.model_validate(k, from_attributes=True) for k in service.list_kinds(session)]
    return page.answer(kinds, key=lambda k: (k.code,))


@kinds_router.post("", response_model=ServiceKindPublic, status_code=201)
def add_kind(body: ServiceKindCreate, principal: Manager, session: SessionDep) -> ServiceKindPublic:
    """Add a kind of service (coordinators); the code is a new slug (409 service-kind-exists)."""
    kind = service.add_kind(session, principal, code=body.code, name_zh=body.name_zh, name_en=body.name_en,
                            default_agency=body.default_agency)
    return ServiceKindPublic.model_validate(kind, from_attributes=True)


def _public(s: CaseService) -> ServicePublic:
    return ServicePublic(
        id=s.id or 0, case_id=s.case_id, org_unit_id=s.org_unit_id, kind=s.kind, provider_unit_id=s.provider_unit_id,
        provider_agency=s.provider_agency, status=s.status, due_on=s.due_on, overdue=service.is_overdue(s),
        outcome=s.outcome, completed_at=s.completed_at, decline_reason=s.decline_reason, note=s.note,
        created_by=s.created_by, created_at=s.created_at, updated_at=s.updated_at,
        overdue_notified_at=s.overdue_notified_at, allowed=service.step_choices(s),
    )


def _declare(rows: list[CaseService]) -> None:
    for s in rows:
        disclosure.record(disclosure.SERVICE, [s.id], unit_id=s.org_unit_id)


def _detail(session: Session, s: CaseService) -> ServiceDetail:
    _declare([s])
    steps = service.steps_of(session, [s.id or 0])[s.id or 0]
    return ServiceDetail(**_public(s).model_dump(),
                         steps=[ServiceStepPublic.model_validate(x, from_attributes=True) for x in steps])


@router.post("/cases/{case_id}/services", response_model=ServiceDetail, status_code=201)
def plan_service(case_id: int, body: ServicePlan, principal: Manager, session: SessionDep) -> ServiceDetail:
    """Plan a service of a case of your jurisdiction that is not closed (409 service-case-closed)."""
    made = service.plan(session, principal, case_id, kind=body.kind, provider_unit_id=body.provider_unit_id,
                        provider_agency=body.provider_agency, due_on=body.due_on, note=body.note)
    return _detail(session, made)


@router.get("/cases/{case_id}/services", response_model=list[ServicePublic] | Page[ServicePublic])
def case_services(case_id: int, principal: Reader, session: SessionDep, page: Paging
                  ) -> list[ServicePublic] | Page[ServicePublic]:
    """The services of a case you may see, oldest first (a providing unit: only those it provides)."""
    rows = service.services_of_case(session, principal, case_id)
    _declare(rows)
    return page.answer([_public(s) for s in rows], key=lambda s: (s.id,))


@router.get("/services", response_model=list[ServicePublic] | Page[ServicePublic])
def list_services(principal: Reader, session: SessionDep, page: Paging, status: ServiceStatus | None = None,
                  overdue: bool | None = None, provider_unit_id: int | None = None,
                  provider_agency: Agency | None = None,
                  case_id: int | None = None) -> list[ServicePublic] | Page[ServicePublic]:
    """The services you may see, newest first: coordinators those of cases of their jurisdiction, helpers
    those of their children's cases, police those of referred cases, and every unit those it provides."""
    rows = service.list_services(session, principal, case_id=case_id, status=status, overdue=overdue,
                                 provider_unit_id=provider_unit_id,
                                 provider_agency=provider_agency.value if provider_agency is not None else None,
                                 page=page)
    _declare(rows)
    return page.answer([_public(s) for s in rows], key=lambda s: (s.id,), descending=True)


@router.get("/services/{service_id}", response_model=ServiceDetail)
def get_service(service_id: int, principal: Reader, session: SessionDep) -> ServiceDetail:
    """A service with its steps (every transition: who, when, from, to, why)."""
    found = service.get_service(session, principal, service_id)
    service.read_audited(session, principal, found)
    return _detail(session, found)


@router.post("/services/{service_id}/steps", response_model=ServiceDetail)
def record_step(service_id: int, body: ServiceStepCreate, principal: Handler, session: SessionDep) -> ServiceDetail:
    """Record a step: done needs an outcome, declined a reason; a move the status does not allow is 409
    service-transition-invalid with the `allowed` statuses."""
    step = service.record_step(session, principal, service_id, to_status=body.to_status, note=body.note,
                               outcome=body.outcome, reason=body.reason, at=body.at)
    found = session.get(CaseService, step.service_id)
    assert found is not None
    return _detail(session, found)
