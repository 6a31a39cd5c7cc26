"""API shapes for venues."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from backend.core.geo import CoordinateSystem
from backend.core.identifiers import ContactText
from backend.venues import credit_code
from backend.venues.models import VenueStatus, VenueType

OWNER_PHONE_DOC = ("A phone number is stored in one form (ASCII digits; spaces, dashes and +86 dropped; "
                   "full-width digits accepted); other text is kept. Digits of other scripts are refused.")


def _check_code(value: str) -> str:
    reason = credit_code.problem(value)
    if reason:
        raise ValueError(f"invalid unified social credit code: {reason}")
    return credit_code.normalise(value)


class VenueCreate(BaseModel):
    venue_type: VenueType
    name: str = Field(min_length=1, max_length=120)
    credit_code: str = Field(description="18-character unified social credit code (GB 32100), checksum validated; "
                             "full-width characters, spaces and lower case are accepted and stored as ASCII "
                             "upper case")
    address: str = Field(default="", max_length=200)
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    crs: CoordinateSystem = CoordinateSystem.wgs84
    owner_name: str = Field(default="", max_length=60)
    owner_phone: ContactText = Field(default="", max_length=20, description=OWNER_PHONE_DOC)
    is_key: bool = False
    status: VenueStatus = VenueStatus.open
    org_unit_id: int | None = Field(default=None, description="Defaults to the grid containing the point")

    _code = field_validator("credit_code")(_check_code)


class VenueUpdate(BaseModel):
    venue_type: VenueType | None = None
    name: str | None = Field(default=None, min_length=1, max_length=120)
    address: str | None = Field(default=None, max_length=200)
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    crs: CoordinateSystem = CoordinateSystem.wgs84
    owner_name: str | None = Field(default=None, max_length=60)
    owner_phone: ContactText | None = Field(default=None, max_length=20, description=OWNER_PHONE_DOC)
    is_key: bool | None = None
    status: VenueStatus | None = None
    org_unit_id: int | None = None


class RiskPartPublic(BaseModel):
    name: str
    label_zh: str
    label_en: str
    points: int
    basis: str


class RiskPublic(BaseModel):
    total: int
    high_risk: bool
    formula: str
    parts: list[RiskPartPublic]


class VenuePublic(BaseModel):
    id: int
    venue_type: VenueType
    venue_type_zh: str
    name: str
    credit_code: str
    address: str
    lon: float
    lat: float
    owner_name: str
    owner_phone: str
    is_key: bool
    status: VenueStatus
    org_unit_id: int
    updated_at: datetime
    risk: RiskPublic | None = None


class ImportErrorItem(BaseModel):
    row: int
    column: str | None = None  # the printed header of the column at fault; None for the whole row
    reason: str  # in the caller's language (Accept-Language: zh-CN by default, or en)


class ImportReportPublic(BaseModel):
    ok: bool
    created: int
    updated: int = Field(description="Stored venues the file changed (a value differing from the stored one)")
    unchanged: int = Field(description="Stored venues the file names with nothing to change: every value equal to "
                           "the stored one once both are trimmed and cleaned the way an export writes them, "
                           "points within 1e-9 degrees. An exported ledger imported unchanged answers all of "
                           "its venues here and none in `updated`.")
    merged_in_file: int
    errors: list[ImportErrorItem]
