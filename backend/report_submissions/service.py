"""One way up and back for every report: a unit's report of a kind and period is a draft, is
submitted, and the level above approves it or returns it with a comment; a returned report is
corrected and submitted again. Each step is an event row and an audit entry.

Who approves (the parent unit of the submitting unit, never the unit itself or a sibling):
- monthly (月报): the parent unit's coordinators (a village's by its town, a town's by its county);
- police_weekly (派出所每周新立案件): the station is a town; the county police (users at the parent
  county holding police_case.manage, i.e. 县公安局) approve;
- year_end_summary (妇联年终总结, seed 004): submitted by the unit's women's-federation coordinator,
  approved by a women's-federation coordinator of the parent unit.

Due: monthly by the campaign's due rule (backend/campaigns/service.py report_due_date, default the
17th of the month itself), police weekly the Monday after the week at 12:00 China time, the year-end
summary on 30 November of its year (before 1 December). A date due means by the end of that China day.
`on_time` is decided by the first submission; a return does not make an on-time report late, and the
returns are counted beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from backend.accounts.models import Agency, User
from backend.accounts.permissions import Action, Role
from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.campaigns import service as campaigns
from backend.core import clock, text
from backend.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from backend.notifications import service as notifications
from backend.notifications.recipients import users_of_unit
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.report_submissions.models import ReportSubmission, ReportSubmissionEvent, SubmissionKind, SubmissionStatus
from backend.reports.models import MonthlyReport
from backend.sync import revisions

S = SubmissionStatus
NARRATIVE_MAX = 4000
COMMENT_MAX = 1000
_YEAR = re.compile(r"^(20\d{2})$")
YEAR_END_DUE = (11, 30)  # seed 004: before 1 December


class SubmissionStateConflict(Conflict):
    code = "report-submission-state"
    title_zh = "报告状态已变化，不能执行此操作"
    title_en = "The report is not in a state that allows this step"


class NotTheApprover(Forbidden):
    code = "report-submission-not-approver"
    title_zh = "只有上一级单位可以审核该报告"
    title_en = "Only the level above may approve or return this report"


class NotTheSubmitter(Forbidden):
    code = "report-submission-not-submitter"
    title_zh = "无权报送该类报告"
    title_en = "Not allowed to submit this kind of report"


class ReturnNeedsComment(InvalidInput):
    code = "report-return-comment-required"
    title_zh = "退回报告须填写意见"
    title_en = "A return needs a comment"


class FiguresMissing(Conflict):
    code = "report-figures-missing"
    title_zh = "尚未生成报表，不能报送"
    title_en = "The report's figures have not been generated"


class UnitLevelInvalid(InvalidInput):
    code = "report-submission-unit-level"
    title_zh = "该单位不报送此类报告"
    title_en = "This unit does not submit this kind of report"


@dataclass(frozen=True)
class Due:
    date: date
    at: datetime  # the first instant after which a submission is late (UTC)


def _end_of(day: date) -> datetime:
    return clock.china_day_start(day + timedelta(days=1))


def normal_period(kind: str, period: str) -> str:
    """The period key in its one spelling, else 422."""
    if kind == SubmissionKind.monthly:
        campaigns.month_period(period)
        return period
    if kind == SubmissionKind.police_weekly:
        from backend.police_cases.weekly import parse_week

        return parse_week(period).name
    if kind == SubmissionKind.year_end_summary:
        if not _YEAR.match(period or ""):
            raise InvalidInput("年份格式应为 YYYY", "period must be a year, YYYY", field="period")
        return period
    raise InvalidInput("报告类型无效", "kind must be monthly, police_weekly or year_end_summary", field="kind")


def due(session: Session, kind: str, period: str, unit: OrgUnit | None = None) -> Due:
    """When a report of a kind and period (of a unit: the rule of the campaign it is in) is due."""
    if kind == SubmissionKind.monthly:
        day = campaigns.report_due_date(session, period, unit)
        return Due(day, _end_of(day))
    if kind == SubmissionKind.police_weekly:
        from backend.police_cases.weekly import parse_week

        week = parse_week(period)
        return Due(week.end + timedelta(days=1), week.due_at)
    day = date(int(period), *YEAR_END_DUE)
    return Due(day, _end_of(day))


# ---------------------------------------------------------------- who may do what


def _kind_right(kind: str) -> Action:
    return Action.police_case_manage if kind == SubmissionKind.police_weekly else Action.report_generate


def _check_unit_level(kind: str, unit: OrgUnit) -> None:
    if kind == SubmissionKind.police_weekly and unit.level != OrgLevel.town.value:
        raise UnitLevelInvalid(f"{unit.name}不是派出所所在乡镇", "the police weekly report is a town's (station's)",
                               field="unit_id")


def ensure_may_submit(principal: Principal, kind: str, unit: OrgUnit) -> None:
    """The kind's right, and the unit is the caller's own: only the unit itself writes and submits its
    report (the level above may generate and read it, never send it up on the unit's behalf, or it
    would approve what it sent itself); the year-end summary is the women's federation's."""
    principal.require(_kind_right(kind))
    principal.ensure_covers(unit.path)
    if principal.org_unit_id != unit.id:
        raise NotTheSubmitter(f"只有{unit.name}本单位可以报送其报告", "only the unit itself submits its report")
    if kind == SubmissionKind.year_end_summary and principal.agency != Agency.womens_federation.value:
        raise NotTheSubmitter("年终总结由妇联协调人报送", "the year-end summary is submitted by the women's federation")


def ensure_may_decide(principal: Principal, kind: str, unit: OrgUnit, submitted_by: int | None = None) -> None:
    """Only the parent unit's holders of the kind's right decide: never the unit itself or a sibling."""
    principal.require(_kind_right(kind))
    principal.ensure_covers(unit.path)
    if unit.parent_id is None or principal.org_unit_id != unit.parent_id:
        raise NotTheApprover()
    if submitted_by is not None and submitted_by == principal.user_id:
        raise NotTheApprover("不能审核自己报送的报告", "the person who submitted a report does not decide it")
    if kind == SubmissionKind.year_end_summary and principal.agency != Agency.womens_federation.value:
        raise NotTheApprover("年终总结由上一级妇联审核",
                             "the year-end summary is approved by the women's federation above")


def approvers(session: Session, kind: str, unit: OrgUnit) -> list[int]:
    """Who is told that a report came up."""
    if unit.parent_id is None:
        return []
    if kind == SubmissionKind.police_weekly:
        return users_of_unit(session, unit.parent_id, Role.police)
    return _of_kind(session, kind, unit.parent_id, Role.coordinator)


def submitters(session: Session, kind: str, unit: OrgUnit) -> list[int]:
    """Who is told that a report came back."""
    role = Role.police if kind == SubmissionKind.police_weekly else Role.coordinator
    return _of_kind(session, kind, unit.id or 0, role)


def _of_kind(session: Session, kind: str, unit_id: int, role: Role) -> list[int]:
    """The unit's users with the role; for the year-end summary only its women's-federation ones (the only
    ones who may submit or decide it)."""
    found = users_of_unit(session, unit_id, role)
    if kind != SubmissionKind.year_end_summary or not found:
        return found
    return sorted(int(i) for i in session.execute(select(col(User.id)).where(
        col(User.id).in_(found), col(User.agency) == Agency.womens_federation.value)).scalars())


# ---------------------------------------------------------------- rows


def _clean(value: str | None, field: str, limit: int = NARRATIVE_MAX) -> str:
    cleaned = text.clean(value or "").strip()
    if len(cleaned) > limit:
        raise InvalidInput(f"内容超过{limit}字", f"at most {limit} characters", field=field)
    return cleaned


def ensure_may_read(principal: Principal, kind: str) -> None:
    """The police weekly report is read with the police register (a hidden right: 404 without it)."""
    if kind == SubmissionKind.police_weekly:
        principal.require(Action.police_case_read)


def require_kind(principal: Principal, kind: str) -> None:
    """The right a kind's reports are made and decided with (before any jurisdiction check, so a role
    without it is refused alike inside and outside its jurisdiction)."""
    principal.require(_kind_right(normal_kind(kind)))


def normal_kind(kind: str) -> str:
    if kind not in SubmissionKind.__members__:
        raise InvalidInput("报告类型无效", "kind must be monthly, police_weekly or year_end_summary", field="kind")
    return kind


def get_visible(session: Session, principal: Principal, submission_id: int, *, acting: bool = False
                ) -> tuple[ReportSubmission, OrgUnit]:
    """The report inside the caller's jurisdiction (404 otherwise); `acting`: the kind's right first."""
    row = session.get(ReportSubmission, submission_id)
    if row is None:
        raise NotFound()
    if acting:
        require_kind(principal, row.kind)
    ensure_may_read(principal, row.kind)
    unit = session.get(OrgUnit, row.org_unit_id)
    principal.ensure_covers(unit.path if unit else None)
    assert unit is not None
    return row, unit


def find(session: Session, kind: str, unit_id: int, period: str) -> ReportSubmission | None:
    return session.execute(select(ReportSubmission).where(
        col(ReportSubmission.kind) == kind, col(ReportSubmission.org_unit_id) == unit_id,
        col(ReportSubmission.period) == period)).scalar_one_or_none()


def events(session: Session, submission_id: int) -> list[ReportSubmissionEvent]:
    return list(session.execute(select(ReportSubmissionEvent).where(
        col(ReportSubmissionEvent.submission_id) == submission_id).order_by(col(ReportSubmissionEvent.id))).scalars())


def _event(session: Session, principal: Principal, row: ReportSubmission, action: str, before: str | None,
           comment: str = "") -> None:
    assert row.id is not None
    session.add(ReportSubmissionEvent(submission_id=row.id, action=action, from_status=before, to_status=row.status,
                                      actor_id=principal.user_id, at=clock.now(), comment=comment))
    audit.record(session, actor=principal, action=f"report_submission.{action}", object_type="report_submission",
                 object_id=row.id, org_unit_id=row.org_unit_id,
                 details={"kind": row.kind, "period": row.period, "from": before, "to": row.status,
                          "returns": row.returns})


def _narrate(row: ReportSubmission, progress: str | None, problems: str | None, next_steps: str | None) -> None:
    if progress is not None:
        row.progress = _clean(progress, "progress")
    if problems is not None:
        row.problems = _clean(problems, "problems")
    if next_steps is not None:
        row.next_steps = _clean(next_steps, "next_steps")


def ensure_draft(session: Session, principal: Principal, kind: str, unit: OrgUnit, period: str) -> ReportSubmission:
    """The unit's report of the kind and period, made as a draft if there is none yet."""
    assert unit.id is not None
    row = find(session, kind, unit.id, period)
    if row is not None:
        return row
    when = due(session, kind, period, unit)
    row = ReportSubmission(kind=kind, org_unit_id=unit.id, period=period, due_date=when.date, due_at=when.at,
                           created_by=principal.user_id)
    if kind == SubmissionKind.monthly:
        report = session.execute(select(MonthlyReport).where(col(MonthlyReport.org_unit_id) == unit.id,
                                                             col(MonthlyReport.month) == period)
                                 ).scalar_one_or_none()
        row.monthly_report_id = report.id if report else None
    try:
        with session.begin_nested():  # two first saves at once: the second reads the first's draft
            session.add(row)
            session.flush()
    except IntegrityError:
        found = find(session, kind, unit.id, period)
        if found is None:
            raise
        return found
    _event(session, principal, row, "create", None)
    return row


