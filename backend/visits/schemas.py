"""Shapes of a visit as the phone pushes it."""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, with_config
from typing_extensions import TypedDict

from backend.checklists.builtin import SIX_LOOKS_CODE, SIX_LOOKS_VERSION
from backend.core.clock import AwarePhoneTime
from backend.core.geo import CoordinateSystem
from backend.visits.models import VisitOutcome


# Named apart from the inspections' GpsFix and Answer: openapi.json has one namespace of schemas.
class VisitGpsFix(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0)
    crs: CoordinateSystem = CoordinateSystem.wgs84


def _canonical_uuid(value: str) -> str:
    return str(UUID(value))


# A photo's client UUID, kept as its canonical text: answers are stored as JSON as they are.
PhotoUuid = Annotated[str, AfterValidator(_canonical_uuid)]


@with_config(ConfigDict(extra="forbid"))
class VisitAnswer(TypedDict):
    """One checklist answer. A plain dict once validated, not a model: a push validates a dozen per
    visit and stores them as JSON, and model instances only to dump them again cost a third of the
    batch's validation time."""

    value: NotRequired[Literal["yes", "no", "unknown"] | None]
    note: NotRequired[Annotated[str | None, Field(max_length=1000)]]
    photos: NotRequired[Annotated[list[PhotoUuid], Field(max_length=20)]]


class VisitData(BaseModel):
    """One door-knock as recorded on the phone, possibly days before it syncs."""

    model_config = ConfigDict(extra="forbid")

    household_uuid: UUID
    template_code: str = Field(default=SIX_LOOKS_CODE, max_length=60)
    template_version: int = Field(default=SIX_LOOKS_VERSION, ge=1)
    device_time: AwarePhoneTime
    outcome: VisitOutcome
    answers: dict[str, VisitAnswer] = Field(default_factory=dict)
    children_seen: list[UUID] = Field(default_factory=list, max_length=30)
    gps: VisitGpsFix | None = None
    note: str | None = Field(default=None, max_length=2000)


class AmendmentData(VisitData):
    """A correction: a complete new version of the visit it names (the original stays as it was)."""

    amends_uuid: UUID
