"""Referral shapes for the API (times in Asia/Shanghai). `shared` holds exactly the fields the referral
shares, read from the case's child when the referral is read."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from backend.incidents.schemas import LocalTime, LocalTimeOrNone

SHARED_HELP = ("child_name | child_age | child_gender | guardian_name | guardian_phone | address | needs_summary; "
               "default: child_age, child_gender, needs_summary")


class AgencyReferralCreate(BaseModel):
    to_unit_id: int = Field(description="the receiving org unit (in your jurisdiction or above the case's unit)")
    to_agency: str = Field(max_length=32,
                           description="the receiving agency (司法所: judicial, 民政办: civil_affairs ...)")
    service_id: int | None = Field(default=None, description="one service of the case, or none for the case")
    shared_fields: list[str] | None = Field(default=None, max_length=7, description=SHARED_HELP)
    message: str | None = Field(default=None, max_length=2000)


class ReferralNote(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class ReferralDecline(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class ReferralComplete(BaseModel):
    outcome: str = Field(min_length=1, max_length=2000)


class AgencyReferralPublic(BaseModel):
    id: int
    case_id: int
    service_id: int | None
    from_unit_id: int
    from_agency: str | None
    from_user_id: int | None
    to_unit_id: int
    to_agency: str
    shared_fields: list[str]
    shared: dict[str, Any] = Field(description=(
        "exactly the shared fields, as the registry has them now; {} for a unit that reads the case only "
        "through this referral once it is declined or completed"))
    message: str | None
    status: str = Field(description="sent | accepted | declined | completed")
    sent_at: LocalTime
    answered_at: LocalTimeOrNone
    answered_by: int | None
    decline_reason: str | None = Field(description="case_closed when its case closed")
    completed_at: LocalTimeOrNone
    completed_by: int | None
    outcome: str | None
    updated_at: LocalTime
    allowed: list[str] = Field(description="what you may do now: accept | decline | complete")
