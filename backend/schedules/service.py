"""Weekly joint-enforcement plans: inputs from the database, the planner and checker, storage,
publishing, the officers' calendars and the weekly compliance view."""

from __future__ import annotations

import hashlib
import hmac
import math
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any

from sqlalchemy import delete, func, select
from sqlmodel import Session, col

from backend.accounts import grants
from backend.accounts import service as accounts
from backend.accounts.models import Agency, User, UserRole
from backend.accounts.permissions import Role
from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.core import clock, workbook
from backend.core import text as texts
from backend.core.clock import next_monday
from backend.core.db import dialect_insert
from backend.core.errors import Conflict, InvalidInput, NotFound
from backend.core.secrets import Purpose, purpose_key
from backend.inspections.models import Inspection, InspectionInspector
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.schedules import checker, duties, planner
from backend.schedules.models import (
    CalendarFeed,
    OfficerAvailability,
    PlanStatus,
    SchedulePlan,
    ScheduleRule,
    ScheduleTeam,
    ScheduleTeamMember,
    ScheduleVisit,
)
from backend.schedules.rules import KEY, URGENT, Plan, PlannedTeam, PlanOfficer, PlanRules, PlanVenue, tier
from backend.schedules.schemas import AvailabilityPublic, RulesIn, RulesPublic
from backend.venues import service as venues
from backend.venues.models import Venue, VenueStatus

OFFICER_ROLES = (Role.police.value, Role.market_officer.value)
DEFAULT_WEEKDAYS = frozenset(range(5))


class PlanAlreadyPublished(Conflict):
    code = "plan-already-published"
    title_zh = "该周计划已发布"
    title_en = "The plan for this week is already published"


class NotAMonday(InvalidInput):
    code = "week-must-start-on-monday"
    title_zh = "周计划须从周一开始"
    title_en = "A weekly plan starts on a Monday"


# ---------------------------------------------------------------- rules and availability


def rules_for(session: Session, unit: OrgUnit) -> tuple[ScheduleRule, int | None]:
    """The rules of the nearest unit up the tree that has any (or the defaults), and that unit."""
    ids = [int(p) for p in unit.path.strip("/").split("/") if p]
    rows = {r.org_unit_id: r for r in session.execute(
        select(ScheduleRule).where(col(ScheduleRule.org_unit_id).in_(ids))).scalars()}
    for uid in reversed(ids):
        if uid in rows:
            return rows[uid], uid
    assert unit.id is not None
    return ScheduleRule(org_unit_id=unit.id), None


def rules_public(rule: ScheduleRule, unit_id: int, inherited: int | None) -> RulesPublic:
    return RulesPublic(org_unit_id=unit_id, inherited_from_unit_id=inherited if inherited != unit_id else None,
                       joint_ops_per_month=rule.joint_ops_per_month, daily_capacity=rule.daily_capacity,
                       min_team_size=rule.min_team_size, high_risk_threshold=rule.high_risk_threshold,
                       routine_interval_days=rule.routine_interval_days, area_level=OrgLevel(rule.area_level),
                       visit_minutes=rule.visit_minutes, day_start_hour=rule.day_start_hour)


def get_rules(session: Session, principal: Principal, unit_id: int) -> RulesPublic:
    unit = orgunits.get_visible_unit(session, principal, unit_id)
    rule, inherited = rules_for(session, unit)
    return rules_public(rule, unit_id, inherited)


def set_rules(session: Session, principal: Principal, unit_id: int, data: RulesIn) -> RulesPublic:
    """Store the planning rules of a jurisdiction."""
    unit = orgunits.get_visible_unit(session, principal, unit_id)
    rule = session.get(ScheduleRule, unit_id) or ScheduleRule(org_unit_id=unit_id)
    for name, value in data.model_dump().items():
        setattr(rule, name, value.value if name == "area_level" else value)
    rule.updated_at = clock.now()
    session.add(rule)
    session.flush()
    assert unit.id is not None
    return rules_public(rule, unit.id, unit.id)


def _visible_officer(session: Session, principal: Principal, user_id: int) -> User:
    return orgunits.get_in_jurisdiction(session, principal, User, user_id)


class AvailabilityEmpty(InvalidInput):
    code = "availability-empty"
    title_zh = "至少选择一个可排班的日子"
    title_en = "Choose at least one day the officer can be planned"

    def __init__(self) -> None:
        super().__init__("至少选择一天；长期不能参加排班的人员请停用其账号",
                         "Choose at least one day; deactivate the account of an officer who is out for good",
                         field="weekdays")


