"""The weekly new-case report (seed 002: 镇派出所每周报送新立案件情况), generated from the register.

A week is an ISO week ("2026-W48"), Monday to Sunday in China dates: a case belongs to the week of
its filing date (a China date, so a case filed on Sunday at 23:30 China time is that week's). The
report of a week is due on the Monday after it at 12:00 China time. A station submits it: the figures
are frozen at that moment and `on_time` says whether it came by the due time; a resubmission is a new
row and the earlier ones stay as its history. The county sees which of its stations submitted, came
late or are missing. The figures carry counts and case numbers, never a name or a summary.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlmodel import Session, col

from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.core import clock, workbook
from backend.core.errors import Conflict, InvalidInput
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.police_cases import service as register
from backend.police_cases.models import (
    OffenceCategory,
    PoliceCase,
    PoliceCaseLink,
    PoliceCaseStatus,
    PoliceWeeklySubmission,
    WeeklyStatus,
)
from backend.police_cases.schemas import (
    CategoryFigure,
    WeeklyFigures,
    WeeklyLinks,
    WeeklyRow,
    WeeklyState,
    WeeklySubmissionPublic,
)

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_WEEK = re.compile(r"(\d{4})-W(\d{2})")
# Due on the Monday after the week, at noon China time.
DUE_TIME = time(12, 0)


class WeekInvalid(InvalidInput):
    code = "week-invalid"
    title_zh = "周次无效"
    title_en = "Invalid week"


class WeekNotStarted(Conflict):
    code = "police-weekly-not-started"
    title_zh = "该周尚未开始，不能报送"
    title_en = "The week has not started: nothing to submit"


@dataclass(frozen=True)
class Week:
    name: str  # "2026-W48"
    start: date  # Monday
    end: date  # Sunday

    @property
    def due_at(self) -> datetime:
        """The Monday after the week, 12:00 China time (as UTC)."""
        return datetime.combine(self.end + timedelta(days=1), DUE_TIME, tzinfo=clock.SHANGHAI).astimezone(UTC)


def parse_week(value: str) -> Week:
    """An ISO week of the years 2000 to 2099 ("2026-W48"), else 422 week-invalid."""
    match = _WEEK.fullmatch(value or "")
    try:
        if match is None or not 2000 <= int(match[1]) <= 2099:
            raise ValueError(value)
        start = date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError:
        raise WeekInvalid("周次应为 YYYY-Www（如 2026-W48）", "week must be an ISO week, YYYY-Www (2026-W48)",
                          field="week") from None
    return Week(f"{int(match[1]):04d}-W{int(match[2]):02d}", start, start + timedelta(days=6))


# ---------------------------------------------------------------- figures


def figures(session: Session, unit: OrgUnit, week: Week) -> WeeklyFigures:
    """The station's cases filed in the week, from the register: counts by category (every category,
    zeros too), victims, and how many links they carry; the rows name case numbers only."""
    cases = list(session.execute(
        select(PoliceCase).where(col(PoliceCase.station_unit_id) == unit.id,
                                 col(PoliceCase.filed_date) >= week.start, col(PoliceCase.filed_date) <= week.end)
        .order_by(col(PoliceCase.filed_date), col(PoliceCase.id))).scalars())
    ids = [c.id or 0 for c in cases]
    per_case: Counter[int] = Counter()
    per_kind: Counter[str] = Counter()
    if ids:
        for case_id, kind, n in session.execute(
            select(col(PoliceCaseLink.police_case_id), col(PoliceCaseLink.kind), func.count())
            .where(col(PoliceCaseLink.police_case_id).in_(ids))
            .group_by(col(PoliceCaseLink.police_case_id), col(PoliceCaseLink.kind))
        ):
            per_case[int(case_id)] += int(n)
            per_kind[str(kind)] += int(n)
    referrals = sum(1 for c in cases if c.referral_id is not None)
    by_category = []
    for category in OffenceCategory:
        mine = [c for c in cases if c.category == category.value]
        by_category.append(CategoryFigure(code=category.value, label_zh=category.zh, label_en=category.en,
                                          cases=len(mine), victims=sum(c.victims for c in mine)))
    return WeeklyFigures(
        unit_id=unit.id or 0, week=week.name, start_date=week.start, end_date=week.end, due_at=week.due_at,
        cases=len(cases), victims=sum(c.victims for c in cases), by_category=by_category,
        links=WeeklyLinks(child_cases=per_kind["child_case"], risk_persons=per_kind["risk_person"],
                          venues=per_kind["venue"], referrals=referrals),
        rows=[WeeklyRow(id=c.id or 0, case_number=c.case_number, filed_date=c.filed_date, category=c.category,
                        status=c.status, victims=c.victims,
                        links=per_case[c.id or 0] + (1 if c.referral_id is not None else 0)) for c in cases],
    )


def report(session: Session, principal: Principal, unit_id: int | None, week: str) -> WeeklyFigures:
    """The week's report of a station of the caller's jurisdiction, as it stands now; audited."""
    principal.require(Action.police_case_read)
    unit = register.station(session, principal, unit_id)
    found = figures(session, unit, parse_week(week))
    disclosure.record(disclosure.POLICE_CASE, [r.id for r in found.rows])
    disclosure.event(session, "police_case.weekly_read", actor=principal, object_type="org_unit", object_id=unit.id,
                     org_unit_id=unit.id, details={"week": found.week, "cases": found.cases})
    return found


_STATUS_ZH = {s.value: s.zh for s in PoliceCaseStatus}


def xlsx(session: Session, principal: Principal, unit_id: int | None, week: str) -> tuple[bytes, str]:
    """The week's report as .xlsx (the one workbook writer: typed text never becomes a formula); audited."""
    principal.require(Action.police_case_read)
    unit = register.station(session, principal, unit_id)
    found = figures(session, unit, parse_week(week))
    caption = f"{unit.name}派出所新立案件情况 {found.week}（{found.start_date:%Y-%m-%d} 至 {found.end_date:%Y-%m-%d}）"
    summary = workbook.Table(
        title="汇总", captions=[caption],
        header=["案件类别", "立案数", "被害人数"],
        rows=[*([f.label_zh, f.cases, f.victims] for f in found.by_category), ["合计", found.cases, found.victims]],
        widths=[32, 10, 10],
        note=(f"关联个案 {found.links.child_cases}，关联重点人员 {found.links.risk_persons}，关联场所 "
              f"{found.links.venues}，来自强制报告 {found.links.referrals}。不含姓名。"),
    )
    labels = {c.value: c.zh for c in OffenceCategory}
    rows = workbook.Table(
        title="案件", captions=[caption],
        header=["序号", "案件编号", "立案日期", "案件类别", "状态", "被害人数", "关联记录数"],
        rows=[[n, r.case_number, r.filed_date, labels.get(r.category, r.category), _STATUS_ZH.get(r.status, r.status),
               r.victims, r.links] for n, r in enumerate(found.rows, start=1)],
        text_columns=frozenset({1}), widths=[6, 20, 12, 32, 12, 10, 12],
    )
    disclosure.record(disclosure.POLICE_CASE, [r.id for r in found.rows])
    disclosure.event(session, "police_case.weekly_export", actor=principal, object_type="org_unit", object_id=unit.id,
                     org_unit_id=unit.id, details={"week": found.week, "cases": found.cases})
    return workbook.xlsx_bytes([summary, rows]), f"police-weekly-{unit.code}-{found.week}.xlsx"


