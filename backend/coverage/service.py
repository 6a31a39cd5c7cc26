"""Coverage numbers per unit, counted with one aggregate query per measure, grouped by unit.

Every query maps records to the "target" units being reported (the children of the unit asked
for, or an explicit set such as the units of a map tile) through the materialised path: a record
of unit u belongs to target t when t.path <= u.path < t.path's upper bound. That keeps each count
one GROUP BY over indexed joins on both PostGIS and SpatiaLite, never a loop per unit.

Visits: a visit row that a later amendment replaces does not count (an amendment points at the
visit it corrects with `amends_id`; a chain of amendments all point at the first visit or at the
previous amendment). A household counts as visited in a period when an effective visit with
outcome "visited" is placed inside it; "never visited" means no such visit before the period's end.
Households in scope are those placed before the period's end. Records are placed by `counted_at`:
the phone's time when plausible, else the server's receipt time (backend/core/placement.py).

Review of field work (backend/reviews): a visit a coordinator rejected never counts; in a town that
chose to count approved visits only (`review_setting.approved_only`) only approved ones do. The
summary keeps both figures, so a county mixing towns reads each town by its own rule (summary.py), and
every figure says which rule it used (`counting`: all, approved_only, or mixed for a unit whose towns
differ).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import BindParameter, Date, DateTime, Integer, TextClause, bindparam, select, text
from sqlmodel import Session, col

from backend.accounts import scope
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.campaigns import service as campaigns
from backend.campaigns.service import Period
from backend.core import clock
from backend.core.config import get_settings
from backend.core.db import dialect_insert
from backend.core.pagination import decode_cursor, encode_cursor
from backend.coverage import rules, summary
from backend.coverage.models import CoverageSummaryState
from backend.helpers import service as helpers
from backend.inspections.models import OPEN_STATUSES
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit, subtree_upper_bound
from backend.referrals.models import ReferralStatus
from backend.registry.idnumber import mask_name
from backend.registry.models import Household, Person, RiskLevel

# Children are counted under each level's code (the risk vocabulary, backend/registry/models.py).
RISK_KEYS: dict[str | None, str] = {**{level.value: level.code for level in RiskLevel}, None: "none"}
REFERRAL_STATES = tuple(s.value for s in ReferralStatus)
CASE_FIGURES = ("open", "active", "opened", "closed")
SERVICE_FIGURES = ("in_progress", "overdue", "done")

# ----------------------------------------------------------------------------- numbers


@dataclass
class UnitNumbers:
    """What a coordinator reads for one unit and one period."""

    unit_id: int
    households: int = 0
    visited: int = 0
    never_visited: int = 0
    mismatch_visits: int = 0
    children: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RISK_KEYS.values(), 0))
    problems_open: int = 0
    problems_overdue: int = 0
    referrals: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*REFERRAL_STATES, "overdue"), 0))
    overdue_followups: int = 0
    # Cases (个案) and their services, and mandatory reports by where they came from (issue 16): counts
    # only, never a name. `open`/`active`/`in_progress`/`overdue` are as of now; `opened`, `closed`,
    # `done` and each source's count are within the period.
    cases: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CASE_FIGURES, 0))
    services: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SERVICE_FIGURES, 0))
    reports_by_source: dict[str, int] = field(default_factory=dict)
    # Which visits the figures count (backend/reviews): all, approved_only, or mixed; None until
    # known (a total before its first unit is added), read as all.
    counting: str | None = None

    @property
    def not_visited(self) -> int:
        return self.households - self.visited

    @property
    def percent(self) -> float | None:
        return round(100.0 * self.visited / self.households, 1) if self.households else None

    @property
    def high_risk_children(self) -> int:
        return self.children["major"] + self.children["severe"]

    def add(self, other: UnitNumbers) -> None:
        """Sum another unit's numbers into this one (for totals)."""
        self.households += other.households
        self.visited += other.visited
        self.never_visited += other.never_visited
        self.mismatch_visits += other.mismatch_visits
        for key, value in other.children.items():
            self.children[key] += value
        self.problems_open += other.problems_open
        self.problems_overdue += other.problems_overdue
        for key, value in other.referrals.items():
            self.referrals[key] += value
        self.overdue_followups += other.overdue_followups
        for key, value in other.cases.items():
            self.cases[key] += value
        for key, value in other.services.items():
            self.services[key] += value
        for key, value in other.reports_by_source.items():
            self.reports_by_source[key] = self.reports_by_source.get(key, 0) + value
        self.counting = merged_counting(self.counting, other.counting)

    def as_properties(self) -> dict[str, Any]:
        return {
            "households": self.households,
            "visited": self.visited,
            "not_visited": self.not_visited,
            "percent": self.percent,
            "never_visited": self.never_visited,
            "mismatch_visits": self.mismatch_visits,
            "children": dict(self.children),
            "high_risk_children": self.high_risk_children,
            "overdue_followups": self.overdue_followups,
            "problems_open": self.problems_open,
            "problems_overdue": self.problems_overdue,
            "referrals": dict(self.referrals),
            "cases": dict(self.cases),
            "services": dict(self.services),
            "reports_by_source": dict(sorted(self.reports_by_source.items())),
            "counting": self.counting or "all",
        }