def get_availability(session: Session, principal: Principal, user_id: int) -> AvailabilityPublic:
    if user_id != principal.user_id:
        _visible_officer(session, principal, user_id)
    days = sorted(session.execute(select(col(OfficerAvailability.weekday)).where(
        col(OfficerAvailability.user_id) == user_id)).scalars())
    return AvailabilityPublic(user_id=user_id, weekdays=days or sorted(DEFAULT_WEEKDAYS), default=not days)


def set_availability(session: Session, principal: Principal, user_id: int, weekdays: list[int]) -> AvailabilityPublic:
    """Replace the weekdays an officer can be planned (an officer may set their own)."""
    if user_id != principal.user_id:
        from backend.accounts.permissions import Action

        principal.require(Action.schedule_generate)
        _visible_officer(session, principal, user_id)
    if any(d < 0 or d > 6 for d in weekdays):
        raise InvalidInput("星期应为0（周一）到6（周日）", "weekdays are 0 (Monday) to 6 (Sunday)")
    if not weekdays:
        # No rows means "the default" (Monday to Friday): an empty list stored as none would answer
        # "saved" and plan the officer every weekday. An officer out for good is deactivated instead.
        raise AvailabilityEmpty()
    set_weekdays(session, user_id, weekdays)
    return AvailabilityPublic(user_id=user_id, weekdays=sorted(set(weekdays)), default=False)


def set_weekdays(session: Session, user_id: int, weekdays: list[int]) -> None:
    session.execute(delete(OfficerAvailability).where(col(OfficerAvailability.user_id) == user_id))
    for d in sorted(set(weekdays)):
        session.add(OfficerAvailability(user_id=user_id, weekday=d))
    session.flush()


# ---------------------------------------------------------------- inputs


def week_bounds_utc(week_start: date) -> tuple[datetime, datetime]:
    """The local (China) week as a UTC interval."""
    return clock.china_day_start(week_start), clock.china_day_start(week_start + timedelta(days=7))


@dataclass
class PlanInputs:
    unit: OrgUnit
    rule: ScheduleRule
    rules: PlanRules
    venues: list[PlanVenue]
    officers: list[PlanOfficer]
    venue_rows: dict[int, Venue]


def _area_map(session: Session, unit: OrgUnit, area_level: str) -> tuple[dict[int, int], dict[int, str]]:
    """Each unit of the subtree -> its area (the ancestor at `area_level`), and each area's path."""
    rows = session.execute(select(col(OrgUnit.id), col(OrgUnit.level), col(OrgUnit.path)).where(
        col(OrgUnit.id).in_(orgunits.subtree_unit_ids(unit.path)))).all()
    level = {int(i): lv for i, lv, _ in rows}
    paths = {int(i): p for i, _, p in rows}
    assert unit.id is not None
    area_of: dict[int, int] = {}
    for uid, path in paths.items():
        chain = [int(p) for p in path.strip("/").split("/") if p]
        area_of[uid] = next((a for a in chain if level.get(a) == area_level), unit.id)
    paths.setdefault(unit.id, unit.path)
    return area_of, paths


def inspected_in_week(session: Session, venue_ids: list[int], week_start: date) -> dict[int, int]:
    """Venue -> an inspection id of that local week."""
    start, end = week_bounds_utc(week_start)
    out: dict[int, int] = {}
    for i in range(0, len(venue_ids), 900):
        chunk = venue_ids[i:i + 900]
        for vid, iid in session.execute(select(col(Inspection.venue_id), func.min(col(Inspection.id))).where(
                col(Inspection.venue_id).in_(chunk), col(Inspection.counted_at) >= start,
                col(Inspection.counted_at) < end).group_by(col(Inspection.venue_id))):
            out[int(vid)] = int(iid)
    return out


def carried_over(session: Session, unit_id: int, week_start: date) -> set[int]:
    """Venues of the latest earlier published plan of this unit that were not inspected that week."""
    previous = session.execute(select(SchedulePlan).where(
        col(SchedulePlan.org_unit_id) == unit_id, col(SchedulePlan.status) == PlanStatus.published.value,
        col(SchedulePlan.week_start_date) < week_start).order_by(col(SchedulePlan.week_start_date).desc())
        .limit(1)).scalar_one_or_none()
    if previous is None:
        return set()
    planned = [int(v) for v in session.execute(select(col(ScheduleVisit.venue_id)).where(
        col(ScheduleVisit.plan_id) == previous.id)).scalars()]
    done = inspected_in_week(session, planned, previous.week_start_date)
    return {v for v in planned if v not in done}