def save_draft(session: Session, principal: Principal, kind: str, unit: OrgUnit, period: str, *,
               progress: str | None, problems: str | None, next_steps: str | None) -> ReportSubmission:
    """Write the narrative of a draft (or of a returned report being corrected)."""
    period = normal_period(kind, period)
    _check_unit_level(kind, unit)
    ensure_may_submit(principal, kind, unit)
    revisions.hold(session)
    row = ensure_draft(session, principal, kind, unit, period)
    row = _locked(session, row.id or 0)
    if row.status not in (S.draft, S.returned):
        raise SubmissionStateConflict("报告已报送，不能修改", "the report was submitted: it cannot be changed",
                                      current_status=row.status)
    if row.first_submitted_at is None:  # not yet sent: due by the rule in force now
        when = due(session, kind, period, unit)
        row.due_date, row.due_at = when.date, when.at
    _narrate(row, progress, problems, next_steps)
    row.updated_at = clock.now()
    session.add(row)
    session.flush()
    return row


def _locked(session: Session, submission_id: int) -> ReportSubmission:
    """The row, locked until the transaction ends (after revisions.hold, by the lock order rule)."""
    row = session.get(ReportSubmission, submission_id, with_for_update=True, populate_existing=True)
    if row is None:
        raise NotFound()
    return row