@dataclass(frozen=True)
class Targets:
    """The units numbers are grouped by: children of a unit, or given ids."""

    parent_id: int | None = None
    ids: tuple[int, ...] | None = None
    level: str | None = None

    def condition(self) -> str:
        if self.parent_id is not None:
            return "parent_id = :target_parent"
        if self.ids is not None:
            return "id IN :target_ids"
        return "level = :target_level"

    def params(self) -> dict[str, Any]:
        if self.parent_id is not None:
            return {"target_parent": self.parent_id}
        if self.ids is not None:
            return {"target_ids": list(self.ids) or [-1]}
        return {"target_level": self.level}


def _mapping_cte(targets: Targets) -> str:
    return (
        "WITH target AS (SELECT id AS target_id, path AS lo, substr(path, 1, length(path) - 1) || '0' AS hi "
        f"FROM org_unit WHERE {targets.condition()}), "
        "unit_map AS (SELECT u.id AS unit_id, t.target_id FROM target t "
        "JOIN org_unit u ON u.path >= t.lo AND u.path < t.hi)"
    )


# A visit replaced by a later amendment (pointing at it, or at the same first visit) does not count.
# Two index-backed tests (ix_visit_amends_id), never an OR inside one subquery: PostgreSQL turns the
# first into a hash anti-join, and the second only runs for the few rows that are amendments.
def effective_visit(superseding: str = "") -> str:
    """No later version of the visit replaces it; `superseding`: the condition on that later version
    (an amendment that does not meet it does not replace the visit)."""
    extra = f" AND {superseding}" if superseding else ""
    return (
        f"NOT EXISTS (SELECT 1 FROM visit a WHERE a.amends_id = v.id AND a.id > v.id{extra}) "
        "AND (v.amends_id IS NULL OR NOT EXISTS (SELECT 1 FROM visit a WHERE a.amends_id = v.amends_id "
        f"AND a.id > v.id{extra}))"
    )


EFFECTIVE_VISIT = effective_visit()
# Review of field work (backend/reviews) decides which version of a visit counts. By default the
# latest version not rejected: a rejected amendment leaves the version before it in force. In a town
# that counts approved visits only, the latest approved version: an amendment waiting for review
# (a phone's correction, or an answer to "has issues") leaves the approved version counting until a
# coordinator approves the amendment, so no push can take an approved visit out of the figures.
COUNTS_ALL = "v.review_state <> 'rejected' AND " + effective_visit("a.review_state <> 'rejected'")
COUNTS_APPROVED = "v.review_state = 'approved' AND " + effective_visit("a.review_state = 'approved'")


@dataclass(frozen=True)
class View:
    """Whose records the numbers count. A unit's numbers count every record of the unit; a principal
    whose view is by assignment (a helper, backend/accounts/scope.py) counts only its own children
    and their households (visits, referrals and follow-ups of those), the condition every read
    applies, rendered as SQL for these aggregates."""

    households: str | None = None  # SELECT of the household ids counted; None: every one of the units
    children: str | None = None  # SELECT of the child ids counted

    @classmethod
    def of(cls, session: Session, principal: Principal) -> View:
        return cls(scope.assigned_ids_sql(session, principal, Household, action=Action.coverage_read),
                   scope.assigned_ids_sql(session, principal, Person, action=Action.coverage_read))

    @property
    def whole(self) -> bool:
        return self.households is None and self.children is None

    def household_ids(self, column: str) -> str:
        return f" AND {column} IN ({self.households})" if self.households is not None else ""

    def child_ids(self, column: str) -> str:
        return f" AND {column} IN ({self.children})" if self.children is not None else ""


WHOLE = View()


def _households_cte(view: View) -> str:
    return (
        ", hh AS (SELECT h.id AS household_id, m.target_id FROM household h "
        f"JOIN unit_map m ON m.unit_id = h.org_unit_id WHERE h.counted_at < :end_at{view.household_ids('h.id')})"
    )


_HOUSEHOLDS_CTE = _households_cte(WHOLE)
# The units of the towns that count approved visits only (backend/reviews): a handful of rows.
_APPROVED_ONLY_UNITS = (
    "SELECT u.id AS unit_id FROM review_setting s JOIN org_unit t ON t.id = s.org_unit_id "
    "JOIN org_unit u ON u.path >= t.path AND u.path < substr(t.path, 1, length(t.path) - 1) || '0' "
    "WHERE s.approved_only"
)
_APPROVED_ONLY_CTE = f", approved_only_unit AS ({_APPROVED_ONLY_UNITS})"


def counted_review(units: str | None = "SELECT unit_id FROM approved_only_unit") -> str:
    """Whether visit v counts: by COUNTS_APPROVED in the approved-only towns' `units`, else by
    COUNTS_ALL (`units` None: no town counts approved visits only, the common case, whose query keeps
    the anti-joins free of an OR)."""
    if units is None:
        return COUNTS_ALL
    return (f"((v.org_unit_id IN ({units}) AND {COUNTS_APPROVED}) "
            f"OR (v.org_unit_id NOT IN ({units}) AND {COUNTS_ALL}))")


