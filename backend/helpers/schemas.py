"""Helper and assignment shapes for the API (times in Asia/Shanghai)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, computed_field

from backend.core.clock import AwarePhoneTime
from backend.helpers.models import Skill
from backend.incidents.schemas import LocalTime, LocalTimeOrNone
from backend.registry.models import RiskLevel, RiskLevelCode


class HelperCreate(BaseModel):
    user_id: int
    sex: str = Field(pattern="^(male|female)$")
    skills: list[Skill] = Field(default_factory=list)
    capacity: int = Field(default=2, ge=1, le=20)
    home_lon: float | None = Field(default=None, ge=-180, le=180)
    home_lat: float | None = Field(default=None, ge=-90, le=90)
    active: bool = True


class HelperUpdate(BaseModel):
    skills: list[Skill] | None = None
    capacity: int | None = Field(default=None, ge=1, le=20)
    home_lon: float | None = Field(default=None, ge=-180, le=180)
    home_lat: float | None = Field(default=None, ge=-90, le=90)
    active: bool | None = None


class HelperPublic(BaseModel):
    id: int
    user_id: int
    org_unit_id: int
    sex: str
    skills: list[str]
    capacity: int
    load: int
    home_lon: float | None
    home_lat: float | None
    active: bool


class AssignmentPublic(BaseModel):
    """One helper for one child; `reasons` say why the matcher chose this helper."""

    id: int
    child_id: int
    helper_id: int
    org_unit_id: int
    mode: str
    status: str
    cost: float
    reasons: list[dict[str, Any]]
    proposed_at: LocalTime
    confirmed_at: LocalTimeOrNone
    answer_due_at: LocalTimeOrNone
    answered_at: LocalTimeOrNone
    last_followup_at: LocalTimeOrNone
    followup_due_at: LocalTimeOrNone
    case_id: int | None = Field(default=None, description="the case (个案) the help belongs to")
    ended_at: LocalTimeOrNone = None
    end_reason: str | None = Field(default=None, description="why the help ended (status ended)")


class AssignmentEnd(BaseModel):
    """Why help under way ends: need_met, helper_unavailable, reassigned, or other (with a note)."""

    reason: str = Field(max_length=20)
    note: str | None = Field(default=None, max_length=2000)


class FollowUpCreate(BaseModel):
    visited_at: LocalTimeOrNone = None
    note: str | None = Field(default=None, max_length=2000)


class FollowUpPublic(BaseModel):
    id: int
    assignment_id: int
    visited_at: LocalTime
    note: str | None
    # Follow-ups pushed from the phone (sync kind "followup"): its UUID, the time it gave, and whether
    # that time was implausible (then `visited_at` is the server's receipt time).
    client_uuid: UUID | None = None
    device_time: LocalTimeOrNone = None
    clock_suspect: bool = False


class FollowUpData(BaseModel):
    """A follow-up recorded on the helper's phone (sync push kind "followup"); an unknown member is
    refused, never ignored."""

    model_config = ConfigDict(extra="forbid")

    assignment_id: int = Field(description="your own accepted assignment")
    visited_at: AwarePhoneTime = Field(description="when you visited, by the phone's clock, with its offset")
    note: str | None = Field(default=None, max_length=2000)


class OverdueFollowUpPublic(BaseModel):
    assignment_id: int
    child_id: int
    helper_id: int
    risk_level: RiskLevel | None
    due_at: LocalTime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def risk_level_code(self) -> RiskLevelCode | None:
        return RiskLevelCode(self.risk_level.code) if self.risk_level else None


class ChildWithoutHelperPublic(BaseModel):
    """A child at 较大/重大风险 or on 附件3 with no helper who accepted; name and ID number masked."""

    child_id: int
    name_masked: str | None
    id_number_masked: str | None
    sex: str | None
    risk_level: RiskLevel | None
    vulnerable: bool
    org_unit_id: int
    unit_name: str
    pending: int = Field(description="proposals and offers still waiting for a coordinator or the helper")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def risk_level_code(self) -> RiskLevelCode | None:
        return RiskLevelCode(self.risk_level.code) if self.risk_level else None
