"""Venue risk score, 0-100, always shown with its parts.

    risk = min(100, type + open + overdue + violations + gap)

    type        weight of the venue type: e-sports hotel 25; hotel, on-demand cinema, internet café,
                bar, KTV and amusement arcade 20; script-game venue 15; off-campus training and school
                shop 10
    open        6 per open problem (open, rectifying or awaiting re-inspection), at most 18
    overdue     15 per problem past its deadline and not rectified, at most 30
    violations  4 per problem found or penalty decided in the last 90 days, at most 16
    gap         days since the last inspection, 1 point per 3 days, at most 20 (never inspected: 20)

A venue at or above the jurisdiction's high-risk threshold (default 60) is planned first.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.venues.models import VenueType

TYPE_WEIGHT: dict[VenueType, int] = {
    VenueType.esports_hotel: 25,
    VenueType.hotel: 20,
    VenueType.on_demand_cinema: 20,
    VenueType.internet_cafe: 20,
    VenueType.bar: 20,
    VenueType.ktv: 20,
    VenueType.training: 10,
    VenueType.school_shop: 10,
    VenueType.amusement_arcade: 20,
    VenueType.script_game: 15,
}
OPEN_EACH, OPEN_MAX = 6, 18
OVERDUE_EACH, OVERDUE_MAX = 15, 30
VIOLATION_EACH, VIOLATION_MAX, VIOLATION_WINDOW_DAYS = 4, 16, 90
GAP_DAYS_PER_POINT, GAP_MAX = 3, 20
DEFAULT_HIGH_RISK = 60


@dataclass(frozen=True)
class RiskPart:
    name: str
    label_zh: str
    label_en: str
    points: int
    basis: str


@dataclass(frozen=True)
class RiskScore:
    total: int
    parts: tuple[RiskPart, ...]

    @property
    def formula(self) -> str:
        return "min(100, " + " + ".join(f"{p.name} {p.points}" for p in self.parts) + ")"


def score(
    venue_type: VenueType,
    *,
    open_problems: int,
    overdue_problems: int,
    recent_violations: int,
    days_since_inspection: int | None,
) -> RiskScore:
    """The score and its five parts (see the module docstring for the formula)."""
    gap = (GAP_MAX if days_since_inspection is None
           else min(GAP_MAX, max(0, days_since_inspection) // GAP_DAYS_PER_POINT))
    parts = (
        RiskPart("type", "场所类型", "Venue type", TYPE_WEIGHT[venue_type], venue_type.value),
        RiskPart("open", "未销号问题", "Open problems", min(OPEN_MAX, OPEN_EACH * open_problems),
                 f"{open_problems} x {OPEN_EACH}, max {OPEN_MAX}"),
        RiskPart("overdue", "逾期问题", "Overdue problems", min(OVERDUE_MAX, OVERDUE_EACH * overdue_problems),
                 f"{overdue_problems} x {OVERDUE_EACH}, max {OVERDUE_MAX}"),
        RiskPart("violations", "近90天违规", "Violations in 90 days",
                 min(VIOLATION_MAX, VIOLATION_EACH * recent_violations),
                 f"{recent_violations} x {VIOLATION_EACH}, max {VIOLATION_MAX}"),
        RiskPart("gap", "距上次检查", "Since last inspection", gap,
                 "never inspected" if days_since_inspection is None
                 else f"{days_since_inspection} days / {GAP_DAYS_PER_POINT}, max {GAP_MAX}"),
    )
    return RiskScore(min(100, sum(p.points for p in parts)), parts)