def any_approved_only(session: Session) -> bool:
    return session.execute(text("SELECT 1 FROM review_setting WHERE approved_only")).first() is not None


def _visited_cte(strict: bool) -> str:
    return (_APPROVED_ONLY_CTE if strict else "") + (
        ", hv AS (SELECT v.household_id, max(CASE WHEN v.counted_at >= :start_at THEN 1 ELSE 0 END) AS in_period "
        "FROM visit v JOIN hh ON hh.household_id = v.household_id "
        f"WHERE v.outcome = 'visited' AND v.counted_at < :end_at AND {counted_review() if strict else COUNTS_ALL} "
        "GROUP BY v.household_id)"
    )


# The summary's two rules at once (see COUNTS_ALL and COUNTS_APPROVED).
_VISITED_BOTH_CTE = (
    ", vv AS (SELECT v.household_id, v.counted_at, "
    f"CASE WHEN {COUNTS_ALL} THEN 1 ELSE 0 END AS by_all, "
    f"CASE WHEN {COUNTS_APPROVED} THEN 1 ELSE 0 END AS by_approved "
    "FROM visit v JOIN hh ON hh.household_id = v.household_id "
    "WHERE v.outcome = 'visited' AND v.counted_at < :end_at AND v.review_state <> 'rejected'), "
    "hv AS (SELECT household_id, "
    "max(CASE WHEN by_all = 1 AND counted_at >= :start_at THEN 1 ELSE 0 END) AS in_period, max(by_all) AS ever, "
    "max(CASE WHEN by_approved = 1 AND counted_at >= :start_at THEN 1 ELSE 0 END) AS in_period_ok, "
    "max(by_approved) AS ever_ok FROM vv GROUP BY household_id)"
)


def _sql(body: str, targets: Targets) -> TextClause:
    statement = text(_mapping_cte(targets) + body)
    binds: list[BindParameter[Any]] = [
        bindparam("start_at", type_=DateTime(timezone=True)),
        bindparam("end_at", type_=DateTime(timezone=True)),
        bindparam("now", type_=DateTime(timezone=True)),
        bindparam("today", type_=Date()),
        *[bindparam(name, type_=DateTime(timezone=True)) for name in FOLLOWUP_CUTOFFS.values()],
    ]
    if targets.ids is not None:
        binds.append(bindparam("target_ids", expanding=True, type_=Integer()))
    return statement.bindparams(*[b for b in binds if f":{b.key}" in statement.text])


def period_params(period: Period, targets: Targets) -> dict[str, Any]:
    now = clock.now()
    return {
        "start_at": period.start_at,
        "end_at": period.end_at,
        "now": now,
        "today": clock.china_date(now),
        **targets.params(),
    }


