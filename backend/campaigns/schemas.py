"""API shapes for campaigns and periods."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from backend.campaigns.service import CampaignInfo, Period


class PhaseIn(BaseModel):
    code: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_-]+$")
    name_zh: str = Field(min_length=1, max_length=60)
    name_en: str = Field(min_length=1, max_length=60)
    start_date: date
    end_date: date


class CampaignCreate(BaseModel):
    code: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_-]+$")
    name: str = Field(min_length=1, max_length=120)
    start_date: date
    end_date: date
    phases: list[PhaseIn] = Field(min_length=1, max_length=12)


class PhasePublic(BaseModel):
    code: str
    name_zh: str
    name_en: str
    start_date: date
    end_date: date


class CampaignPublic(BaseModel):
    id: int | None = Field(description="null for the built-in default campaign of a year (not stored)")
    code: str
    name: str
    start_date: date
    end_date: date
    phases: list[PhasePublic]
    report_due_rule: str = Field(description="same_month (default, seed 002) | following_month")
    report_due_day: int = Field(description="the day of that month a monthly report is due by (default 17)")

    @classmethod
    def of(cls, info: CampaignInfo) -> CampaignPublic:
        return cls(id=info.id, code=info.code, name=info.name, start_date=info.start_date, end_date=info.end_date,
                   phases=[PhasePublic(code=p.code, name_zh=p.name_zh, name_en=p.name_en, start_date=p.start_date,
                                       end_date=p.end_date) for p in info.phases],
                   report_due_rule=info.report_due_rule, report_due_day=info.report_due_day)


class DueRuleIn(BaseModel):
    """When monthly reports are due: the campaign (default: the year's built-in one, stored on first use)."""

    campaign_id: int | None = None
    year: int | None = Field(default=None, ge=2000, le=2099, description="the year's default campaign")
    report_due_rule: Literal["same_month", "following_month"] = "same_month"
    report_due_day: int = Field(default=17, ge=1, le=31)


class PeriodPublic(BaseModel):
    start_date: date
    end_date: date
    kind: str
    label_zh: str
    label_en: str
    key: str | None

    @classmethod
    def of(cls, period: Period) -> PeriodPublic:
        return cls(start_date=period.start_date, end_date=period.end_date, kind=period.kind,
                   label_zh=period.label_zh, label_en=period.label_en, key=period.key)
