"""Shapes of registry records as phones and the web send them."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from backend.core.geo import CoordinateSystem
from backend.registry.idnumber import Sex
from backend.registry.models import ChildCategory, ChildGroup, PersonRole, RiskLevel, RiskPersonCategory

Text60 = Annotated[str, Field(min_length=1, max_length=60)]


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


class HouseholdCreate(HouseholdData):
    uuid: UUID | None = None


class HouseholdUpdate(HouseholdData):
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


class PersonCreate(PersonData):
    uuid: UUID | None = None


class PersonUpdate(PersonData):
    version: int = Field(ge=1)


class RiskOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: RiskLevel
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
    risk_level: RiskLevel | None = None
    control_measures: str | None = Field(default=None, max_length=1000)
    org_unit_id: int | None = None