def run_grouped(session: Session, body: str, targets: Targets, params: dict[str, Any]) -> Sequence[Any]:
    """Run one grouped measure. On PostgreSQL JIT is switched off for the transaction: these
    aggregates are costed high enough to trigger it, and compiling takes longer (0.5-1 s) than
    running them."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))
    statement = _sql(body, targets)
    used = {k: v for k, v in params.items() if f":{k}" in statement.text}
    return session.execute(statement, used).all()


def _household_numbers(session: Session, targets: Targets, params: dict[str, Any],
                       out: dict[int, UnitNumbers], view: View = WHOLE,
                       approved: dict[int, tuple[int, int]] | None = None) -> None:
    """Households, visited, never visited, mismatches and children per target, by the towns' rules;
    given `approved` (the summary), visited and never visited by every visit not rejected, and the
    same two counting approved visits only into `approved`, whatever the towns chose now."""
    if approved is None:
        rows = run_grouped(session, _households_cte(view) + _visited_cte(any_approved_only(session)) + (
            " SELECT hh.target_id, count(*), coalesce(sum(hv.in_period), 0), "
            "sum(CASE WHEN hv.household_id IS NULL THEN 1 ELSE 0 END), 0, 0 "
            "FROM hh LEFT JOIN hv ON hv.household_id = hh.household_id GROUP BY hh.target_id"
        ), targets, params)
    else:
        rows = run_grouped(session, _households_cte(view) + _VISITED_BOTH_CTE + (
            " SELECT hh.target_id, count(*), coalesce(sum(hv.in_period), 0), "
            "sum(CASE WHEN coalesce(hv.ever, 0) = 0 THEN 1 ELSE 0 END), coalesce(sum(hv.in_period_ok), 0), "
            "sum(CASE WHEN coalesce(hv.ever_ok, 0) = 0 THEN 1 ELSE 0 END) "
            "FROM hh LEFT JOIN hv ON hv.household_id = hh.household_id GROUP BY hh.target_id"
        ), targets, params)
    for target_id, households, visited, never, visited_ok, never_ok in rows:
        n = out[int(target_id)]
        n.households, n.visited, n.never_visited = int(households), int(visited), int(never)
        if approved is not None:
            approved[int(target_id)] = (int(visited_ok), int(never_ok))
    rows = run_grouped(session, _households_cte(view) + (
        " SELECT hh.target_id, count(*) FROM visit v JOIN hh ON hh.household_id = v.household_id "
        "WHERE v.location_mismatch = :flag AND v.counted_at >= :start_at AND v.counted_at < :end_at "
        f"AND {EFFECTIVE_VISIT} GROUP BY hh.target_id"
    ), targets, {**params, "flag": True})
    for target_id, count in rows:
        out[int(target_id)].mismatch_visits = int(count)
    rows = run_grouped(session, (
        " SELECT m.target_id, p.risk_level, count(*) FROM person p JOIN unit_map m ON m.unit_id = p.org_unit_id "
        f"WHERE p.role = 'child' AND p.retired_at IS NULL{view.child_ids('p.id')} GROUP BY m.target_id, p.risk_level"
    ), targets, params)
    for target_id, level, count in rows:
        key = RISK_KEYS.get(level, "none")
        out[int(target_id)].children[key] += int(count)


def _live_numbers(session: Session, targets: Targets, params: dict[str, Any],
                  out: dict[int, UnitNumbers], view: View = WHOLE) -> None:
    """Problems and referrals: small tables, always counted live."""
    open_statuses = ", ".join(f"'{s.value}'" for s in OPEN_STATUSES)
    rows = run_grouped(session, (
        " SELECT m.target_id, count(*), "
        "sum(CASE WHEN p.status = 'overdue' OR p.deadline_date < :today THEN 1 ELSE 0 END) "
        "FROM venue_problem p JOIN unit_map m ON m.unit_id = p.org_unit_id "
        f"WHERE p.status IN ({open_statuses}) GROUP BY m.target_id"
    ), targets, params)
    for target_id, open_count, overdue in rows:
        out[int(target_id)].problems_open, out[int(target_id)].problems_overdue = int(open_count), int(overdue or 0)
    rows = run_grouped(session, (
        " SELECT m.target_id, r.status, "
        "sum(CASE WHEN r.created_at >= :start_at AND r.created_at < :end_at THEN 1 ELSE 0 END), "
        "sum(CASE WHEN (r.status = 'new' AND r.receive_due_at < :now) "
        "OR (r.status <> 'handled' AND r.handle_due_at < :now) THEN 1 ELSE 0 END) "
        "FROM referral r JOIN unit_map m ON m.unit_id = r.org_unit_id "
        f"WHERE 1 = 1{view.household_ids('r.household_id')} GROUP BY m.target_id, r.status"
    ), targets, params)
    for target_id, status, in_period, overdue in rows:
        n = out[int(target_id)]
        n.referrals[str(status)] = n.referrals.get(str(status), 0) + int(in_period or 0)
        n.referrals["overdue"] += int(overdue or 0)
    _followup_numbers(session, targets, params, out, view)
    _case_numbers(session, targets, params, out, view)


# A service still to be provided (planned, referred to a unit, under way); overdue once its due date
# (a China date) has passed. Closed cases' services stop counting (backend/service_plans).
SERVICE_PENDING = "s.status IN ('planned', 'referred', 'in_progress')"


def _case_numbers(session: Session, targets: Targets, params: dict[str, Any],
                  out: dict[int, UnitNumbers], view: View = WHOLE) -> None:
    """Cases, services and mandatory reports by source: small tables, counted live, by the unit of the
    child's case (a report by the unit it was routed for)."""
    rows = run_grouped(session, (
        " SELECT m.target_id, "
        "sum(CASE WHEN c.status = 'open' THEN 1 ELSE 0 END), sum(CASE WHEN c.status = 'active' THEN 1 ELSE 0 END), "
        "sum(CASE WHEN c.opened_at >= :start_at AND c.opened_at < :end_at THEN 1 ELSE 0 END), "
        "sum(CASE WHEN c.closed_at >= :start_at AND c.closed_at < :end_at THEN 1 ELSE 0 END) "
        "FROM child_case c JOIN unit_map m ON m.unit_id = c.org_unit_id "
        f"WHERE 1 = 1{view.child_ids('c.child_id')} GROUP BY m.target_id"
    ), targets, params)
    for target_id, open_, active, opened, closed in rows:
        out[int(target_id)].cases.update(open=int(open_ or 0), active=int(active or 0), opened=int(opened or 0),
                                         closed=int(closed or 0))
    rows = run_grouped(session, (
        " SELECT m.target_id, "
        f"sum(CASE WHEN {SERVICE_PENDING} AND c.status <> 'closed' THEN 1 ELSE 0 END), "
        f"sum(CASE WHEN {SERVICE_PENDING} AND c.status <> 'closed' AND s.due_on < :today THEN 1 ELSE 0 END), "
        "sum(CASE WHEN s.status = 'done' AND s.completed_at >= :start_at AND s.completed_at < :end_at "
        "THEN 1 ELSE 0 END) "
        "FROM case_service s JOIN child_case c ON c.id = s.case_id JOIN unit_map m ON m.unit_id = c.org_unit_id "
        f"WHERE 1 = 1{view.child_ids('c.child_id')} GROUP BY m.target_id"
    ), targets, params)
    for target_id, pending, overdue, done in rows:
        out[int(target_id)].services.update(in_progress=int(pending or 0), overdue=int(overdue or 0),
                                            done=int(done or 0))
    rows = run_grouped(session, (
        " SELECT m.target_id, r.source_kind, count(*) FROM referral r JOIN unit_map m ON m.unit_id = r.org_unit_id "
        f"WHERE r.created_at >= :start_at AND r.created_at < :end_at{view.household_ids('r.household_id')} "
        "GROUP BY m.target_id, r.source_kind"
    ), targets, params)
    for target_id, source, count in rows:
        by_source = out[int(target_id)].reports_by_source
        by_source[str(source)] = by_source.get(str(source), 0) + int(count)