# ---------------------------------------------------------------- submission


def _history(session: Session, station_id: int, week: str) -> list[PoliceWeeklySubmission]:
    return list(session.execute(
        select(PoliceWeeklySubmission).where(col(PoliceWeeklySubmission.station_unit_id) == station_id,
                                             col(PoliceWeeklySubmission.week) == week)
        .order_by(col(PoliceWeeklySubmission.id))).scalars())


def submission_public(row: PoliceWeeklySubmission, earlier: list[int]) -> WeeklySubmissionPublic:
    return WeeklySubmissionPublic(
        id=row.id or 0, unit_id=row.station_unit_id, week=row.week, status=row.status, submitted_at=row.submitted_at,
        submitted_by=row.submitted_by, on_time=row.on_time, due_at=row.due_at,
        figures=WeeklyFigures.model_validate(row.figures), history=earlier)


def submit(session: Session, principal: Principal, unit_id: int | None, week: str) -> WeeklySubmissionPublic:
    """The station submits its week's report: the figures as they stand now are frozen; on time when
    by the Monday after the week at 12:00 China time. A resubmission keeps the earlier ones."""
    principal.require(Action.police_case_manage)
    unit = register.station(session, principal, unit_id)
    parsed = parse_week(week)
    if parsed.start > clock.china_date(clock.now()):
        raise WeekNotStarted(field="week")
    found = figures(session, unit, parsed)
    earlier = [s.id or 0 for s in _history(session, unit.id or 0, parsed.name)]
    now = clock.now()
    row = PoliceWeeklySubmission(station_unit_id=unit.id or 0, week=parsed.name, week_start_date=parsed.start,
                                 due_at=parsed.due_at, submitted_at=now, submitted_by=principal.user_id,
                                 on_time=now <= parsed.due_at, status=WeeklyStatus.submitted.value,
                                 figures=found.model_dump(mode="json"))
    session.add(row)
    session.flush()
    disclosure.record(disclosure.POLICE_CASE, [r.id for r in found.rows])
    disclosure.event(session, "police_case.weekly_submit", actor=principal, object_type="police_weekly_submission",
                     object_id=row.id, org_unit_id=unit.id,
                     details={"week": parsed.name, "on_time": row.on_time, "cases": found.cases,
                              "resubmission": bool(earlier)})
    return submission_public(row, earlier)


