"""Supervision (督办: problems of any subject, 挂牌督办) and typical-case notice (典型案例通报) endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.core.db import SessionDep
from backend.core.pagination import Page, Paging
from backend.inspections.models import Problem, ProblemStatus, ProblemSubject
from backend.supervision import service
from backend.supervision.schemas import (
    DeadlineMove,
    ListView,
    NoticeListed,
    NoticePublic,
    NoticePublish,
    NoticePublished,
    NoticeReceipts,
    ProblemRaise,
    RectificationReport,
    Supervise,
    SupervisedProblemPublic,
    SupervisionSummary,
    Verification,
)

router = APIRouter(prefix="/supervision", tags=["supervision"])
notice_router = APIRouter(prefix="/notices", tags=["supervision"])

Reader = Annotated[Principal, requires(Action.supervision_read)]
Manager = Annotated[Principal, requires(Action.supervision_manage)]
Rectifier = Annotated[Principal, requires(Action.supervision_rectify)]
NoticeReader = Annotated[Principal, requires(Action.notice_read)]
Publisher = Annotated[Principal, requires(Action.notice_publish)]


def _one(session: SessionDep, problem: Problem) -> SupervisedProblemPublic:
    return service.problems_public(session, [problem])[0]


@router.get("/problems", response_model=list[SupervisedProblemPublic] | Page[SupervisedProblemPublic])
def list_problems(principal: Reader, session: SessionDep, page: Paging, unit_id: int | None = None,
                  subject: ProblemSubject | None = None,
                  problem_status: Annotated[ProblemStatus | None, Query(alias="status")] = None,
                  supervised: bool | None = None,
                  ) -> list[SupervisedProblemPublic] | Page[SupervisedProblemPublic]:
    """The problems of every subject (venues, institutions, units) the caller sees, newest first;
    `supervised=true`: only those under 挂牌督办."""
    rows = service.list_problems(session, principal, unit_id=unit_id, subject=subject, status=problem_status,
                                 supervised=supervised, page=page)
    return page.answer(service.problems_public(session, rows), key=lambda p: (p.id,), descending=True)


@router.post("/problems", response_model=SupervisedProblemPublic, status_code=status.HTTP_201_CREATED)
def raise_problem(body: ProblemRaise, principal: Manager, session: SessionDep) -> SupervisedProblemPublic:
    """Raise a problem found by an unannounced check (明察暗访) or a report, on a venue, an institution
    or a unit (org unit + optional agency) of the caller's area, with a measure and a deadline."""
    return _one(session, service.raise_problem(session, principal, body))


@router.get("/problems/{problem_id}", response_model=SupervisedProblemPublic)
def get_problem(problem_id: int, principal: Reader, session: SessionDep) -> SupervisedProblemPublic:
    """One problem with its rectification, supervision and escalation steps."""
    return _one(session, service.get_problem(session, principal, problem_id))


@router.patch("/problems/{problem_id}", response_model=SupervisedProblemPublic)
def move_deadline(problem_id: int, body: DeadlineMove, principal: Manager, session: SessionDep
                  ) -> SupervisedProblemPublic:
    """Move the deadline of an institution's or a unit's problem: the raising unit or a unit above it,
    today to 365 days ahead (422 deadline-out-of-range); a 挂牌督办 problem only the supervising unit or
    a unit above it (403 deadline-set-by-supervising-unit). A venue's problem: PATCH /problems/{id} (409)."""
    return _one(session, service.move_deadline(session, principal, problem_id, body.deadline_date))


@router.post("/problems/{problem_id}/rectification", response_model=SupervisedProblemPublic)
def report_rectification(problem_id: int, body: RectificationReport, principal: Rectifier,
                         session: SessionDep) -> SupervisedProblemPublic:
    """The responsible unit reports its rectification (整改情况): the problem awaits verification."""
    return _one(session, service.report_rectification(session, principal, problem_id, body.report))


@router.post("/problems/{problem_id}/verification", response_model=SupervisedProblemPublic)
def verify(problem_id: int, body: Verification, principal: Manager, session: SessionDep) -> SupervisedProblemPublic:
    """The raising side (or a unit above it) verifies: passed closes (销号), failed sends it back. A
    venue's problem is verified by an officer's re-inspection only (409)."""
    return _one(session, service.verify(session, principal, problem_id, passed=body.passed, note=body.note,
                                        new_deadline_date=body.new_deadline_date))


@router.post("/problems/{problem_id}/supervise", response_model=SupervisedProblemPublic)
def supervise(problem_id: int, body: Supervise, principal: Manager, session: SessionDep) -> SupervisedProblemPublic:
    """挂牌督办 by a unit above the problem's unit (and above the one supervising it now, if any); an
    overdue supervised problem is escalated to that unit, then every week to the unit above."""
    return _one(session, service.supervise(session, principal, problem_id, body.unit_id))


@router.get("/summary", response_model=SupervisionSummary)
def summary(principal: Reader, session: SessionDep, unit_id: int) -> SupervisionSummary:
    """Counts for a unit's subtree: open, overdue, awaiting verification and supervised problems by
    subject; notices published and acknowledgements missing."""
    return service.summary(session, principal, unit_id)


@notice_router.post("", response_model=NoticePublished, status_code=status.HTTP_201_CREATED)
def publish_notice(body: NoticePublish, principal: Publisher, session: SessionDep) -> NoticePublished:
    """Publish a typical-case notice (典型案例通报) to units of the caller's area. A text carrying an ID
    number, a mobile number or the name of a registered person or staff member of the area (also when
    spaced out, dashed, zero-width or full-width) is refused (422 notice-personal-data). `addressed`:
    the users reached; `warnings`: each address that reaches no user who can read notices."""
    done = service.publish(session, principal, body)
    public = service.notices_public(session, principal, [done.notice])[0]
    return NoticePublished(**public.model_dump(), addressed=done.addressed, warnings=done.warnings)


@notice_router.get("", response_model=list[NoticeListed] | Page[NoticeListed])
def list_notices(principal: NoticeReader, session: SessionDep, page: Paging,
                 view: ListView = "addressed") -> list[NoticeListed] | Page[NoticeListed]:
    """Notices addressed to the caller's unit, newest first, with the caller's own receipt, without the
    body (GET /notices/{id} gives it and records the read); `view=published`: those published in the
    caller's area (notice.publish)."""
    rows = service.list_notices(session, principal, view=view, page=page)
    return page.answer(service.notices_listed(session, principal, rows), key=lambda n: (n.id,), descending=True)


@notice_router.get("/{notice_id}", response_model=NoticePublic)
def get_notice(notice_id: int, principal: NoticeReader, session: SessionDep) -> NoticePublic:
    """Open a notice; the first opening by an addressed user is its read receipt."""
    notice = service.open_notice(session, principal, notice_id)
    return service.notices_public(session, principal, [notice])[0]


@notice_router.post("/{notice_id}/acknowledge", response_model=NoticePublic)
def acknowledge_notice(notice_id: int, principal: NoticeReader, session: SessionDep) -> NoticePublic:
    """Acknowledge (已阅知) a notice addressed to the caller's unit; again keeps the first time."""
    notice = service.acknowledge(session, principal, notice_id)
    return service.notices_public(session, principal, [notice])[0]


@notice_router.get("/{notice_id}/receipts", response_model=NoticeReceipts)
def notice_receipts(notice_id: int, principal: Publisher, session: SessionDep) -> NoticeReceipts:
    """Who of the addressed units read and acknowledged the notice, and who has not (publishing side)."""
    return service.receipts(session, principal, notice_id)