def joint_ops_required(session: Session, unit_id: int, per_month: int, week_start: date) -> int:
    """This week's share of the monthly joint operations not yet covered by published plans."""
    month_start = week_start.replace(day=1)
    earlier = session.execute(select(func.count(func.distinct(col(ScheduleTeam.id)))).select_from(ScheduleTeam)
                              .join(SchedulePlan, col(SchedulePlan.id) == col(ScheduleTeam.plan_id))
                              .where(col(SchedulePlan.org_unit_id) == unit_id,
                                     col(SchedulePlan.status) == PlanStatus.published.value,
                                     col(SchedulePlan.week_start_date) >= month_start,
                                     col(SchedulePlan.week_start_date) < week_start,
                                     col(ScheduleTeam.is_joint).is_(True))).scalar_one()
    remaining = max(0, per_month - int(earlier))
    mondays_left = sum(1 for d in range(0, 31, 7)
                       if (week_start + timedelta(days=d)).month == week_start.month)
    return math.ceil(remaining / max(1, mondays_left))


def last_by_agency(session: Session, venue_ids: list[int]) -> dict[int, dict[str, date]]:
    """Venue -> agency -> the local date that agency last inspected it (the agency each inspector acted for)."""
    out: dict[int, dict[str, date]] = defaultdict(dict)
    for i in range(0, len(venue_ids), 900):
        chunk = venue_ids[i:i + 900]
        for vid, agency, at in session.execute(
                select(col(Inspection.venue_id), col(InspectionInspector.agency), func.max(col(Inspection.counted_at)))
                .join(InspectionInspector, col(InspectionInspector.inspection_id) == col(Inspection.id))
                .where(col(Inspection.venue_id).in_(chunk))
                .group_by(col(Inspection.venue_id), col(InspectionInspector.agency))):
            if at is not None:
                out[int(vid)][str(agency)] = clock.china_date(at)
    return out


def gather_inputs(session: Session, unit: OrgUnit, week_start: date) -> PlanInputs:
    """Candidate venues (key, urgent, those with a duty due and routine ones due), officers, rules and
    the enforcement duties in force for a week."""
    assert unit.id is not None
    rule, _ = rules_for(session, unit)
    area_of, area_paths = _area_map(session, unit, rule.area_level)
    rows = list(session.execute(select(Venue).where(
        col(Venue.org_unit_id).in_(orgunits.subtree_unit_ids(unit.path)),
        col(Venue.status) == VenueStatus.open.value).order_by(col(Venue.id))).scalars())
    scores = venues.risk_scores(session, rows)
    last = venues.last_inspected(session, [v.id for v in rows if v.id is not None])
    by_agency = last_by_agency(session, [v.id for v in rows if v.id is not None])
    carried = carried_over(session, unit.id, week_start)
    officers = officers_of(session, unit)
    staffed = frozenset(o.agency for o in officers)
    rules = PlanRules(daily_capacity=rule.daily_capacity, min_team_size=rule.min_team_size,
                      joint_ops_required=joint_ops_required(session, unit.id, rule.joint_ops_per_month, week_start),
                      high_risk_threshold=rule.high_risk_threshold, duties=duties.duties_for(session, unit)[0])
    due_before = clock.china_day_start(week_start) - timedelta(days=rule.routine_interval_days)
    candidates: list[PlanVenue] = []
    by_id: dict[int, Venue] = {}
    for v in rows:
        assert v.id is not None
        lon, lat = venues.lon_lat(v)
        score = scores[v.id]
        area = area_of.get(v.org_unit_id, unit.id)
        pv = PlanVenue(id=v.id, lon=lon, lat=lat, area_id=area, area_path=area_paths[area], risk=score.total,
                       is_key=v.is_key, has_overdue=any(p.name == "overdue" and p.points > 0 for p in score.parts),
                       carried_over=v.id in carried, venue_type=v.venue_type,
                       last_by_agency=tuple(sorted(by_agency.get(v.id, {}).items())),
                       listed_on=clock.china_date(v.created_at))
        seen = last.get(v.id)
        if tier(pv, rules, week_start, staffed) in (URGENT, KEY) or seen is None or seen < due_before:
            candidates.append(pv)
            by_id[v.id] = v
    return PlanInputs(unit, rule, rules, candidates, officers, by_id)


