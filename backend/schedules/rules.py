"""What a weekly plan is made of and the rules it must keep, shared by the planner and the checker.

Tiers decide who is planned first: 0 urgent (missed last week, an overdue problem, or risk at or
above the high-risk threshold), 1 key venue (must be visited every week), 2 routine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

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


@dataclass(frozen=True)
class PlanOfficer:
    id: int
    agency: str
    scope_path: str  # the officer's own org path: they may act only inside it
    weekdays: frozenset[int]  # 0 = Monday


@dataclass(frozen=True)
class PlanRules:
    daily_capacity: int = 6
    min_team_size: int = 2
    joint_ops_required: int = 1  # joint team-days this week (the monthly rule, spread over the month)
    high_risk_threshold: int = 60


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


def tier(venue: PlanVenue, rules: PlanRules) -> int:
    if venue.carried_over or venue.has_overdue or venue.risk >= rules.high_risk_threshold:
        return URGENT
    if venue.is_key:
        return KEY
    return ROUTINE


def reason(venue: PlanVenue, rules: PlanRules) -> str:
    """Why a venue is in the plan, most pressing first."""
    if venue.carried_over:
        return "carried_over"
    if venue.has_overdue:
        return "overdue_problem"
    if venue.risk >= rules.high_risk_threshold:
        return "high_risk"
    if venue.is_key:
        return "key_venue"
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
