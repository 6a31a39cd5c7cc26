"""API shapes for campaigns and periods."""

from __future__ import annotations

from datetime import date

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

    @classmethod
    def of(cls, info: CampaignInfo) -> CampaignPublic:
        return cls(id=info.id, code=info.code, name=info.name, start_date=info.start_date, end_date=info.end_date,
                   phases=[PhasePublic(code=p.code, name_zh=p.name_zh, name_en=p.name_en, start_date=p.start_date,
                                       end_date=p.end_date) for p in info.phases])


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
