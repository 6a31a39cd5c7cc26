"""Service shapes for the API (times in Asia/Shanghai, due dates as China dates). A service carries its
case's id, never a child's name."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from backend.core.clock import AwarePhoneTime
from backend.incidents.schemas import LocalTime, LocalTimeOrNone


class ServiceKindPublic(BaseModel):
    code: str
    name_zh: str
    name_en: str
    default_agency: str | None = Field(description="the agency that usually provides it (proposed when planning)")


class ServiceKindCreate(BaseModel):
    code: str = Field(min_length=2, max_length=40, pattern=r"^[a-z][a-z0-9_]{1,39}$", description="a new slug")
    name_zh: str = Field(min_length=1, max_length=60)
    name_en: str = Field(min_length=1, max_length=80)
    default_agency: str | None = Field(default=None, max_length=32)


class ServicePlan(BaseModel):
    kind: str = Field(max_length=40, description="a code of GET /service-kinds")
    provider_unit_id: int | None = Field(
        default=None, description="the providing org unit (default: the town of the case); in your jurisdiction "
                                  "or above the case's unit")
    provider_agency: str | None = Field(default=None, max_length=32,
                                        description="the providing agency (default: the kind's default agency)")
    due_on: date | None = Field(default=None, description="China date; overdue after it unless done or declined")
    note: str | None = Field(default=None, max_length=2000)


class ServiceStepCreate(BaseModel):
    to_status: str = Field(max_length=12, description="planned | in_progress | done | declined (referred: only by "
                                                        "a referral to a unit, POST /cases/{id}/referrals)")
    note: str | None = Field(default=None, max_length=2000)
    outcome: str | None = Field(default=None, max_length=2000, description="required for done")
    reason: str | None = Field(default=None, max_length=2000, description="required for declined")
    at: AwarePhoneTime | None = Field(default=None, description="when it happened (default: now; never in the "
                                                                "future beyond 5 minutes, nor before the service "
                                                                "was planned or its previous step)")


class ServiceStepPublic(BaseModel):
    id: int
    from_status: str | None
    to_status: str
    note: str | None
    outcome: str | None
    reason: str | None
    actor_user_id: int | None
    at: LocalTime
    recorded_at: LocalTime


class ServicePublic(BaseModel):
    id: int
    case_id: int
    org_unit_id: int = Field(description="the case's unit")
    kind: str
    provider_unit_id: int
    provider_agency: str
    status: str = Field(description="planned | referred | in_progress | done | declined")
    due_on: date | None
    overdue: bool = Field(description="past its due date (China date) and not done or declined")
    outcome: str | None
    completed_at: LocalTimeOrNone = Field(description="when it became done")
    decline_reason: str | None = Field(description="case_closed when its case closed")
    note: str | None
    created_by: int | None
    created_at: LocalTime
    updated_at: LocalTime
    overdue_notified_at: LocalTimeOrNone
    allowed: list[str] = Field(description="the statuses a step may move it to now (never referred: a referral "
                                           "to a unit refers it)")


class ServiceDetail(ServicePublic):
    steps: list[ServiceStepPublic]
