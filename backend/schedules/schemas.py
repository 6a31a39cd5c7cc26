"""API shapes for weekly plans, rules and availability."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from backend.accounts.models import Agency
from backend.orgunits.models import OrgLevel
from backend.venues.models import VenueType


class RulesIn(BaseModel):
    joint_ops_per_month: int = Field(default=2, ge=0, le=31)
    daily_capacity: int = Field(default=6, ge=1, le=30)
    min_team_size: int = Field(default=2, ge=1, le=10)
    high_risk_threshold: int = Field(default=60, ge=0, le=100)
    routine_interval_days: int = Field(default=28, ge=1, le=365)
    area_level: OrgLevel = OrgLevel.village
    visit_minutes: int = Field(default=40, ge=5, le=480)
    day_start_hour: int = Field(default=9, ge=0, le=20)


class RulesPublic(RulesIn):
    org_unit_id: int
    inherited_from_unit_id: int | None


class AvailabilityIn(BaseModel):
    weekdays: list[int] = Field(description="0 = Monday ... 6 = Sunday", max_length=7)


class AvailabilityPublic(BaseModel):
    user_id: int
    weekdays: list[int]
    default: bool


class GenerateIn(BaseModel):
    org_unit_id: int
    week_start_date: date | None = Field(default=None, description="A Monday; default: next week")


class MemberPublic(BaseModel):
    user_id: int
    display_name: str
    agency: str


class VisitPublic(BaseModel):
    id: int
    venue_id: int
    venue_name: str
    venue_type: str
    address: str
    lon: float
    lat: float
    position: int
    leg_distance_m: float
    reason: str
    carried_over: bool


class TeamPublic(BaseModel):
    id: int
    day_date: date
    label: str
    area_unit_id: int
    area_name: str
    is_joint: bool
    route_distance_m: float
    members: list[MemberPublic]
    visits: list[VisitPublic]


class PlanPublic(BaseModel):
    id: int
    org_unit_id: int
    week_start_date: date
    status: str
    joint_ops_required: int
    joint_ops_planned: int
    total_distance_m: float
    venues_planned: int
    candidates: int
    violations: list[dict[str, Any]]
    generated_at: datetime
    published_at: datetime | None
    publish_note: str
    teams: list[TeamPublic]


class PlanSummary(BaseModel):
    id: int
    org_unit_id: int
    week_start_date: date
    status: str
    violations: int
    generated_at: datetime
    published_at: datetime | None


class ComplianceVisit(BaseModel):
    venue_id: int
    venue_name: str
    day_date: date
    team_label: str
    state: str  # done / missed / pending
    inspection_id: int | None


class CompliancePublic(BaseModel):
    plan_id: int
    week_start_date: date
    planned: int
    done: int
    missed: int
    pending: int
    visits: list[ComplianceVisit]


class FeedUrl(BaseModel):
    url: str


class DutyIn(BaseModel):
    """执法职责: `agency` inspects venues of `venue_type` at least every `interval_days` days."""

    agency: Agency
    venue_type: VenueType
    interval_days: int = Field(ge=1, le=365)


class DutiesIn(BaseModel):
    duties: list[DutyIn] = Field(max_length=200, description="The county's whole list; empty: the national default")


class DutyPublic(DutyIn):
    agency_zh: str
    venue_type_zh: str


class DutiesPublic(BaseModel):
    org_unit_id: int
    county_unit_id: int | None = Field(description="The county whose list this is; null: the national default")
    national_default: bool
    duties: list[DutyPublic]
