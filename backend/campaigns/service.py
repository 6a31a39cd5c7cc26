"""Campaigns, their phases, and the reporting period a request asks for.

A period is a phase of a campaign, a calendar month (YYYY-MM) or explicit from/to dates; dates are
local (Asia/Shanghai) and inclusive. When no campaign is stored for a year, the built-in default
利剑护蕾·雷霆行动 with seed 001's three phases applies to that year.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.campaigns.models import Campaign, CampaignPhase
from backend.core import clock
from backend.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from backend.orgunits.models import OrgLevel, OrgUnit

DEFAULT_CAMPAIGN_NAME = "利剑护蕾·雷霆行动"
DEFAULT_CODE_PREFIX = "lijian-hulei-"

# Seed 001: 动员部署 to 10 Jan (the seed's started 22 Dec of the year before; a yearly campaign starts on
# 1 Jan so consecutive years never overlap), 排查整治 11 Jan - 30 Jun, 巩固成果 1 Jul - 31 Dec.
DEFAULT_PHASES: tuple[tuple[str, str, str, tuple[int, int], tuple[int, int]], ...] = (
    ("mobilisation", "动员部署", "Mobilisation", (1, 1), (1, 10)),
    ("investigation", "排查整治", "Investigation and rectification", (1, 11), (6, 30)),
    ("consolidation", "巩固成果", "Consolidation", (7, 1), (12, 31)),
)
MAX_PERIOD_DAYS = 800
# A reporting month 'YYYY-MM' of this century: year 9999 or 0000 has no next month or previous day,
# and a period is computed from both. Every month parameter uses this one pattern.
MONTH_PATTERN = r"^(20\d{2})-(0[1-9]|1[0-2])$"
_MONTH = re.compile(MONTH_PATTERN)


@dataclass(frozen=True)
class PhaseInfo:
    code: str
    name_zh: str
    name_en: str
    start_date: date
    end_date: date


@dataclass(frozen=True)
class CampaignInfo:
    """A campaign as the API shows it; id is None for the built-in default of a year."""

    id: int | None
    code: str
    name: str
    start_date: date
    end_date: date
    phases: tuple[PhaseInfo, ...]
    report_due_rule: str = "same_month"
    report_due_day: int = 17


@dataclass(frozen=True)
class Period:
    """Inclusive local dates with labels; `key` names the standard periods (phase or month) that
    the precomputed coverage summary is kept for, and is None for arbitrary dates."""

    start_date: date
    end_date: date
    kind: str  # phase | month | range
    label_zh: str
    label_en: str
    key: str | None = None

    @property
    def start_at(self) -> datetime:
        """First instant of the period (UTC)."""
        return clock.china_day_start(self.start_date)

    @property
    def end_at(self) -> datetime:
        """First instant after the period (UTC, exclusive)."""
        return clock.china_day_start(self.end_date + timedelta(days=1))


def today() -> date:
    """Today's date in China."""
    return clock.china_date(clock.now())


def default_campaign(year: int) -> CampaignInfo:
    """The built-in 利剑护蕾·雷霆行动 of a year with seed 001's three phases."""
    phases = tuple(
        PhaseInfo(code, zh, en, date(year, *start), date(year, *end)) for code, zh, en, start, end in DEFAULT_PHASES
    )
    return CampaignInfo(None, f"{DEFAULT_CODE_PREFIX}{year}", f"{DEFAULT_CAMPAIGN_NAME}（{year}年）",
                        phases[0].start_date, phases[-1].end_date, phases)


def _info(session: Session, campaign: Campaign) -> CampaignInfo:
    phases = session.execute(
        select(CampaignPhase).where(col(CampaignPhase.campaign_id) == campaign.id).order_by(col(CampaignPhase.position))
    ).scalars()
    return CampaignInfo(
        campaign.id, campaign.code, campaign.name, campaign.start_date, campaign.end_date,
        tuple(PhaseInfo(p.code, p.name_zh, p.name_en, p.start_date, p.end_date) for p in phases),
        campaign.report_due_rule, campaign.report_due_day,
    )


