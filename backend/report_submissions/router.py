"""Reports that go up and come back: drafts, submission, approval and return, and the status table."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.core.db import SessionDep
from backend.core.pagination import Page, Paging
from backend.orgunits import service as orgunits
from backend.report_submissions import service
from backend.report_submissions.models import ReportSubmission
from backend.report_submissions.schemas import (
    DecisionIn,
    DraftIn,
    Kind,
    NarrativeIn,
    ReturnIn,
    SubmissionOut,
    UnitStatePublic,
)

router = APIRouter(prefix="/report-submissions", tags=["reports"])
Reader = Annotated[Principal, requires(Action.report_read)]


def _out(session: SessionDep, row: ReportSubmission) -> SubmissionOut:
    return SubmissionOut.of(row, service.events(session, row.id or 0))


@router.get("", response_model=list[SubmissionOut] | Page[SubmissionOut])
def list_submissions(
    session: SessionDep, principal: Reader, page: Paging,
    kind: Annotated[Kind | None, Query()] = None,
    unit_id: Annotated[int | None, Query(description="default: the caller's own unit; its subtree")] = None,
    period: Annotated[str | None, Query(max_length=8)] = None,
) -> list[SubmissionOut] | Page[SubmissionOut]:
    """Reports of a unit and everything under it, newest period first."""
    unit = orgunits.get_visible_unit(session, principal, unit_id if unit_id is not None else principal.org_unit_id)
    rows = [SubmissionOut.of(r) for r in service.list_visible(session, principal, unit, kind, period)]
    return page.answer(rows, key=lambda r: (r.period, -r.id), descending=True)


@router.post("", response_model=SubmissionOut, status_code=201)
def save_draft(body: DraftIn, session: SessionDep, principal: Reader) -> SubmissionOut:
    """Start (or write the narrative of) a unit's report of a kind and period, before it is submitted."""
    service.require_kind(principal, body.kind)
    unit = orgunits.get_visible_unit(session, principal,
                                     body.unit_id if body.unit_id is not None else principal.org_unit_id)
    row = service.save_draft(session, principal, body.kind, unit, body.period, progress=body.progress,
                             problems=body.problems, next_steps=body.next_steps)
    return _out(session, row)


@router.get("/status", response_model=list[UnitStatePublic] | Page[UnitStatePublic])
def status(
    session: SessionDep, principal: Reader, page: Paging, kind: Annotated[Kind, Query()],
    period: Annotated[str, Query(max_length=8)],
    unit_id: Annotated[int | None, Query(description="default: the caller's own unit")] = None,
) -> list[UnitStatePublic] | Page[UnitStatePublic]:
    """For each child unit (each station for the police weekly report): pending, generated, late,
    submitted (on time or late), approved or returned (with how many returns), and the due date."""
    service.ensure_may_read(principal, kind)
    unit = orgunits.get_visible_unit(session, principal, unit_id if unit_id is not None else principal.org_unit_id)
    key = service.normal_period(kind, period)
    found = [UnitStatePublic.of(s, kind, key) for s in service.states(
        session, kind, service.child_units(session, kind, unit), key)]
    return page.answer(found, key=lambda s: (s.unit_code, s.unit_id))


@router.get("/{report_submission_id}", response_model=SubmissionOut)
def get_submission(report_submission_id: int, session: SessionDep, principal: Reader) -> SubmissionOut:
    """One report with its history (who did what when, with comments)."""
    row, _ = service.get_visible(session, principal, report_submission_id)
    return _out(session, row)


@router.post("/{report_submission_id}/submit", response_model=SubmissionOut)
def submit(report_submission_id: int, session: SessionDep, principal: Reader,
           body: NarrativeIn | None = None) -> SubmissionOut:
    """Send it up (from draft, or again after a return); the level above is told."""
    n = body or NarrativeIn()
    row = service.submit(session, principal, report_submission_id, progress=n.progress, problems=n.problems,
                         next_steps=n.next_steps)
    return _out(session, row)


@router.post("/{report_submission_id}/approve", response_model=SubmissionOut)
def approve(report_submission_id: int, session: SessionDep, principal: Reader,
            body: DecisionIn | None = None) -> SubmissionOut:
    """The level above approves it (final). A second decision at the same time gets 409."""
    row = service.decide(session, principal, report_submission_id, approve=True, comment=body.comment if body else None)
    return _out(session, row)


@router.post("/{report_submission_id}/return", response_model=SubmissionOut)
def return_submission(report_submission_id: int, body: ReturnIn, session: SessionDep,
                      principal: Reader) -> SubmissionOut:
    """The level above sends it back with a comment; the submitting unit is told."""
    row = service.decide(session, principal, report_submission_id, approve=False, comment=body.comment)
    return _out(session, row)