def officers_of(session: Session, unit: OrgUnit) -> list[PlanOfficer]:
    """Active officers of the unit's subtree (police, and 行业执法人员 of whatever body they act for),
    with their weekdays."""
    users = session.execute(
        select(User, col(OrgUnit.path)).join(OrgUnit, col(OrgUnit.id) == col(User.org_unit_id))
        .where(col(User.is_active).is_(True), col(User.agency).is_not(None),
               col(User.org_unit_id).in_(orgunits.subtree_unit_ids(unit.path)),
               col(User.id).in_(select(col(UserRole.user_id)).where(col(UserRole.role).in_(OFFICER_ROLES))))
        .order_by(col(User.id))).all()
    days: dict[int, set[int]] = defaultdict(set)
    ids = [u.id for u, _ in users]
    for i in range(0, len(ids), 900):
        for uid, wd in session.execute(select(col(OfficerAvailability.user_id), col(OfficerAvailability.weekday))
                                       .where(col(OfficerAvailability.user_id).in_(ids[i:i + 900]))):
            days[int(uid)].add(int(wd))
    return [PlanOfficer(id=u.id or 0, agency=u.agency or "", scope_path=path,
                        weekdays=frozenset(days.get(u.id or 0) or DEFAULT_WEEKDAYS)) for u, path in users]


# ---------------------------------------------------------------- generate, store, check


def generate(session: Session, principal: Principal | None, unit_id: int, week_start: date | None = None
             ) -> SchedulePlan:
    """Generate (or regenerate, while still a draft) the plan of a jurisdiction for a week."""
    unit = (orgunits.get_visible_unit(session, principal, unit_id) if principal
            else session.get(OrgUnit, unit_id))
    if unit is None or unit.id is None:
        raise NotFound()
    week_start = week_start or next_monday(clock.china_date(clock.now()))
    if week_start.weekday() != 0:
        raise NotAMonday(f"{week_start} 不是周一", f"{week_start} is not a Monday")
    existing = list(session.execute(select(SchedulePlan).where(
        col(SchedulePlan.org_unit_id) == unit.id, col(SchedulePlan.week_start_date) == week_start,
        col(SchedulePlan.status) != PlanStatus.superseded.value)).scalars())
    if any(p.status == PlanStatus.published.value for p in existing):
        raise PlanAlreadyPublished(f"{week_start} 这一周的计划已发布", f"the plan for {week_start} is published")
    for old in existing:
        old.status = PlanStatus.superseded.value
        session.add(old)
    inputs = gather_inputs(session, unit, week_start)
    plan = planner.plan_week(week_start, inputs.venues, inputs.officers, inputs.rules)
    violations = checker.check(plan, inputs.venues, inputs.officers, inputs.rules)
    return store(session, inputs, plan, violations, principal.user_id if principal else None)


def store(session: Session, inputs: PlanInputs, plan: Plan, violations: list[checker.Violation],
          user_id: int | None) -> SchedulePlan:
    assert inputs.unit.id is not None
    by_id = {v.id: v for v in inputs.venues}
    row = SchedulePlan(
        org_unit_id=inputs.unit.id, week_start_date=plan.week_start, status=PlanStatus.draft.value,
        rules={"daily_capacity": inputs.rules.daily_capacity, "min_team_size": inputs.rules.min_team_size,
               "high_risk_threshold": inputs.rules.high_risk_threshold,
               "joint_ops_per_month": inputs.rule.joint_ops_per_month, "area_level": inputs.rule.area_level,
               "routine_interval_days": inputs.rule.routine_interval_days,
               "visit_minutes": inputs.rule.visit_minutes, "day_start_hour": inputs.rule.day_start_hour,
               "candidates": len(inputs.venues), "duties": len(inputs.rules.duties or ())},
        joint_ops_required=inputs.rules.joint_ops_required, violations=[v.as_dict() for v in violations],
        total_distance_m=round(plan.total_distance_m, 1), generated_by_user_id=user_id,
    )
    session.add(row)
    session.flush()
    agency = {o.id: o.agency for o in inputs.officers}
    for team in plan.teams:
        t = ScheduleTeam(plan_id=row.id or 0, day_date=team.day, label=team.label, area_unit_id=team.area_id,
                         is_joint=team.is_joint, route_distance_m=team.distance_m)
        session.add(t)
        session.flush()
        for uid in team.member_ids:
            session.add(ScheduleTeamMember(team_id=t.id or 0, user_id=uid, agency=agency.get(uid, "")))
        for pos, (vid, leg) in enumerate(zip(team.venue_ids, team.legs_m, strict=True)):
            session.add(ScheduleVisit(plan_id=row.id or 0, team_id=t.id or 0, venue_id=vid, position=pos,
                                      leg_distance_m=leg, reason=plan.reasons.get(vid, "routine"),
                                      carried_over=by_id[vid].carried_over))
    session.flush()
    return row


