"""Review of field work (审核): the decisions coordinators take on visits and inspections, and a town's
choice to count only approved visits in coverage.

A record's current state is its own `review_state` column (visit, inspection; indexed, the coverage
query filters on it); every decision is one `review_event` row (who, when, from -> to, comment), with a
sync revision so the recorder's phone pulls the decisions on its own records (pull kind `review`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Index, Integer, String, false
from sqlmodel import Field, SQLModel

from backend.core import clock


class ReviewState(StrEnum):
    pending = "pending"  # 待审核: nothing decided yet
    approved = "approved"  # 审核通过
    has_issues = "has_issues"  # 有问题: back to the recorder, who answers (an amendment, a response)
    rejected = "rejected"  # 不予采信

    @property
    def zh(self) -> str:
        return {"pending": "待审核", "approved": "审核通过", "has_issues": "有问题", "rejected": "不予采信"}[self.value]


# States a decision needs a comment for (the recorder must know what is wrong).
NEEDS_COMMENT = frozenset({ReviewState.has_issues, ReviewState.rejected})


class RecordKind(StrEnum):
    visit = "visit"
    inspection = "inspection"


class ReviewEvent(SQLModel, table=True):
    """One decision on one visit or inspection; the newest of a record is its current state."""

    __tablename__ = "review_event"
    __table_args__ = (Index("ix_review_event_record", "record_kind", "record_id"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"),
                                                          primary_key=True))
    record_kind: str = Field(sa_column=Column(String(16), nullable=False))
    record_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    # The phone's id of the record (visit.client_uuid, inspection.client_uuid): what a phone keys by.
    record_uuid: str = Field(max_length=36)
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    # Who recorded the record: whose phone pulls the decision.
    recorded_by: int = Field(foreign_key="app_user.id", index=True)
    from_state: str = Field(max_length=16)
    to_state: str = Field(max_length=16)
    comment: str | None = Field(default=None, max_length=1000)
    decided_by: int = Field(foreign_key="app_user.id")
    decided_at: datetime = Field(default_factory=clock.now,
                                 sa_column=Column(DateTime(timezone=True), nullable=False))
    # The recorder's answer to has_issues: the inspector's note (an inspection has no amendment path).
    # A visit is answered by its amendment, found by `amends_id` (backend/reviews/service.py).
    answer_note: str | None = Field(default=None, max_length=2000)
    answered_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    rev: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, index=True))


class ReviewSetting(SQLModel, table=True):
    """A town's rule for coverage: count every visit (default), or only approved ones."""

    __tablename__ = "review_setting"

    org_unit_id: int = Field(foreign_key="org_unit.id", primary_key=True)
    approved_only: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    set_by: int = Field(foreign_key="app_user.id")
    set_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))
