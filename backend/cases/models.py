"""Cases (个案): one per child at risk or victim at a time, open -> active -> closed, with its history."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, event, text
from sqlalchemy.orm import Session, UOWTransaction
from sqlmodel import Field, SQLModel

from backend.core import clock
from backend.sync import revisions


def _ts(nullable: bool = False) -> Any:
    return Column(DateTime(timezone=True), nullable=nullable)


class CaseStatus(StrEnum):
    open = "open"  # opened, nobody has taken the child on yet
    active = "active"  # a helper accepted, or a coordinator marked it active
    closed = "closed"  # closed with a reason a coordinator approved


class CaseSource(StrEnum):
    referral = "referral"  # a visit's clue of abuse opened a 强制报告 (source id: the referral)
    visit_risk = "visit_risk"  # the child's risk level (较大/重大) or 附件3 brought a helper proposal
    mandatory_report = "mandatory_report"  # a clue filed directly by a unit with the duty to report
    by_hand = "by_hand"  # a coordinator opened it


class CloseReason(StrEnum):
    risk_lowered = "risk_lowered"  # 风险降低
    turned_18 = "turned_18"  # 年满18周岁
    moved_away = "moved_away"  # 迁出
    transferred = "transferred"  # 移交其他单位
    other = "other"  # 其他 (a note is required)


class CaseAction(StrEnum):
    """What a history row records."""

    open = "open"
    source = "source"  # opening again while open: the new source joins the case
    activate = "activate"
    propose_closure = "propose_closure"
    reject_closure = "reject_closure"
    close = "close"
    reopen = "reopen"


NOT_CLOSED = "status <> 'closed'"


class Case(SQLModel, table=True):
    """A child's case. At most one per child is not closed (the partial unique index)."""

    __tablename__ = "child_case"
    __table_args__ = (
        Index("uq_child_case_child_not_closed", "child_id", unique=True,
              postgresql_where=text(NOT_CLOSED), sqlite_where=text(NOT_CLOSED)),
    )

    id: int | None = Field(default=None, primary_key=True)
    child_id: int = Field(foreign_key="person.id", index=True, ondelete="CASCADE")
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)  # the child's household's unit
    status: str = Field(default=CaseStatus.open.value, max_length=8, index=True)
    opened_from: str = Field(max_length=20)
    source_id: int | None = None
    # A referral (强制报告) opened or joined the case: police of the jurisdiction see it.
    referred: bool = False
    opened_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    opened_by: int | None = Field(default=None, foreign_key="app_user.id")
    activated_at: datetime | None = Field(default=None, sa_column=_ts(True))
    # A closure proposed and waiting for a coordinator (status unchanged meanwhile).
    closure_reason: str | None = Field(default=None, max_length=16)
    closure_note: str | None = Field(default=None, max_length=2000)
    closure_proposed_by: int | None = Field(default=None, foreign_key="app_user.id")
    closure_proposed_at: datetime | None = Field(default=None, sa_column=_ts(True))
    closed_at: datetime | None = Field(default=None, sa_column=_ts(True))
    closed_by: int | None = Field(default=None, foreign_key="app_user.id")
    close_reason: str | None = Field(default=None, max_length=16)
    close_note: str | None = Field(default=None, max_length=2000)
    updated_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    # Sync revision (backend/sync/revisions.py): phones pull the cases they may see by it (the "case"
    # pull kind). Stamped on every ORM change by the listener below; the database restamps a child's
    # cases when a helper takes the child on (migration 0024).
    rev: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, index=True, server_default="0"))


@event.listens_for(Session, "before_flush")
def _stamp_case_revisions(session: Session, _context: UOWTransaction, _instances: object) -> None:
    """Give every new or changed case a fresh revision, whichever service function changed it, so no
    transition can be missed by a phone's pull."""
    changed = [o for o in session.new if isinstance(o, Case)]
    changed += [o for o in session.dirty if isinstance(o, Case) and session.is_modified(o)]
    if not changed:
        return
    first = revisions.allocate(session, len(changed))
    for n, case in enumerate(changed):
        case.rev = first + n


class CaseEvent(SQLModel, table=True):
    """One transition of a case: who, when, from, to, why."""

    __tablename__ = "child_case_event"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="child_case.id", index=True, ondelete="CASCADE")
    action: str = Field(max_length=20)
    from_status: str | None = Field(default=None, max_length=8)
    to_status: str = Field(max_length=8)
    actor_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    reason: str | None = Field(default=None, max_length=20)
    note: str | None = Field(default=None, max_length=2000)
    source: str | None = Field(default=None, max_length=20)
    source_id: int | None = None
