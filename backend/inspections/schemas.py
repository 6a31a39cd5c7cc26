"""API shapes for inspections, problems and penalties."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from backend.core.clock import PhoneTime
from backend.core.geo import CoordinateSystem
from backend.inspections.models import PenaltyKind, ProblemStatus


class Answer(StrEnum):
    yes = "yes"  # 符合
    no = "no"  # 不符合: opens a problem
    na = "na"  # 不适用


class GpsFix(BaseModel):
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    crs: CoordinateSystem = CoordinateSystem.wgs84
    accuracy_m: float | None = Field(default=None, ge=0)


class FindingIn(BaseModel):
    """A problem found; for a checklist item answered "no" it overrides the default measure."""

    item_code: str | None = Field(default=None, max_length=40)
    description: str = Field(default="", max_length=1000)
    measure: str = Field(default="", max_length=1000)
    responsible_party: str = Field(default="", max_length=120)
    deadline_date: date | None = None


class RecheckIn(BaseModel):
    """A re-inspection of an earlier problem: only this verifies (closes) a problem."""

    problem_id: int
    fixed: bool
    note: str = Field(default="", max_length=1000)
    new_deadline_date: date | None = None


class PenaltyIn(BaseModel):
    kind: PenaltyKind
    amount_yuan: int | None = Field(default=None, ge=0)
    decision_number: str = Field(default="", max_length=60)
    decided_date: date | None = None
    note: str = Field(default="", max_length=1000)
    problem_id: int | None = None


class InspectionData(BaseModel):
    """One inspection as the phone recorded it (maybe offline): the `data` of a pushed "inspection"
    item, whose client UUID is the item's own."""

    venue_id: int
    checklist_code: str = Field(max_length=40)
    checklist_version: int = Field(ge=1)
    started_at: PhoneTime
    finished_at: PhoneTime | None = None
    inspector_ids: list[int] = Field(default_factory=list, max_length=20,
                                     description="Other officers present; the caller is always included")
    fix: GpsFix | None = None
    answers: dict[str, Answer]
    findings: list[FindingIn] = Field(default_factory=list, max_length=50)
    rechecks: list[RecheckIn] = Field(default_factory=list, max_length=50)
    penalties: list[PenaltyIn] = Field(default_factory=list, max_length=10)
    notes: str = Field(default="", max_length=4000)
    photo_ids: list[str] = Field(default_factory=list, max_length=30)


class InspectionSubmit(InspectionData):
    """One inspection as the phone recorded it (maybe offline)."""

    client_uuid: UUID


class InspectorPublic(BaseModel):
    user_id: int
    display_name: str
    agency: str


class ProblemPublic(BaseModel):
    id: int
    venue_id: int
    venue_name: str
    item_code: str | None
    description: str
    measure: str
    responsible_party: str
    deadline_date: date
    status: ProblemStatus
    status_zh: str
    stored_status: ProblemStatus
    days_overdue: int
    failed_rechecks: int
    found_in_inspection_id: int | None = Field(description="the inspection that found it; null for a problem a "
                                                           "case review raised (source case_review)")
    verified_by_inspection_id: int | None
    verified_at: datetime | None
    note: str
    source: str = Field(default="inspection", description="inspection | case_review (一案一整治)")
    case_review_id: int | None = Field(default=None, description="the case review that raised it")


class PenaltyPublic(BaseModel):
    id: int
    venue_id: int
    kind: PenaltyKind
    amount_yuan: int | None
    decision_number: str
    decided_date: date
    inspection_id: int | None
    problem_id: int | None
    note: str


class InspectionPublic(BaseModel):
    id: int
    client_uuid: str
    venue_id: int
    checklist_code: str
    checklist_version: int
    started_at: datetime
    finished_at: datetime | None
    counted_at: datetime = Field(description="Where the inspection counts in periods (sync.md 'Which clock counts')")
    clock_suspect: bool = Field(description="The phone's time was implausible: counted by receipt time")
    inspectors: list[InspectorPublic]
    is_joint: bool
    is_reinspection: bool
    distance_m: float | None
    location_mismatch: bool
    answers: dict[str, Any]
    notes: str
    photo_ids: list[str]
    problems_opened: list[ProblemPublic]
    problems_verified: list[int]
    penalties: list[PenaltyPublic]
    replayed: bool = False
    review_state: str = Field(default="pending", description=(
        "A coordinator's review (审核, backend/reviews): pending | approved | has_issues | rejected"))


class ProblemUpdate(BaseModel):
    """Progress reported by the venue (through an officer or coordinator). Verification is not here:
    only a re-inspection verifies a problem."""

    status: ProblemStatus | None = None
    measure: str | None = Field(default=None, max_length=1000)
    responsible_party: str | None = Field(default=None, max_length=120)
    deadline_date: date | None = None
    note: str | None = Field(default=None, max_length=1000)


class PenaltyCreate(PenaltyIn):
    venue_id: int
    inspection_id: int | None = None


class ChecklistItemPublic(BaseModel):
    code: str
    text_zh: str
    text_en: str
    default_measure_zh: str
    deadline_days: int


class ChecklistPublic(BaseModel):
    code: str
    version: int
    title_zh: str
    title_en: str
    venue_types: list[str]
    current: bool
    items: list[ChecklistItemPublic]
    # Additive (issue 17): the county whose version this is (null: the national one) and when it was published.
    owner_unit_id: int | None = None
    published_at: datetime | None = None
    # Additive: the venue types for which this version is the one in force at the caller's unit (a county
    # version covering fewer types than the national one leaves the others on the national version).
    current_for: list[str] = []


class ChecklistItemIn(BaseModel):
    """One item of a county's next version (checked by the service, which names the item and the problem)."""

    code: str = Field(max_length=60)
    text_zh: str = Field(max_length=300)
    text_en: str = Field(max_length=300)
    measure_zh: str = Field(max_length=300)
    deadline_days: int


class ChecklistPublish(BaseModel):
    """A county's next version of a checklist: copy the current one (GET), change it, publish it."""

    # The county that owns the version; by default the caller's own unit (which must be a county).
    unit_id: int | None = None
    # The version being made; when given it must be the next one (a published version never changes: 409).
    version: int | None = Field(default=None, ge=1)
    # Omitted: kept from the version in force in the county.
    title_zh: str | None = Field(default=None, max_length=120)
    title_en: str | None = Field(default=None, max_length=120)
    venue_types: list[str] | None = Field(default=None, max_length=20)
    items: list[ChecklistItemIn] = Field(min_length=1, max_length=100)
    # Only check and show what would be published (a draft); nothing is stored.
    dry_run: bool = False
