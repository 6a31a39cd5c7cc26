"""Shapes of registry records as phones and the web send them."""

from __future__ import annotations

from copy import copy
from datetime import date
from typing import Annotated, Any, Optional
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, create_model

from backend.core.clock import AwarePhoneTime
from backend.core.geo import CoordinateSystem
from backend.registry.idnumber import Sex
from backend.registry.models import ChildCategory, ChildGroup, PersonRole, RiskLevelIn, RiskPersonCategory

Text60 = Annotated[str, Field(min_length=1, max_length=60)]
# When the record was made on the phone. Not content: it is left out of dumps, so the content digest
# (resends, duplicates) and the stored fields are the same with or without it.
DeviceTime = Annotated[
    AwarePhoneTime | None,
    Field(
        exclude=True,
        description="When the record was made on the phone (ISO 8601 with offset). On create it places the "
        "record in reporting periods when plausible (sync.md, 'Which clock counts'); an edit never moves it.",
    ),
]


class HouseholdData(BaseModel):
    """A household as entered: address and point; the grid is found from the point unless given."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(min_length=1, max_length=200)
    head_name: str | None = Field(default=None, max_length=60)
    contact: str | None = Field(default=None, max_length=40)
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    crs: CoordinateSystem = CoordinateSystem.wgs84
    grid_id: int | None = None
    note: str | None = Field(default=None, max_length=500)
    device_time: DeviceTime = None


def _patch_model(model: type[BaseModel], name: str, doc: str) -> type[BaseModel]:
    """`model` with every field optional and absent by default: an edit names only what it changes.
    Each given value is checked by the field's own rules here, the merged record by `model` again."""
    fields: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        patched = copy(info)
        patched.default = None
        patched.default_factory = None
        fields[field_name] = (Optional[info.annotation], patched)  # noqa: UP045 - a runtime type
    patch: type[BaseModel] = create_model(name, __config__=ConfigDict(extra="forbid"), __doc__=doc, **fields)
    return patch


class HouseholdCreate(HouseholdData):
    uuid: UUID | None = None


HouseholdPatch = _patch_model(
    HouseholdData,
    "HouseholdPatch",
    "An edit of a household: a field left out keeps its stored value; null clears an optional field. "
    "The grid changes only when `grid_id` or a new point (`lon` and `lat`) is given.",
)


class HouseholdUpdate(HouseholdPatch):  # type: ignore[misc,valid-type]
    version: int = Field(ge=1, description="The version this edit was made on; a stale one is a conflict")


class GuardianLink(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uuid: UUID
    relation: str | None = Field(default=None, max_length=20)


class PersonData(BaseModel):
    """A child (附件1/附件3 fields) or a guardian."""

    model_config = ConfigDict(extra="forbid")

    role: PersonRole = PersonRole.child
    household_uuid: UUID | None = None
    name: Text60
    id_number: str | None = Field(default=None, max_length=32)
    sex: Sex | None = None
    birth_date: date | None = None
    hukou_place: str | None = Field(default=None, max_length=200)
    residence: str | None = Field(default=None, max_length=200)
    in_school: bool | None = None
    contact: str | None = Field(default=None, max_length=40)
    categories: list[ChildCategory] = Field(default_factory=list)
    groups: list[ChildGroup] = Field(default_factory=list)
    signs: str | None = Field(default=None, max_length=1000)
    guardians: list[GuardianLink] = Field(default_factory=list, max_length=10)
    task_force: str | None = Field(default=None, max_length=200)
    assistance: str | None = Field(default=None, max_length=1000)
    key_minor: bool = False
    vulnerable: bool = False
    org_unit_id: int | None = Field(default=None, description="Unit of a person without a household")
    device_time: DeviceTime = None


class PersonCreate(PersonData):
    uuid: UUID | None = None


PersonPatch = _patch_model(
    PersonData,
    "PersonPatch",
    "An edit of a child or guardian: a field left out keeps its stored value; null clears an optional "
    "field the caller may see. `id_number` left out, null from a role that may not reveal ID numbers, or "
    "sent back in its masked form keeps the stored number. `guardians` left out keeps the guardians.",
)


class PersonUpdate(PersonPatch):  # type: ignore[misc,valid-type]
    version: int = Field(ge=1, description="The version this edit was made on; a stale one is a conflict")


class RiskOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: RiskLevelIn
    reason: str = Field(min_length=2, max_length=500)


class RiskPersonData(BaseModel):
    """附件2 row."""

    model_config = ConfigDict(extra="forbid")

    name: Text60
    id_number: str | None = Field(default=None, max_length=32)
    sex: Sex | None = None
    hukou_place: str | None = Field(default=None, max_length=200)
    residence: str | None = Field(default=None, max_length=200)
    contact: str | None = Field(default=None, max_length=40)
    categories: list[RiskPersonCategory] = Field(min_length=1)
    risk_level: RiskLevelIn | None = None
    control_measures: str | None = Field(default=None, max_length=1000)
    org_unit_id: int | None = None
