"""API shapes of the reports' way up and back."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from backend.report_submissions.models import ReportSubmission, ReportSubmissionEvent
from backend.report_submissions.service import UnitState

Kind = Literal["monthly", "police_weekly", "year_end_summary"]


class NarrativeIn(BaseModel):
    progress: str | None = Field(default=None, max_length=4000, description="进展")
    problems: str | None = Field(default=None, max_length=4000, description="问题")
    next_steps: str | None = Field(default=None, max_length=4000, description="下步打算")


class DraftIn(NarrativeIn):
    kind: Kind
    unit_id: int | None = Field(default=None, description="default: the caller's own unit")
    period: str = Field(max_length=8, description="YYYY-MM (monthly), YYYY-Www (police_weekly), YYYY (year-end)")


class DecisionIn(BaseModel):
    comment: str | None = Field(default=None, max_length=1000)


class ReturnIn(BaseModel):
    comment: str = Field(min_length=2, max_length=1000, description="why it is returned (required)")


class EventPublic(BaseModel):
    action: str = Field(description="create | submit | approve | return")
    from_status: str | None
    to_status: str
    actor_id: int | None
    at: datetime
    comment: str

    @classmethod
    def of(cls, e: ReportSubmissionEvent) -> EventPublic:
        return cls(action=e.action, from_status=e.from_status, to_status=e.to_status, actor_id=e.actor_id, at=e.at,
                   comment=e.comment)


class SubmissionOut(BaseModel):
    id: int
    kind: str
    unit_id: int
    period: str
    due_date: date
    due_at: datetime
    status: str = Field(description="draft | submitted | approved | returned")
    progress: str
    problems: str
    next_steps: str
    monthly_report_id: int | None
    police_weekly_submission_id: int | None
    first_submitted_at: datetime | None
    submitted_at: datetime | None
    on_time: bool | None = Field(description="whether the first submission came by the due time")
    returns: int
    decided_at: datetime | None
    events: list[EventPublic] = Field(default_factory=list, description="the history, with GET "
                                      "/report-submissions/{id} and the steps' answers; empty in the list")

    @classmethod
    def of(cls, r: ReportSubmission, events: list[ReportSubmissionEvent] | None = None) -> SubmissionOut:
        assert r.id is not None
        return cls(id=r.id, kind=r.kind, unit_id=r.org_unit_id, period=r.period, due_date=r.due_date, due_at=r.due_at,
                   status=r.status, progress=r.progress, problems=r.problems, next_steps=r.next_steps,
                   monthly_report_id=r.monthly_report_id, police_weekly_submission_id=r.police_weekly_submission_id,
                   first_submitted_at=r.first_submitted_at, submitted_at=r.submitted_at, on_time=r.on_time,
                   returns=r.returns, decided_at=r.decided_at, events=[EventPublic.of(e) for e in events or []])


class UnitStatePublic(BaseModel):
    unit_id: int
    unit_code: str
    unit_name: str
    kind: str
    period: str
    due_date: date
    due_at: datetime
    state: str = Field(description="pending | generated | late | submitted | submitted_late | approved | returned")
    returns: int
    submission_id: int | None
    submitted_at: datetime | None
    on_time: bool | None = Field(default=None, description="whether its first submission came by the due time "
                                 "(null until submitted)")

    @classmethod
    def of(cls, s: UnitState, kind: str, period: str) -> UnitStatePublic:
        sub = s.submission
        return cls(unit_id=s.unit.id or 0, unit_code=s.unit.code, unit_name=s.unit.name, kind=kind, period=period,
                   due_date=s.due.date, due_at=s.due.at, state=s.state, returns=s.returns,
                   submission_id=sub.id if sub else None, submitted_at=sub.submitted_at if sub else None,
                   on_time=sub.on_time if sub else None)
