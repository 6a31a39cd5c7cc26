"""The awareness rate roll-up (知晓率汇总): pure functions over per-school figures, no database.

A school's figure in a period is one round opened in the period (a re-survey after teaching replaces
the first, it does not add to it): of the rounds opened by the highest unit that ran one there (nearest
the root: a county's round outranks a town's, a town's a village's), the latest closed one, or while that
unit has none closed, its open one. So a lower unit's quick round never replaces a higher unit's figure,
and a re-survey replaces the figure only once it is closed, never with its first few answers. A unit's
rate is the knowing over the responses of the schools under it (each respondent weighs the same, not
each school); None while nobody answered.
`participation` is answers over enrolled students, each school's answers counted up to its enrolment.
Seed 003 sets the target: 100 %; it is met only when every school was surveyed and at each school at
least MIN_PARTICIPATION of the students answered."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

TARGET = 1.0
# A rate read from a few of a school's pupils says little about the school: the target counts as met
# only when at least this share of the enrolled students answered (a unit: of its schools' students).
MIN_PARTICIPATION = 0.8


@dataclass(frozen=True)
class SchoolFigure:
    """One school in the period: where it rolls up to, its enrolment and its latest round's counts."""

    institution_id: int
    group_id: int  # the child unit it rolls up to (or the asked unit itself for a school directly in it)
    students: int
    round_id: int | None  # None: no round in the period
    responses: int = 0
    knowing: int = 0


@dataclass
class Tally:
    schools: int = 0
    schools_surveyed: int = 0
    students: int = 0
    responses: int = 0
    knowing: int = 0
    without_survey: list[int] = field(default_factory=list)
    # Answers counted towards participation: a school's at most its enrolment (the cap allows a few
    # more), so one school's extra answers never cover another school's missing ones.
    participating: int = 0
    # Surveyed schools where fewer than MIN_PARTICIPATION of the enrolled students answered.
    schools_short: int = 0

    def add(self, figure: SchoolFigure) -> None:
        self.schools += 1
        self.students += figure.students
        if figure.round_id is None:
            self.without_survey.append(figure.institution_id)
            return
        self.schools_surveyed += 1
        self.responses += figure.responses
        self.knowing += figure.knowing
        self.participating += min(figure.responses, figure.students)
        if figure.responses < MIN_PARTICIPATION * figure.students:
            self.schools_short += 1

    def public(self) -> dict[str, Any]:
        value = rate(self.knowing, self.responses)
        return {
            "schools": self.schools,
            "schools_surveyed": self.schools_surveyed,
            "schools_without_survey": len(self.without_survey),
            "students": self.students,
            "responses": self.responses,
            "knowing": self.knowing,
            "rate": value,
            "participation": rate(self.participating, self.students),
            "target": TARGET,
            "meets_target": (value is not None and value >= TARGET and not self.without_survey
                             and self.schools_short == 0),
            "min_participation": MIN_PARTICIPATION,
        }


def rate(part: int, whole: int) -> float | None:
    """part / whole to four places, None when the whole is nothing."""
    return None if whole <= 0 else round(part / whole, 4)


@dataclass(frozen=True)
class RoundSeen:
    """A round opened in the period, as far as choosing the school's figure goes."""

    institution_id: int
    round_id: int
    opened_at: Any
    opener_depth: int  # how far below the root the opener's unit lies (province 1, county 3, village 5)
    closed: bool


def counted_rounds(rounds: Iterable[RoundSeen]) -> dict[int, int]:
    """school id -> the round its figure comes from: the highest opener first, then a closed round before
    an open one, then the latest opened (ties to the higher id)."""
    best: dict[int, tuple[Any, ...]] = {}
    for seen in rounds:
        key = (-seen.opener_depth, seen.closed, seen.opened_at, seen.round_id)
        if seen.institution_id not in best or key > best[seen.institution_id]:
            best[seen.institution_id] = key
    return {school: int(key[-1]) for school, key in best.items()}


def roll_up(figures: Sequence[SchoolFigure], groups: Sequence[int]) -> tuple[Tally, dict[int, Tally]]:
    """The total and one tally per group (every group listed, even with no school)."""
    total = Tally()
    by_group = {g: Tally() for g in groups}
    for figure in figures:
        total.add(figure)
        by_group.setdefault(figure.group_id, Tally()).add(figure)
    return total, by_group


def period_range(period: str) -> tuple[date, date] | None:
    """The China-date range of a period: "2026", "2026-H1", "2026-Q3" or "2026-05"; None if malformed."""
    try:
        year = int(period[:4])
        if not 2000 <= year <= 2100 or (len(period) > 4 and period[4] != "-"):
            return None
        rest = period[5:]
        if len(period) == 4:
            return date(year, 1, 1), date(year, 12, 31)
        if rest in ("H1", "H2"):
            first = 1 if rest == "H1" else 7
            return date(year, first, 1), _month_end(year, first + 5)
        if len(rest) == 2 and rest[0] == "Q" and rest[1] in "1234":
            first = (int(rest[1]) - 1) * 3 + 1
            return date(year, first, 1), _month_end(year, first + 2)
        if len(rest) == 2 and rest.isdigit() and 1 <= int(rest) <= 12:
            return date(year, int(rest), 1), _month_end(year, int(rest))
    except ValueError:
        return None
    return None


def _month_end(year: int, month: int) -> date:
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return date.fromordinal(following.toordinal() - 1)
