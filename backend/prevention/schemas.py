"""Shapes of an activity as the phone pushes it and as the API answers it."""

from __future__ import annotations

from datetime import date
from typing import Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.accounts.models import Agency
from backend.core.clock import AwarePhoneTime
from backend.core.geo import CoordinateSystem
from backend.prevention.models import PlaceKind

# One group at one activity: a county's market day reaches thousands, never a hundred thousand.
MAX_AUDIENCE = 100_000
MAX_PHOTOS = 20


class ActivityPoint(BaseModel):
    """Where a 'point' activity was held, as the phone's map gave it."""

    model_config = ConfigDict(extra="forbid")

    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    crs: CoordinateSystem = CoordinateSystem.wgs84


class ActivityAudience(BaseModel):
    """How many people of each group attended (受众人数)."""

    model_config = ConfigDict(extra="forbid")

    students: int = Field(default=0, ge=0, le=MAX_AUDIENCE)
    parents: int = Field(default=0, ge=0, le=MAX_AUDIENCE)
    villagers: int = Field(default=0, ge=0, le=MAX_AUDIENCE)
    others: int = Field(default=0, ge=0, le=MAX_AUDIENCE)


class ActivityData(BaseModel):
    """One activity as recorded on the phone (push kind `activity`), possibly days before it syncs.
    The place is a school (`institution_id`), a village (`org_unit_id`) or a named point (`place_name`
    + `point`, `org_unit_id` optional: else the village the point lies in)."""

    model_config = ConfigDict(extra="forbid")

    type_code: str = Field(min_length=1, max_length=40)
    held_date: date
    place_kind: PlaceKind
    institution_id: int | None = None
    org_unit_id: int | None = None
    place_name: str | None = Field(default=None, max_length=120)
    point: ActivityPoint | None = None
    audience: ActivityAudience = Field(default_factory=ActivityAudience)
    organiser_unit_id: int | None = None
    organiser_agency: Agency | None = None
    photos: list[UUID] = Field(default_factory=list, max_length=MAX_PHOTOS)
    note: str | None = Field(default=None, max_length=1000)
    device_time: AwarePhoneTime | None = None

    @model_validator(mode="after")
    def _place_is_whole(self) -> Self:
        kind = self.place_kind
        if kind is PlaceKind.school and (self.institution_id is None or self.org_unit_id is not None
                                         or self.point is not None or self.place_name is not None):
            raise ValueError("a school activity names institution_id only (no org_unit_id, point or place_name)")
        if kind is PlaceKind.village and (self.org_unit_id is None or self.institution_id is not None
                                          or self.point is not None or self.place_name is not None):
            raise ValueError("a village activity names org_unit_id only (no institution_id, point or place_name)")
        if kind is PlaceKind.point and (self.point is None or self.place_name is None
                                        or self.institution_id is not None):
            raise ValueError("a point activity needs place_name and point (and no institution_id)")
        if len(set(self.photos)) != len(self.photos):
            raise ValueError("a photo is listed twice")
        return self


class ActivitySubmit(ActivityData):
    """POST /activities: the same record with the client UUID the phone made (exactly once by it)."""

    client_uuid: UUID


class ActivityTypeCreate(BaseModel):
    """A county's own activity type; `unit_id` (default: the caller's unit) is where it applies."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")
    name_zh: str = Field(min_length=1, max_length=60)
    name_en: str = Field(min_length=1, max_length=60)
    unit_id: int | None = None


class ActivityTypePublic(BaseModel):
    code: str
    name_zh: str
    name_en: str
    national: bool
    owner_unit_id: int | None


class AudiencePublic(BaseModel):
    students: int
    parents: int
    villagers: int
    others: int
    total: int


class ActivityPublic(BaseModel):
    id: int
    client_uuid: UUID
    type_code: str
    type_zh: str
    type_en: str
    organiser_unit_id: int
    organiser_agency: str | None
    held_date: date
    place_kind: PlaceKind
    institution_id: int | None
    org_unit_id: int
    place_name: str
    lon: float | None
    lat: float | None
    audience: AudiencePublic
    photos: list[UUID]
    note: str | None
    recorded_by: int
    received_at: str


class CoverageNumbers(BaseModel):
    activities: int
    audience: AudiencePublic
    schools: int
    schools_reached: int
    villages: int
    villages_reached: int


class CoverageChild(CoverageNumbers):
    unit_id: int
    name: str
    level: str


class CoverageAnswer(BaseModel):
    """Activities in a period under a unit: the unit's totals and each child unit's (a place directly at
    the unit itself counts in its totals only)."""

    unit_id: int
    date_from: date
    date_to: date
    totals: CoverageNumbers
    children: list[CoverageChild]


class PlaceWithout(BaseModel):
    """A school or a village with no activity in the period."""

    kind: str  # school | village
    id: int  # the institution's id (school) or the unit's id (village)
    name: str
    org_unit_id: int  # where it lies (the school's unit; the village itself)
    institution_kind: str | None = None
