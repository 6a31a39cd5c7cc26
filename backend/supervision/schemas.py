"""API shapes of supervision (督办) and typical-case notices (典型案例通报)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.accounts.models import Agency
from backend.inspections.models import ProblemStatus, ProblemSubject


class SubjectIn(BaseModel):
    """What the problem is about: exactly the field of its kind."""

    model_config = ConfigDict(extra="forbid")

    kind: ProblemSubject
    venue_id: int | None = None
    institution_id: int | None = None
    # A unit (a village committee, a department): the org unit, and its agency when a department of it.
    org_unit_id: int | None = None
    agency: Agency | None = None


class ProblemRaise(BaseModel):
    """A problem found by a supervising unit: an unannounced check (明察暗访) or a report."""

    model_config = ConfigDict(extra="forbid")

    subject: SubjectIn
    source: Literal["unannounced_check", "report"]
    description: str = Field(min_length=1, max_length=1000)
    measure: str = Field(min_length=1, max_length=1000)
    responsible_party: str = Field(default="", max_length=120)
    deadline_date: date
    note: str = Field(default="", max_length=1000)


class RectificationReport(BaseModel):
    """The responsible unit reports what it did (整改情况); the problem then awaits verification."""

    model_config = ConfigDict(extra="forbid")

    report: str = Field(min_length=1, max_length=2000)


class Verification(BaseModel):
    """The raising side's verdict on the reported rectification: passed closes (销号), failed sends it
    back to rectifying (with a new deadline when given)."""

    model_config = ConfigDict(extra="forbid")

    passed: bool
    note: str = Field(default="", max_length=1000)
    new_deadline_date: date | None = None


class DeadlineMove(BaseModel):
    """A new deadline for an institution's or a unit's problem (调整整改期限): today (China date) to
    365 days ahead; on a 挂牌督办 problem set by the supervising unit or a unit above it."""

    model_config = ConfigDict(extra="forbid")

    deadline_date: date


class Supervise(BaseModel):
    """挂牌督办 by a unit above the problem's unit: the caller's own unit unless one above the problem
    inside the caller's jurisdiction is named."""

    model_config = ConfigDict(extra="forbid")

    unit_id: int | None = None


class EscalationPublic(BaseModel):
    step: int
    notified_unit_id: int
    days_overdue: int
    escalated_at: datetime


class SupervisedProblemPublic(BaseModel):
    id: int
    subject: ProblemSubject
    subject_zh: str
    venue_id: int | None
    institution_id: int | None
    org_unit_id: int
    responsible_agency: str | None
    subject_name: str = Field(description="the venue's, institution's or unit's name")
    source: str = Field(description="inspection | case_review | unannounced_check (明察暗访) | report")
    description: str
    measure: str
    responsible_party: str
    deadline_date: date
    status: ProblemStatus
    status_zh: str
    days_overdue: int
    failed_rechecks: int
    rectification: str
    submitted_at: datetime | None
    verified_at: datetime | None
    note: str
    raised_unit_id: int | None
    found_in_inspection_id: int | None
    case_review_id: int | None
    supervised: bool
    supervised_unit_id: int | None
    supervised_level: str | None
    supervised_at: datetime | None
    escalations: list[EscalationPublic]
    created_at: datetime


class SubjectCounts(BaseModel):
    open: int = 0
    overdue: int = 0
    awaiting_verification: int = 0


class SupervisionSummary(BaseModel):
    """Counts of a unit's subtree for the dashboard (no names)."""

    unit_id: int
    open: int
    overdue: int
    awaiting_verification: int
    supervised_open: int
    supervised_overdue: int
    by_subject: dict[str, SubjectCounts]
    notices_published: int
    notices_unacknowledged: int = Field(description="addressed users who have not acknowledged, over the notices "
                                                    "published in the unit's subtree")


class RecipientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit_id: int
    agency: Agency | None = Field(default=None, description="one department of the unit; null: the whole unit")


class NoticePublish(BaseModel):
    """A typical-case notice: a title and a text without personal data, to units of the caller's area."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=120)
    body: str = Field(min_length=1, max_length=4000)
    recipients: list[RecipientIn] = Field(min_length=1, max_length=200)


class RecipientPublic(BaseModel):
    unit_id: int
    agency: str | None


class NoticePublic(BaseModel):
    id: int
    title: str
    body: str
    publisher_unit_id: int
    published_at: datetime
    recipients: list[RecipientPublic]
    addressed_to_me: bool
    read_at: datetime | None = Field(description="when the caller first opened it (null: not addressed or unread)")
    acknowledged_at: datetime | None


class NoticeListed(BaseModel):
    """A notice in a list: title, dates and the caller's read state, no body. The body comes with
    GET /notices/{id}, which records the read, so a receipt never says unread of a body shown."""

    id: int
    title: str
    publisher_unit_id: int
    published_at: datetime
    recipients: list[RecipientPublic]
    addressed_to_me: bool
    read_at: datetime | None = Field(description="when the caller first opened it (null: not addressed or unread)")
    acknowledged_at: datetime | None


class NoticeWarning(BaseModel):
    """Something the publisher should know about a notice it published (it is published all the same)."""

    code: Literal["recipient-without-readers"]
    unit_id: int
    agency: str | None
    message_zh: str
    message_en: str


class NoticePublished(NoticePublic):
    """The notice as published: how many users it reached and the addresses that reach nobody."""

    addressed: int = Field(description="active users of the addressed units who can read notices")
    warnings: list[NoticeWarning]


class ReceiptPublic(BaseModel):
    user_id: int
    display_name: str
    unit_id: int
    agency: str | None
    read_at: datetime | None
    acknowledged_at: datetime | None


class NoticeReceipts(BaseModel):
    """Who of the addressed units' users read and acknowledged the notice, and who has not."""

    notice_id: int
    addressed: int
    read: int
    acknowledged: int
    users: list[ReceiptPublic]


ListView = Literal["addressed", "published"]
