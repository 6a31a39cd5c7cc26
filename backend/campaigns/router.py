"""Campaigns and period resolution."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.campaigns import service
from backend.campaigns.schemas import CampaignCreate, CampaignPublic, DueRuleIn, PeriodPublic
from backend.campaigns.service import Period, PhaseInfo
from backend.core.db import SessionDep
from backend.core.pagination import Page, Paging

router = APIRouter(prefix="/campaigns", tags=["campaigns"])


def period_query(
    session: SessionDep,
    phase: Annotated[str | None, Query(description="phase code, e.g. investigation")] = None,
    campaign_id: Annotated[int | None, Query()] = None,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="year of the default campaign")] = None,
    month: Annotated[str | None, Query(description="YYYY-MM")] = None,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
) -> Period:
    """The period a request asks for (shared by coverage and reports)."""
    return service.resolve_period(session, phase=phase, campaign_id=campaign_id, year=year, month=month,
                                  date_from=date_from, date_to=date_to)


PeriodDep = Annotated[Period, Depends(period_query)]


@router.get("", response_model=list[CampaignPublic] | Page[CampaignPublic])
def list_campaigns(
    session: SessionDep,
    _: Annotated[Principal, requires(Action.coverage_read)],
    page: Paging,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> list[CampaignPublic] | Page[CampaignPublic]:
    """Stored campaigns and the default 利剑护蕾·雷霆行动 of the year, by start date."""
    campaigns = [CampaignPublic.of(c) for c in service.list_campaigns(session, year=year)]
    return page.answer(campaigns, key=lambda c: (c.start_date, c.code))


@router.post("", response_model=CampaignPublic, status_code=201)
def create_campaign(
    body: CampaignCreate, session: SessionDep, principal: Annotated[Principal, requires(Action.campaign_manage)]
) -> CampaignPublic:
    """Store a campaign with its phases."""
    phases = [PhaseInfo(p.code, p.name_zh, p.name_en, p.start_date, p.end_date) for p in body.phases]
    return CampaignPublic.of(service.create_campaign(session, principal, code=body.code, name=body.name,
                                                     start_date=body.start_date, end_date=body.end_date,
                                                     phases=phases))


@router.get("/period", response_model=PeriodPublic)
def resolve_period(period: PeriodDep, _: Annotated[Principal, requires(Action.coverage_read)]) -> PeriodPublic:
    """The dates a phase, month or from/to resolves to."""
    return PeriodPublic.of(period)


@router.put("/report-due-rule", response_model=CampaignPublic)
def set_report_due_rule(
    body: DueRuleIn, session: SessionDep, principal: Annotated[Principal, requires(Action.campaign_manage)]
) -> CampaignPublic:
    """When monthly reports are due (county level and above): same_month (the seed's reading: by the
    17th of the month reported) or following_month, and the day."""
    return CampaignPublic.of(service.set_due_rule(session, principal, rule=body.report_due_rule,
                                                  day=body.report_due_day, campaign_id=body.campaign_id,
                                                  year=body.year))
