"""The planner against the checker on random jurisdictions (hypothesis), and the checker naming
every kind of violation in plans broken on purpose."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from backend.schedules.checker import check
from backend.schedules.planner import plan_week
from backend.schedules.rules import URGENT, PlanOfficer, PlanRules, PlanVenue, tier

MONDAY = date(2026, 11, 30)
TOWN = "/1/2/3/4/"


@st.composite
def jurisdictions(draw: st.DrawFn) -> tuple[list[PlanVenue], list[PlanOfficer], PlanRules]:
    """A town of 1-6 villages with venues, officers of one or two agencies (some per village), and rules."""
    n_areas = draw(st.integers(1, 6))
    capacity = draw(st.integers(2, 8))
    rules = PlanRules(daily_capacity=capacity, min_team_size=draw(st.integers(1, 3)),
                      joint_ops_required=draw(st.integers(0, 3)), high_risk_threshold=draw(st.integers(40, 90)))
    venues: list[PlanVenue] = []
    for a in range(n_areas):
        for _ in range(draw(st.integers(0, 12))):
            venues.append(PlanVenue(
                id=len(venues) + 1, lon=108.3 + a * 0.02 + draw(st.floats(0, 0.02)),
                lat=30.0 + draw(st.floats(0, 0.02)), area_id=100 + a, area_path=f"{TOWN}{100 + a}/",
                risk=draw(st.integers(0, 100)), is_key=draw(st.booleans()), has_overdue=draw(st.booleans()),
                carried_over=draw(st.integers(0, 9)) == 0))
    officers: list[PlanOfficer] = []
    for i in range(draw(st.integers(2, 12))):
        local = draw(st.integers(0, 3)) == 0
        officers.append(PlanOfficer(
            id=1000 + i, agency=draw(st.sampled_from(["police", "market_supervision"])),
            scope_path=f"{TOWN}{100 + draw(st.integers(0, n_areas - 1))}/" if local else TOWN,
            weekdays=frozenset(draw(st.sets(st.integers(0, 6), min_size=1, max_size=7)))))
    return venues, officers, rules


def _feasible_hard_rules(venues: list[PlanVenue], officers: list[PlanOfficer], rules: PlanRules) -> bool:
    """Enough town-wide capacity for every key and urgent venue, and joint operations possible: a
    jurisdiction where the rules can be met at all (the property is about the planner, not about
    impossible inputs)."""
    town_wide = [o for o in officers if o.scope_path == TOWN]
    team_days = 0
    joint_days = 0
    for d in range(7):
        here = [o for o in town_wide if d in o.weekdays]
        team_days += len(here) // rules.min_team_size
        if len({o.agency for o in here}) >= 2 and len(here) >= max(2, rules.min_team_size):
            joint_days += 1
    must: dict[int, int] = {}
    for v in venues:
        if v.is_key or tier(v, rules) == URGENT:
            must[v.area_id] = must.get(v.area_id, 0) + 1
    needed = sum(-(-n // rules.daily_capacity) for n in must.values())
    areas = len({v.area_id for v in venues})
    enough_teams = team_days >= needed + rules.joint_ops_required + 1
    return enough_teams and joint_days >= rules.joint_ops_required and areas >= rules.joint_ops_required


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(jurisdictions())
def test_every_generated_plan_passes_the_checker_when_the_rules_can_be_met(
        world: tuple[list[PlanVenue], list[PlanOfficer], PlanRules]) -> None:
    venues, officers, rules = world
    assume(_feasible_hard_rules(venues, officers, rules))
    plan = plan_week(MONDAY, venues, officers, rules)
    assert check(plan, venues, officers, rules) == []


@settings(max_examples=40, deadline=None)
@given(jurisdictions())
def test_any_plan_keeps_the_structural_rules_even_when_capacity_falls_short(
        world: tuple[list[PlanVenue], list[PlanOfficer], PlanRules]) -> None:
    venues, officers, rules = world
    plan = plan_week(MONDAY, venues, officers, rules)
    allowed_when_short = {"key_venue_unplanned", "joint_ops_short"}
    assert {v.code for v in check(plan, venues, officers, rules)} <= allowed_when_short


def _small_world() -> tuple[list[PlanVenue], list[PlanOfficer], PlanRules]:
    venues = [PlanVenue(id=i, lon=108.30 + 0.003 * i, lat=30.01 + 0.002 * (i % 3), area_id=100,
                        area_path=f"{TOWN}100/", risk=10 * i, is_key=i % 2 == 0) for i in range(1, 7)]
    venues.append(PlanVenue(id=7, lon=108.35, lat=30.01, area_id=101, area_path=f"{TOWN}101/", risk=5))
    officers = [PlanOfficer(1, "police", TOWN, frozenset({0, 1})), PlanOfficer(2, "market_supervision", TOWN,
                                                                               frozenset({0, 1}))]
    return venues, officers, PlanRules(daily_capacity=4, min_team_size=2, joint_ops_required=1)


def test_a_sound_small_plan_has_no_violations() -> None:
    venues, officers, rules = _small_world()
    plan = plan_week(MONDAY, venues, officers, rules)
    assert check(plan, venues, officers, rules) == []
    assert all(t.is_joint for t in plan.teams)


def test_the_checker_names_every_violation_of_a_tampered_plan() -> None:
    venues, officers, rules = _small_world()
    plan = plan_week(MONDAY, venues, officers, rules)
    first = plan.teams[0]  # Monday, area 100, venues 6, 5, 4, 2 (2, 4 and 6 are key)
    outside = date(2026, 12, 9)  # a Wednesday of the next week: outside, and nobody works Wednesdays
    tampered = replace(first, venue_ids=[4, 5, 6], distance_m=first.distance_m + 500, member_ids=(1, 99),
                       is_joint=True, day=outside)
    extra = replace(first, venue_ids=[7, 6], legs_m=[0.0, 0.0], distance_m=0.0, member_ids=(1,), label="extra",
                    day=outside)
    plan.teams = [tampered, extra]
    codes = {v.code for v in check(plan, venues, officers, rules)}
    assert {"officer_unknown", "officer_unavailable", "joint_flag_wrong", "route_distance_mismatch",
            "team_area_mixed", "venue_planned_twice", "team_too_small", "officer_double_booked",
            "key_venue_unplanned", "day_outside_week"} <= codes


def test_a_routine_venue_planned_before_a_key_one_of_its_area_is_a_priority_inversion() -> None:
    venues, officers, rules = _small_world()
    monday_only = [replace(o, weekdays=frozenset({0})) for o in officers]
    plan = plan_week(MONDAY, venues, monday_only, rules)
    [team] = plan.teams  # one team-day: the three key venues and the riskiest routine one of area 100
    assert sorted(team.venue_ids) == [2, 4, 5, 6]
    assert check(plan, venues, monday_only, rules) == []
    team.venue_ids = [1 if v == 6 else v for v in team.venue_ids]
    violations = check(plan, venues, monday_only, rules)
    inversion = next(v for v in violations if v.code == "priority_inversion")
    assert inversion.refs["left_out"] == 6 and inversion.refs["planned"] in {1, 5}  # both routine


def test_joint_operations_short_of_the_rule_are_named() -> None:
    venues, officers, rules = _small_world()
    one_agency = [replace(o, agency="police") for o in officers]
    plan = plan_week(MONDAY, venues, one_agency, rules)
    [violation] = [v for v in check(plan, venues, one_agency, rules) if v.code == "joint_ops_short"]
    assert violation.refs == {"planned": 0, "required": 1}
