"""A report sent up to the level above (monthly 月报, police weekly, women's federation year-end
summary) and each step of its way: draft -> submitted -> approved | returned; returned -> submitted."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, Date, DateTime, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.core import clock


def _ts(nullable: bool = False) -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=nullable)


class SubmissionKind(StrEnum):
    monthly = "monthly"  # a unit's 月报 (seed 002), period YYYY-MM
    police_weekly = "police_weekly"  # a police station's weekly new-case report (seed 002), period YYYY-Www
    year_end_summary = "year_end_summary"  # the women's federation's year-end summary (seed 004), period YYYY


class SubmissionStatus(StrEnum):
    draft = "draft"
    submitted = "submitted"
    approved = "approved"
    returned = "returned"


class ReportSubmission(SQLModel, table=True):
    """One unit's report of one kind and period on its way up. `on_time` is decided by the first
    submission; `returns` counts how many times the level above sent it back."""

    __tablename__ = "report_submission"
    __table_args__ = (UniqueConstraint("kind", "org_unit_id", "period"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=24, index=True)
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    period: str = Field(max_length=8, index=True)
    due_date: date = Field(sa_column=Column(Date, nullable=False))
    due_at: datetime = Field(sa_column=_ts())
    status: str = Field(default=SubmissionStatus.draft.value, max_length=16)
    progress: str = Field(default="", sa_column=Column(Text, nullable=False))
    problems: str = Field(default="", sa_column=Column(Text, nullable=False))
    next_steps: str = Field(default="", sa_column=Column(Text, nullable=False))
    monthly_report_id: int | None = Field(default=None, foreign_key="monthly_report.id")
    police_weekly_submission_id: int | None = Field(default=None, foreign_key="police_weekly_submission.id")
    first_submitted_at: datetime | None = Field(default=None, sa_column=_ts(True))
    submitted_at: datetime | None = Field(default=None, sa_column=_ts(True))
    submitted_by: int | None = Field(default=None, foreign_key="app_user.id")
    on_time: bool | None = None
    returns: int = 0
    decided_at: datetime | None = Field(default=None, sa_column=_ts(True))
    decided_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    updated_at: datetime = Field(default_factory=clock.now, sa_column=_ts())


class ReportSubmissionEvent(SQLModel, table=True):
    """One step: who did what when, with the comment (a return always has one)."""

    __tablename__ = "report_submission_event"

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="report_submission.id", index=True, ondelete="CASCADE")
    action: str = Field(max_length=16)  # create | submit | approve | return
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    actor_id: int | None = Field(default=None, foreign_key="app_user.id")
    at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    comment: str = Field(default="", sa_column=Column(Text, nullable=False))
