"""Driving order inside one team's day: nearest neighbour from every start, then 2-opt.

Open paths (the team starts at the first venue and ends at the last). Distances are great-circle
metres, a straight-line estimate: no road network is needed for the order to be sensible.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from backend.schedules.rules import PlanVenue, metres

EPSILON_M = 1.0


def path_length(order: Sequence[PlanVenue]) -> float:
    return sum(metres(a, b) for a, b in itertools.pairwise(order))


def _nearest_neighbour(stops: Sequence[PlanVenue], start: int, d: list[list[float]]) -> list[int]:
    left = set(range(len(stops))) - {start}
    order = [start]
    while left:
        here = order[-1]
        nxt = min(left, key=lambda j: (d[here][j], j))
        order.append(nxt)
        left.remove(nxt)
    return order


def two_opt_gain(order: Sequence[int], i: int, j: int, d: list[list[float]]) -> float:
    """How much shorter the open path gets by reversing order[i..j] (positive = shorter)."""
    n = len(order)
    before = (d[order[i - 1]][order[i]] if i > 0 else 0.0) + (d[order[j]][order[j + 1]] if j < n - 1 else 0.0)
    after = (d[order[i - 1]][order[j]] if i > 0 else 0.0) + (d[order[i]][order[j + 1]] if j < n - 1 else 0.0)
    return before - after


def _two_opt(order: list[int], d: list[list[float]]) -> list[int]:
    n = len(order)
    improved = True
    while improved:
        improved = False
        for i in range(n - 1):
            for j in range(i + 1, n):
                if two_opt_gain(order, i, j, d) > 1e-9:
                    order[i:j + 1] = reversed(order[i:j + 1])
                    improved = True
    return order


def distance_matrix(stops: Sequence[PlanVenue]) -> list[list[float]]:
    return [[metres(a, b) for b in stops] for a in stops]


def best_route(stops: Sequence[PlanVenue]) -> tuple[list[PlanVenue], list[float]]:
    """The stops in driving order and the leg before each (0 for the first)."""
    if len(stops) <= 1:
        return list(stops), [0.0] * len(stops)
    d = distance_matrix(stops)
    best: list[int] | None = None
    best_len = float("inf")
    for start in range(len(stops)):
        order = _two_opt(_nearest_neighbour(stops, start, d), d)
        length = sum(d[a][b] for a, b in itertools.pairwise(order))
        if length < best_len - 1e-9:
            best, best_len = order, length
    assert best is not None
    legs = [0.0] + [d[a][b] for a, b in itertools.pairwise(best)]
    return [stops[i] for i in best], legs


def improving_move(stops: Sequence[PlanVenue]) -> tuple[int, int, float] | None:
    """A 2-opt reversal that would shorten the path by more than a metre, if any."""
    d = distance_matrix(stops)
    order = list(range(len(stops)))
    for i in range(len(order) - 1):
        for j in range(i + 1, len(order)):
            gain = two_opt_gain(order, i, j, d)
            if gain > EPSILON_M:
                return i, j, gain
    return None