def get_plan(session: Session, principal: Principal, plan_id: int) -> SchedulePlan:
    return orgunits.get_in_jurisdiction(session, principal, SchedulePlan, plan_id)


@dataclass
class StoredTeam:
    team: ScheduleTeam
    members: list[tuple[ScheduleTeamMember, User]]
    visits: list[tuple[ScheduleVisit, Venue]]


def plan_teams(session: Session, plan: SchedulePlan) -> list[StoredTeam]:
    teams = list(session.execute(select(ScheduleTeam).where(col(ScheduleTeam.plan_id) == plan.id)
                                 .order_by(col(ScheduleTeam.day_date), col(ScheduleTeam.id))).scalars())
    members: dict[int, list[tuple[ScheduleTeamMember, User]]] = defaultdict(list)
    for m, u in session.execute(select(ScheduleTeamMember, User).join(User, col(User.id) == col(
            ScheduleTeamMember.user_id)).where(col(ScheduleTeamMember.team_id).in_([t.id for t in teams]))
            .order_by(col(ScheduleTeamMember.user_id))).all():
        members[m.team_id].append((m, u))
    visits: dict[int, list[tuple[ScheduleVisit, Venue]]] = defaultdict(list)
    for v, venue in session.execute(select(ScheduleVisit, Venue).join(Venue, col(Venue.id) == col(
            ScheduleVisit.venue_id)).where(col(ScheduleVisit.plan_id) == plan.id)
            .order_by(col(ScheduleVisit.team_id), col(ScheduleVisit.position))).all():
        visits[v.team_id].append((v, venue))
    return [StoredTeam(t, members[t.id or 0], visits[t.id or 0]) for t in teams]


def as_plan(plan: SchedulePlan, teams: list[StoredTeam]) -> Plan:
    """The stored plan in the checker's terms."""
    return Plan(week_start=plan.week_start_date, teams=[
        PlannedTeam(day=s.team.day_date, member_ids=tuple(m.user_id for m, _ in s.members),
                    area_id=s.team.area_unit_id, venue_ids=[v.venue_id for v, _ in s.visits],
                    legs_m=[v.leg_distance_m for v, _ in s.visits], distance_m=s.team.route_distance_m,
                    is_joint=s.team.is_joint, label=s.team.label) for s in teams],
        reasons={v.venue_id: v.reason for s in teams for v, _ in s.visits})


def recheck(session: Session, principal: Principal, plan_id: int) -> list[checker.Violation]:
    """Check a stored plan against today's data (venues, officers, availability, rules)."""
    plan = get_plan(session, principal, plan_id)
    unit = session.get(OrgUnit, plan.org_unit_id)
    assert unit is not None
    inputs = gather_inputs(session, unit, plan.week_start_date)
    rules = replace(inputs.rules, joint_ops_required=plan.joint_ops_required)
    return checker.check(as_plan(plan, plan_teams(session, plan)), inputs.venues, inputs.officers, rules)


def publish(session: Session, principal: Principal, plan_id: int) -> SchedulePlan:
    """Publish a draft: officers are notified through the notification outbox and see the plan
    in their calendar feed."""
    plan = get_plan(session, principal, plan_id)
    if plan.status == PlanStatus.published.value:
        return plan
    officers = _publish(session, plan, principal.user_id)
    audit.record(session, actor=principal, action="schedule.publish", object_type="schedule_plan",
                 object_id=plan.id, org_unit_id=plan.org_unit_id, details={"officers": officers})
    return plan


