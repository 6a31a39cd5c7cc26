"""The weekly joint-enforcement plan generator. Pure: data in, plan out (no database), so the
checker, the property tests and the benchmark drive it directly.

1. Candidates are ordered per area (village by default) by tier (urgent, key, routine) then risk.
2. Each day, the officers available that day form teams of at least `min_team_size` from officers
   whose jurisdictions nest, dealt round-robin across agencies so that as many teams as possible
   draw on two or more agencies (joint operations).
3. Team-days are filled narrowest jurisdiction first, then in day order, joint teams first (so
   officers who may go anywhere fill what local teams cannot): each takes the area, within its members'
   jurisdiction, whose next candidate is the most pressing, and up to `daily_capacity` venues of
   that area in order. A team's day therefore stays in one area and nothing of lower tier is
   planned in an area while something of higher tier there is left out.
4. If the week has fewer joint team-days than required, idle joint teams take over the work of
   single-agency teams, then idle officers of another agency join working single-agency teams, then
   two idle teams of different agencies on another day join up and take a single-agency team's day.
5. Each team's venues are put in driving order (nearest neighbour from every start + 2-opt).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from backend.schedules.routing import best_route
from backend.schedules.rules import Plan, PlannedTeam, PlanOfficer, PlanRules, PlanVenue, covers, reason, tier


@dataclass
class _Team:
    day: date
    members: list[PlanOfficer]
    scope: str

    @property
    def joint(self) -> bool:
        return len({m.agency for m in self.members}) >= 2


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
    for v in venues:
        queues[v.area_id].append(v)
        area_path[v.area_id] = v.area_path
    for queue in queues.values():
        queue.sort(key=lambda v: (tier(v, rules), -v.risk, v.id))
    heads = dict.fromkeys(queues, 0)

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
        best_area: int | None = None
        best_key: tuple[int, int, int] | None = None
        for area, queue in queues.items():
            h = heads[area]
            if h >= len(queue) or not covers(team.scope, area_path[area]):
                continue
            v = queue[h]
            key = (tier(v, rules), -v.risk, area)
            if best_key is None or key < best_key:
                best_area, best_key = area, key
        if best_area is None:
            continue
        h = heads[best_area]
        taken = queues[best_area][h:h + rules.daily_capacity]
        heads[best_area] = h + len(taken)
        work[index] = (best_area, taken)

    _raise_joint_ops(slots, work, area_path, rules.joint_ops_required)

    for index, (area, taken) in sorted(work.items(), key=lambda kv: (slots[kv[0]].day, kv[0])):
        team = slots[index]
        ordered, legs = best_route(taken)
        plan.teams.append(PlannedTeam(
            day=team.day, member_ids=tuple(sorted(m.id for m in team.members)), area_id=area,
            venue_ids=[v.id for v in ordered], legs_m=[round(x, 1) for x in legs],
            distance_m=round(sum(legs), 1), is_joint=team.joint,
        ))
        for v in taken:
            plan.reasons[v.id] = reason(v, rules)
    per_day: dict[date, int] = defaultdict(int)
    for t in plan.teams:
        per_day[t.day] += 1
        t.label = f"{t.day.strftime('%a')}-{per_day[t.day]}"
    return plan


def _raise_joint_ops(slots: list[_Team], work: dict[int, tuple[int, list[PlanVenue]]], area_path: dict[int, str],
                     required: int) -> None:
    """Hand single-agency teams' days to idle joint teams until enough joint operations are planned."""
    joint_busy = sum(1 for i in work if slots[i].joint)
    if joint_busy >= required:
        return
    idle_joint = [i for i, t in enumerate(slots) if t.joint and i not in work]
    singles = sorted((i for i in work if not slots[i].joint), key=lambda i: (slots[i].day, i))
    for single in singles:
        if joint_busy >= required or not idle_joint:
            return
        area = work[single][0]
        same_day = [j for j in idle_joint if slots[j].day == slots[single].day]
        candidates = same_day + [j for j in idle_joint if j not in same_day]
        chosen = next((j for j in candidates if covers(slots[j].scope, area_path[area])), None)
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
        team, area = slots[single], work[single][0]
        agencies = {m.agency for m in team.members}
        helper = next((j for j in idle if slots[j].day == team.day and covers(slots[j].scope, area_path[area])
                       and {m.agency for m in slots[j].members} - agencies), None)
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
        area = work[single][0]
        able = [j for j in idle if slots[j].members and covers(slots[j].scope, area_path[area])]
        pair = next(((a, b) for a in able for b in able if a < b and slots[a].day == slots[b].day
                     and len({m.agency for m in slots[a].members + slots[b].members}) >= 2), None)
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
