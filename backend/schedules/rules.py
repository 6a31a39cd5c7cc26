"""What a weekly plan is made of and the rules it must keep, shared by the planner and the checker.

Tiers decide who is planned first: 0 urgent (missed last week, an overdue problem, risk at or above
the high-risk threshold, or an agency's duty already lapsed), 1 must this week (a key venue, or an
agency's duty falling due this week), 2 routine.

Duties (执法职责, issue 18): which agency inspects which type of venue, and how often. With duties a
venue goes only to a team with a member of an agency that has a duty for its type, and a duty falls
due when its interval since that agency's last inspection (or since the venue was listed) ends this
week. Without duties (`PlanRules.duties is None`) every agency inspects everything.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache

URGENT, KEY, ROUTINE = 0, 1, 2


@dataclass(frozen=True)
class PlanVenue:
    id: int
    lon: float
    lat: float
    area_id: int
    area_path: str  # org path of the area ("/1/4/17/"); officers' scopes must cover it
    risk: int = 0
    is_key: bool = False
    has_overdue: bool = False
    carried_over: bool = False
    venue_type: str = ""
    # The local date each agency last inspected it (any agency absent: never), and the date it entered
    # the ledger, from which a duty runs until that agency's first inspection.
    last_by_agency: tuple[tuple[str, date], ...] = ()
    listed_on: date | None = None


@dataclass(frozen=True)
class PlanOfficer:
    id: int
    agency: str
    scope_path: str  # the officer's own org path: they may act only inside it
    weekdays: frozenset[int]  # 0 = Monday


@dataclass(frozen=True)
class Duty:
    """An agency inspects venues of a type at least every `interval_days` days."""

    agency: str
    venue_type: str
    interval_days: int


@dataclass(frozen=True)
class PlanRules:
    daily_capacity: int = 6
    min_team_size: int = 2
    joint_ops_required: int = 1  # joint team-days this week (the monthly rule, spread over the month)
    high_risk_threshold: int = 60
    duties: tuple[Duty, ...] | None = None  # None: no per-county duties, every agency inspects every type


@dataclass
class PlannedTeam:
    day: date
    member_ids: tuple[int, ...]
    area_id: int
    venue_ids: list[int]  # driving order
    legs_m: list[float]  # distance from the previous venue (0 for the first)
    distance_m: float
    is_joint: bool
    label: str = ""


@dataclass
class Plan:
    week_start: date
    teams: list[PlannedTeam] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)  # venue id -> why it is planned

    def planned_ids(self) -> set[int]:
        return {v for t in self.teams for v in t.venue_ids}

    @property
    def total_distance_m(self) -> float:
        return sum(t.distance_m for t in self.teams)


@cache
def _by_type(duties: tuple[Duty, ...]) -> dict[str, tuple[Duty, ...]]:
    out: dict[str, list[Duty]] = {}
    for d in duties:
        out.setdefault(d.venue_type, []).append(d)
    return {t: tuple(ds) for t, ds in out.items()}


def duty_agencies(venue: PlanVenue, rules: PlanRules) -> frozenset[str] | None:
    """The agencies with a duty for the venue's type (None: any agency, no duties configured)."""
    if rules.duties is None:
        return None
    return frozenset(d.agency for d in _by_type(rules.duties).get(venue.venue_type, ()))


def duty_deadlines(venue: PlanVenue, rules: PlanRules) -> dict[str, date | None]:
    """Per agency with a duty for the venue's type, the last day its interval allows (None: never
    inspected by it and no listing date, so already lapsed)."""
    if rules.duties is None:
        return {}
    last = dict(venue.last_by_agency)
    out: dict[str, date | None] = {}
    for d in _by_type(rules.duties).get(venue.venue_type, ()):
        since = last.get(d.agency) or venue.listed_on
        out[d.agency] = None if since is None else since + timedelta(days=d.interval_days)
    return out


def due_agencies(venue: PlanVenue, rules: PlanRules, week_start: date | None,
                 staffed: Collection[str] | None = None) -> frozenset[str]:
    """The agencies whose duty for this venue must be served this week (its deadline falls in the week
    or has passed); with `staffed`, only those of them with an officer in the plan: a duty nobody in
    the jurisdiction can serve is named once by the checker (`duty_unstaffed`), not planned for."""
    if week_start is None:
        return frozenset()
    week_end = week_start + timedelta(days=6)
    return frozenset(a for a, end in duty_deadlines(venue, rules).items()
                     if (end is None or end <= week_end) and (staffed is None or a in staffed))


def lapsed_agencies(venue: PlanVenue, rules: PlanRules, week_start: date | None,
                    staffed: Collection[str] | None = None) -> frozenset[str]:
    """The agencies (with `staffed`: those with an officer in the plan) whose duty for this venue
    lapsed before the week began."""
    if week_start is None:
        return frozenset()
    return frozenset(a for a, end in duty_deadlines(venue, rules).items()
                     if (end is None or end < week_start) and (staffed is None or a in staffed))


def fits(agencies: Collection[str], venue: PlanVenue, rules: PlanRules, week_start: date | None,
         staffed: Collection[str] | None = None) -> bool:
    """Whether a team of these agencies may take the venue: one of them has a duty for its type, and
    when duties fall due this week, one of those agencies is there to serve them."""
    allowed = duty_agencies(venue, rules)
    if allowed is None:
        return True
    needed = due_agencies(venue, rules, week_start, staffed) or allowed
    return any(a in needed for a in agencies)


def tier(venue: PlanVenue, rules: PlanRules, week_start: date | None = None,
         staffed: Collection[str] | None = None) -> int:
    if (venue.carried_over or venue.has_overdue or venue.risk >= rules.high_risk_threshold
            or lapsed_agencies(venue, rules, week_start, staffed)):
        return URGENT
    if venue.is_key or due_agencies(venue, rules, week_start, staffed):
        return KEY
    return ROUTINE


def reason(venue: PlanVenue, rules: PlanRules, week_start: date | None = None,
           staffed: Collection[str] | None = None) -> str:
    """Why a venue is in the plan, most pressing first."""
    if venue.carried_over:
        return "carried_over"
    if venue.has_overdue:
        return "overdue_problem"
    if venue.risk >= rules.high_risk_threshold:
        return "high_risk"
    if lapsed_agencies(venue, rules, week_start, staffed):
        return "duty_lapsed"
    if venue.is_key:
        return "key_venue"
    if due_agencies(venue, rules, week_start, staffed):
        return "duty_due"
    return "routine"


def covers(scope_path: str, area_path: str) -> bool:
    return area_path.startswith(scope_path)


_EARTH_R = 6_371_008.8


def metres(a: PlanVenue, b: PlanVenue) -> float:
    """Great-circle (haversine) distance: straight-line driving estimate between two venues."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_R * math.asin(min(1.0, math.sqrt(h)))