def publish_unattended(session: Session, plan: SchedulePlan) -> SchedulePlan:
    """Publish from the command line (no signed-in user)."""
    officers = _publish(session, plan, None)
    audit.record(session, actor=None, action="schedule.publish", object_type="schedule_plan", object_id=plan.id,
                 org_unit_id=plan.org_unit_id, details={"officers": officers, "via": "cli"})
    return plan


def _publish(session: Session, plan: SchedulePlan, user_id: int | None) -> int:
    if plan.status != PlanStatus.draft.value:
        raise Conflict("该计划已被新版本取代", "this plan was superseded by a newer one")
    plan.status = PlanStatus.published.value
    plan.published_at = clock.now()
    plan.published_by_user_id = user_id
    officers = sorted({int(u) for u in session.execute(
        select(col(ScheduleTeamMember.user_id)).join(ScheduleTeam, col(ScheduleTeam.id) == col(
            ScheduleTeamMember.team_id)).where(col(ScheduleTeam.plan_id) == plan.id)).scalars()})
    from backend.notifications import service as notifications

    notifications.enqueue(
        session, user_ids=officers, kind="schedule.published",
        title_zh="新的联合执法周计划已发布", title_en="A new weekly inspection plan is published",
        body_zh="请在“检查计划”中查看本周的检查安排和路线", body_en="Open Inspection plan to see your days and routes",
        data={"plan_id": str(plan.id), "week_start": plan.week_start_date.isoformat()},
    )
    plan.publish_note = f"notified {len(officers)} officers through the notification outbox"
    session.add(plan)
    session.flush()
    return len(officers)


# ---------------------------------------------------------------- compliance


@dataclass
class ComplianceRow:
    visit: ScheduleVisit
    venue: Venue
    team: ScheduleTeam
    state: str
    inspection_id: int | None


def compliance(session: Session, principal: Principal, plan_id: int) -> tuple[SchedulePlan, list[ComplianceRow]]:
    """Planned against reality: each planned venue is done (inspected that week), missed (its day
    has passed without an inspection) or pending."""
    plan = get_plan(session, principal, plan_id)
    teams = plan_teams(session, plan)
    done = inspected_in_week(session, [v.venue_id for s in teams for v, _ in s.visits], plan.week_start_date)
    today = clock.china_date(clock.now())
    rows: list[ComplianceRow] = []
    for s in teams:
        for v, venue in s.visits:
            iid = done.get(v.venue_id)
            state = "done" if iid else ("missed" if s.team.day_date < today else "pending")
            rows.append(ComplianceRow(v, venue, s.team, state, iid))
    return plan, rows


# ---------------------------------------------------------------- calendar feed


def feed_token(user_id: int, generation: int) -> str:
    """A per-user secret for the calendar URL (phone calendars cannot send a bearer token): an HMAC of
    the user and the feed's generation under the calendar key (backend/core/secrets.py)."""
    key = purpose_key(Purpose.calendar_feed)
    return hmac.new(key, f"hulei-ics:{user_id}:{generation}".encode(), hashlib.sha256).hexdigest()[:32]


def feed_generation(session: Session, user_id: int) -> int:
    """The current generation of a user's feed URL (0 until the first revocation)."""
    generation = session.execute(select(col(CalendarFeed.generation)).where(
        col(CalendarFeed.user_id) == user_id)).scalar_one_or_none()
    return generation or 0


def current_feed_token(session: Session, user_id: int) -> str:
    """The token of the user's feed URL as handed out now."""
    return feed_token(user_id, feed_generation(session, user_id))


def feed_token_ok(session: Session, user_id: int, token: str) -> bool:
    """Whether `token` opens the feed: the current generation's, of a user who is active."""
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        return False
    # As bytes: compare_digest refuses str with non-ASCII characters, which anyone can put in a URL.
    return hmac.compare_digest(current_feed_token(session, user_id).encode(), token.encode("utf-8", "surrogatepass"))


