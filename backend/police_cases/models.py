"""The police case register (立案台账), its weekly new-case report (seed 002: 派出所每周报送新立案件情况)
and one-case-one-review (seed 001: 一案一倒查、一案一剖析、一案一整治)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Date, DateTime, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.core import clock


def _ts(nullable: bool = False) -> Any:
    return Column(DateTime(timezone=True), nullable=nullable)


class OffenceCategory(StrEnum):
    """What a case is filed for: a fixed list that grows by adding a member (and its labels)."""

    rape = "rape"
    child_molestation = "child_molestation"
    forcible_indecency = "forcible_indecency"
    child_prostitution = "child_prostitution"
    child_trafficking = "child_trafficking"
    other = "other"

    @property
    def zh(self) -> str:
        return OFFENCE_LABELS[self][0]

    @property
    def en(self) -> str:
        return OFFENCE_LABELS[self][1]


OFFENCE_LABELS: dict[OffenceCategory, tuple[str, str]] = {
    OffenceCategory.rape: ("强奸", "Rape"),
    OffenceCategory.child_molestation: ("猥亵儿童", "Molestation of a child"),
    OffenceCategory.forcible_indecency: ("强制猥亵", "Forcible indecency"),
    OffenceCategory.child_prostitution: ("组织、强迫、引诱未成年人卖淫",
                                         "Organising, forcing or luring minors into prostitution"),
    OffenceCategory.child_trafficking: ("拐卖儿童", "Child trafficking"),
    OffenceCategory.other: ("其他侵害未成年人", "Other offences against minors"),
}


class PoliceCaseStatus(StrEnum):
    filed = "filed"  # 已立案
    investigating = "investigating"  # 侦查中
    transferred_for_prosecution = "transferred_for_prosecution"  # 移送起诉
    closed = "closed"  # 已结案 / 撤案 (with a reason)

    @property
    def zh(self) -> str:
        return {"filed": "已立案", "investigating": "侦查中", "transferred_for_prosecution": "移送起诉",
                "closed": "已结案"}[self.value]


class PoliceCloseReason(StrEnum):
    judged = "judged"  # 已判决
    not_prosecuted = "not_prosecuted"  # 不起诉
    withdrawn = "withdrawn"  # 撤销案件
    merged = "merged"  # 并案处理
    other = "other"  # 其他 (a note is required)


class LinkKind(StrEnum):
    """What a police case may be linked to besides the referral that led to it."""

    child_case = "child_case"  # 个案 (backend/cases)
    risk_person = "risk_person"  # 附件2 suspect
    venue = "venue"  # a venue involved


class PoliceCase(SQLModel, table=True):
    """A case the police station filed (立案). Names nobody: the summary is short and needs no names,
    victims are a count, the people involved are links by id."""

    __tablename__ = "police_case"
    __table_args__ = (UniqueConstraint("station_unit_id", "case_number"),)

    id: int | None = Field(default=None, primary_key=True)
    station_unit_id: int = Field(foreign_key="org_unit.id", index=True)  # the town of the 派出所
    case_number: str = Field(max_length=40)
    filed_date: date = Field(sa_column=Column(Date, nullable=False, index=True))  # China date
    category: str = Field(max_length=32)
    status: str = Field(default=PoliceCaseStatus.filed.value, max_length=32, index=True)
    summary: str | None = Field(default=None, max_length=500)
    victims: int = 0
    referral_id: int | None = Field(default=None, foreign_key="referral.id", index=True)
    close_reason: str | None = Field(default=None, max_length=20)
    close_note: str | None = Field(default=None, max_length=1000)
    closed_at: datetime | None = Field(default=None, sa_column=_ts(True))
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    updated_at: datetime = Field(default_factory=clock.now, sa_column=_ts())


class PoliceCaseEvent(SQLModel, table=True):
    """One registration, edit or status change of a police case: who, when, from, to, why."""

    __tablename__ = "police_case_event"

    id: int | None = Field(default=None, primary_key=True)
    police_case_id: int = Field(foreign_key="police_case.id", index=True, ondelete="CASCADE")
    action: str = Field(max_length=20)  # register | edit | status
    from_status: str | None = Field(default=None, max_length=32)
    to_status: str = Field(max_length=32)
    reason: str | None = Field(default=None, max_length=20)
    note: str | None = Field(default=None, max_length=1000)
    fields: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # what an edit changed
    actor_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    at: datetime = Field(default_factory=clock.now, sa_column=_ts())


class PoliceCaseLink(SQLModel, table=True):
    """A child case, a 附件2 suspect or a venue involved in a police case."""

    __tablename__ = "police_case_link"
    __table_args__ = (
        UniqueConstraint("police_case_id", "kind", "target_id"),
        Index("ix_police_case_link_kind_target_id", "kind", "target_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    police_case_id: int = Field(foreign_key="police_case.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=16)
    target_id: int


class WeeklyStatus(StrEnum):
    submitted = "submitted"  # 已报送 (issue 17 or later adds approved / returned)


class PoliceWeeklySubmission(SQLModel, table=True):
    """A station's weekly new-case report as submitted: the figures frozen at submission. A
    resubmission adds a row; the latest is current, the earlier ones are the history."""

    __tablename__ = "police_weekly_submission"
    __table_args__ = (Index("ix_police_weekly_submission_station_week", "station_unit_id", "week"),)

    id: int | None = Field(default=None, primary_key=True)
    station_unit_id: int = Field(foreign_key="org_unit.id")
    week: str = Field(max_length=8, index=True)  # ISO week, "2026-W48"
    week_start_date: date = Field(sa_column=Column(Date, nullable=False))
    due_at: datetime = Field(sa_column=_ts())
    submitted_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    submitted_by: int | None = Field(default=None, foreign_key="app_user.id")
    on_time: bool
    status: str = Field(default=WeeklyStatus.submitted.value, max_length=16)
    figures: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ReviewSubject(StrEnum):
    """Whose duty a finding or a task concerns."""

    venue = "venue"  # a venue of the ledger (its tasks are problems of the problem loop)
    unit = "unit"  # a school, a village committee, a member unit: org unit + agency


class ReviewTaskStatus(StrEnum):
    open = "open"
    done = "done"


class CaseReview(SQLModel, table=True):
    """一案一倒查、一案一剖析、一案一整治: the review of one police case or one child case."""

    __tablename__ = "case_review"

    id: int | None = Field(default=None, primary_key=True)
    police_case_id: int | None = Field(default=None, foreign_key="police_case.id", index=True)
    child_case_id: int | None = Field(default=None, foreign_key="child_case.id", index=True)
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)  # the reviewed case's unit
    analysis: str = Field(default="", max_length=4000)  # 剖析: the causes
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    updated_at: datetime = Field(default_factory=clock.now, sa_column=_ts())


class CaseReviewFinding(SQLModel, table=True):
    """倒查: whose duty failed (a venue, or a unit with its agency) and how."""

    __tablename__ = "case_review_finding"

    id: int | None = Field(default=None, primary_key=True)
    review_id: int = Field(foreign_key="case_review.id", index=True, ondelete="CASCADE")
    subject: str = Field(max_length=8)
    venue_id: int | None = Field(default=None, foreign_key="venue.id", index=True)
    org_unit_id: int | None = Field(default=None, foreign_key="org_unit.id")
    agency: str | None = Field(default=None, max_length=32)
    finding: str = Field(max_length=2000)
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=clock.now, sa_column=_ts())


class CaseReviewTask(SQLModel, table=True):
    """整治: a rectification task. A venue's task is a problem of the problem loop (its status follows
    the problem: done when a re-inspection verifies it); a unit's task is kept here, open or done."""

    __tablename__ = "case_review_task"

    id: int | None = Field(default=None, primary_key=True)
    review_id: int = Field(foreign_key="case_review.id", index=True, ondelete="CASCADE")
    subject: str = Field(max_length=8)
    venue_id: int | None = Field(default=None, foreign_key="venue.id")
    problem_id: int | None = Field(default=None, foreign_key="venue_problem.id", index=True)
    org_unit_id: int | None = Field(default=None, foreign_key="org_unit.id", index=True)
    agency: str | None = Field(default=None, max_length=32)
    description: str = Field(max_length=1000)
    deadline_date: date = Field(sa_column=Column(Date, nullable=False))
    status: str = Field(default=ReviewTaskStatus.open.value, max_length=8)
    done_note: str | None = Field(default=None, max_length=1000)
    done_at: datetime | None = Field(default=None, sa_column=_ts(True))
    done_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
