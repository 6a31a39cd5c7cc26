"""The weekly joint-enforcement plan generator. Pure: data in, plan out (no database), so the
checker, the property tests and the benchmark drive it directly.

1. Candidates are ordered per area (village by default) by tier (urgent, key, routine) then risk.
2. Each day, the officers available that day form teams of at least `min_team_size` from officers
   whose jurisdictions nest, dealt round-robin across agencies so that as many teams as possible
   draw on two or more agencies (joint operations).
3. Team-days are filled narrowest jurisdiction first, then in day order, joint teams first (so
   officers who may go anywhere fill what local teams cannot): each takes the area, within its members'
   jurisdiction, whose next candidate it may take is the most pressing, and up to `daily_capacity`
   venues of that area it may take, in order. With per-county duties a team may take a venue only
   when a member's agency has a duty for its type (and, when duties fall due this week, one of those
   agencies); within a tier it takes first the venues whose due duties it serves best. A team's day
   therefore stays in one area and nothing of lower tier is planned for it while something of higher
   tier it could take is left out there.
4. If the week has fewer joint team-days than required, idle joint teams take over the work of
   single-agency teams (only work they may take), then idle officers of another agency join working
   single-agency teams, then two idle teams of different agencies on another day join up and take a
   single-agency team's day.
5. Each team's venues are put in driving order (nearest neighbour from every start + 2-opt).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from backend.schedules.routing import best_route
from backend.schedules.rules import (
    Plan,
    PlannedTeam,
    PlanOfficer,
    PlanRules,
    PlanVenue,
    covers,
    due_agencies,
    duty_agencies,
    reason,
    tier,
)


@dataclass
class _Team:
    day: date
    members: list[PlanOfficer]
    scope: str

    @property
    def joint(self) -> bool:
        return len({m.agency for m in self.members}) >= 2

    @property
    def agencies(self) -> frozenset[str]:
        return frozenset(m.agency for m in self.members)


def _deal(pool: list[PlanOfficer], size: int, want_joint: int = 0) -> list[list[PlanOfficer]]:
    """Split a pool into teams of at least `size`, spreading agencies across teams. When teams of
    one would leave the week short of joint operations, up to `want_joint` cross-agency pairs are
    formed first."""
    by_agency: dict[str, list[PlanOfficer]] = defaultdict(list)
    for o in sorted(pool, key=lambda o: o.id):
        by_agency[o.agency].append(o)
    pairs: list[list[PlanOfficer]] = []
    if size < 2:
        while len(pairs) < want_joint:
            stocked = sorted((a for a in by_agency if by_agency[a]), key=lambda a: (-len(by_agency[a]), a))
            if len(stocked) < 2:
                break
            pairs.append([by_agency[stocked[0]].pop(0), by_agency[stocked[1]].pop(0)])
    rest = [o for _, group in sorted(by_agency.items(), key=lambda kv: (-len(kv[1]), kv[0])) for o in group]
    count = len(rest) // size
    if count == 0:
        if pairs and rest:
            pairs[-1].extend(rest)
        return pairs
    teams: list[list[PlanOfficer]] = [[] for _ in range(count)]
    for i, officer in enumerate(rest):
        teams[i % count].append(officer)
    return pairs + teams


def form_teams(day: date, officers: Sequence[PlanOfficer], min_size: int, want_joint: int = 0,
               useful: Callable[[str], bool] = lambda _: True) -> list[_Team]:
    """The teams of one day. Officers only team with others whose jurisdictions nest; a pool too
    small on its own borrows from enclosing jurisdictions the officers they have to spare."""
    pools: dict[str, list[PlanOfficer]] = defaultdict(list)
    for o in officers:
        if day.weekday() in o.weekdays:
            pools[o.scope_path].append(o)
    teams: list[_Team] = []
    for path in sorted(pools, key=lambda p: (-p.count("/"), p)):
        pool = pools[path]
        if 0 < len(pool) < min_size:
            # Borrow only officers an enclosing jurisdiction could not put in a full team itself.
            ancestors = sorted((p for p in pools if p != path and path.startswith(p) and pools[p]),
                               key=lambda p: -len(p))
            spare = {a: len(pools[a]) % min_size for a in ancestors}
            if sum(spare.values()) >= min_size - len(pool):
                for anc in ancestors:
                    donors = pools[anc]
                    while spare[anc] and len(pool) < min_size:
                        counts: dict[str, int] = defaultdict(int)
                        for o in donors:
                            counts[o.agency] += 1
                        pick = max(donors, key=lambda o: (counts[o.agency], -o.id))
                        donors.remove(pick)
                        spare[anc] -= 1
                        pool.append(pick)
        formed = [_Team(day, members, path) for members in _deal(pool, min_size, want_joint if useful(path) else 0)]
        want_joint -= sum(1 for t in formed if t.joint)
        teams.extend(formed)
        pools[path] = []
    return teams


def plan_week(
    week_start: date,
    venues: Sequence[PlanVenue],
    officers: Sequence[PlanOfficer],
    rules: PlanRules,
) -> Plan:
    """A week's plan for these candidate venues and officers under these rules."""
    plan = Plan(week_start=week_start)
    queues: dict[int, list[PlanVenue]] = defaultdict(list)
    area_path: dict[int, str] = {}
    staffed = frozenset(o.agency for o in officers)
    tiers = {v.id: tier(v, rules, week_start, staffed) for v in venues}
    due = {v.id: due_agencies(v, rules, week_start, staffed) for v in venues}
    # Who may take a venue (rules.fits, precomputed): None is anyone.
    needed: dict[int, frozenset[str] | None] = {}
    for v in venues:
        allowed = duty_agencies(v, rules)
        needed[v.id] = None if allowed is None else (due[v.id] or allowed)
        queues[v.area_id].append(v)
        area_path[v.area_id] = v.area_path
    for queue in queues.values():
        queue.sort(key=lambda v: (tiers[v.id], -v.risk, v.id))

    def ok(agencies: frozenset[str], v: PlanVenue) -> bool:
        need = needed[v.id]
        return need is None or not need.isdisjoint(agencies)

    days = [week_start + timedelta(days=i) for i in range(7)]
    all_teams: list[_Team] = []
    for d in days:
        joint_so_far = sum(1 for t in all_teams if t.joint)
        all_teams.extend(form_teams(d, officers, rules.min_team_size, rules.joint_ops_required - joint_so_far,
                                    lambda scope: any(covers(scope, p) for p in area_path.values())))
    # Teams with the narrowest jurisdiction go first; teams that may go anywhere fill the gaps after.
    slots = sorted(all_teams, key=lambda t: (-t.scope.count("/"), t.day, not t.joint))
    work: dict[int, tuple[int, list[PlanVenue]]] = {}  # slot index -> (area, venues)
    for index, team in enumerate(slots):
        agencies = team.agencies
        best_area: int | None = None
        best_key: tuple[int, int, int] | None = None
        for area, queue in queues.items():
            if not queue or not covers(team.scope, area_path[area]):
                continue
            head = next((v for v in queue if ok(agencies, v)), None)
            if head is None:
                continue
            key = (tiers[head.id], -head.risk, area)
            if best_key is None or key < best_key:
                best_area, best_key = area, key
        if best_area is None:
            continue
        # Within a tier, the venues whose due duties this team serves best come first.
        taken = heapq.nsmallest(rules.daily_capacity, (v for v in queues[best_area] if ok(agencies, v)),
                                key=lambda v: (tiers[v.id], -len(due[v.id] & agencies), -v.risk, v.id))
        gone = {v.id for v in taken}
        queues[best_area] = [v for v in queues[best_area] if v.id not in gone]
        work[index] = (best_area, taken)

    def acceptable(agencies: frozenset[str], area: int, taken: list[PlanVenue]) -> bool:
        """Whether a team of these agencies may hold this day's work: it may take every venue, and
        nothing more pressing it could take is left out in the area."""
        if not all(ok(agencies, v) for v in taken):
            return False
        worst = max(tiers[v.id] for v in taken)
        return not any(tiers[v.id] < worst and ok(agencies, v) for v in queues[area])

    _raise_joint_ops(slots, work, area_path, rules.joint_ops_required, acceptable)

    for index, (area, taken) in sorted(work.items(), key=lambda kv: (slots[kv[0]].day, kv[0])):
        team = slots[index]
        ordered, legs = best_route(taken)
        plan.teams.append(PlannedTeam(
            day=team.day, member_ids=tuple(sorted(m.id for m in team.members)), area_id=area,
            venue_ids=[v.id for v in ordered], legs_m=[round(x, 1) for x in legs],
            distance_m=round(sum(legs), 1), is_joint=team.joint,
        ))
        for v in taken:
            plan.reasons[v.id] = reason(v, rules, week_start, staffed)
    per_day: dict[date, int] = defaultdict(int)
    for t in plan.teams:
        per_day[t.day] += 1
        t.label = f"{t.day.strftime('%a')}-{per_day[t.day]}"
    return plan