# The follow-up of an accepted assignment is overdue when its last visit (or the acceptance) is older
# than the interval of the child's risk level (backend.helpers.service.followup_due), i.e. before now
# minus that interval: one cutoff per level, bound as parameters, so the count is one GROUP BY.
FOLLOWUP_CUTOFFS: dict[str | None, str] = {
    RiskLevel.severe.value: "followup_cut_severe",
    RiskLevel.major.value: "followup_cut_major",
    None: "followup_cut_other",
}


def followup_cutoffs(now: datetime) -> dict[str, datetime]:
    """The cutoff parameters of `OVERDUE_FOLLOWUP` at `now`."""
    return {name: now - helpers.followup_interval(level) for level, name in FOLLOWUP_CUTOFFS.items()}


OVERDUE_FOLLOWUP = (
    "a.status = 'accepted' AND coalesce(a.last_followup_at, a.answered_at) < CASE p.risk_level "
    f"WHEN '{RiskLevel.severe.value}' THEN :followup_cut_severe WHEN '{RiskLevel.major.value}' "
    "THEN :followup_cut_major ELSE :followup_cut_other END"
)


def _followup_numbers(session: Session, targets: Targets, params: dict[str, Any],
                      out: dict[int, UnitNumbers], view: View = WHOLE) -> None:
    """Accepted helper assignments whose follow-up visit is overdue now, by the child's unit. A small
    table (children at 较大/重大风险 or on 附件3), so always counted live, also beside the summary."""
    rows = run_grouped(session, (
        " SELECT m.target_id, count(*) FROM helper_assignment a JOIN person p ON p.id = a.child_id "
        f"JOIN unit_map m ON m.unit_id = a.org_unit_id WHERE {OVERDUE_FOLLOWUP}{view.child_ids('a.child_id')} "
        "GROUP BY m.target_id"
    ), targets, {**params, **followup_cutoffs(params["now"])})
    for target_id, count in rows:
        out[int(target_id)].overdue_followups = int(count)


def _summary_numbers(session: Session, period_key: str, out: dict[int, UnitNumbers]) -> None:
    """The targets' figures from their summary rows, each by its towns' current counting rule."""
    for unit_id, f in summary.read(session, period_key, list(out)).items():
        n = out[unit_id]
        n.households, n.visited, n.never_visited = f["households"], f["visited"], f["never_visited"]
        n.mismatch_visits = f["mismatch_visits"]
        n.children.update(low=f["risk_low"], general=f["risk_general"], major=f["risk_major"],
                          severe=f["risk_severe"], none=f["risk_none"])


@dataclass
class CoverageResult:
    period: Period
    numbers: dict[int, UnitNumbers]
    source: str  # live | summary
    as_of: datetime


def _summary_fresh(session: Session, period: Period) -> datetime | None:
    if period.key is None:
        return None
    state = session.get(CoverageSummaryState, period.key)
    if state is None or state.start_date != period.start_date or state.end_date != period.end_date:
        return None
    refreshed = clock.as_utc(state.refreshed_at)
    if clock.now() - refreshed > timedelta(minutes=get_settings().coverage_summary_max_age_minutes):
        return None
    return refreshed


def grid_count(session: Session, unit: OrgUnit) -> int:
    """Grids at or under a unit (one range scan on the path index)."""
    return int(session.execute(
        text("SELECT count(*) FROM org_unit WHERE level = 'grid' AND path >= :lo AND path < :hi"),
        {"lo": unit.path, "hi": subtree_upper_bound(unit.path)},
    ).scalar_one())


def _big(session: Session, period_key: str, scope_grids: int, scope_unit_id: int | None) -> bool:
    """Whether a scope is large enough to read the summary: many grids, or many households when the
    summary was last refreshed (a town of 50,000 households in few large grids)."""
    settings = get_settings()
    if scope_grids > settings.coverage_live_max_grids:
        return True
    if scope_unit_id is None:
        return False
    households = summary.households_at_refresh(session, period_key, scope_unit_id)
    return households is not None and households > settings.coverage_live_max_households


def compute(session: Session, targets: Targets, target_ids: Iterable[int], period: Period, *,
            scope_grids: int, view: View = WHOLE, scope_unit_id: int | None = None) -> CoverageResult:
    """Numbers for each target unit; town- and county-size scopes read the fresh summary when there
    is one (a helper's view is counted live: the summary counts every record of a unit)."""
    params = period_params(period, targets)
    out = {i: UnitNumbers(unit_id=i) for i in target_ids}
    as_of = _summary_fresh(session, period) if view.whole and period.key is not None else None
    if as_of is not None and period.key is not None and not _big(session, period.key, scope_grids, scope_unit_id):
        as_of = None
    if as_of is not None and period.key is not None:
        _summary_numbers(session, period.key, out)
        source = "summary"
    else:
        _household_numbers(session, targets, params, out, view)
        source, as_of = "live", clock.now()
    _live_numbers(session, targets, params, out, view)
    _counting(session, targets, params, out)
    return CoverageResult(period, out, source, as_of)


