"""Awareness surveys (知晓率): questionnaire versions, survey rounds at schools, anonymous responses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from backend.core import clock

# The built-in questionnaire belongs to no unit; a county's versions are numbered under its own owner key.
NATIONAL = "national"
# A round is open until it is closed by hand or its window ends (then closed on the next open of the school).
NOT_CLOSED = "closed_at IS NULL"


def owner_of(org_unit_id: int | None) -> str:
    """The key versions are numbered under: the nation's, or one unit's (a county's) own line."""
    return NATIONAL if org_unit_id is None else f"unit:{org_unit_id}"


class AwarenessQuestionnaire(SQLModel, table=True):
    """One published questionnaire version (防性侵知识问卷). Immutable: a new version is a new row, and a
    round keeps the version it opened with. `questions` holds each question's correct option(s); a
    respondent knows (知晓) when the number of questions answered exactly right reaches `pass_mark`."""

    __tablename__ = "awareness_questionnaire"
    __table_args__ = (UniqueConstraint("owner", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    owner: str = Field(max_length=24, index=True)
    org_unit_id: int | None = Field(default=None, foreign_key="org_unit.id", index=True)
    version: int
    title_zh: str = Field(max_length=120)
    title_en: str = Field(max_length=120)
    pass_mark: int
    questions: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    published_by: int | None = Field(default=None, foreign_key="app_user.id")
    published_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))


class AwarenessRound(SQLModel, table=True):
    """One survey round (一轮知晓率调查) at one school: anonymous answering through an unguessable code
    of which only the SHA-256 digest is kept, bounded by its window and its response cap. At most one
    round per school is open (the partial unique index)."""

    __tablename__ = "awareness_round"
    __table_args__ = (
        Index(
            "uq_awareness_round_school_open",
            "institution_id",
            unique=True,
            postgresql_where=text(NOT_CLOSED),
            sqlite_where=text(NOT_CLOSED),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    institution_id: int = Field(foreign_key="institution.id", index=True)
    # The school's unit when the round opened: jurisdiction and roll-up go by it.
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    questionnaire_id: int = Field(foreign_key="awareness_questionnaire.id")
    token_digest: str = Field(max_length=64, unique=True)
    # The enrolment when the round opened: participation is read against it, so changing the school's
    # student count later never rewrites a round's figure (the cap, derived from it, stays too).
    students: int
    response_cap: int
    response_count: int = 0
    opened_by: int = Field(foreign_key="app_user.id")
    # The unit the opener acted for: a round opened lower down never replaces a higher unit's figure.
    opened_by_unit_id: int = Field(foreign_key="org_unit.id")
    opened_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))
    closes_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    closed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    closed_by: int | None = Field(default=None, foreign_key="app_user.id")


class AwarenessResponse(SQLModel, table=True):
    """One anonymous respondent's answers: no name, no device, no address; `response_uuid` is the
    client's key that makes a resend harmless, `body_digest` tells a resend from a different body."""

    __tablename__ = "awareness_response"

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="awareness_round.id", index=True, ondelete="CASCADE")
    response_uuid: str = Field(max_length=36, unique=True)
    body_digest: str = Field(max_length=64)
    answers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    score: int
    knows: bool
    received_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))


class AwarenessThrottle(SQLModel, table=True):
    """Counters of the public answering endpoints per window, keyed by a digest (never an address in
    clear), in the database so every API process sees the same count."""

    __tablename__ = "awareness_throttle"

    key: str = Field(primary_key=True, max_length=80)
    hits: int = 0
    window_started_at: datetime = Field(
        default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
