"""Joint enforcement beyond two agencies (联合执法, issue 18): the planner and the checker with 3-6
agencies and random per-county duties (which agency inspects which venue type, how often).

The oracles here are written from the rule, not from backend.schedules.rules: a duty of agency A for
type T with interval N days falls due this week when A's last inspection of the venue (or the day the
venue was listed, if A never inspected it) plus N days is on or before Sunday.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from backend.schedules.checker import check, teamable_agencies
from backend.schedules.planner import plan_week
from backend.schedules.rules import Duty, Plan, PlanOfficer, PlanRules, PlanVenue

MONDAY = date(2026, 11, 30)
SUNDAY = MONDAY + timedelta(days=6)
TOWN = "/1/2/3/4/"
AGENCIES = ("police", "market_supervision", "culture_tourism", "education", "comprehensive_enforcement", "health")
TYPES = ("hotel", "esports_hotel", "internet_cafe", "ktv", "training", "school_shop", "amusement_arcade",
         "script_game")
BOUNDED = settings(max_examples=60, deadline=None,
                   suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])

World = tuple[list[PlanVenue], list[PlanOfficer], PlanRules]


@st.composite
def duty_worlds(draw: st.DrawFn, *, ample: bool = False) -> World:
    """A town of 1-5 villages, 3-6 agencies with random duties per venue type, venues inspected by some
    agencies at random dates, and officers of those agencies. `ample`: every officer town-wide and on
    duty every day, so each day's officers can form the teams the week needs."""
    agencies = draw(st.lists(st.sampled_from(AGENCIES), min_size=3, max_size=6, unique=True))
    team_size = draw(st.integers(3, 4) if ample else st.integers(1, 3))
    # Ample: fewer officers than two teams need, so each day's one team holds every agency.
    n_officers = draw(st.integers(team_size, 2 * team_size - 1) if ample else st.integers(3, 14))
    if ample:
        agencies = agencies[:max(3, n_officers)]
    duties = tuple(Duty(a, t, draw(st.integers(7, 90))) for t in TYPES
                   for a in draw(st.lists(st.sampled_from(agencies), max_size=3, unique=True)))
    n_areas = draw(st.integers(1, 5))
    rules = PlanRules(daily_capacity=draw(st.integers(2, 8)), min_team_size=team_size,
                      joint_ops_required=draw(st.integers(0, 2)), high_risk_threshold=draw(st.integers(50, 95)),
                      duties=duties)
    venues: list[PlanVenue] = []
    for a in range(n_areas):
        for _ in range(draw(st.integers(0, 8))):
            seen = draw(st.lists(st.tuples(st.sampled_from(agencies), st.integers(1, 120)), max_size=3,
                                 unique_by=lambda x: x[0]))
            listed = draw(st.none() | st.integers(0, 200))
            venues.append(PlanVenue(
                id=len(venues) + 1, lon=108.3 + a * 0.02 + draw(st.floats(0, 0.02)),
                lat=30.0 + draw(st.floats(0, 0.02)), area_id=100 + a, area_path=f"{TOWN}{100 + a}/",
                risk=draw(st.integers(0, 100)), is_key=draw(st.integers(0, 3)) == 0,
                has_overdue=draw(st.integers(0, 5)) == 0, venue_type=draw(st.sampled_from(TYPES)),
                last_by_agency=tuple((ag, MONDAY - timedelta(days=d)) for ag, d in seen),
                listed_on=None if listed is None else MONDAY - timedelta(days=listed)))
    officers: list[PlanOfficer] = []
    for i in range(max(3, n_officers)):
        local = not ample and draw(st.integers(0, 3)) == 0
        officers.append(PlanOfficer(
            id=1000 + i, agency=agencies[i] if i < len(agencies) else draw(st.sampled_from(agencies)),
            scope_path=f"{TOWN}{100 + draw(st.integers(0, n_areas - 1))}/" if local else TOWN,
            weekdays=frozenset(range(7)) if ample
            else frozenset(draw(st.sets(st.integers(0, 6), min_size=1, max_size=7)))))
    return venues, officers, rules