def submit_way_up(session: Session, principal: Principal, unit_id: int | None, week: str) -> WeeklySubmissionPublic:
    """The station submits its week's report on the one way up of every report (backend/report_submissions):
    the county approves or returns it. Submitting again while the county has not decided freezes fresh
    figures (the earlier ones stay in `history`); once approved the week is final (409)."""
    from backend.report_submissions import service as way_up
    from backend.report_submissions.models import SubmissionKind

    principal.require(Action.police_case_manage)
    unit = register.station(session, principal, unit_id)
    parsed = parse_week(week)
    if parsed.start > clock.china_date(clock.now()):
        raise WeekNotStarted(field="week")
    row = way_up.submit_for(session, principal, SubmissionKind.police_weekly.value, unit, parsed.name,
                            replace_waiting=True)
    rows = _history(session, unit.id or 0, parsed.name)
    current = next(r for r in rows if r.id == row.police_weekly_submission_id)
    return submission_public(current, [r.id or 0 for r in rows if r.id != current.id])


def submissions(session: Session, principal: Principal, unit_id: int | None, week: str
                ) -> list[WeeklySubmissionPublic]:
    """Every submission of a station's week, oldest first."""
    principal.require(Action.police_case_read)
    unit = register.station(session, principal, unit_id)
    rows = _history(session, unit.id or 0, parse_week(week).name)
    out = [submission_public(row, [r.id or 0 for r in rows[:n]]) for n, row in enumerate(rows)]
    disclosure.event(session, "police_case.weekly_submissions", actor=principal, object_type="org_unit",
                     object_id=unit.id, org_unit_id=unit.id, details={"week": week, "submissions": len(out)})
    return out


def states(session: Session, principal: Principal, unit_id: int | None, week: str) -> list[WeeklyState]:
    """For each station (town) at or under the unit (default: the caller's own): submitted (its first
    submission came by the due time), late (after it), missing (none and the due time has passed) or
    pending (none, not yet due)."""
    principal.require(Action.police_case_read)
    unit = orgunits.get_visible_unit(session, principal, unit_id if unit_id is not None else principal.org_unit_id)
    parsed = parse_week(week)
    towns = list(session.execute(
        select(OrgUnit).where(col(OrgUnit.level) == OrgLevel.town.value,
                              col(OrgUnit.id).in_(orgunits.subtree_unit_ids(unit.path)))
        .order_by(col(OrgUnit.code), col(OrgUnit.id))).scalars())
    by_station: dict[int, list[PoliceWeeklySubmission]] = {t.id or 0: [] for t in towns}
    if towns:
        for row in session.execute(
            select(PoliceWeeklySubmission).where(col(PoliceWeeklySubmission.week) == parsed.name,
                                                 col(PoliceWeeklySubmission.station_unit_id).in_(list(by_station)))
            .order_by(col(PoliceWeeklySubmission.id))).scalars():
            by_station[row.station_unit_id].append(row)
    now = clock.now()
    out = []
    for town in towns:
        rows = by_station[town.id or 0]
        first, last = (rows[0], rows[-1]) if rows else (None, None)
        if first is not None:
            state = "submitted" if first.on_time else "late"
        else:
            state = "missing" if now > parsed.due_at else "pending"
        out.append(WeeklyState(
            unit_id=town.id or 0, unit_code=town.code, unit_name=town.name, week=parsed.name, due_at=parsed.due_at,
            state=state, status=last.status if last else None, submission_id=last.id if last else None,
            first_submitted_at=first.submitted_at if first else None,
            submitted_at=last.submitted_at if last else None, submissions=len(rows)))
    return out