def _mirror_monthly(session: Session, row: ReportSubmission) -> None:
    """The monthly report row carries the same state (its status field is what phones read)."""
    if row.monthly_report_id is None:
        return
    report = session.get(MonthlyReport, row.monthly_report_id)
    if report is not None:
        report.status = row.status
        if row.status == S.submitted:
            report.submitted_by, report.submitted_at = row.submitted_by, row.submitted_at
            report.due_date = row.due_date  # the one it is judged against (the status table shows it too)
        session.add(report)


def _notify(session: Session, user_ids: list[int], row: ReportSubmission, unit: OrgUnit, what: str) -> None:
    if not user_ids:
        return
    names = {"monthly": ("月报", "monthly report"), "police_weekly": ("派出所周报", "police weekly report"),
             "year_end_summary": ("年终总结", "year-end summary")}
    zh, en = names.get(row.kind, (row.kind, row.kind))
    if what == "submitted":
        texts = (f"{zh}待审核", f"A {en} awaits approval", f"下级单位报送了{row.period}{zh}，请审核。",
                 f"A unit below submitted its {en} for {row.period}; please approve or return it.")
    else:
        texts = (f"{zh}被退回", f"A {en} was returned", f"{row.period}{zh}被上级退回，请按意见修改后重新报送。",
                 f"The {en} for {row.period} was returned; correct it and submit again.")
    notifications.enqueue(session, user_ids=user_ids, kind=f"report_submission.{what}", title_zh=texts[0],
                          title_en=texts[1], body_zh=texts[2], body_en=texts[3],
                          data={"submission_id": str(row.id), "report_kind": row.kind, "period": row.period,
                                "unit_id": str(unit.id)})


