"""Mandatory reports (强制报告) to the town's police station."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel

from backend.core import clock


class ReferralStatus(StrEnum):
    new = "new"
    received = "received"
    handled = "handled"


def _ts(nullable: bool = False) -> Any:
    return Column(DateTime(timezone=True), nullable=nullable)


class Referral(SQLModel, table=True):
    """A clue of abuse found on a visit, routed to the police of the household's town."""

    __tablename__ = "referral"

    id: int | None = Field(default=None, primary_key=True)
    visit_id: int = Field(unique=True)
    household_id: int = Field(foreign_key="household.id", index=True)
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