def merged_counting(a: str | None, b: str | None) -> str | None:
    """The rule of figures summed from two units' (all + approved_only = mixed)."""
    return b if a is None else a if b is None or a == b else "mixed"


def _counting(session: Session, targets: Targets, params: dict[str, Any], out: dict[int, UnitNumbers]) -> None:
    """Which rule each target's visit figures used: its town's (a town or a unit inside one), or, for a
    unit above towns, approved_only or all when its towns agree and mixed when they differ."""
    strict = [str(p) for p in session.execute(text(
        "SELECT t.path FROM review_setting s JOIN org_unit t ON t.id = s.org_unit_id WHERE s.approved_only"
    )).scalars()]
    if not strict:
        return  # the default everywhere: every figure is "all"
    rows = run_grouped(session, (
        " SELECT m.target_id, count(*), sum(CASE WHEN s.approved_only THEN 1 ELSE 0 END) "
        "FROM unit_map m JOIN org_unit u ON u.id = m.unit_id "
        "LEFT JOIN review_setting s ON s.org_unit_id = u.id WHERE u.level = 'town' GROUP BY m.target_id"
    ), targets, params)
    towns = {int(t): (int(n), int(k or 0)) for t, n, k in rows}
    paths = dict(session.execute(
        select(col(OrgUnit.id), col(OrgUnit.path)).where(col(OrgUnit.id).in_(list(out)))).all())
    for unit_id, numbers in out.items():
        total, approved = towns.get(unit_id, (0, 0))
        if total:
            numbers.counting = "all" if approved == 0 else "approved_only" if approved == total else "mixed"
        else:  # inside a town (or no town at all): the rule of the town above it
            path = str(paths.get(unit_id, ""))
            numbers.counting = "approved_only" if any(path.startswith(p) for p in strict) else "all"


def child_units(session: Session, unit: OrgUnit) -> list[OrgUnit]:
    return list(session.execute(
        select(OrgUnit).where(col(OrgUnit.parent_id) == unit.id).order_by(col(OrgUnit.code))
    ).scalars())


def unit_coverage(session: Session, unit: OrgUnit, period: Period,
                  view: View = WHOLE) -> tuple[list[OrgUnit], CoverageResult]:
    """Numbers for each child of the unit (or for the unit itself when it is a grid)."""
    kids = child_units(session, unit)
    assert unit.id is not None
    if kids:
        targets = Targets(parent_id=unit.id)
    else:
        kids, targets = [unit], Targets(ids=(unit.id,))
    result = compute(session, targets, [k.id for k in kids if k.id is not None], period,
                     scope_grids=grid_count(session, unit), view=view, scope_unit_id=unit.id)
    return kids, result


# ----------------------------------------------------------------------------- summary refresh


def standard_periods(session: Session) -> list[Period]:
    """The periods kept in the summary: the current phase, this month and last month."""
    today = campaigns.today()
    this_month = today.strftime("%Y-%m")
    last_month = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    return [campaigns.resolve_period(session), campaigns.month_period(this_month), campaigns.month_period(last_month)]


def refresh_summary(session: Session, period: Period) -> int:
    """Recompute the summary rows of one standard period (each grid counted, then rolled up to every
    unit above it); returns the number of grids."""
    assert period.key is not None
    started = time.perf_counter()
    grids = [int(i) for i in session.execute(text("SELECT id FROM org_unit WHERE level = 'grid'")).scalars()]
    targets = Targets(level=OrgLevel.grid.value)
    out = {i: UnitNumbers(unit_id=i) for i in grids}
    approved: dict[int, tuple[int, int]] = {}
    _household_numbers(session, targets, period_params(period, targets), out, approved=approved)
    per_grid = {
        n.unit_id: {"households": n.households, "visited": n.visited, "never_visited": n.never_visited,
                    "mismatch_visits": n.mismatch_visits, "visited_approved": approved.get(n.unit_id, (0, 0))[0],
                    "never_visited_approved": approved.get(n.unit_id, (0, 0))[1],
                    "risk_low": n.children["low"], "risk_general": n.children["general"],
                    "risk_major": n.children["major"], "risk_severe": n.children["severe"],
                    "risk_none": n.children["none"]}
        for n in out.values() if n.households or n.mismatch_visits or any(n.children.values())
    }
    summary.write(session, period.key, per_grid)
    insert = dialect_insert(session)
    values = {"start_date": period.start_date, "end_date": period.end_date, "refreshed_at": clock.now(),
              "grids": len(grids), "seconds": round(time.perf_counter() - started, 3)}
    statement = insert(CoverageSummaryState).values(period_key=period.key, **values)
    session.execute(statement.on_conflict_do_update(index_elements=["period_key"], set_=values))
    session.flush()
    return len(grids)