def revoke_feed(session: Session, principal: Principal, user_id: int) -> None:
    """Retire every feed URL of a user: their own, or one the caller manages (user.manage, inside the
    jurisdiction, and a user the grant table puts in the caller's reach, as for any change to a user)."""
    if user_id == principal.user_id:
        user = session.get(User, user_id)
        assert user is not None  # the caller is an active user
    else:
        from backend.accounts.permissions import Action

        principal.require(Action.user_manage)
        user = orgunits.get_in_jurisdiction(session, principal, User, user_id)
        unit = session.get(OrgUnit, user.org_unit_id)
        assert unit is not None
        grants.check_in_reach(principal, grants.Standing(
            unit_path=unit.path, unit_level=OrgLevel(unit.level), roles=accounts.user_roles(session, user_id),
            agency=Agency(user.agency) if user.agency else None, is_active=user.is_active))
    now = clock.now()
    insert = dialect_insert(session)
    stmt = insert(CalendarFeed).values(user_id=user_id, generation=1, revoked_at=now,
                                       revoked_by_user_id=principal.user_id)
    session.execute(stmt.on_conflict_do_update(index_elements=[CalendarFeed.user_id], set_={
        "generation": CalendarFeed.generation + 1, "revoked_at": now, "revoked_by_user_id": principal.user_id}))
    audit.record(session, actor=principal, action="calendar.feed_revoked", object_type="user", object_id=user_id,
                 org_unit_id=user.org_unit_id, details={"generation": feed_generation(session, user_id)})


def officer_visits(session: Session, user_id: int, since: date) -> list[tuple[SchedulePlan, StoredTeam]]:
    """Published team-days of an officer from `since` on."""
    plans = list(session.execute(select(SchedulePlan).where(
        col(SchedulePlan.status) == PlanStatus.published.value,
        col(SchedulePlan.week_start_date) >= since - timedelta(days=6),
        col(SchedulePlan.id).in_(select(col(ScheduleTeam.plan_id)).join(
            ScheduleTeamMember, col(ScheduleTeamMember.team_id) == col(ScheduleTeam.id)).where(
            col(ScheduleTeamMember.user_id) == user_id)))).scalars())
    out: list[tuple[SchedulePlan, StoredTeam]] = []
    for plan in plans:
        for s in plan_teams(session, plan):
            if any(m.user_id == user_id for m, _ in s.members) and s.team.day_date >= since:
                out.append((plan, s))
    return out


def visit_times(plan: SchedulePlan, team: StoredTeam) -> list[tuple[datetime, datetime]]:
    """Estimated start and end of each visit: the day starts at the rule's hour; driving at 30 km/h."""
    minutes = int(plan.rules.get("visit_minutes", 40))
    at = datetime.combine(team.team.day_date, time(int(plan.rules.get("day_start_hour", 9))), tzinfo=clock.SHANGHAI)
    out = []
    for v, _ in team.visits:
        at += timedelta(minutes=math.ceil(v.leg_distance_m / 500))  # 30 km/h = 500 m per minute
        out.append((at, at + timedelta(minutes=minutes)))
        at += timedelta(minutes=minutes)
    return out


# What people read in the calendar and the plan's sheet: the domain's words, never internal codes.
REASON_ZH = {
    "carried_over": "上周未完成，顺延",
    "overdue_problem": "有逾期未整改的问题",
    "high_risk": "风险分高",
    "key_venue": "重点场所（每周至少检查一次）",
    "duty_lapsed": "执法职责检查已逾期",
    "duty_due": "执法职责检查本周到期",
    "routine": "例行检查",
}
_WEEKDAY_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


def reason_zh(code: str) -> str:
    """Why a venue is planned, in words (an unknown code is shown as 其他, never as itself)."""
    return REASON_ZH.get(code, "其他")


def team_label_zh(team: ScheduleTeam) -> str:
    """A team's label as people say it: 周一第1组 (stored as Mon-1)."""
    number = team.label.rsplit("-", 1)[-1]
    return f"{_WEEKDAY_ZH[team.day_date.weekday()]}第{number if number.isdigit() else 1}组"


def agency_zh(code: str) -> str:
    """The body an officer acts for, in words (公安（派出所）, 市场监管所, ...)."""
    try:
        return grants.AGENCY_ZH[Agency(code)]
    except ValueError:
        return "其他单位"


def _ics_text(text: str) -> str:
    # RFC 5545 3.3.11: TEXT may not hold control characters (line breaks are escaped by the library);
    # strict calendar apps refuse a whole feed over one. They are refused at input, but text stored
    # before may hold them: the one cleaner drops them (DEL too) and writes CR as LF (backend/core/text.py).
    return texts.clean(text)


