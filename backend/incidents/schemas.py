"""Incident shapes for the API. Times are rendered in Asia/Shanghai (+08:00)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from backend.core import clock


def _shanghai(value: datetime | None) -> str | None:
    return clock.china_time(value).isoformat() if value is not None else None


LocalTime = Annotated[datetime, PlainSerializer(_shanghai, return_type=str)]
LocalTimeOrNone = Annotated[datetime | None, PlainSerializer(_shanghai, return_type=str | None)]


class IncidentCreate(BaseModel):
    title: str = Field(min_length=1, max_length=120)
    summary: str = Field(default="", max_length=4000)
    source_url: str | None = Field(default=None, max_length=500)
    org_unit_id: int | None = Field(default=None, description="Province, city or county unit; default: yours")


class HandoffCreate(BaseModel):
    to_unit_ids: list[int] = Field(min_length=1, max_length=50)
    note: str | None = Field(default=None, max_length=2000)


class FeedbackCreate(BaseModel):
    note: str = Field(min_length=1, max_length=4000)


class CloseRequest(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class HandoffPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    step: str
    from_unit_id: int
    to_unit_id: int
    handed_by: int
    handed_at: LocalTime
    note: str | None


class DeadlinePublic(BaseModel):
    step: str
    unit_id: int
    started_at: LocalTime
    due_at: LocalTime
    met_at: LocalTimeOrNone
    state: Literal["pending", "met", "met_late", "overdue"]
    escalated_at: LocalTimeOrNone
    escalated_to_unit_id: int | None


class IncidentPublic(BaseModel):
    id: int
    title: str
    summary: str
    source_url: str | None
    origin_unit_id: int
    current_unit_id: int
    status: str
    overdue: bool = Field(description="A limit was missed (stays true until the incident is closed)")
    created_by: int
    created_at: LocalTime
    feedback_at: LocalTimeOrNone
    feedback_note: str | None
    closed_at: LocalTimeOrNone
    deadlines: list[DeadlinePublic]
    handoffs: list[HandoffPublic]