def refresh_standard_summaries(session: Session) -> dict[str, int]:
    """The worker job: refresh every standard period."""
    done: dict[str, int] = {}
    for period in standard_periods(session):
        if period.key is not None and period.key not in done:
            done[period.key] = refresh_summary(session, period)
    return done


# ----------------------------------------------------------------------------- map output


def _geometries(session: Session, ids: list[int], zoom: int) -> dict[int, Any]:
    if not ids:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        expr = "ST_AsGeoJSON(ST_SimplifyPreserveTopology(boundary, :tol), :digits)"
    else:
        expr = "AsGeoJSON(SimplifyPreserveTopology(boundary, :tol), :digits)"
    statement = text(f"SELECT id, {expr} FROM org_unit WHERE id IN :ids").bindparams(
        bindparam("ids", expanding=True, type_=Integer())
    )
    rows = session.execute(statement, {"ids": ids, "tol": rules.simplify_tolerance(zoom),
                                       "digits": rules.coordinate_digits(zoom)})
    return {int(i): json.loads(g) if g else None for i, g in rows}


def _unit_ref(unit: OrgUnit) -> dict[str, Any]:
    return {"id": unit.id, "code": unit.code, "name": unit.name, "level": unit.level, "parent_id": unit.parent_id}


def period_json(period: Period) -> dict[str, Any]:
    return {"start_date": period.start_date.isoformat(), "end_date": period.end_date.isoformat(),
            "kind": period.kind, "label_zh": period.label_zh, "label_en": period.label_en, "key": period.key}


def feature_collection(
    session: Session, principal: Principal, unit: OrgUnit, period: Period, *, zoom: int, points: bool,
) -> dict[str, Any]:
    """The child units with their numbers as GeoJSON (plus household points where allowed), counting
    what the caller may see (a helper: its own children and their households only)."""
    kids, result = unit_coverage(session, unit, period, View.of(session, principal))
    geometries = _geometries(session, [k.id for k in kids if k.id is not None], zoom)
    total = UnitNumbers(unit_id=unit.id or 0)
    features: list[dict[str, Any]] = []
    for kid in kids:
        assert kid.id is not None
        numbers = result.numbers[kid.id]
        total.add(numbers)
        features.append({
            "type": "Feature",
            "id": kid.id,
            "geometry": geometries.get(kid.id),
            "properties": {"kind": "unit", **_unit_ref(kid), "drill_down": kid.level != OrgLevel.grid.value,
                           **numbers.as_properties()},
        })
    points_state = "not_requested"
    if points:
        if rules.points_allowed(principal, unit.level, zoom):
            features.extend(household_points(session, principal, unit, period))
            points_state = "included"
        else:
            points_state = "withheld"
    return {
        "type": "FeatureCollection",
        "features": features,
        "unit": _unit_ref(unit),
        "period": period_json(period),
        "totals": total.as_properties(),
        "source": result.source,
        "as_of": result.as_of.astimezone(UTC).isoformat(),
        "points": points_state,
        "unavailable": [],
    }


def household_points(session: Session, principal: Principal, unit: OrgUnit, period: Period) -> list[dict[str, Any]]:
    """One point per household of the unit, visited or not in the period (no names); audited."""
    assert unit.id is not None
    targets = Targets(ids=(unit.id,))
    limit = get_settings().coverage_max_points
    visited = _visited_cte(any_approved_only(session))
    rows = run_grouped(session, _households_cte(View.of(session, principal)) + visited + (
        " SELECT h.id, h.lon, h.lat, h.org_unit_id, hv.in_period FROM hh JOIN household h ON h.id = hh.household_id "
        "LEFT JOIN hv ON hv.household_id = hh.household_id WHERE h.lon IS NOT NULL AND h.lat IS NOT NULL "
        f"ORDER BY h.id LIMIT {int(limit)}"
    ), targets, period_params(period, targets))
    disclosure.record(disclosure.HOUSEHOLD, [int(r[0]) for r in rows])
    disclosure.event(session, "coverage.household_points", actor=principal, object_type="org_unit",
                     object_id=unit.id, org_unit_id=unit.id, details={"count": len(rows), "period": period.key})
    digits = rules.coordinate_digits(18)
    return [
        {"type": "Feature", "id": f"household-{hid}",
         "geometry": {"type": "Point", "coordinates": [round(float(lon), digits), round(float(lat), digits)]},
         "properties": {"kind": "household", "household_id": int(hid), "grid_id": int(grid),
                        "visited": bool(in_period), "ever_visited": in_period is not None}}
        for hid, lon, lat, grid, in_period in rows
    ]


# ----------------------------------------------------------------------------- never-visited list


@dataclass(frozen=True)
class NotVisitedHousehold:
    household_id: int
    grid_id: int
    grid_name: str
    address: str
    head_name_masked: str | None
    last_visit_at: datetime | None


