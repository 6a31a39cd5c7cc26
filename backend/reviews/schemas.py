"""Shapes of the review API (backend/reviews/router.py)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from backend.reviews.models import ReviewState


class ReviewDecision(BaseModel):
    """A coordinator's decision. `comment` is required for has_issues and rejected; `expected_state` is
    the state the coordinator saw (required to revise a decision already taken)."""

    model_config = ConfigDict(extra="forbid")

    state: ReviewState
    comment: str | None = Field(default=None, max_length=1000)
    expected_state: ReviewState | None = None


class ReviewResponse(BaseModel):
    """The inspector's answer to has_issues on an inspection."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=2000)


class ReviewPublic(BaseModel):
    """One decision: from_state -> review_state, by whom and when, and the recorder's answer if any."""

    id: int
    record_kind: str
    record_id: int
    from_state: str
    review_state: str
    comment: str | None
    decided_by: int
    decided_at: datetime
    answer_note: str | None = None
    answered_at: datetime | None = None


class QueueItem(BaseModel):
    """A record waiting for review. No names of children, no answers: open the record to read it."""

    record_kind: str  # visit | inspection
    record_id: int
    review_state: str
    flags: list[str]  # location_mismatch, clock_suspect
    org_unit_id: int
    recorded_by: int
    recorded_at: datetime
    # The newest decision's comment, or (an amendment) the comment of the has_issues review it answers.
    comment: str | None
    amends_id: int | None = None  # a visit amendment: the visit it corrects
    answers_review_id: int | None = None  # the has_issues review this amendment answers
    answer_note: str | None = None  # an inspection's answer to has_issues


class ReviewSummary(BaseModel):
    """Counts of the unit's subtree for the dashboard (visits and inspections together)."""

    unit_id: int
    pending_flagged: int  # pending and flagged location_mismatch or clock_suspect
    has_issues: int  # sent back, not answered yet
    amended_waiting: int  # answered (an amendment, a response), waiting for a decision
    rejected: int
    approved: int


class ReviewSettingPublic(BaseModel):
    unit_id: int
    approved_only: bool
    counting: str  # all | approved_only (as coverage figures say it)
    set_by: int | None = None
    set_at: datetime | None = None


class ReviewSettingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approved_only: bool
