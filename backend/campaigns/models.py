"""Campaigns (专项行动) and their dated phases."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Date, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.core import clock


class Campaign(SQLModel, table=True):
    """A dated campaign, e.g. 利剑护蕾·雷霆行动 2026, run by an org unit and everything under it."""

    __tablename__ = "campaign"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, unique=True, index=True)
    name: str = Field(max_length=120)
    org_unit_id: int | None = Field(default=None, foreign_key="org_unit.id", index=True)
    start_date: date = Field(sa_column=Column(Date, nullable=False))
    end_date: date = Field(sa_column=Column(Date, nullable=False))
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))
    # When a month's report (月报) is due: by `report_due_day` of that same month (seed 002: 每月17日前报送
    # 当月工作进展情况, the default) or of the following month.
    report_due_rule: str = Field(default="same_month", max_length=16)
    report_due_day: int = 17


class CampaignPhase(SQLModel, table=True):
    """One phase of a campaign (动员部署, 排查整治, 巩固成果); dates inclusive."""

    __tablename__ = "campaign_phase"
    __table_args__ = (UniqueConstraint("campaign_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True, ondelete="CASCADE")
    position: int
    code: str = Field(max_length=40)
    name_zh: str = Field(max_length=60)
    name_en: str = Field(max_length=60)
    start_date: date = Field(sa_column=Column(Date, nullable=False))
    end_date: date = Field(sa_column=Column(Date, nullable=False))
