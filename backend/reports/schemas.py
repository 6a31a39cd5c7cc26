"""API shapes for monthly reports."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from backend.campaigns.service import MONTH_PATTERN
from backend.reports.models import MonthlyReport
from backend.reports.service import SubmissionState


class ReportCreate(BaseModel):
    unit_id: int | None = Field(default=None, description="default: the caller's own unit")
    month: str = Field(pattern=MONTH_PATTERN, description="YYYY-MM")


class ReportPublic(BaseModel):
    id: int
    org_unit_id: int
    month: str
    due_date: date
    status: str
    generated_at: datetime
    submitted_at: datetime | None
    xlsx_url: str
    png_url: str
    xlsx_sha256: str
    png_sha256: str
    figures: dict[str, Any]

    @classmethod
    def of(cls, r: MonthlyReport) -> ReportPublic:
        assert r.id is not None
        base = f"/api/v1/reports/monthly/{r.id}"
        return cls(id=r.id, org_unit_id=r.org_unit_id, month=r.month, due_date=r.due_date, status=r.status,
                   generated_at=r.generated_at, submitted_at=r.submitted_at, xlsx_url=f"{base}/report.xlsx",
                   png_url=f"{base}/coverage.png", xlsx_sha256=r.xlsx_sha256, png_sha256=r.png_sha256,
                   figures=r.figures)


class SubmissionPublic(BaseModel):
    unit_id: int
    unit_code: str
    unit_name: str
    month: str
    due_date: date
    state: str = Field(description="pending | generated | late | submitted | submitted_late | approved | returned")
    report_id: int | None
    submission_id: int | None = Field(default=None, description="the report's way up (/api/v1/report-submissions)")
    returns: int = Field(default=0, description="how many times the level above returned it")
    on_time: bool | None = Field(default=None, description="whether its first submission came by the due date")
    submitted_at: datetime | None = None

    @classmethod
    def of(cls, s: SubmissionState, month: str) -> SubmissionPublic:
        assert s.unit.id is not None
        sub = s.submission
        return cls(unit_id=s.unit.id, unit_code=s.unit.code, unit_name=s.unit.name, month=month, due_date=s.due_date,
                   state=s.state, report_id=s.report.id if s.report else None, submission_id=sub.id if sub else None,
                   returns=s.returns, on_time=sub.on_time if sub else None,
                   submitted_at=sub.submitted_at if sub else None)


class Narrative(BaseModel):
    """The words beside the figures (each optional; what is left out stays as it was)."""

    progress: str | None = Field(default=None, max_length=4000, description="进展: the work done")
    problems: str | None = Field(default=None, max_length=4000, description="问题: what stands in the way")
    next_steps: str | None = Field(default=None, max_length=4000, description="下步打算: what comes next")


class Decision(BaseModel):
    comment: str | None = Field(default=None, max_length=1000, description="optional for an approval")


class ReturnDecision(BaseModel):
    comment: str = Field(min_length=2, max_length=1000, description="why it is returned (required)")
