"""The constraint checker: verifies any weekly plan against the rules and names every violation.

It recomputes everything from the inputs (availability, jurisdictions, agencies, distances) and
trusts nothing the plan claims about itself, so it can judge plans from any source.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from backend.accounts.grants import AGENCY_ZH
from backend.accounts.models import Agency
from backend.schedules.routing import EPSILON_M, improving_move, path_length
from backend.schedules.rules import (
    Plan,
    PlanOfficer,
    PlanRules,
    PlanVenue,
    covers,
    due_agencies,
    duty_agencies,
    duty_deadlines,
    fits,
    tier,
)
from backend.venues.models import VenueType


@dataclass(frozen=True)
class Violation:
    code: str
    message_zh: str
    message_en: str
    refs: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _agency_zh(code: str) -> str:
    try:
        return AGENCY_ZH[Agency(code)]
    except ValueError:
        return code


def _type_zh(code: str) -> str:
    try:
        return VenueType(code).zh
    except ValueError:
        return code


CODES = (
    "day_outside_week", "officer_unknown", "officer_unavailable", "officer_double_booked", "team_too_small",
    "team_outside_jurisdiction", "capacity_exceeded", "team_area_mixed", "venue_unknown", "venue_planned_twice",
    "key_venue_unplanned", "joint_flag_wrong", "joint_ops_short", "priority_inversion", "route_distance_mismatch",
    "route_improvable", "venue_without_duty", "duty_frequency_missed", "duty_unstaffed",
    "venue_type_without_duty",
)


def teamable_agencies(officers: Sequence[PlanOfficer], min_team_size: int) -> frozenset[str]:
    """The agencies with an officer who works on a day when enough officers work to make a team."""
    out: set[str] = set()
    for day in range(7):
        working = [o for o in officers if day in o.weekdays]
        if len(working) >= min_team_size:
            out.update(o.agency for o in working)
    return frozenset(out)


def check(plan: Plan, venues: Sequence[PlanVenue], officers: Sequence[PlanOfficer], rules: PlanRules
          ) -> list[Violation]:
    """Every violation of the rules in `plan`, empty when the plan is sound."""
    out: list[Violation] = []
    by_venue = {v.id: v for v in venues}
    by_officer = {o.id: o for o in officers}
    week_end = plan.week_start + timedelta(days=6)
    week = plan.week_start
    seen_venue: dict[int, str] = {}
    team_agencies: dict[int, frozenset[str]] = {}  # venue -> the agencies of the team planned to it
    booked: dict[tuple[Any, int], str] = {}
    joint_days = 0

    for team in plan.teams:
        label = team.label or f"{team.day.isoformat()}#{team.area_id}"
        ref = {"team": label, "day": team.day.isoformat()}
        if not (plan.week_start <= team.day <= week_end):
            out.append(Violation("day_outside_week", f"{label} 的日期不在本周", f"{label} is outside the week", ref))
        members = [by_officer.get(m) for m in team.member_ids]
        for mid, officer in zip(team.member_ids, members, strict=True):
            if officer is None:
                out.append(Violation("officer_unknown", f"{label} 的成员 {mid} 不是可排班人员",
                                     f"{label}: member {mid} is not a plannable officer", {**ref, "officer": mid}))
                continue
            if team.day.weekday() not in officer.weekdays:
                out.append(Violation("officer_unavailable", f"人员 {mid} 在 {team.day} 不可排班",
                                     f"officer {mid} is not available on {team.day}", {**ref, "officer": mid}))
            key = (team.day, mid)
            if key in booked:
                out.append(Violation("officer_double_booked", f"人员 {mid} 在 {team.day} 同时属于两个小组",
                                     f"officer {mid} is in two teams on {team.day}",
                                     {**ref, "officer": mid, "other_team": booked[key]}))
            booked[key] = label
        known = [o for o in members if o is not None]
        if len(team.member_ids) < rules.min_team_size:
            out.append(Violation("team_too_small",
                                 f"{label} 只有 {len(team.member_ids)} 人，少于 {rules.min_team_size} 人",
                                 f"{label} has {len(team.member_ids)} members, fewer than {rules.min_team_size}", ref))
        if len(team.venue_ids) > rules.daily_capacity:
            out.append(Violation("capacity_exceeded", f"{label} 安排 {len(team.venue_ids)} 处，超过每日上限 "
                                 f"{rules.daily_capacity}", f"{label} has {len(team.venue_ids)} venues, over the "
                                 f"daily capacity {rules.daily_capacity}", ref))
        agencies = frozenset(o.agency for o in known)
        if team.is_joint != (len(agencies) >= 2):
            out.append(Violation("joint_flag_wrong", f"{label} 的联合执法标记与成员单位数不符",
                                 f"{label}: joint flag disagrees with its {len(agencies)} agencies", ref))
        if len(agencies) >= 2 and team.venue_ids:
            joint_days += 1
        stops: list[PlanVenue] = []
        for vid in team.venue_ids:
            venue = by_venue.get(vid)
            if venue is None:
                out.append(Violation("venue_unknown", f"场所 {vid} 不在候选范围内", f"venue {vid} is not a candidate",
                                     {**ref, "venue": vid}))
                continue
            stops.append(venue)
            allowed = duty_agencies(venue, rules)
            if allowed is not None and agencies.isdisjoint(allowed):
                out.append(Violation("venue_without_duty",
                                     f"{label} 的成员单位均无检查场所 {vid}（{_type_zh(venue.venue_type)}）的职责",
                                     f"{label}: no member's agency has a duty for venue {vid} ({venue.venue_type})",
                                     {**ref, "venue": vid, "venue_type": venue.venue_type}))
            team_agencies.setdefault(vid, frozenset(agencies))
            if vid in seen_venue:
                out.append(Violation("venue_planned_twice", f"场所 {vid} 本周被安排两次",
                                     f"venue {vid} is planned twice",
                                     {**ref, "venue": vid, "other_team": seen_venue[vid]}))
            seen_venue[vid] = label
            if venue.area_id != team.area_id:
                out.append(Violation("team_area_mixed", f"{label} 跨片区：场所 {vid} 不在片区 {team.area_id}",
                                     f"{label} leaves its area: venue {vid} is not in area {team.area_id}",
                                     {**ref, "venue": vid}))
            for o in known:
                if not covers(o.scope_path, venue.area_path):
                    out.append(Violation("team_outside_jurisdiction", f"人员 {o.id} 无权检查场所 {vid}（不在其辖区）",
                                         f"officer {o.id} has no jurisdiction over venue {vid}",
                                         {**ref, "venue": vid, "officer": o.id}))
        if len(stops) == len(team.venue_ids):
            actual = path_length(stops)
            if abs(actual - team.distance_m) > EPSILON_M + actual * 0.001:
                out.append(Violation("route_distance_mismatch", f"{label} 路线里程应为 {actual:.0f} 米，计划写 "
                                     f"{team.distance_m:.0f} 米", f"{label}: route is {actual:.0f} m, plan says "
                                     f"{team.distance_m:.0f} m", ref))
            move = improving_move(stops)
            if move is not None:
                out.append(Violation("route_improvable", f"{label} 的路线可缩短 {move[2]:.0f} 米（2-opt）",
                                     f"{label}: reversing stops {move[0]}..{move[1]} saves {move[2]:.0f} m", ref))

    planned = set(seen_venue)
    for v in venues:
        if v.is_key and v.id not in planned:
            out.append(Violation("key_venue_unplanned", f"重点场所 {v.id} 本周未安排检查",
                                 f"key venue {v.id} is not planned this week", {"venue": v.id}))
    if joint_days < rules.joint_ops_required:
        out.append(Violation("joint_ops_short",
                             f"联合执法 {joint_days} 次，少于本周应安排的 {rules.joint_ops_required} 次",
                             f"{joint_days} joint operations planned, {rules.joint_ops_required} required this week",
                             {"planned": joint_days, "required": rules.joint_ops_required}))
    # An agency none of whose officers can be in a team this week (none at all, or all of them working
    # only on days too few officers work to make a team) is named once with the number of venues
    # waiting for it, not once per venue: the cause is the same for all of them.
    staffed = frozenset(o.agency for o in officers)
    serving = teamable_agencies(officers, rules.min_team_size)
    unstaffed: dict[str, int] = defaultdict(int)
    for v in venues:
        for agency in due_agencies(v, rules, week) - serving:
            unstaffed[agency] += 1
        due = due_agencies(v, rules, week, serving)
        if not due:
            continue
        present = team_agencies.get(v.id, frozenset())
        deadlines = duty_deadlines(v, rules)
        for agency in sorted(due - present):
            end = deadlines.get(agency)
            lapsed = end is None or end < week
            out.append(Violation(
                "duty_frequency_missed",
                f"场所 {v.id} 的{_agency_zh(agency)}检查职责{'已逾期' if lapsed else f'于 {end} 到期'}，"
                "本周未安排该单位人员检查",
                f"venue {v.id}: the {agency} duty is due ({'lapsed' if lapsed else end}) and no {agency} officer is "
                "planned to it this week",
                {"venue": v.id, "agency": agency, "deadline": end.isoformat() if end else None}))
    # Venues of a type no agency of the county's list inspects: never planned, so named once per type
    # (a county list that forgot a type would otherwise drop its venues from every plan in silence).
    if rules.duties is not None:
        covered = {d.venue_type for d in rules.duties}
        uncovered: dict[str, int] = defaultdict(int)
        for v in venues:
            if v.venue_type and v.venue_type not in covered:
                uncovered[v.venue_type] += 1
        for venue_type, count in sorted(uncovered.items()):
            out.append(Violation(
                "venue_type_without_duty", f"{count} 处{_type_zh(venue_type)}没有任何单位负责检查，请补充执法职责",
                f"{count} venues of type {venue_type} have no agency with a duty to inspect them",
                {"venue_type": venue_type, "venues": count}))
    for agency, count in sorted(unstaffed.items()):
        out.append(Violation(
            "duty_unstaffed", f"{_agency_zh(agency)}本周有 {count} 处场所的检查职责到期，但本周没有该单位人员可排班",
            f"{count} venues have a {agency} duty due this week, and no {agency} officer is planned this week",
            {"agency": agency, "venues": count}))
    # Something more pressing left out in an area while a team that could take it there was given less.
    tiers = {v.id: tier(v, rules, week, staffed) for v in venues}
    worst_by_area: dict[int, list[tuple[int, frozenset[str], int]]] = defaultdict(list)
    for team in plan.teams:
        present = frozenset(by_officer[m].agency for m in team.member_ids if m in by_officer)
        taken = [vid for vid in team.venue_ids if vid in by_venue]
        if taken:
            worst = max(taken, key=lambda vid: (tiers[vid], vid))
            worst_by_area[team.area_id].append((tiers[worst], present, worst))
    for v in sorted(venues, key=lambda v: (tiers[v.id], v.id)):
        if v.id in planned:
            continue
        inverted = next(((worst, present) for t, present, worst in sorted(worst_by_area.get(v.area_id, []),
                                                                            key=lambda x: (-x[0], x[2]))
                         if t > tiers[v.id] and fits(present, v, rules, week, staffed)), None)
        if inverted is None:
            continue
        out.append(Violation(
            "priority_inversion",
            f"片区 {v.area_id}：场所 {v.id} 更紧迫却未安排，而场所 {inverted[0]} 已安排",
            f"area {v.area_id}: venue {v.id} is more pressing but left out while venue {inverted[0]} is planned",
            {"area": v.area_id, "left_out": v.id, "planned": inverted[0]}))
        # One per area, as before: the most pressing venue left out names the inversion.
        worst_by_area.pop(v.area_id, None)
    return out
