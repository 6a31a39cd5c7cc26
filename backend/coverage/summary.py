"""The coverage summary (覆盖汇总): one row per unit and standard period, rolled up from its grids.

Counting a town's 50,000 households against their visits takes most of a second; a coordinator's map
asks for it on every drill. The worker job `coverage.refresh` counts every grid once per standard
period and writes a row for each grid *and for each unit above it* (the grid's figures added to
every unit on its path), so a request reads one row per unit it shows, whatever the size of the
area: the figures of a town's 50 villages are 50 primary-key reads, not a join over a million rows.

Every figure is a count of households or children, which are each in exactly one grid, so the sums
are exact. A row keeps the visit figures by both rules of backend/reviews (every visit not
rejected, and approved visits only); which one a unit reads is decided at read time from the towns'
current settings, so changing a setting never leaves the summary counting by the old rule:

- a unit inside (or equal to) a unit that counts approved visits only reads the approved figures;
- a unit above such units reads its own figures with, for each of them, the difference between the
  two rules taken out: visited(T) - sum over S (visited(S) - visited_approved(S)). Only the
  outermost approved-only units take part, so a setting at two nested levels is not subtracted twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel import Session, col, delete, select

from backend.coverage.models import CoverageUnitStat
from backend.orgunits.models import OrgUnit

FIGURES = ("households", "visited", "never_visited", "visited_approved", "never_visited_approved",
           "mismatch_visits", "risk_low", "risk_general", "risk_major", "risk_severe", "risk_none")
# The figures the two rules count differently, with the column each reads under approved-only.
BY_RULE = {"visited": "visited_approved", "never_visited": "never_visited_approved"}

Figures = dict[str, int]


def zero() -> Figures:
    return dict.fromkeys(FIGURES, 0)


def path_ids(path: str) -> list[int]:
    """The ids on a materialised path ("/1/2/3/": 1, 2 and 3, the unit itself last)."""
    return [int(part) for part in path.strip("/").split("/") if part]


def rolled_up(grid_paths: Mapping[int, str], per_grid: Mapping[int, Figures]) -> dict[int, Figures]:
    """Each grid's figures added to the grid and to every unit above it."""
    out: dict[int, Figures] = {}
    for grid_id, figures in per_grid.items():
        for unit_id in path_ids(grid_paths[grid_id]):
            acc = out.get(unit_id)
            if acc is None:
                acc = out[unit_id] = zero()
            for key in FIGURES:
                acc[key] += figures.get(key, 0)
    return out


def outermost(paths: Iterable[str]) -> list[str]:
    """The paths not inside another of them."""
    ordered = sorted(set(paths))
    kept: list[str] = []
    for path in ordered:
        if not any(path.startswith(k) for k in kept):
            kept.append(path)
    return kept


def effective(target_path: str, own: Figures, strict: Mapping[str, Figures]) -> Figures:
    """A unit's figures by the rules in force: `strict` maps the path of each outermost
    approved-only unit to its row."""
    result = dict(own)
    if any(target_path.startswith(path) for path in strict):
        for figure, approved in BY_RULE.items():
            result[figure] = own[approved]
        return result
    for path, row in strict.items():
        if path.startswith(target_path) and path != target_path:
            for figure, approved in BY_RULE.items():
                result[figure] -= row[figure] - row[approved]
    return result


@dataclass(frozen=True)
class UnitPlace:
    unit_id: int
    path: str


def _approved_only_paths(session: Session) -> list[str]:
    return outermost(str(p) for p in session.execute(text(
        "SELECT u.path FROM review_setting s JOIN org_unit u ON u.id = s.org_unit_id WHERE s.approved_only"
    )).scalars())


def read(session: Session, period_key: str, target_ids: Iterable[int]) -> dict[int, Figures]:
    """The summary figures of each target unit by its current counting rule (units with no grid
    below them read zeros)."""
    ids = list(target_ids)
    if not ids:
        return {}
    strict_paths = _approved_only_paths(session)
    places = dict(session.execute(select(col(OrgUnit.path), col(OrgUnit.id)).where(
        col(OrgUnit.path).in_(strict_paths))).all()) if strict_paths else {}
    target_paths = {int(i): str(p) for i, p in session.execute(
        select(col(OrgUnit.id), col(OrgUnit.path)).where(col(OrgUnit.id).in_(ids))).all()}
    wanted = set(ids) | {int(i) for i in places.values()}
    rows: dict[int, Figures] = {}
    for row in session.execute(select(CoverageUnitStat).where(
            col(CoverageUnitStat.period_key) == period_key, col(CoverageUnitStat.unit_id).in_(wanted))).scalars():
        rows[row.unit_id] = {key: int(getattr(row, key)) for key in FIGURES}
    strict = {path: rows.get(int(unit_id), zero()) for path, unit_id in places.items()}
    return {i: effective(target_paths.get(i, ""), rows.get(i, zero()), strict) for i in ids}


def households_at_refresh(session: Session, period_key: str, unit_id: int) -> int | None:
    """The unit's households when the summary was last refreshed (None: no row)."""
    value = session.execute(select(col(CoverageUnitStat.households)).where(
        col(CoverageUnitStat.period_key) == period_key, col(CoverageUnitStat.unit_id) == unit_id)).scalar()
    return None if value is None else int(value)


def write(session: Session, period_key: str, per_grid: Mapping[int, Figures]) -> int:
    """Replace the period's rows with the grids' figures rolled up to every unit; returns the
    number of rows."""
    grid_paths = {int(i): str(p) for i, p in session.execute(
        text("SELECT id, path FROM org_unit WHERE level = 'grid'")).all()}
    units = rolled_up(grid_paths, {g: f for g, f in per_grid.items() if g in grid_paths})
    session.execute(delete(CoverageUnitStat).where(col(CoverageUnitStat.period_key) == period_key))
    rows = [{"period_key": period_key, "unit_id": unit_id, **figures} for unit_id, figures in units.items()]
    for start in range(0, len(rows), 5000):
        session.execute(CoverageUnitStat.__table__.insert(), rows[start:start + 5000])  # type: ignore[attr-defined]
    return len(rows)
