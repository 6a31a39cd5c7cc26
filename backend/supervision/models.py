"""Supervision of any unit (issue 18): the escalation steps of 挂牌督办 problems and typical-case
notices (典型案例通报) with their addressees and read receipts. The problems themselves are the one
problem ledger (backend/inspections/models.py `Problem`, table venue_problem)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.core import clock


class ProblemEscalation(SQLModel, table=True):
    """One step of a supervised problem's escalation: the unit told that it is overdue. A unit is told
    once per problem (the unique pair), so a job run twice, or two workers at once, tell nobody twice."""

    __tablename__ = "problem_escalation"
    __table_args__ = (UniqueConstraint("problem_id", "notified_unit_id"),)

    id: int | None = Field(default=None, primary_key=True)
    problem_id: int = Field(foreign_key="venue_problem.id", index=True, ondelete="CASCADE")
    step: int  # 1: the supervising unit, 2: its parent, ...
    notified_unit_id: int = Field(foreign_key="org_unit.id")
    days_overdue: int
    escalated_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))


class Notice(SQLModel, table=True):
    """A typical-case notice (典型案例通报): a warning drawn from a case, without personal data."""

    __tablename__ = "notice"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=120)
    body: str = Field(sa_column=Column(String(4000), nullable=False))
    publisher_user_id: int = Field(foreign_key="app_user.id")
    publisher_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    published_at: datetime = Field(default_factory=clock.now, sa_column=Column(
        DateTime(timezone=True), nullable=False, index=True))


class NoticeRecipient(SQLModel, table=True):
    """A unit a notice is addressed to: an org unit, and an agency ("" for the whole unit)."""

    __tablename__ = "notice_recipient"
    __table_args__ = (UniqueConstraint("notice_id", "org_unit_id", "agency"),)

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="notice.id", index=True, ondelete="CASCADE")
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    agency: str = Field(default="", sa_column=Column(String(32), nullable=False, server_default=""))


class NoticeReceipt(SQLModel, table=True):
    """A user of an addressed unit read the notice (first opened) and, later, acknowledged it."""

    __tablename__ = "notice_receipt"

    notice_id: int = Field(foreign_key="notice.id", primary_key=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="app_user.id", primary_key=True)
    read_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    acknowledged_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
