"""Shapes of registry records as phones and the web send them."""

from __future__ import annotations

from copy import copy
from datetime import date
from typing import Annotated, Any, Optional, get_args
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from backend.core import clock
from backend.core.clock import AwarePhoneTime
from backend.core.geo import CoordinateSystem
from backend.core.identifiers import ContactText, IdNumberText
from backend.registry.idnumber import Sex
from backend.registry.models import (
    CheckInFinding,
    CheckInMethod,
    ChildCategory,
    ChildGroup,
    ControlStatus,
    PersonRole,
    RiskLevelIn,
    RiskPersonCategory,
)

Text60 = Annotated[str, Field(min_length=1, max_length=60)]
# When the record was made on the phone. Not content: it is left out of dumps, so the content digest
# (resends, duplicates) and the stored fields are the same with or without it.
# Identifiers arrive folded to their canonical ASCII form (backend/core/identifiers.py).
ID_NUMBER_DOC = (
    "Resident ID number (18 characters). Full-width or other compatibility digits, spaces and a lower-case x "
    "are accepted and stored as ASCII digits with an upper-case X; digits of other scripts are refused."
)
CONTACT_DOC = (
    "Contact. A phone number is stored in one form (ASCII digits; spaces, dashes and +86 dropped; full-width "
    "digits accepted); other text is kept. Digits of other scripts are refused."
)
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
    contact: ContactText | None = Field(default=None, max_length=40, description=CONTACT_DOC)
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    crs: CoordinateSystem = CoordinateSystem.wgs84
    grid_id: int | None = None
    note: str | None = Field(default=None, max_length=500)
    device_time: DeviceTime = None

    @model_validator(mode="after")
    def _point_whole(self) -> HouseholdData:
        if (self.lon is None) != (self.lat is None):
            raise ValueError("lon and lat together, or neither / 经度和纬度须同时填写")
        return self


def _patch_model(model: type[BaseModel], name: str, doc: str) -> type[BaseModel]:
    """`model` with every field absent by default: an edit names only what it changes.
    Each given value is checked by the field's own rules here, the merged record by `model` again."""
    fields: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        patched = copy(info)
        patched.default = None
        patched.default_factory = None
        # null is allowed where the record allows it (it clears the field); for a field the record
        # needs (name, role, categories ...) null is refused here, so the schema says what is accepted.
        nullable = info.annotation is None or type(None) in get_args(info.annotation)
        annotation = Optional[info.annotation] if nullable else info.annotation  # noqa: UP045 - a runtime type
        fields[field_name] = (annotation, patched)
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
    id_number: IdNumberText | None = Field(default=None, max_length=32, description=ID_NUMBER_DOC)
    sex: Sex | None = None
    birth_date: date | None = None
    hukou_place: str | None = Field(default=None, max_length=200)
    residence: str | None = Field(default=None, max_length=200)
    in_school: bool | None = None
    contact: ContactText | None = Field(default=None, max_length=40, description=CONTACT_DOC)
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

    @field_validator("guardians")
    @classmethod
    def _each_guardian_once(cls, links: list[GuardianLink]) -> list[GuardianLink]:
        if len({link.uuid for link in links}) != len(links):
            raise ValueError("each guardian once / 同一监护人只能列一次")
        return links

    @field_validator("birth_date")
    @classmethod
    def _plausible_birth_date(cls, born: date | None) -> date | None:
        if born is not None and not EARLIEST_BIRTH_DATE <= born <= clock.now().date():
            raise ValueError(f"a birth date from {EARLIEST_BIRTH_DATE} to today / 出生日期须在1900年至今天之间")
        return born


# As for ID numbers (backend/registry/idnumber.py): nobody registered was born earlier.
EARLIEST_BIRTH_DATE = date(1900, 1, 1)


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
    """附件2 row. An entry of a person under 18 on the day it is made is sealed (README, "Sealed records")."""

    model_config = ConfigDict(extra="forbid")

    name: Text60
    id_number: IdNumberText | None = Field(default=None, max_length=32, description=ID_NUMBER_DOC)
    sex: Sex | None = None
    birth_date: date | None = Field(
        default=None,
        description="The person's birth date where there is no ID number (with one, it must agree with it). It "
        "decides whether the entry is sealed and is not stored or sent back.",
    )
    hukou_place: str | None = Field(default=None, max_length=200)
    residence: str | None = Field(default=None, max_length=200)
    contact: ContactText | None = Field(default=None, max_length=40, description=CONTACT_DOC)
    categories: list[RiskPersonCategory] = Field(min_length=1)
    risk_level: RiskLevelIn | None = None
    control_measures: str | None = Field(default=None, max_length=1000)
    org_unit_id: int | None = None
    note: str | None = Field(default=None, max_length=1000, description="The police's own note on the person")
    control_status: ControlStatus = Field(
        default=ControlStatus.controlled,
        description="controlled (在控), lost (失控: whereabouts unknown) or released (解除管控: no check-in "
        "falls due any more)",
    )


RiskPersonPatch = _patch_model(
    RiskPersonData,
    "RiskPersonPatch",
    "An edit of a 附件2 entry: a field left out keeps its stored value; null clears an optional field. "
    "`id_number` left out or sent back in its masked form keeps the stored number. A new ID number or "
    "birth date is judged again for sealing against the day the entry was made.",
)


class RiskPersonUpdate(RiskPersonPatch):  # type: ignore[misc,valid-type]
    version: int = Field(ge=1, description="The version this edit was made on; a stale one is a conflict")


class CheckInCreate(BaseModel):
    """A control check-in (管控) on a 附件2 person."""

    model_config = ConfigDict(extra="forbid")

    checked_at: AwarePhoneTime | None = Field(
        default=None, description="When the officer checked in (ISO 8601 with offset); default now. Not in the "
        "future; the next check-in falls due from the latest one.")
    method: CheckInMethod = Field(description="home_visit (上门走访), summons (约谈), phone, video or other")
    place: str | None = Field(default=None, max_length=200, description="Where")
    finding: CheckInFinding = Field(description="normal (正常), concern (发现异常) or not_found (未见本人)")
    note: str | None = Field(default=None, max_length=1000)


class HouseholdLinkCreate(BaseModel):
    """The household a 附件2 person lives in (in the caller's jurisdiction)."""

    model_config = ConfigDict(extra="forbid")

    household_id: int = Field(ge=1)
