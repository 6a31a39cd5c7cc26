"""Referrals between units (转介): a unit refers a case, or one service of it, to another unit, which
sees only the fields the referral shares."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel

from backend.core import clock


def _ts(nullable: bool = False) -> Any:
    return Column(DateTime(timezone=True), nullable=nullable)


class AgencyReferralStatus(StrEnum):
    sent = "sent"  # 已转介: waiting for the receiving unit
    accepted = "accepted"  # 已接收
    declined = "declined"  # 已拒绝 (with a reason)
    completed = "completed"  # 已办结 (with an outcome)


class SharedField(StrEnum):
    """What a referral may share of the case's child, read from the registry when the referral is read
    (never copied): the referrer picks the minimum necessary."""

    child_name = "child_name"  # 姓名
    child_age = "child_age"  # 年龄 (years, today)
    child_gender = "child_gender"  # 性别
    guardian_name = "guardian_name"  # 监护人姓名
    guardian_phone = "guardian_phone"  # 监护人电话 (the household's contact)
    address = "address"  # 住址
    needs_summary = "needs_summary"  # the services the case needs (kinds), no personal data


# Shared when the referrer does not say: nothing that names or locates the child.
DEFAULT_SHARED: tuple[str, ...] = (SharedField.child_age.value, SharedField.child_gender.value,
                                   SharedField.needs_summary.value)
OPEN: tuple[str, ...] = (AgencyReferralStatus.sent.value, AgencyReferralStatus.accepted.value)


class AgencyReferral(SQLModel, table=True):
    """One referral from a unit to another."""

    __tablename__ = "agency_referral"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="child_case.id", index=True, ondelete="CASCADE")
    service_id: int | None = Field(default=None, foreign_key="case_service.id", index=True, ondelete="CASCADE")
    # The case's unit: the jurisdiction that sees the referral.
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    from_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    from_agency: str | None = Field(default=None, max_length=32)
    from_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    to_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    to_agency: str = Field(max_length=32)
    # The service's providing unit before the referral: it provides again when the referral is declined.
    previous_unit_id: int | None = Field(default=None, foreign_key="org_unit.id")
    previous_agency: str | None = Field(default=None, max_length=32)
    shared_fields: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    message: str | None = Field(default=None, max_length=2000)
    status: str = Field(default=AgencyReferralStatus.sent.value, max_length=12, index=True)
    sent_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    answered_at: datetime | None = Field(default=None, sa_column=_ts(True))
    answered_by: int | None = Field(default=None, foreign_key="app_user.id")
    decline_reason: str | None = Field(default=None, max_length=2000)
    completed_at: datetime | None = Field(default=None, sa_column=_ts(True))
    completed_by: int | None = Field(default=None, foreign_key="app_user.id")
    outcome: str | None = Field(default=None, max_length=2000)
    updated_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
