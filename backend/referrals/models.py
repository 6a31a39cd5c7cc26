"""Mandatory reports (强制报告) to the town's police station: opened by a visit's clue of abuse, or
filed directly by anyone with the duty to report (schools, health centres, venues, villages,
volunteers ...). One table, so the police handle one queue with the same deadlines, escalation and
notifications."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import JSON, Column, DateTime, Uuid
from sqlmodel import AutoString, Field, SQLModel

from backend.core import clock


class ReferralStatus(StrEnum):
    new = "new"
    received = "received"
    handled = "handled"


class ReportSource(StrEnum):
    """Where a mandatory report came from (counted by source in the monthly report)."""

    visit = "visit"  # a volunteer's door-knock answered look 1 with yes
    school = "school"  # 学校
    kindergarten = "kindergarten"  # 幼儿园
    health_centre = "health_centre"  # 卫生院 / 医疗机构
    venue = "venue"  # 旅馆、酒店、网吧、KTV ... (through market officers or police)
    village = "village"  # 村(居)委会
    volunteer = "volunteer"  # 巾帼志愿者
    grid = "grid"  # 网格员
    other = "other"


def _ts(nullable: bool = False) -> Any:
    return Column(DateTime(timezone=True), nullable=nullable)


class Referral(SQLModel, table=True):
    """A clue of abuse routed to the police of the town of its place: found on a visit (`visit_id`,
    `household_id`), or filed directly by a unit with the duty to report (`source_kind` other than
    visit, `reporter_*`, `description`, `seen_at`, `place` ...)."""

    __tablename__ = "referral"

    id: int | None = Field(default=None, primary_key=True)
    visit_id: int | None = Field(default=None, unique=True)
    # The household the clue is about: the visit's, or the household of the registered child a direct
    # report names (None when it names none).
    household_id: int | None = Field(default=None, foreign_key="household.id", index=True)
    # The place's unit (a visit's household's unit; a direct report's place, venue or reporter's unit).
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    police_unit_id: int | None = Field(default=None, foreign_key="org_unit.id", index=True)
    child_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=ReferralStatus.new.value, max_length=12, index=True)
    created_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    receive_due_at: datetime = Field(sa_column=_ts())
    handle_due_at: datetime = Field(sa_column=_ts())
    received_at: datetime | None = Field(default=None, sa_column=_ts(True))
    received_by: int | None = Field(default=None, foreign_key="app_user.id")
    handled_at: datetime | None = Field(default=None, sa_column=_ts(True))
    handled_by: int | None = Field(default=None, foreign_key="app_user.id")
    outcome_note: str | None = Field(default=None, max_length=2000)
    # Where the report came from, and who filed it (a visit's: its volunteer).
    source_kind: str = Field(default=ReportSource.visit.value, sa_column=Column(
        AutoString(20), nullable=False, index=True, server_default=ReportSource.visit.value))
    reporter_user_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    reporter_unit_id: int | None = Field(default=None, foreign_key="org_unit.id")
    reporter_agency: str | None = Field(default=None, max_length=32)
    reporter_contact: str | None = Field(default=None, max_length=60)
    # A direct report: what was seen, when and where, and the child as the clue describes it.
    description: str | None = Field(default=None, max_length=4000)
    seen_at: datetime | None = Field(default=None, sa_column=_ts(True))
    place: str | None = Field(default=None, max_length=200)
    venue_id: int | None = Field(default=None, foreign_key="venue.id")
    lon: float | None = None
    lat: float | None = None
    # The registered child the reporter named (also in child_ids; police may link more on receipt).
    reported_child_id: int | None = None
    # The child as the reporter described it, when not registered or not known: {name, age, sex, note}.
    child_description: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # The phone's uuid of a report filed offline (or online with one): resending it is safe.
    client_uuid: UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True, unique=True))
    content_hash: str | None = Field(default=None, max_length=64)
