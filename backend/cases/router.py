"""Cases (个案): coordinators open, activate, close and reopen; whoever works on a case reads it and
may propose its closure. Who sees which case is the one scope mechanism (backend/accounts/scope.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response
from sqlmodel import Session

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.cases import service
from backend.cases.models import Case, CaseStatus
from backend.cases.schemas import (
    CaseClosure,
    CaseDetail,
    CaseEventPublic,
    CaseHelp,
    CaseNote,
    CaseOpen,
    CasePublic,
    CaseRejection,
    CaseReopen,
)
from backend.core.db import SessionDep
from backend.core.pagination import Page, Paging

router = APIRouter(prefix="/cases", tags=["cases"])

Reader = Annotated[Principal, requires(Action.case_read)]
Manager = Annotated[Principal, requires(Action.case_manage)]


def _public(case: Case) -> CasePublic:
    return service.case_public(case)


def _declare(cases: list[Case]) -> None:
    """The answer carries these cases and names their children: declared to the request's audit entry."""
    disclosure.record(disclosure.CASE, [c.id for c in cases])
    disclosure.record(disclosure.PERSON, [c.child_id for c in cases])


def _detail(session: Session, case: Case) -> CaseDetail:
    _declare([case])
    events = service.history(session, [case.id or 0])[case.id or 0]
    helps = service.assignments_of(session, [case.id or 0])[case.id or 0]
    disclosure.record(disclosure.ASSIGNMENT, [a.id for a in helps])
    return CaseDetail(
        **_public(case).model_dump(),
        history=[CaseEventPublic(id=e.id or 0, action=e.action, from_status=e.from_status, to_status=e.to_status,
                                 actor_user_id=e.actor_user_id, at=e.at, reason=e.reason, note=e.note,
                                 source=e.source, source_id=e.source_id) for e in events],
        assignments=[CaseHelp(assignment_id=a.id or 0, helper_id=a.helper_id, status=a.status,
                              end_reason=a.end_reason) for a in helps],
    )


@router.get("", response_model=list[CasePublic] | Page[CasePublic])
def list_cases(principal: Reader, session: SessionDep, page: Paging, status: CaseStatus | None = None,
               child_id: int | None = None) -> list[CasePublic] | Page[CasePublic]:
    """The cases you may see, newest first: coordinators those of their jurisdiction, helpers those of
    the children they took on, police those a referral opened or joined."""
    rows = service.list_cases(session, principal, status=status, child_id=child_id, page=page)
    _declare(rows)
    return page.answer([_public(c) for c in rows], key=lambda c: (c.id,), descending=True)


@router.post("", response_model=CaseDetail, status_code=201,
             responses={200: {"model": CaseDetail, "description": "the child's case that is not closed"}})
def open_case(body: CaseOpen, principal: Manager, session: SessionDep, response: Response) -> CaseDetail:
    """Open a case for a child of your jurisdiction (201); if the child has one that is not closed, that
    case is answered (200) and your reason joins its history."""
    case, created = service.open_by_hand(session, principal, child_id=body.child_id, reason=body.reason)
    if not created:
        response.status_code = 200
    return _detail(session, case)


@router.get("/{case_id}", response_model=CaseDetail)
def get_case(case_id: int, principal: Reader, session: SessionDep) -> CaseDetail:
    """A case with its history (every transition: who, when, from, to, why) and its help."""
    case = service.get_case(session, principal, case_id)
    service.read_audited(session, principal, case)
    return _detail(session, case)


@router.post("/{case_id}/activate", response_model=CaseDetail)
def activate(case_id: int, principal: Manager, session: SessionDep, body: CaseNote | None = None) -> CaseDetail:
    """open -> active (a helper's acceptance does it too)."""
    return _detail(session, service.activate(session, principal, case_id, note=body.note if body else None))


@router.post("/{case_id}/closure", response_model=CaseDetail)
def propose_closure(case_id: int, body: CaseClosure, principal: Reader, session: SessionDep) -> CaseDetail:
    """Propose closing the case with a reason; the status stays until a coordinator approves."""
    return _detail(session, service.propose_closure(session, principal, case_id, reason=body.reason, note=body.note))


@router.post("/{case_id}/closure/approve", response_model=CaseDetail)
def approve_closure(case_id: int, principal: Manager, session: SessionDep,
                    body: CaseNote | None = None) -> CaseDetail:
    """Approve the proposed closure: the case closes and all its help ends."""
    return _detail(session, service.approve_closure(session, principal, case_id, note=body.note if body else None))


@router.post("/{case_id}/closure/reject", response_model=CaseDetail)
def reject_closure(case_id: int, body: CaseRejection, principal: Manager, session: SessionDep) -> CaseDetail:
    """Turn the proposed closure down, with a note; the case goes on."""
    return _detail(session, service.reject_closure(session, principal, case_id, note=body.note))


@router.post("/{case_id}/close", response_model=CaseDetail)
def close(case_id: int, body: CaseClosure, principal: Manager, session: SessionDep) -> CaseDetail:
    """Close the case at once with a reason: every help of it ends (the helpers are free)."""
    return _detail(session, service.close(session, principal, case_id, reason=body.reason, note=body.note))


@router.post("/{case_id}/reopen", response_model=CaseDetail)
def reopen(case_id: int, body: CaseReopen, principal: Manager, session: SessionDep) -> CaseDetail:
    """Reopen a closed case, with a reason: open again."""
    return _detail(session, service.reopen(session, principal, case_id, reason=body.reason))