def list_campaigns(session: Session, *, year: int | None = None) -> list[CampaignInfo]:
    """Stored campaigns, plus the built-in default for the given (or current) year unless stored."""
    stored = [_info(session, c) for c in session.execute(select(Campaign).order_by(col(Campaign.start_date))).scalars()]
    wanted = default_campaign(year or today().year)
    if all(c.code != wanted.code for c in stored):
        stored.append(wanted)
    return sorted(stored, key=lambda c: c.start_date)


def get_campaign(session: Session, campaign_id: int) -> CampaignInfo:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound()
    return _info(session, campaign)


def is_due_rule_copy(campaign: Campaign) -> bool:
    """A unit's own copy of the year's default campaign, stored only to carry its due rule (own_campaign):
    it never becomes the campaign everyone's periods and labels follow."""
    return (campaign.org_unit_id is not None
            and campaign.code == f"{default_campaign(campaign.start_date.year).code}-u{campaign.org_unit_id}")


def current_campaign(session: Session, on: date | None = None) -> CampaignInfo:
    """The stored campaign running on a date (the latest-starting one), else the year's default."""
    day = on or today()
    rows = session.execute(
        select(Campaign)
        .where(col(Campaign.start_date) <= day, col(Campaign.end_date) >= day)
        .order_by(col(Campaign.start_date).desc(), col(Campaign.id).desc())
    ).scalars()
    row = next((c for c in rows if not is_due_rule_copy(c)), None)
    return _info(session, row) if row is not None else default_campaign(day.year)


def _check_phases(start: date, end: date, phases: list[PhaseInfo]) -> None:
    if end < start:
        raise InvalidInput("结束日期早于开始日期", "end_date is before start_date", field="end_date")
    if not phases:
        raise InvalidInput("至少需要一个阶段", "a campaign needs at least one phase", field="phases")
    previous_end: date | None = None
    for i, phase in enumerate(phases):
        if phase.end_date < phase.start_date or phase.start_date < start or phase.end_date > end:
            raise InvalidInput(f"第{i + 1}阶段的日期不在行动期间内", f"phase {i + 1} has dates outside the campaign",
                               field=f"phases[{i}]")
        if previous_end is not None and phase.start_date <= previous_end:
            raise InvalidInput(f"第{i + 1}阶段与上一阶段重叠", f"phase {i + 1} overlaps the previous one",
                               field=f"phases[{i}]")
        previous_end = phase.end_date
    if len({p.code for p in phases}) != len(phases):
        raise InvalidInput("阶段代码重复", "phase codes must be unique", field="phases")


def create_campaign(
    session: Session, principal: Principal, *, code: str, name: str, start_date: date, end_date: date,
    phases: list[PhaseInfo],
) -> CampaignInfo:
    """Store a campaign with its phases (checked: inside the campaign, in order, no overlap)."""
    _check_phases(start_date, end_date, phases)
    if session.execute(select(col(Campaign.id)).where(col(Campaign.code) == code)).first() is not None:
        raise Conflict(f"行动代码 {code} 已存在", f"campaign code {code} already exists", field="code")
    campaign = Campaign(code=code, name=name, start_date=start_date, end_date=end_date,
                        org_unit_id=principal.org_unit_id, created_by=principal.user_id)
    session.add(campaign)
    session.flush()
    assert campaign.id is not None
    for position, phase in enumerate(phases):
        session.add(CampaignPhase(campaign_id=campaign.id, position=position, code=phase.code, name_zh=phase.name_zh,
                                  name_en=phase.name_en, start_date=phase.start_date, end_date=phase.end_date))
    session.flush()
    return _info(session, campaign)


def store_default_campaign(session: Session, principal: Principal, year: int) -> CampaignInfo:
    """Store the built-in default of a year so it can be adjusted later (idempotent)."""
    wanted = default_campaign(year)
    existing = session.execute(select(Campaign).where(col(Campaign.code) == wanted.code)).scalar_one_or_none()
    if existing is not None:
        return _info(session, existing)
    return create_campaign(session, principal, code=wanted.code, name=wanted.name, start_date=wanted.start_date,
                           end_date=wanted.end_date, phases=list(wanted.phases))