def _duty_agencies(v: PlanVenue, rules: PlanRules) -> set[str]:
    assert rules.duties is not None
    return {d.agency for d in rules.duties if d.venue_type == v.venue_type}


def _due(v: PlanVenue, rules: PlanRules, staffed: set[str] | None = None) -> set[str]:
    """Oracle: the agencies (with an officer in the plan, when `staffed` is given) whose duty for v
    falls due by the end of the week."""
    assert rules.duties is not None
    last = dict(v.last_by_agency)
    out = set()
    for d in rules.duties:
        if d.venue_type != v.venue_type:
            continue
        since = last.get(d.agency, v.listed_on)
        if since is None or (since - MONDAY).days + d.interval_days <= (SUNDAY - MONDAY).days:
            out.add(d.agency)
    return out if staffed is None else out & staffed


def _team_of(plan: Plan, officers: list[PlanOfficer]) -> dict[int, set[str]]:
    agency = {o.id: o.agency for o in officers}
    return {vid: {agency[m] for m in t.member_ids} for t in plan.teams for vid in t.venue_ids}


@BOUNDED
@given(duty_worlds())
def test_a_venue_is_only_ever_planned_to_a_team_with_a_duty_for_its_type(world: World) -> None:
    venues, officers, rules = world
    plan = plan_week(MONDAY, venues, officers, rules)
    by_id = {v.id: v for v in venues}
    staffed = {o.agency for o in officers}
    for vid, present in _team_of(plan, officers).items():
        v = by_id[vid]
        assert present & _duty_agencies(v, rules), (vid, v.venue_type, present)
        if _due(v, rules, staffed):  # a venue due this week goes to a team serving one of its due duties
            assert present & _due(v, rules, staffed)


@BOUNDED
@given(duty_worlds())
def test_any_plan_keeps_the_structural_rules_with_any_duties(world: World) -> None:
    venues, officers, rules = world
    plan = plan_week(MONDAY, venues, officers, rules)
    short = {"key_venue_unplanned", "joint_ops_short", "duty_frequency_missed", "duty_unstaffed",
             "venue_type_without_duty"}
    assert {v.code for v in check(plan, venues, officers, rules)} <= short


@BOUNDED
@given(duty_worlds())
def test_the_checker_names_exactly_the_duties_whose_frequency_the_plan_misses(world: World) -> None:
    venues, officers, rules = world
    plan = plan_week(MONDAY, venues, officers, rules)
    teams = _team_of(plan, officers)
    # Agencies with an officer who can be in a team this week; the others' duties are named once each.
    staffed = set(teamable_agencies(officers, rules.min_team_size))
    expected = {(v.id, a) for v in venues for a in _due(v, rules, staffed) if a not in teams.get(v.id, set())}
    violations = check(plan, venues, officers, rules)
    named = {(x.refs["venue"], x.refs["agency"]) for x in violations if x.code == "duty_frequency_missed"}
    assert named == expected
    # A duty nobody here can serve is named once per agency, with how many venues wait for it.
    unstaffed = {a: sum(1 for v in venues if a in _due(v, rules)) for v in venues for a in _due(v, rules) - staffed}
    assert {x.refs["agency"]: x.refs["venues"] for x in violations if x.code == "duty_unstaffed"} == unstaffed