def submit(session: Session, principal: Principal, submission_id: int, *, progress: str | None = None,
           problems: str | None = None, next_steps: str | None = None) -> ReportSubmission:
    """Send the report up (from draft, or again after a return); the approvers are told."""
    row, unit = get_visible(session, principal, submission_id, acting=True)
    ensure_may_submit(principal, row.kind, unit)
    revisions.hold(session)
    row = _locked(session, submission_id)
    if row.status not in (S.draft, S.returned):
        raise SubmissionStateConflict("报告已报送", "the report was already submitted", current_status=row.status)
    _narrate(row, progress, problems, next_steps)
    if row.kind == SubmissionKind.monthly:
        report = session.execute(select(MonthlyReport).where(col(MonthlyReport.org_unit_id) == unit.id,
                                                             col(MonthlyReport.month) == row.period)
                                 ).scalar_one_or_none()
        if report is None:
            raise FiguresMissing("请先生成月报", "generate the monthly report first")
        row.monthly_report_id = report.id
    elif row.kind == SubmissionKind.police_weekly:
        from backend.police_cases import weekly

        frozen = weekly.submit(session, principal, unit.id, row.period)
        row.police_weekly_submission_id = frozen.id
    now = clock.now()
    before = row.status
    row.status = S.submitted.value
    row.submitted_at, row.submitted_by, row.updated_at = now, principal.user_id, now
    if row.first_submitted_at is None:
        # The due date is fixed by the first submission (a later change of the rule does not move it).
        when = due(session, row.kind, row.period, unit)
        row.due_date, row.due_at = when.date, when.at
        row.first_submitted_at = now
        row.on_time = clock.as_utc(now) < clock.as_utc(row.due_at)
    row.decided_at, row.decided_by = None, None
    session.add(row)
    _mirror_monthly(session, row)
    session.flush()
    _event(session, principal, row, "submit", before)
    _notify(session, approvers(session, row.kind, unit), row, unit, "submitted")
    return row


def submit_for(session: Session, principal: Principal, kind: str, unit: OrgUnit, period: str, *,
               replace_waiting: bool = False) -> ReportSubmission:
    """Submit the unit's report of the kind and period, making its draft first if need be (the path of
    the older per-kind submit endpoints). `replace_waiting`: a report still awaiting the decision is
    submitted again with fresh figures (the police station's correction before the county decides)
    instead of refused; an approved report is final either way."""
    period = normal_period(kind, period)
    _check_unit_level(kind, unit)
    ensure_may_submit(principal, kind, unit)
    revisions.hold(session)
    row = _locked(session, ensure_draft(session, principal, kind, unit, period).id or 0)
    if not (replace_waiting and row.status == S.submitted):
        return submit(session, principal, row.id or 0)
    if kind == SubmissionKind.police_weekly:
        from backend.police_cases import weekly

        row.police_weekly_submission_id = weekly.submit(session, principal, unit.id, row.period).id
    row.submitted_at, row.submitted_by = clock.now(), principal.user_id
    row.updated_at = row.submitted_at
    session.add(row)
    session.flush()
    _event(session, principal, row, "resubmit", row.status)
    return row


