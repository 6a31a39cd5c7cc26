"""Shapes of a mandatory report (强制报告) filed directly: the phone's body (REST and the sync push
kind "mandatory_report"), the police's receipt, and the reporter's own view."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.core.clock import AwarePhoneTime
from backend.core.geo import CoordinateSystem

# A report of something seen long ago is legitimate (old abuse disclosed late), but not before 1970:
# an earlier time is a phone's clock or a typo, not a clue.
SEEN_AT_FLOOR = datetime(1970, 1, 1, tzinfo=UTC)

# Direct reports never come from a visit: that source is the visits' own (models.ReportSource).
DirectSource = Literal["school", "kindergarten", "health_centre", "venue", "village", "volunteer", "grid", "other"]


class ChildDescription(BaseModel):
    """The child as the reporter describes it, stored as the clue says (nothing is looked up)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=60)
    age: str | None = Field(default=None, max_length=20, description="As given: \"10\", \"约10岁\", \"初二\"")
    sex: Literal["male", "female"] | None = None
    note: str | None = Field(default=None, max_length=500, description="Clothes, school, anything that helps")


class MandatoryReportData(BaseModel):
    """A clue of abuse or of a child in danger, as the reporter files it (the push kind's `data`)."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1, max_length=4000, description="What was seen or heard")
    seen_at: AwarePhoneTime = Field(description="When it was seen (ISO 8601 with offset); not in the future, not "
                                                "before 1970-01-01T00:00:00Z")
    place: str | None = Field(default=None, max_length=200, description="Where, as text")
    org_unit_id: int | None = Field(default=None, description="The place's unit (village, grid ...) inside your "
                                                               "jurisdiction; default: the venue's, else yours")
    venue_id: int | None = Field(default=None, description="A venue of your jurisdiction (hotel, internet café ...)")
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    crs: CoordinateSystem = CoordinateSystem.wgs84
    source_kind: DirectSource | None = Field(default=None, description="Default: from your unit and role")
    child_id: int | None = Field(default=None, description="A registered child you may see")
    child_uuid: UUID | None = Field(default=None, description="The same, by the uuid your phone holds")
    child: ChildDescription | None = Field(default=None, description="The child as you know it, when not "
                                                                     "registered or not known to you")
    reporter_contact: str | None = Field(default=None, max_length=60, description="How the police reach you")

    @field_validator("seen_at")
    @classmethod
    def _not_before_1970(cls, value: datetime) -> datetime:
        if value.astimezone(UTC) < SEEN_AT_FLOOR:
            raise ValueError("seen_at cannot be before 1970-01-01T00:00:00Z")
        return value


class MandatoryReportCreate(MandatoryReportData):
    """POST /mandatory-reports: the data, with the phone's uuid when it has one (a resend is safe)."""

    client_uuid: UUID | None = None


class ReceiveRequest(BaseModel):
    """The police acknowledge a report; they may link a registered child of their jurisdiction."""

    model_config = ConfigDict(extra="forbid")

    child_id: int | None = Field(default=None, description="A child of your jurisdiction the report is about")


class MandatoryReportMine(BaseModel):
    """A report as its reporter sees it: what was filed and how far the police are. Never the case,
    the police's outcome note, nor any child the police linked."""

    id: int
    client_uuid: UUID | None
    source_kind: str
    status: Literal["filed", "received", "handled"]
    filed_at: datetime
    received_at: datetime | None
    handled_at: datetime | None
    visit_id: int | None = Field(description="The visit whose answer opened it (visit reports)")
    description: str | None
    seen_at: datetime | None
    place: str | None
    org_unit_id: int
    venue_id: int | None
    lon: float | None
    lat: float | None
    child_id: int | None = Field(description="The registered child you named, if any")
    child: ChildDescription | None
    reporter_contact: str | None
