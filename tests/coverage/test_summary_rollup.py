"""The coverage summary's roll-up: a unit's figures read from its one summary row equal the sum over
its grids, each grid counted by the rule of the town it is in, for any tree and any set of towns that
count approved visits only (nested settings included)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from backend.coverage import summary

# A tree of ids under a root: each node's path is its parent's path plus its id.
_trees = st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=40)


def _paths(parents: list[int]) -> dict[int, str]:
    """Node i+1's parent is parents[i] reduced to an earlier node (0 is the root)."""
    paths = {0: "/100/"}
    for index, raw in enumerate(parents, start=1):
        parent = raw % index
        paths[index] = f"{paths[parent]}{100 + index}/"
    return {100 + node: path for node, path in paths.items()}


@st.composite
def _worlds(draw: st.DrawFn) -> tuple[dict[int, str], dict[int, summary.Figures], set[int]]:
    paths = _paths(draw(_trees))
    leaves = [u for u, p in paths.items() if not any(q != p and q.startswith(p) for q in paths.values())]
    per_grid: dict[int, summary.Figures] = {}
    for grid in leaves:
        households = draw(st.integers(0, 50))
        visited = draw(st.integers(0, households))
        approved = draw(st.integers(0, visited))
        never = draw(st.integers(0, households - visited))
        never_approved = draw(st.integers(never, households - approved))
        per_grid[grid] = {**summary.zero(), "households": households, "visited": visited,
                          "visited_approved": approved, "never_visited": never,
                          "never_visited_approved": never_approved, "risk_major": draw(st.integers(0, 5))}
    strict = set(draw(st.lists(st.sampled_from(sorted(paths)), max_size=4)))
    return paths, per_grid, strict


@settings(max_examples=300, deadline=None)
@given(_worlds())
def test_every_unit_reads_the_sum_of_its_grids_by_each_grids_rule(
        world: tuple[dict[int, str], dict[int, summary.Figures], set[int]]) -> None:
    paths, per_grid, strict_ids = world
    rows = summary.rolled_up(paths, per_grid)
    strict_paths = summary.outermost(paths[i] for i in strict_ids)
    strict = {p: rows.get(next(u for u, q in paths.items() if q == p), summary.zero()) for p in strict_paths}
    for unit, path in paths.items():
        got = summary.effective(path, rows.get(unit, summary.zero()), strict)
        want = summary.zero()
        for grid, figures in per_grid.items():
            if not paths[grid].startswith(path):
                continue
            approved_only = any(paths[grid].startswith(paths[s]) for s in strict_ids)
            for key in summary.FIGURES:
                want[key] += figures[key]
            if approved_only:
                want["visited"] += figures["visited_approved"] - figures["visited"]
                want["never_visited"] += figures["never_visited_approved"] - figures["never_visited"]
        assert {k: got[k] for k in ("households", "visited", "never_visited", "risk_major")} == \
            {k: want[k] for k in ("households", "visited", "never_visited", "risk_major")}, (unit, path)
