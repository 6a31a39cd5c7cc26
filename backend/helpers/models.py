"""Helper profiles, assignments (proposal -> confirmed -> accepted/declined/expired) and follow-up
visits."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import JSON, BigInteger, Boolean, Column, DateTime, Index, Uuid, event, false
from sqlalchemy.orm import Session, UOWTransaction
from sqlmodel import Field, SQLModel

from backend.core import clock
from backend.sync import revisions


def _ts(nullable: bool = False) -> Any:
    return Column(DateTime(timezone=True), nullable=nullable)


class Skill(StrEnum):
    psychology = "psychology"  # 心理疏导
    legal_aid = "legal_aid"  # 法律援助
    education = "education"  # 教育帮扶
    medical = "medical"  # 医疗救治
    family_mediation = "family_mediation"  # 婚姻家事调解


class HelperProfile(SQLModel, table=True):
    """A person who takes children on: how many at once, what they can do, where they live."""

    __tablename__ = "helper_profile"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", unique=True)
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    sex: str = Field(max_length=8)  # male | female (as the registry writes it)
    skills: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    capacity: int = 2
    home_lon: float | None = None
    home_lat: float | None = None
    active: bool = True
    created_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    updated_at: datetime = Field(default_factory=clock.now, sa_column=_ts())


class AssignmentStatus(StrEnum):
    proposed = "proposed"  # chosen by matching, waiting for a coordinator
    offered = "offered"  # confirmed by a coordinator (or auto mode), waiting for the helper
    accepted = "accepted"  # the helper took the child on
    declined = "declined"  # the helper said no
    expired = "expired"  # the helper did not answer in time
    rejected = "rejected"  # the coordinator turned the proposal down
    ended = "ended"  # help finished


class EndReason(StrEnum):
    need_met = "need_met"  # the child needs this help no more
    helper_unavailable = "helper_unavailable"  # the helper cannot go on (moved, ill, asked to stop)
    reassigned = "reassigned"  # another helper takes over
    case_closed = "case_closed"  # set by the system when the case closes
    other = "other"  # a note is required
    not_given = "not_given"  # v1 phones that end without a body


# Statuses that hold one of the helper's places.
HOLDING = (AssignmentStatus.proposed.value, AssignmentStatus.offered.value, AssignmentStatus.accepted.value)


class Assignment(SQLModel, table=True):
    """One helper for one child. 多对一 is several rows for the same child."""

    __tablename__ = "helper_assignment"
    __table_args__ = (Index("ix_helper_assignment_status_answer_due_at", "status", "answer_due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    child_id: int = Field(foreign_key="person.id", index=True, ondelete="CASCADE")
    helper_id: int = Field(foreign_key="helper_profile.id", index=True)
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)  # the child's unit
    mode: str = Field(max_length=12)  # one_to_one | many_to_one
    status: str = Field(default=AssignmentStatus.proposed.value, max_length=12)
    cost: float = 0.0
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    proposed_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    confirmed_at: datetime | None = Field(default=None, sa_column=_ts(True))
    confirmed_by: int | None = Field(default=None, foreign_key="app_user.id")
    answer_due_at: datetime | None = Field(default=None, sa_column=_ts(True))
    answered_at: datetime | None = Field(default=None, sa_column=_ts(True))
    ended_at: datetime | None = Field(default=None, sa_column=_ts(True))
    # Why the help ended (EndReason); `case_closed` when its case closed.
    end_reason: str | None = Field(default=None, max_length=20)
    end_note: str | None = Field(default=None, max_length=2000)
    # The case (backend/cases) the help belongs to: it ends when the case closes. No database foreign
    # key (migration 0019 says why); the cases service writes it.
    case_id: int | None = Field(default=None, index=True)
    last_followup_at: datetime | None = Field(default=None, sa_column=_ts(True))
    reminded_due_at: datetime | None = Field(default=None, sa_column=_ts(True))
    # Sync revision (backend/sync/revisions.py): helpers' phones pull their assignments by it. Stamped on
    # every ORM change by the listener below; bulk UPDATEs that phones must see set it themselves.
    rev: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, index=True))


@event.listens_for(Session, "before_flush")
def _stamp_assignment_revisions(session: Session, _context: UOWTransaction, _instances: object) -> None:
    """Give every new or changed assignment a fresh revision, whichever service function changed it,
    so no status change can be missed by a phone's pull."""
    changed = [o for o in session.new if isinstance(o, Assignment)]
    changed += [o for o in session.dirty if isinstance(o, Assignment) and session.is_modified(o)]
    if not changed:
        return
    first = revisions.allocate(session, len(changed))
    for n, assignment in enumerate(changed):
        assignment.rev = first + n


class FollowUp(SQLModel, table=True):
    """A follow-up visit by the helper."""

    __tablename__ = "helper_followup"

    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="helper_assignment.id", index=True, ondelete="CASCADE")
    visited_at: datetime = Field(sa_column=_ts())
    note: str | None = Field(default=None, max_length=2000)
    recorded_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    # A follow-up recorded offline on the helper's phone (the "followup" push kind): the phone's UUID
    # makes a resend a duplicate, and the time the phone gave is kept as sent; `visited_at` is where
    # it counts (backend/core/placement.py: an implausible phone time counts at receipt, flagged).
    client_uuid: UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True, unique=True, index=True))
    device_time: datetime | None = Field(default=None, sa_column=_ts(True))
    clock_suspect: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