def not_visited_households(
    session: Session, principal: Principal, unit: OrgUnit, period: Period, *, ever: bool, cursor: str | None,
    limit: int,
) -> tuple[list[NotVisitedHousehold], str | None]:
    """Households of the unit with no effective visit in the period (or ever, before its end),
    by id; the list shows addresses, so each page read is audited."""
    after = int((decode_cursor(cursor) or {}).get("after", 0))
    since = datetime(1970, 1, 1, tzinfo=UTC) if ever else period.start_at
    statement = text(
        "SELECT h.id, h.org_unit_id, g.name, h.address, h.head_name, "
        "(SELECT max(v.counted_at) FROM visit v WHERE v.household_id = h.id) "
        "FROM household h JOIN org_unit g ON g.id = h.org_unit_id "
        "WHERE g.path >= :lo AND g.path < :hi AND h.counted_at < :end_at AND h.id > :after "
        "AND NOT EXISTS (SELECT 1 FROM visit v WHERE v.household_id = h.id AND v.outcome = 'visited' "
        f"AND v.counted_at >= :since AND v.counted_at < :end_at AND {counted_review(_APPROVED_ONLY_UNITS)}) "
        "ORDER BY h.id LIMIT :limit"
    ).bindparams(bindparam("since", type_=DateTime(timezone=True)), bindparam("end_at", type_=DateTime(timezone=True)))
    rows = session.execute(statement, {"lo": unit.path, "hi": subtree_upper_bound(unit.path),
                                       "end_at": period.end_at, "since": since, "after": after,
                                       "limit": limit + 1}).all()
    page = rows[:limit]
    items = [
        NotVisitedHousehold(int(hid), int(grid), str(grid_name), str(address), mask_name(head),
                            _as_datetime(last) if last is not None else None)
        for hid, grid, grid_name, address, head, last in page
    ]
    disclosure.record(disclosure.HOUSEHOLD, [h.household_id for h in items])
    disclosure.event(session, "coverage.not_visited.list", actor=principal, object_type="org_unit",
                     object_id=unit.id, org_unit_id=unit.id,
                     details={"count": len(items), "period": period.key or f"{period.start_date}/{period.end_date}",
                              "ever": ever, "after": after})
    next_cursor = encode_cursor({"after": items[-1].household_id}) if len(rows) > limit and items else None
    return items, next_cursor


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return clock.as_utc(value)
    return clock.as_utc(datetime.fromisoformat(str(value)))


# ----------------------------------------------------------------------------- vector tiles


def tile_mvt(session: Session, principal: Principal, period: Period, z: int, x: int, y: int) -> bytes:
    """A Mapbox vector tile (PostGIS ST_AsMVT) of the units at the zoom's level inside the caller's
    jurisdiction, layer "coverage", with the coverage numbers as attributes (and `counting`, the rule
    of review the visit figures used, as in the GeoJSON)."""
    level = rules.tile_level(z)
    ids = [int(i) for i in session.execute(text(
        "SELECT id FROM org_unit WHERE level = :level AND path >= :lo AND path < :hi AND boundary IS NOT NULL "
        "AND ST_Intersects(boundary, ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326))"
    ), {"level": level.value, "lo": principal.org_path, "hi": subtree_upper_bound(principal.org_path),
        "z": z, "x": x, "y": y}).scalars()]
    if not ids:
        return b""
    targets = Targets(ids=tuple(ids))
    scope_grids = len(ids) * (1 if level is OrgLevel.grid else 50)
    result = compute(session, targets, ids, period, scope_grids=scope_grids, view=View.of(session, principal))
    numbers = [result.numbers[i] for i in ids]
    statement = text(
        "WITH n AS (SELECT * FROM unnest(CAST(:ids AS int[]), CAST(:households AS int[]), CAST(:visited AS int[]), "
        "CAST(:never AS int[]), CAST(:high_risk AS int[]), CAST(:problems AS int[]), CAST(:counting AS text[])) "
        "AS n(id, households, visited, never_visited, high_risk_children, problems_overdue, counting)), "
        "q AS (SELECT u.id, u.code, u.name, u.level, n.households, n.visited, n.never_visited, "
        "n.high_risk_children, n.problems_overdue, n.counting, "
        "CASE WHEN n.households > 0 THEN round(100.0 * n.visited / n.households, 1) END AS percent, "
        "ST_AsMVTGeom(ST_Transform(u.boundary, 3857), ST_TileEnvelope(:z, :x, :y), 4096, 64, true) AS geom "
        "FROM org_unit u JOIN n ON n.id = u.id) "
        "SELECT ST_AsMVT(q, 'coverage', 4096, 'geom') FROM q WHERE geom IS NOT NULL"
    )
    tile = session.execute(statement, {
        "ids": ids, "households": [n.households for n in numbers], "visited": [n.visited for n in numbers],
        "never": [n.never_visited for n in numbers], "high_risk": [n.high_risk_children for n in numbers],
        "problems": [n.problems_overdue for n in numbers], "counting": [n.counting or "all" for n in numbers],
        "z": z, "x": x, "y": y,
    }).scalar_one()
    return bytes(tile or b"")


def visible_unit(session: Session, principal: Principal, unit_id: int | None) -> OrgUnit:
    """The unit asked for (default: the caller's own), 404 outside the jurisdiction."""
    return orgunits.get_visible_unit(session, principal, unit_id if unit_id is not None else principal.org_unit_id)


def month_key(day: date) -> str:
    return day.strftime("%Y-%m")