def _ample_enough(venues: list[PlanVenue], officers: list[PlanOfficer], rules: PlanRules) -> bool:
    """Every day one team of everybody (fewer officers than two teams need), every agency with a duty
    due is staffed, every venue's type is someone's duty (a key venue's a staffed agency's), and the
    week's must-work fits its days."""
    staffed = {o.agency for o in officers}
    if len(officers) >= 2 * rules.min_team_size or len(officers) < rules.min_team_size:
        return False
    must: dict[int, int] = {}
    for v in venues:
        due = _due(v, rules)
        if not due <= staffed:
            return False
        if v.is_key and not _duty_agencies(v, rules) & staffed:
            return False
        if not _duty_agencies(v, rules):  # a type nobody inspects is named by the checker
            return False
        urgent = v.has_overdue or v.risk >= rules.high_risk_threshold or v.carried_over
        if v.is_key or due or urgent:
            must[v.area_id] = must.get(v.area_id, 0) + 1
    days_needed = sum(-(-n // rules.daily_capacity) for n in must.values())
    workable = {v.area_id for v in venues if _duty_agencies(v, rules) & staffed}
    return days_needed <= 7 and len(workable) >= rules.joint_ops_required


@BOUNDED
@given(duty_worlds(ample=True))
def test_with_every_agency_out_every_day_the_plan_serves_every_due_duty(world: World) -> None:
    venues, officers, rules = world
    assume(_ample_enough(venues, officers, rules))
    plan = plan_week(MONDAY, venues, officers, rules)
    assert check(plan, venues, officers, rules) == []


def _three_agency_world() -> World:
    duties = (Duty("police", "hotel", 28), Duty("culture_tourism", "ktv", 14), Duty("education", "training", 30))
    venues = [
        PlanVenue(1, 108.300, 30.01, 100, f"{TOWN}100/", venue_type="hotel", listed_on=MONDAY),
        PlanVenue(2, 108.302, 30.01, 100, f"{TOWN}100/", venue_type="ktv",
                  last_by_agency=(("culture_tourism", MONDAY - timedelta(days=10)),)),  # due Thursday
        PlanVenue(3, 108.304, 30.01, 100, f"{TOWN}100/", venue_type="training", listed_on=MONDAY, is_key=True),
    ]
    officers = [PlanOfficer(1, "police", TOWN, frozenset({0})), PlanOfficer(2, "culture_tourism", TOWN, frozenset({0})),
                PlanOfficer(3, "education", TOWN, frozenset({1}))]
    return venues, officers, PlanRules(daily_capacity=4, min_team_size=1, joint_ops_required=0, duties=duties)


def test_each_venue_goes_to_the_agency_whose_duty_it_is() -> None:
    venues, officers, rules = _three_agency_world()
    plan = plan_week(MONDAY, venues, officers, rules)
    assert check(plan, venues, officers, rules) == []
    teams = _team_of(plan, officers)
    assert teams[2] >= {"culture_tourism"} and teams[3] == {"education"}
    assert plan.reasons[2] == "duty_due" and plan.reasons[3] == "key_venue"


def test_the_checker_names_a_venue_planned_to_a_team_without_its_duty() -> None:
    venues, officers, rules = _three_agency_world()
    plan = plan_week(MONDAY, venues, officers, rules)
    education = next(t for t in plan.teams if t.member_ids == (3,))
    education.venue_ids, education.legs_m, education.distance_m = [3, 1], [0.0, 0.0], 0.0
    moved = [t for t in plan.teams if t is education or 1 not in t.venue_ids]
    for t in moved:
        if t is not education:
            t.venue_ids = [v for v in t.venue_ids if v != 1]
    plan.teams = moved
    violations = check(plan, venues, officers, rules)
    [wrong] = [v for v in violations if v.code == "venue_without_duty"]
    assert wrong.refs["venue"] == 1 and "旅馆/酒店" in wrong.message_zh


def test_a_lapsed_duty_left_out_is_named_with_its_agency_and_makes_the_venue_urgent() -> None:
    venues, officers, rules = _three_agency_world()
    lapsed = replace(venues[0], listed_on=MONDAY - timedelta(days=40))  # police: 28 days, lapsed 12 days ago
    tuesday_police = [replace(o, weekdays=frozenset({1})) if o.agency == "police" else o for o in officers]
    # Police only work Tuesdays: the lapsed hotel waits for them rather than going to the culture
    # officer's Monday team (no duty for hotels).
    plan = plan_week(MONDAY, [lapsed, *venues[1:]], tuesday_police, rules)
    assert plan.reasons[1] == "duty_lapsed"
    assert check(plan, [lapsed, *venues[1:]], tuesday_police, rules) == []
    assert "police" in _team_of(plan, tuesday_police)[1]
    plan.teams = [t for t in plan.teams if 1 not in t.venue_ids]
    [missed] = [v for v in check(plan, [lapsed, *venues[1:]], tuesday_police, rules)
                if v.code == "duty_frequency_missed"]
    assert missed.refs == {"venue": 1, "agency": "police", "deadline": (MONDAY - timedelta(days=12)).isoformat()}
    assert "公安" in missed.message_zh and "已逾期" in missed.message_zh


def test_a_duty_of_an_agency_without_officers_here_is_named_once_and_others_may_visit() -> None:
    venues, officers, rules = _three_agency_world()
    # Listed 100 days ago: the police duty (28 days) and the 卫健 one (90 days) have both lapsed.
    hotels = [replace(venues[0], id=10 + i, listed_on=MONDAY - timedelta(days=100)) for i in range(3)]
    shared = replace(rules, duties=(*(rules.duties or ()), Duty("health", "hotel", 90)))
    plan = plan_week(MONDAY, hotels, officers, shared)  # nobody of 卫健 in the town
    assert plan.planned_ids() == {10, 11, 12}  # police serve their own lapsed duty
    violations = check(plan, hotels, officers, shared)
    assert [(v.code, v.refs) for v in violations] == [("duty_unstaffed", {"agency": "health", "venues": 3})]


def test_a_type_nobody_has_a_duty_for_is_never_planned_even_when_key() -> None:
    venues, officers, rules = _three_agency_world()
    bar = PlanVenue(9, 108.306, 30.01, 100, f"{TOWN}100/", venue_type="bar", is_key=True)
    plan = plan_week(MONDAY, [*venues, bar], officers, rules)
    assert 9 not in plan.planned_ids()
    codes = {v.code for v in check(plan, [*venues, bar], officers, rules)}
    assert codes == {"key_venue_unplanned", "venue_type_without_duty"}


def test_an_agency_whose_only_officer_cannot_be_teamed_is_named_once_not_per_venue() -> None:
    """A 卫健 officer who works only at weekends, when nobody else does, is in no team: the checker names
    the health duty once with its count (as for an agency with no officer), not once per venue."""
    duties = (Duty("health", "hotel", 1), Duty("police", "hotel", 28))
    rules = PlanRules(duties=duties, min_team_size=2)
    venues = [PlanVenue(id=i, lon=108.3 + i / 1000, lat=30.0, area_id=1, area_path="/1/", venue_type="hotel",
                        listed_on=MONDAY - timedelta(days=30)) for i in range(1, 4)]
    officers = [PlanOfficer(id=100, agency="health", scope_path="/1/", weekdays=frozenset({5, 6})),
                PlanOfficer(id=101, agency="police", scope_path="/1/", weekdays=frozenset(range(5))),
                PlanOfficer(id=102, agency="police", scope_path="/1/", weekdays=frozenset(range(5)))]
    violations = check(plan_week(MONDAY, venues, officers, rules), venues, officers, rules)
    assert [v.refs for v in violations if v.code == "duty_unstaffed"] == [{"agency": "health", "venues": 3}]
    assert not [v for v in violations if v.code == "duty_frequency_missed" and v.refs["agency"] == "health"]


def test_venues_of_a_type_no_agency_inspects_are_named_once_per_type() -> None:
    """A county list that leaves a type out drops its venues from every plan: the checker says so once
    per type with the count, rather than nothing for the non-key ones."""
    rules = PlanRules(duties=(Duty("police", "hotel", 28),), min_team_size=1)
    venues = [PlanVenue(id=i, lon=108.3, lat=30.0, area_id=1, area_path="/1/",
                        venue_type="esports_hotel" if i < 3 else "hotel") for i in range(1, 5)]
    officers = [PlanOfficer(id=100, agency="police", scope_path="/1/", weekdays=frozenset(range(5)))]
    violations = check(plan_week(MONDAY, venues, officers, rules), venues, officers, rules)
    assert [v.refs for v in violations if v.code == "venue_type_without_duty"] == [
        {"venue_type": "esports_hotel", "venues": 2}]