def month_period(month: str) -> Period:
    """The calendar month 'YYYY-MM'."""
    match = _MONTH.match(month)
    if match is None:
        raise InvalidInput("月份格式应为 YYYY-MM（2000至2099年）", "month must look like YYYY-MM (years 2000 to 2099)",
                           field="month")
    year, mon = int(match.group(1)), int(match.group(2))
    last = calendar.monthrange(year, mon)[1]
    return Period(date(year, mon, 1), date(year, mon, last), "month", f"{year}年{mon}月", month, f"month:{month}")


def phase_period(campaign: CampaignInfo, phase_code: str) -> Period:
    for phase in campaign.phases:
        if phase.code == phase_code:
            return Period(phase.start_date, phase.end_date, "phase", f"{campaign.name}·{phase.name_zh}",
                          f"{campaign.code} · {phase.name_en}", f"phase:{campaign.code}:{phase.code}")
    raise InvalidInput(f"行动中没有阶段 {phase_code}", f"the campaign has no phase {phase_code}", field="phase")


def resolve_period(
    session: Session,
    *,
    phase: str | None = None,
    campaign_id: int | None = None,
    year: int | None = None,
    month: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> Period:
    """One period from exactly one of: a phase (of a stored campaign, or of a year's default),
    a month, or from/to dates. Nothing at all means the current phase of the current campaign."""
    given = sum(x is not None for x in (phase, month)) + (date_from is not None or date_to is not None)
    if given > 1:
        raise InvalidInput("请只指定阶段、月份或日期范围中的一种", "give only one of phase, month or from/to",
                           field="period")
    if month is not None:
        return month_period(month)
    if date_from is not None or date_to is not None:
        if date_from is None or date_to is None:
            raise InvalidInput("日期范围需要同时给出 from 和 to", "from and to go together", field="from")
        if date_to < date_from or (date_to - date_from).days > MAX_PERIOD_DAYS:
            raise InvalidInput("日期范围无效", f"to must follow from, at most {MAX_PERIOD_DAYS} days", field="to")
        return Period(date_from, date_to, "range", f"{date_from}至{date_to}", f"{date_from} to {date_to}")
    if campaign_id is not None:
        campaign = get_campaign(session, campaign_id)
    elif year is not None:
        campaign = next((c for c in list_campaigns(session, year=year) if c.start_date.year == year),
                        default_campaign(year))
    else:
        campaign = current_campaign(session)
    if phase is not None:
        return phase_period(campaign, phase)
    day = today()
    current = next((p for p in campaign.phases if p.start_date <= day <= p.end_date), campaign.phases[-1])
    return phase_period(campaign, current.code)


# When a month's report is due (a campaign setting). Seed 002 reads "每月17日前报送当月工作进展情况和有关数据
# 报表": the month's own report by the 17th of that month (same_month, the default); following_month
# is the other reading, by the 17th of the month after.
SAME_MONTH = "same_month"
FOLLOWING_MONTH = "following_month"
DUE_RULES = (SAME_MONTH, FOLLOWING_MONTH)
DEFAULT_DUE_RULE = SAME_MONTH
DEFAULT_DUE_DAY = 17


def due_date_for_month(month: str, rule: str = DEFAULT_DUE_RULE, day: int = DEFAULT_DUE_DAY) -> date:
    """The day a month's report is due under a rule: `day` of the month itself (same_month) or of the
    month after (following_month); a day past the month's end is its last day."""
    period = month_period(month)
    first = period.start_date if rule == SAME_MONTH else period.end_date + timedelta(days=1)
    last = calendar.monthrange(first.year, first.month)[1]
    return first.replace(day=min(day, last))


def campaign_of_month(session: Session, month: str, unit: OrgUnit | None = None) -> CampaignInfo:
    """The campaign whose due rule applies to a month's report: the one running on its first day; for a
    unit's report, of the stored campaigns running then that are run by the unit or a unit above it (or by
    no unit), the one run by the nearest unit, else the year's default."""
    day = month_period(month).start_date
    if unit is None:
        return current_campaign(session, day)
    chain = [int(p) for p in unit.path.strip("/").split("/") if p]
    rows = list(session.execute(
        select(Campaign).where(col(Campaign.start_date) <= day, col(Campaign.end_date) >= day,
                               col(Campaign.org_unit_id).is_(None) | col(Campaign.org_unit_id).in_(chain))
    ).scalars())
    if not rows:
        return default_campaign(day.year)
    nearest = max(rows, key=lambda c: (chain.index(c.org_unit_id) if c.org_unit_id in chain else -1,
                                       c.start_date, c.id or 0))
    return _info(session, nearest)


def report_due_date(session: Session, month: str, unit: OrgUnit | None = None) -> date:
    """When the report of a month (of a unit) is due, by the rule of its campaign (default: the seed's
    reading)."""
    campaign = campaign_of_month(session, month, unit)
    return due_date_for_month(month, campaign.report_due_rule, campaign.report_due_day)


def report_month(session: Session, on: date | None = None, unit: OrgUnit | None = None) -> str:
    """The month whose report is being prepared on a China date: the current month under same_month,
    the previous one under following_month (YYYY-MM)."""
    day = on or today()
    rule = (current_campaign(session, day) if unit is None
            else campaign_of_month(session, day.strftime("%Y-%m"), unit)).report_due_rule
    month = day if rule == SAME_MONTH else day.replace(day=1) - timedelta(days=1)
    return month.strftime("%Y-%m")


class DueRuleRefused(Forbidden):
    code = "report-due-rule-county-only"
    title_zh = "只有县级及以上可设置月报报送期限"
    title_en = "Only the county level or above sets the report due rule"


class DueRuleNotYours(Forbidden):
    code = "report-due-rule-jurisdiction"
    title_zh = "只能设置本单位或下级单位开展的行动的报送期限"
    title_en = "Only a campaign run by your unit or a unit inside it can be given a due rule"


def own_campaign(session: Session, principal: Principal, unit: OrgUnit, year: int) -> Campaign:
    """The caller's unit's own stored copy of the year's default campaign (made on first use), so a county's
    due rule applies to its county only: the province's is the default itself (its plain code), a county's
    is coded after it with the unit's id. Reports take the rule of the nearest campaign run at or above
    their unit (campaign_of_month)."""
    wanted = default_campaign(year)
    code = wanted.code if unit.parent_id is None else f"{wanted.code}-u{unit.id}"
    found: Campaign | None = session.execute(select(Campaign).where(
        col(Campaign.org_unit_id) == unit.id, col(Campaign.code).in_([wanted.code, code]))).scalars().first()
    if found is not None:
        return found
    if unit.parent_id is None:
        info = store_default_campaign(session, principal, year)
    else:
        info = create_campaign(session, principal, code=code, name=f"{wanted.name}·{unit.name}"[:120],
                               start_date=wanted.start_date, end_date=wanted.end_date, phases=list(wanted.phases))
    campaign = session.get(Campaign, info.id)
    assert campaign is not None
    if campaign.org_unit_id != unit.id:  # the default was stored by another unit before
        raise DueRuleNotYours()
    return campaign


def set_due_rule(session: Session, principal: Principal, *, rule: str, day: int, campaign_id: int | None,
                 year: int | None) -> CampaignInfo:
    """A county (or higher) coordinator sets when monthly reports are due, on a stored campaign or on
    the year's default (stored first so it can carry the setting); audited."""
    unit = session.get(OrgUnit, principal.org_unit_id)
    if unit is None or OrgLevel(unit.level).depth > OrgLevel.county.depth:
        raise DueRuleRefused()
    if rule not in DUE_RULES:
        raise InvalidInput("报送规则应为 same_month 或 following_month", "rule must be same_month or following_month",
                           field="report_due_rule")
    if campaign_id is not None:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFound()
        owner = session.get(OrgUnit, campaign.org_unit_id) if campaign.org_unit_id is not None else None
        if owner is None or not principal.covers(owner.path):
            raise DueRuleNotYours()
    else:
        campaign = own_campaign(session, principal, unit, year or today().year)
    before = {"report_due_rule": campaign.report_due_rule, "report_due_day": campaign.report_due_day}
    campaign.report_due_rule, campaign.report_due_day = rule, day
    session.add(campaign)
    session.flush()
    audit.record(session, actor=principal, action="campaign.report_due_rule", object_type="campaign",
                 object_id=campaign.id, org_unit_id=principal.org_unit_id,
                 details={"before": before, "after": {"report_due_rule": rule, "report_due_day": day}})
    return _info(session, campaign)
