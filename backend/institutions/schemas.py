"""API shapes of the institution register (密切接触未成年人单位)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from backend.accounts.models import Agency
from backend.institutions.models import InstitutionKind


class InstitutionCreate(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    kind: InstitutionKind
    org_unit_id: int = Field(description="The unit it lies in (a village or a town) inside the caller's jurisdiction")
    supervising_agency: Agency | None = Field(default=None, description="行业主管部门; the kind's default when absent")
    venue_id: int | None = Field(default=None, description="The venue register's entry, for an inspected venue")
    address: str = Field(default="", max_length=200)
    student_count: int | None = Field(default=None, ge=0, le=100_000, description="A school's enrolment")
    is_active: bool = True


class InstitutionUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    kind: InstitutionKind | None = None
    org_unit_id: int | None = None
    supervising_agency: Agency | None = None
    venue_id: int | None = None
    address: str | None = Field(default=None, max_length=200)
    student_count: int | None = Field(default=None, ge=0, le=100_000)
    is_active: bool | None = None


class InstitutionPublic(BaseModel):
    id: int
    name: str
    kind: InstitutionKind
    kind_zh: str
    org_unit_id: int
    supervising_agency: str
    venue_id: int | None
    address: str
    student_count: int | None
    is_active: bool


class ImportErrorItem(BaseModel):
    row: int
    column: str | None = None  # the printed header of the column at fault; None for the whole row
    reason: str  # in the caller's language


class InstitutionImportReport(BaseModel):
    dry_run: bool
    created: int
    updated: int
    unchanged: int