def decide(session: Session, principal: Principal, submission_id: int, *, approve: bool,
           comment: str | None) -> ReportSubmission:
    """The level above approves (final) or returns (with a comment) a submitted report. Two deciding at
    once: the first wins, the other gets 409 (the row is locked and its state checked under the lock)."""
    row, unit = get_visible(session, principal, submission_id, acting=True)
    ensure_may_decide(principal, row.kind, unit, row.submitted_by)
    note = _clean(comment, "comment", COMMENT_MAX)
    if not approve and len(note) < 2:
        raise ReturnNeedsComment("请填写退回意见", "say why the report is returned", field="comment")
    revisions.hold(session)
    row = _locked(session, submission_id)
    if row.status != S.submitted:
        raise SubmissionStateConflict("报告不在待审核状态", "the report is not awaiting approval",
                                      current_status=row.status)
    ensure_may_decide(principal, row.kind, unit, row.submitted_by)  # again under the lock (a resubmission)
    before = row.status
    now = clock.now()
    row.status = (S.approved if approve else S.returned).value
    row.decided_at, row.decided_by, row.updated_at = now, principal.user_id, now
    if not approve:
        row.returns += 1
    session.add(row)
    _mirror_monthly(session, row)
    session.flush()
    _event(session, principal, row, "approve" if approve else "return", before, note)
    if not approve:
        _notify(session, submitters(session, row.kind, unit), row, unit, "returned")
    return row


def list_visible(session: Session, principal: Principal, unit: OrgUnit, kind: str | None,
                 period: str | None) -> list[ReportSubmission]:
    """Reports of the unit and its subtree."""
    query = select(ReportSubmission).where(col(ReportSubmission.org_unit_id).in_(orgunits.subtree_unit_ids(unit.path)))
    if not principal.can(Action.police_case_read):
        query = query.where(col(ReportSubmission.kind) != SubmissionKind.police_weekly.value)
    if kind is not None:
        query = query.where(col(ReportSubmission.kind) == kind)
        if period is not None:
            query = query.where(col(ReportSubmission.period) == normal_period(kind, period))
    elif period is not None:
        query = query.where(col(ReportSubmission.period) == period)
    return list(session.execute(query.order_by(col(ReportSubmission.period).desc(), col(ReportSubmission.id))
                                ).scalars())


# ---------------------------------------------------------------- what the level above sees


@dataclass(frozen=True)
class UnitState:
    unit: OrgUnit
    submission: ReportSubmission | None
    state: str  # pending | generated | submitted | submitted_late | approved | returned | late
    due: Due
    returns: int


def state_of(row: ReportSubmission | None, when: Due, now: datetime, has_figures: bool = False) -> str:
    """pending (nothing sent, not yet due), generated (a draft or figures, not yet due), late (nothing sent
    and past due), submitted / submitted_late (awaiting approval; by its first submission), approved,
    returned (awaiting correction)."""
    if row is not None and row.status == S.approved:
        return "approved"
    if row is not None and row.status == S.returned:
        return "returned"
    if row is not None and row.status == S.submitted:
        return "submitted" if row.on_time else "submitted_late"
    if clock.as_utc(now) >= clock.as_utc(when.at):
        return "late"
    return "generated" if row is not None or has_figures else "pending"


def child_units(session: Session, kind: str, unit: OrgUnit) -> list[OrgUnit]:
    """The units whose reports of a kind this unit sees: the stations (towns) at or under it for the
    police weekly report, else its direct children (itself when it has none)."""
    if kind == SubmissionKind.police_weekly:
        return list(session.execute(
            select(OrgUnit).where(col(OrgUnit.level) == OrgLevel.town.value,
                                  col(OrgUnit.id).in_(orgunits.subtree_unit_ids(unit.path)))
            .order_by(col(OrgUnit.code), col(OrgUnit.id))).scalars())
    kids = list(session.execute(select(OrgUnit).where(col(OrgUnit.parent_id) == unit.id)
                                .order_by(col(OrgUnit.code), col(OrgUnit.id))).scalars())
    return kids or [unit]


def states(session: Session, kind: str, units: list[OrgUnit], period: str,
           with_figures: frozenset[int] = frozenset()) -> list[UnitState]:
    """For each unit: its state for the period, the due date and how many times it was returned."""
    period = normal_period(kind, period)
    rows = {r.org_unit_id: r for r in session.execute(select(ReportSubmission).where(
        col(ReportSubmission.kind) == kind, col(ReportSubmission.period) == period,
        col(ReportSubmission.org_unit_id).in_([u.id for u in units]))).scalars()} if units else {}
    now = clock.now()
    out = []
    for u in units:
        row = rows.get(u.id or 0)
        when = stored_due(row) or due(session, kind, period, u)
        out.append(UnitState(u, row, state_of(row, when, now, (u.id or 0) in with_figures), when,
                             row.returns if row else 0))
    return out


def stored_due(row: ReportSubmission | None) -> Due | None:
    """The due date a submitted report was judged against (fixed by its first submission), else None:
    a report not yet sent is due by the rule in force now."""
    if row is None or row.first_submitted_at is None:
        return None
    return Due(row.due_date, row.due_at)
