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

from backend.schedules.routing import EPSILON_M, improving_move, path_length
from backend.schedules.rules import Plan, PlanOfficer, PlanRules, PlanVenue, covers, tier


@dataclass(frozen=True)
class Violation:
    code: str
    message_zh: str
    message_en: str
    refs: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


CODES = (
    "day_outside_week", "officer_unknown", "officer_unavailable", "officer_double_booked", "team_too_small",
    "team_outside_jurisdiction", "capacity_exceeded", "team_area_mixed", "venue_unknown", "venue_planned_twice",
    "key_venue_unplanned", "joint_flag_wrong", "joint_ops_short", "priority_inversion", "route_distance_mismatch",
    "route_improvable",
)


def check(plan: Plan, venues: Sequence[PlanVenue], officers: Sequence[PlanOfficer], rules: PlanRules
          ) -> list[Violation]:
    """Every violation of the rules in `plan`, empty when the plan is sound."""
    out: list[Violation] = []
    by_venue = {v.id: v for v in venues}
    by_officer = {o.id: o for o in officers}
    week_end = plan.week_start + timedelta(days=6)
    seen_venue: dict[int, str] = {}
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
        agencies = {o.agency for o in known}
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
    by_area: dict[int, list[PlanVenue]] = defaultdict(list)
    for v in venues:
        by_area[v.area_id].append(v)
    for area, in_area in by_area.items():
        left = [v for v in in_area if v.id not in planned]
        taken = [v for v in in_area if v.id in planned]
        if not left or not taken:
            continue
        most_pressing_left = min(left, key=lambda v: (tier(v, rules), v.id))
        least_pressing_taken = max(taken, key=lambda v: (tier(v, rules), v.id))
        if tier(most_pressing_left, rules) < tier(least_pressing_taken, rules):
            out.append(Violation(
                "priority_inversion",
                f"片区 {area}：场所 {most_pressing_left.id} 更紧迫却未安排，而场所 {least_pressing_taken.id} 已安排",
                f"area {area}: venue {most_pressing_left.id} is more pressing but left out while venue "
                f"{least_pressing_taken.id} is planned",
                {"area": area, "left_out": most_pressing_left.id, "planned": least_pressing_taken.id}))
    return out
