"""Benchmark: plan a week for a synthetic county of 5,000 venues and 200 officers.

Prints the time the planner takes (target: under 10 s on a 2-core machine) and the checker's
verdict. Pure computation on the planner's inputs: no database is involved, so the figure is the
algorithm's own cost (gathering inputs from the database is a few grouped queries on top).

    uv run python scripts/bench_schedule.py [--venues 5000] [--officers 200] [--seed 7] [--json PATH]
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from datetime import date, timedelta

from benchkit import Figure, add_json_option, write_json

from backend.schedules.checker import check
from backend.schedules.planner import plan_week
from backend.schedules.rules import PlanOfficer, PlanRules, PlanVenue

TOWNS, VILLAGES_PER_TOWN = 20, 15


def synthetic_county(n_venues: int, n_officers: int, seed: int) -> tuple[list[PlanVenue], list[PlanOfficer]]:
    """Towns on a 5x4 grid of 0.1-degree cells, each with 15 villages; venues clustered by village;
    officers at town level (police and market supervision), a few at county level."""
    rng = random.Random(seed)
    county = "/1/2/3/"
    villages: list[tuple[int, str, float, float]] = []
    town_paths: list[str] = []
    next_id = 100
    for t in range(TOWNS):
        town_id = next_id
        next_id += 1
        town_path = f"{county}{town_id}/"
        town_paths.append(town_path)
        west, south = 108.0 + (t % 5) * 0.1, 30.0 + (t // 5) * 0.1
        for v in range(VILLAGES_PER_TOWN):
            vid = next_id
            next_id += 1
            villages.append((vid, f"{town_path}{vid}/", west + (v % 5) * 0.02 + 0.01, south + (v // 5) * 0.033 + 0.016))
    venues = []
    for i in range(n_venues):
        vid, path, lon, lat = villages[rng.randrange(len(villages))]
        venues.append(PlanVenue(
            id=i + 1, lon=lon + rng.uniform(-0.009, 0.009), lat=lat + rng.uniform(-0.015, 0.015), area_id=vid,
            area_path=path, risk=int(rng.betavariate(2, 5) * 100), is_key=rng.random() < 0.33,
            has_overdue=rng.random() < 0.03, carried_over=rng.random() < 0.02))
    officers = []
    agencies = ("police", "market_supervision")
    for j in range(n_officers):
        scope = county if j < n_officers // 20 else town_paths[j % TOWNS]
        days = frozenset(d for d in range(5) if rng.random() < 0.85) or frozenset({0})
        officers.append(PlanOfficer(id=10_000 + j, agency=agencies[(j // TOWNS) % 2], scope_path=scope, weekdays=days))
    return venues, officers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venues", type=int, default=5000)
    parser.add_argument("--officers", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--capacity", type=int, default=8)
    add_json_option(parser)
    args = parser.parse_args()
    venues, officers = synthetic_county(args.venues, args.officers, args.seed)
    rules = PlanRules(daily_capacity=args.capacity, min_team_size=2, joint_ops_required=2, high_risk_threshold=80)
    monday = date(2026, 11, 30)
    assert monday.weekday() == 0
    started = time.perf_counter()
    plan = plan_week(monday, venues, officers, rules)
    planned_in = time.perf_counter() - started
    started = time.perf_counter()
    violations = check(plan, venues, officers, rules)
    checked_in = time.perf_counter() - started
    planned = plan.planned_ids()
    keys = sum(1 for v in venues if v.is_key)
    print(f"venues {len(venues)} (key {keys}), officers {len(officers)}, week {monday} to {monday + timedelta(6)}")
    print(f"plan generated in {planned_in:.2f} s: {len(plan.teams)} team-days, {len(planned)} venues planned, "
          f"{sum(1 for t in plan.teams if t.is_joint)} joint team-days, {plan.total_distance_m / 1000:.0f} km in all")
    print(f"checker ran in {checked_in:.2f} s: "
          + ("PASS, no violations" if not violations else f"{len(violations)} violations"))
    for code, n in Counter(v.code for v in violations).most_common():
        print(f"  {code}: {n}")
    print(f"target < 10 s: {'met' if planned_in < 10 else 'NOT met'}")
    verdict = "checker PASS" if not violations else f"checker: {len(violations)} violations"
    write_json(args.json, [
        Figure(f"weekly plan, {len(venues):,} venues and {len(officers)} officers", planned_in, "s", 10, "le",
               note=f"{verdict}; {len(planned):,} venues planned"),
        Figure("weekly plan, checker violations", len(violations), "violations", 0, "le",
               note=f"checker ran in {checked_in:.2f} s"),
    ])


if __name__ == "__main__":
    main()