def _ics_float(value: float) -> str:
    """A coordinate as RFC 5545 FLOAT (3.3.7: digits, one point, no exponent) with at most 6 decimals
    (about 0.1 m): 108.3007, never the float noise 108.30069999999999 nor 1e-07."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


@cache
def _geo_type() -> Any:
    from icalendar import vGeo  # imported when a feed is asked for, like the rest of icalendar

    class Geo(vGeo):
        def to_ical(self) -> str:
            return f"{_ics_float(self.latitude)};{_ics_float(self.longitude)}"

    return Geo


def _ics_geo(lat: float, lon: float) -> Any:
    """The GEO value (RFC 5545 3.8.1.6: latitude;longitude) written with `_ics_float`."""
    return _geo_type()((lat, lon))


def ics_for(session: Session, user_id: int) -> bytes:
    """The officer's published visits from four weeks ago on, as an iCalendar document. Every TZID
    used (Asia/Shanghai) comes with its VTIMEZONE (RFC 5545 3.6.5), so calendars that do not know
    the zone by name still place the visits right."""
    from icalendar import Calendar, Event

    from backend.venues.models import VenueType

    cal = Calendar()
    cal.add("prodid", "-//Hulei//Joint enforcement plan//ZH")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", "护蕾 联合执法检查计划")
    cal.add("x-wr-timezone", "Asia/Shanghai")
    stamp = clock.now()
    for plan, team in officer_visits(session, user_id, clock.china_date(clock.now()) - timedelta(days=28)):
        names = "、".join(f"{u.display_name}（{agency_zh(m.agency)}）" for m, u in team.members)
        for (v, venue), (start, end) in zip(team.visits, visit_times(plan, team), strict=True):
            lon, lat = venues.lon_lat(venue)
            event = Event()
            event.add("uid", f"hulei-visit-{v.id}@hulei")
            event.add("dtstamp", stamp)
            event.add("dtstart", start)
            event.add("dtend", end)
            event.add("summary", _ics_text(f"检查：{venue.name}（{VenueType(venue.venue_type).zh}）"))
            event.add("location", _ics_text(venue.address or venue.name))
            event.add("geo", _ics_geo(lat, lon))
            event.add("description", _ics_text(
                f"{team_label_zh(team.team)} 第{v.position + 1}站；原因：{reason_zh(v.reason)}；"
                f"{'联合执法；' if team.team.is_joint else ''}组员：{names}；"
                f"距上一站约 {v.leg_distance_m / 1000:.1f} 公里"))
            event.add("categories", ["联合执法" if team.team.is_joint else "检查"])
            cal.add_component(event)
    cal.add_missing_timezones()
    return bytes(cal.to_ical())


def export_xlsx(session: Session, principal: Principal, plan_id: int) -> bytes:
    """The plan as .xlsx: one row per visit in driving order. Audited."""
    from backend.venues.models import VenueType

    plan = get_plan(session, principal, plan_id)
    teams = plan_teams(session, plan)
    areas = dict(session.execute(select(col(OrgUnit.id), col(OrgUnit.name)).where(
        col(OrgUnit.id).in_({s.team.area_unit_id for s in teams}))).all()) if teams else {}
    rows = []
    for s in teams:
        names = "、".join(f"{u.display_name}({agency_zh(m.agency)})" for m, u in s.members)
        for v, venue in s.visits:
            rows.append([s.team.day_date.isoformat(), team_label_zh(s.team), "是" if s.team.is_joint else "否", names,
                         areas.get(s.team.area_unit_id, ""), v.position + 1, venue.name,
                         VenueType(venue.venue_type).zh, venue.address, reason_zh(v.reason),
                         round(v.leg_distance_m / 1000, 2)])
    audit.record(session, actor=principal, action="schedule.export", object_type="schedule_plan", object_id=plan.id,
                 org_unit_id=plan.org_unit_id, details={"visits": len(rows)})
    return workbook.xlsx_bytes([workbook.Table(
        title=f"周计划 {plan.week_start_date.isoformat()}",
        header=["日期", "小组", "联合执法", "组员", "片区", "顺序", "场所", "类型", "地址", "原因", "距上一站(公里)"],
        rows=rows, widths=[12, 12, 9, 36, 14, 6, 24, 12, 30, 24, 14],
    )])


def summary_counts(teams: list[StoredTeam]) -> dict[str, Any]:
    return {"joint": sum(1 for s in teams if s.team.is_joint and s.visits),
            "venues": sum(len(s.visits) for s in teams)}
