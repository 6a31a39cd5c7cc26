"""Monthly reports: generate, list, download, submit, and who is late."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.campaigns import service as campaigns
from backend.campaigns.service import MONTH_PATTERN
from backend.core.db import SessionDep
from backend.core.pagination import Page, Paging
from backend.coverage.service import visible_unit
from backend.reports import service
from backend.reports.schemas import Decision, Narrative, ReportCreate, ReportPublic, ReturnDecision, SubmissionPublic

router = APIRouter(prefix="/reports", tags=["reports"])

_MONTH = Query(pattern=MONTH_PATTERN, description="YYYY-MM")


@router.post("/monthly", response_model=ReportPublic, status_code=201)
def generate_report(
    body: ReportCreate, session: SessionDep, principal: Annotated[Principal, requires(Action.report_generate)]
) -> ReportPublic:
    """Generate (or regenerate, until submitted) the report of a unit and month."""
    unit = visible_unit(session, principal, body.unit_id)
    return ReportPublic.of(service.generate(session, principal, unit, body.month))


@router.get("/monthly", response_model=list[ReportPublic] | Page[ReportPublic])
def list_reports(
    session: SessionDep,
    principal: Annotated[Principal, requires(Action.report_read)],
    page: Paging,
    unit_id: Annotated[int | None, Query()] = None,
    month: Annotated[str | None, _MONTH] = None,
) -> list[ReportPublic] | Page[ReportPublic]:
    """Reports of a unit and everything under it, newest month first."""
    unit = visible_unit(session, principal, unit_id)
    reports = [ReportPublic.of(r) for r in service.list_reports(session, principal, unit, month)]
    # Newest month first, then by id: -id makes one descending key of both.
    return page.answer(reports, key=lambda r: (r.month, -r.id), descending=True)


@router.get("/monthly/status", response_model=list[SubmissionPublic] | Page[SubmissionPublic])
def submission_status(
    session: SessionDep,
    principal: Annotated[Principal, requires(Action.report_read)],
    month: Annotated[str, _MONTH],
    page: Paging,
    unit_id: Annotated[int | None, Query()] = None,
) -> list[SubmissionPublic] | Page[SubmissionPublic]:
    """For each child unit: pending, generated, late, submitted (on time or late), approved or returned
    (with how many returns), due by the campaign's rule (default the 17th of the month itself)."""
    unit = visible_unit(session, principal, unit_id)
    campaigns.month_period(month)
    states = [SubmissionPublic.of(s, month) for s in service.submission_states(session, unit, month)]
    return page.answer(states, key=lambda s: (s.unit_code,))


@router.post("/monthly/{report_id}/submit", response_model=ReportPublic)
def submit_report(
    report_id: int, session: SessionDep, principal: Annotated[Principal, requires(Action.report_generate)],
    body: Narrative | None = None,
) -> ReportPublic:
    """Send the report upward, with its narrative (optional); the level above approves or returns it."""
    narrative = body.model_dump() if body is not None else None
    return ReportPublic.of(service.submit(session, principal, report_id, narrative))


@router.post("/monthly/{report_id}/approve", response_model=ReportPublic)
def approve_report(
    report_id: int, session: SessionDep, principal: Annotated[Principal, requires(Action.report_generate)],
    body: Decision | None = None,
) -> ReportPublic:
    """The parent unit's coordinators approve a submitted report (final)."""
    return ReportPublic.of(service.decide(session, principal, report_id, approve=True,
                                          comment=body.comment if body else None))


@router.post("/monthly/{report_id}/return", response_model=ReportPublic)
def return_report(
    report_id: int, body: ReturnDecision, session: SessionDep,
    principal: Annotated[Principal, requires(Action.report_generate)],
) -> ReportPublic:
    """The parent unit's coordinators return a submitted report with a comment; it is regenerated and
    submitted again."""
    return ReportPublic.of(service.decide(session, principal, report_id, approve=False, comment=body.comment))


@router.get("/monthly/{report_id}/report.xlsx", response_class=Response)
def download_xlsx(
    report_id: int, session: SessionDep, principal: Annotated[Principal, requires(Action.report_read)]
) -> Response:
    """The workbook."""
    data, content_type, name = service.file_bytes(session, principal, report_id, "xlsx")
    return Response(data, media_type=content_type, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/monthly/{report_id}/coverage.png", response_class=Response)
def download_png(
    report_id: int, session: SessionDep, principal: Annotated[Principal, requires(Action.report_read)]
) -> Response:
    """The coverage map rendered on the server."""
    data, content_type, name = service.file_bytes(session, principal, report_id, "png")
    return Response(data, media_type=content_type, headers={"Content-Disposition": f'inline; filename="{name}"'})