Acceptable = Callable[[frozenset[str], int, list[PlanVenue]], bool]


def _agencies(*teams: _Team) -> frozenset[str]:
    return frozenset(m.agency for t in teams for m in t.members)


def _raise_joint_ops(slots: list[_Team], work: dict[int, tuple[int, list[PlanVenue]]], area_path: dict[int, str],
                     required: int, acceptable: Acceptable) -> None:
    """Hand single-agency teams' days to idle joint teams until enough joint operations are planned
    (only to teams that may take that work: duties, and nothing more pressing left out)."""
    joint_busy = sum(1 for i in work if slots[i].joint)
    if joint_busy >= required:
        return
    idle_joint = [i for i, t in enumerate(slots) if t.joint and i not in work]
    singles = sorted((i for i in work if not slots[i].joint), key=lambda i: (slots[i].day, i))
    for single in singles:
        if joint_busy >= required or not idle_joint:
            return
        area, taken = work[single]
        same_day = [j for j in idle_joint if slots[j].day == slots[single].day]
        candidates = same_day + [j for j in idle_joint if j not in same_day]
        chosen = next((j for j in candidates if covers(slots[j].scope, area_path[area])
                       and acceptable(_agencies(slots[j]), area, taken)), None)
        if chosen is None:
            continue
        work[chosen] = work.pop(single)
        idle_joint.remove(chosen)
        joint_busy += 1
    # Still short: an idle team of another agency joins a working single-agency team that day.
    idle = [i for i, t in enumerate(slots) if i not in work]
    for single in sorted((i for i in work if not slots[i].joint), key=lambda i: (slots[i].day, i)):
        if joint_busy >= required:
            return
        team, (area, taken) = slots[single], work[single]
        agencies = _agencies(team)
        helper = next((j for j in idle if slots[j].day == team.day and covers(slots[j].scope, area_path[area])
                       and _agencies(slots[j]) - agencies
                       and acceptable(_agencies(team, slots[j]), area, taken)), None)
        if helper is None:
            continue
        team.members.extend(slots[helper].members)
        if len(slots[helper].scope) > len(team.scope):
            team.scope = slots[helper].scope
        slots[helper].members = []
        idle.remove(helper)
        joint_busy += 1
    # Still short: two idle teams of different agencies on another day join up and take the work.
    for single in sorted((i for i in work if not slots[i].joint), key=lambda i: (slots[i].day, i)):
        if joint_busy >= required:
            return
        area, taken = work[single]
        able = [j for j in idle if slots[j].members and covers(slots[j].scope, area_path[area])]
        pair = next(((a, b) for a in able for b in able if a < b and slots[a].day == slots[b].day
                     and len(_agencies(slots[a], slots[b])) >= 2
                     and acceptable(_agencies(slots[a], slots[b]), area, taken)), None)
        if pair is None:
            continue
        a, b = pair
        slots[a].members.extend(slots[b].members)
        if len(slots[b].scope) > len(slots[a].scope):
            slots[a].scope = slots[b].scope
        slots[b].members = []
        idle.remove(a)
        idle.remove(b)
        work[a] = work.pop(single)
        idle.append(single)
        joint_busy += 1
