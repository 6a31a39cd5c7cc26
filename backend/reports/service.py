"""Monthly reports: figures for unit U and month M, rendered to .xlsx and PNG, stored, submitted.

Reports are due by the campaign's due rule (default the 17th of the month itself, seed 002: 每月17日前
报送当月工作进展情况). A unit's report is "late" when it has not been submitted by the end of the due
date (China time), "submitted_late" when its first submission came after it. A submitted report goes
to the level above, which approves it (final) or returns it; a returned one is regenerated and
submitted again (backend/report_submissions).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from geoalchemy2.shape import to_shape
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.campaigns import service as campaigns
from backend.campaigns.service import Period
from backend.core import clock
from backend.core.errors import Conflict, NotFound
from backend.coverage import service as coverage
from backend.coverage.service import EFFECTIVE_VISIT, Targets, period_params, run_grouped
from backend.media.storage import get_storage
from backend.orgunits.models import OrgUnit
from backend.registry.models import RiskLevel
from backend.report_submissions import service as submissions
from backend.report_submissions.models import ReportSubmission, SubmissionKind
from backend.reports.models import MonthlyReport, ReportStatus
from backend.reports.render import MapUnit, Sheet, coverage_png, workbook_bytes
from backend.sync import revisions

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PNG_TYPE = "image/png"
OUTCOMES = ("visited", "nobody_home", "refused", "moved_away")
SHEET_TITLES = ("走访", "覆盖", "风险变化", "帮扶", "场所检查", "问题清单", "强制报告", "个案与服务")
# Where mandatory reports came from (referral.source_kind), in the order the sheet lists them; a
# source not listed here still gets its own column, after these.
REPORT_SOURCES_ZH = {"visit": "入户走访", "school": "学校", "kindergarten": "幼儿园", "health_centre": "卫生院",
                     "venue": "场所", "village": "村(社区)", "volunteer": "志愿者", "grid": "网格员", "other": "其他"}


# A report the level above holds (submitted) or has approved is not regenerated.
_FINAL = (ReportStatus.submitted.value, ReportStatus.approved.value)


class ReportAlreadySubmitted(Conflict):
    code = "report-already-submitted"
    title_zh = "月报已报送"
    title_en = "The monthly report has been submitted"


# Where a risk level change came from (risk_level_change.source), as the sheet shows it.
RISK_SOURCES_ZH = {"visit": "入户走访研判", "override": "人工调整", "import": "台账导入", "registry": "登记信息"}
TOTAL_ZH = "合计"


def risk_level_zh(value: str | None) -> str:
    """A stored risk level (its Chinese label or its code) as the Chinese label; "" for none."""
    if not value:
        return ""
    try:
        return RiskLevel.parse(value).label_zh
    except ValueError:
        return value


def _total_row(unit: OrgUnit, rows: list[list[Any]]) -> list[Any]:
    """The whole unit's row under its children's: each count column summed, labelled 合计."""
    width = max((len(r) for r in rows), default=2)
    sums: list[Any] = []
    for i in range(2, width):
        values = [r[i] for r in rows if i < len(r)]
        sums.append(sum(values) if all(isinstance(v, int) and not isinstance(v, bool) for v in values) else "")
    return [unit.code, TOTAL_ZH, *sums]


def _targets_for(session: Session, unit: OrgUnit) -> tuple[list[OrgUnit], Targets]:
    kids = coverage.child_units(session, unit)
    assert unit.id is not None
    if kids:
        return kids, Targets(parent_id=unit.id)
    return [unit], Targets(ids=(unit.id,))


def _per_unit(kids: list[OrgUnit], rows: Any, width: int) -> dict[int, list[int]]:
    out = {k.id: [0] * width for k in kids if k.id is not None}
    for target_id, *values in rows:
        out[int(target_id)] = [int(v or 0) for v in values]
    return out


def _visits_sheet(session: Session, unit: OrgUnit, kids: list[OrgUnit], targets: Targets,
                  params: dict[str, Any]) -> Sheet:
    cases = ", ".join(f"sum(CASE WHEN v.outcome = '{o}' THEN 1 ELSE 0 END)" for o in OUTCOMES)
    rows = run_grouped(session, (
        f" SELECT m.target_id, count(*), {cases}, sum(CASE WHEN v.location_mismatch = :flag THEN 1 ELSE 0 END), "
        "count(DISTINCT v.household_id) FROM visit v JOIN household h ON h.id = v.household_id "
        "JOIN unit_map m ON m.unit_id = h.org_unit_id "
        f"WHERE v.counted_at >= :start_at AND v.counted_at < :end_at AND {EFFECTIVE_VISIT} GROUP BY m.target_id"
    ), targets, {**params, "flag": True})
    per = _per_unit(kids, rows, 7)
    header = ["单位代码", "单位", "走访次数", "已走访", "无人在家", "拒绝", "已搬离", "位置异常", "涉及户数"]
    rows = [[k.code, k.name, *per[k.id]] for k in kids if k.id is not None]
    return Sheet("走访", header, [*rows, _total_row(unit, rows)])


def _coverage_sheet(unit: OrgUnit, kids: list[OrgUnit], result: coverage.CoverageResult) -> Sheet:
    """Per child unit, then the whole unit (its percent from the summed households, as the API's)."""
    rows = []
    total = coverage.UnitNumbers(unit_id=unit.id or 0)
    for k in [*kids, None]:
        if k is None:
            n, code, name = total, unit.code, TOTAL_ZH
        else:
            assert k.id is not None
            n, code, name = result.numbers[k.id], k.code, k.name
            total.add(n)
        rows.append([code, name, n.households, n.visited, n.percent if n.percent is not None else "",
                     n.never_visited, n.mismatch_visits, n.children["low"], n.children["general"],
                     n.children["major"], n.children["severe"], n.children["none"], counting_zh(n.counting)])
    return Sheet("覆盖", ["单位代码", "单位", "户数", "本月已走访户数", "覆盖率%", "从未走访户数", "位置异常走访",
                        "低风险", "一般风险", "较大风险", "重大风险", "未评级", "计数口径"], rows,
                 note="计数口径：计入全部走访，或仅计经审核通过的走访（由乡镇设置）。"
                      "Counting rule: all visits, or approved visits only (a town's choice).")


COUNTING_ZH = {"all": "计入全部走访", "approved_only": "仅计已审核走访", "mixed": "部分单位仅计已审核走访"}


def counting_zh(counting: str | None) -> str:
    """The counting rule a figure used, as the workbook and the map say it."""
    return COUNTING_ZH.get(counting or "all", COUNTING_ZH["mixed"])


def _risk_sheet(session: Session, targets: Targets, params: dict[str, Any], numbers: ChildNumbers) -> Sheet:
    rows = run_grouped(session, (
        " SELECT m.target_id, u.code, u.name, c.person_id, c.previous_level, c.level, c.source, c.created_at "
        "FROM risk_level_change c JOIN person p ON p.id = c.person_id JOIN unit_map m ON m.unit_id = p.org_unit_id "
        "JOIN org_unit u ON u.id = m.target_id "
        "WHERE c.created_at >= :start_at AND c.created_at < :end_at ORDER BY c.created_at, c.id"
    ), targets, params)
    out = [[code, name, numbers.of(pid), risk_level_zh(prev), risk_level_zh(level) or "未评级",
            RISK_SOURCES_ZH.get(source, "其他"), _local(at)]
           for _t, code, name, pid, prev, level, source, at in rows]
    return Sheet("风险变化", ["单位代码", "单位", "儿童编号", "原等级", "新等级", "来源", "时间"], out,
                 note="儿童仅以编号列出，不含姓名与身份证号。Children are listed by number only.")


class ChildNumbers:
    """How one report names its children: C001, C002 … by first appearance (the sheets' stable order), never
    a name, an ID number or the database id, so the workbook reveals nothing to look a child up by; the
    same child keeps its number across the report's sheets."""

    def __init__(self) -> None:
        self._numbers: dict[int, str] = {}

    def of(self, person_id: Any) -> str:
        key = int(person_id)
        if key not in self._numbers:
            self._numbers[key] = child_number(len(self._numbers) + 1)
        return self._numbers[key]


def child_number(ordinal: int) -> str:
    """The report's name of its `ordinal`-th child (1-based): C001 … C999, C1000 …"""
    return f"C{ordinal:03d}"


def _local(at: Any) -> str:
    """A stored instant as China time to the minute ("" for none)."""
    if at is None:
        return ""
    if isinstance(at, datetime):
        return clock.china_time(at).strftime("%Y-%m-%d %H:%M")
    return clock.china_time(datetime.fromisoformat(str(at))).strftime("%Y-%m-%d %H:%M")


# An assignment is in effect from the helper's acceptance until it ends; it counts for the month when
# those dates overlap the month. Offers still waiting, declined or expired ones never took effect.
_IN_EFFECT = "a.status IN ('accepted', 'ended') AND a.answered_at IS NOT NULL"
_IN_MONTH = "a.answered_at < :end_at AND (a.ended_at IS NULL OR a.ended_at >= :start_at)"
_FOLLOWUPS_IN_MONTH = (
    " LEFT JOIN (SELECT assignment_id, count(*) AS n FROM helper_followup "
    "WHERE visited_at >= :start_at AND visited_at < :end_at GROUP BY assignment_id) f ON f.assignment_id = a.id"
)
HELPER_SUMMARY_HEADER = ["单位代码", "单位", "本月在帮关系数", "帮扶儿童数", "本月开始", "本月结束", "本月回访次数",
                         "当前逾期回访"]
HELPER_DETAIL_HEADER = ["单位代码", "单位", "儿童编号", "风险等级", "帮扶人编号", "方式", "状态", "开始", "结束",
                        "本月回访次数", "回访逾期"]
_MODES = {"one_to_one": "一对一", "many_to_one": "多对一"}
_STATES = {"accepted": "帮扶中", "ended": "已结束"}


def _helpers_sheet(session: Session, unit: OrgUnit, kids: list[OrgUnit], targets: Targets, params: dict[str, Any],
                   result: coverage.CoverageResult, numbers: ChildNumbers) -> Sheet:
    """Per unit: assignments in effect in the month, started and ended in it, children helped, follow-up
    visits made in it, and follow-ups overdue now; then one line per assignment in effect, the child by
    number only."""
    rows = run_grouped(session, (
        f" SELECT m.target_id, count(*), count(DISTINCT a.child_id), "
        "sum(CASE WHEN a.answered_at >= :start_at THEN 1 ELSE 0 END), "
        "sum(CASE WHEN a.ended_at >= :start_at AND a.ended_at < :end_at THEN 1 ELSE 0 END), coalesce(sum(f.n), 0) "
        f"FROM helper_assignment a JOIN unit_map m ON m.unit_id = a.org_unit_id{_FOLLOWUPS_IN_MONTH} "
        f"WHERE {_IN_EFFECT} AND {_IN_MONTH} GROUP BY m.target_id"
    ), targets, params)
    per = _per_unit(kids, rows, 5)
    out: list[list[Any]] = []
    for k in kids:
        assert k.id is not None
        out.append([k.code, k.name, *per[k.id], result.numbers[k.id].overdue_followups])
    out.append(_total_row(unit, out))
    detail = run_grouped(session, (
        " SELECT u.code, u.name, a.child_id, p.risk_level, a.helper_id, a.mode, a.status, a.answered_at, "
        f"a.ended_at, coalesce(f.n, 0), CASE WHEN {coverage.OVERDUE_FOLLOWUP} THEN 1 ELSE 0 END "
        "FROM helper_assignment a JOIN person p ON p.id = a.child_id JOIN unit_map m ON m.unit_id = a.org_unit_id "
        f"JOIN org_unit u ON u.id = m.target_id{_FOLLOWUPS_IN_MONTH} "
        f"WHERE {_IN_EFFECT} AND {_IN_MONTH} ORDER BY u.code, a.child_id, a.id"
    ), targets, {**params, **coverage.followup_cutoffs(params["now"])})
    if detail:
        out.append([])
        out.append(HELPER_DETAIL_HEADER)
        out.extend([code, name, numbers.of(child), risk_level_zh(level) or "未评级", f"H{int(helper):04d}",
                    _MODES.get(mode, "其他"), _STATES.get(status, "其他"), _local(started), _local(ended), int(n),
                    "是" if overdue else "否"]
                   for code, name, child, level, helper, mode, status, started, ended, n, overdue in detail)
    return Sheet("帮扶", HELPER_SUMMARY_HEADER, out,
                 note="儿童仅以编号列出、帮扶人以帮扶人编号列出，不含姓名与身份证号；逾期按报表生成时计。"
                      "Children and helpers are listed by number only; overdue as of generation.")


def _inspections_sheet(session: Session, unit: OrgUnit, kids: list[OrgUnit], targets: Targets,
                       params: dict[str, Any]) -> Sheet:
    rows = run_grouped(session, (
        " SELECT m.target_id, count(*), sum(CASE WHEN i.is_joint = :flag THEN 1 ELSE 0 END), "
        "sum(CASE WHEN i.is_reinspection = :flag THEN 1 ELSE 0 END), count(DISTINCT i.venue_id) "
        "FROM inspection i JOIN unit_map m ON m.unit_id = i.org_unit_id "
        "WHERE i.counted_at >= :start_at AND i.counted_at < :end_at GROUP BY m.target_id"
    ), targets, {**params, "flag": True})
    per = _per_unit(kids, rows, 4)
    rows = [[k.code, k.name, *per[k.id]] for k in kids if k.id is not None]
    return Sheet("场所检查", ["单位代码", "单位", "检查次数", "联合执法", "复查", "检查场所数"],
                 [*rows, _total_row(unit, rows)])


def _problems_sheet(session: Session, unit: OrgUnit, kids: list[OrgUnit], targets: Targets,
                    params: dict[str, Any]) -> Sheet:
    rows = run_grouped(session, (
        " SELECT m.target_id, "
        "sum(CASE WHEN p.created_at >= :start_at AND p.created_at < :end_at THEN 1 ELSE 0 END), "
        "sum(CASE WHEN p.verified_at >= :start_at AND p.verified_at < :end_at THEN 1 ELSE 0 END), "
        "sum(CASE WHEN p.created_at < :end_at AND (p.verified_at IS NULL OR p.verified_at >= :end_at) "
        "THEN 1 ELSE 0 END), "
        "sum(CASE WHEN p.status <> 'verified' AND (p.status = 'overdue' OR p.deadline_date < :today) "
        "THEN 1 ELSE 0 END) "
        "FROM venue_problem p JOIN unit_map m ON m.unit_id = p.org_unit_id GROUP BY m.target_id"
    ), targets, params)
    per = _per_unit(kids, rows, 4)
    rows = [[k.code, k.name, *per[k.id]] for k in kids if k.id is not None]
    return Sheet("问题清单", ["单位代码", "单位", "本月发现", "本月销号", "月末未销号", "当前逾期"],
                 [*rows, _total_row(unit, rows)])


def _referrals_sheet(unit: OrgUnit, kids: list[OrgUnit], result: coverage.CoverageResult) -> Sheet:
    rows = []
    for k in kids:
        assert k.id is not None
        r = result.numbers[k.id].referrals
        rows.append([k.code, k.name, r["new"] + r["received"] + r["handled"], r["new"], r["received"], r["handled"],
                     r["overdue"]])
    return Sheet("强制报告", ["单位代码", "单位", "本月新增", "待接收", "已接收", "已处置", "当前逾期"],
                 [*rows, _total_row(unit, rows)])


def _cases_sheet(unit: OrgUnit, kids: list[OrgUnit], result: coverage.CoverageResult) -> Sheet:
    """Per unit: cases open and active now, opened and closed in the month; services under way and
    overdue now, done in the month; the month's mandatory reports by source. Counts only."""
    sources = list(REPORT_SOURCES_ZH)
    for k in kids:
        sources += [s for s in result.numbers[k.id or 0].reports_by_source if s not in sources]
    rows = []
    for k in kids:
        assert k.id is not None
        n = result.numbers[k.id]
        rows.append([k.code, k.name, n.cases["open"], n.cases["active"], n.cases["opened"], n.cases["closed"],
                     n.services["in_progress"], n.services["overdue"], n.services["done"],
                     *[n.reports_by_source.get(s, 0) for s in sources]])
    header = ["单位代码", "单位", "待接手个案", "帮扶中个案", "本月新开个案", "本月结案", "进行中服务", "逾期服务",
              "本月完成服务", *[f"强制报告·{REPORT_SOURCES_ZH.get(s, '其他')}" for s in sources]]
    return Sheet("个案与服务", header, [*rows, _total_row(unit, rows)],
                 note="仅统计数量，不含儿童姓名。待接手、帮扶中、进行中与逾期按报表生成时计。"
                      "Counts only; open, active, under way and overdue as of generation.")


def _map_units(kids: list[OrgUnit], result: coverage.CoverageResult) -> list[MapUnit]:
    units = []
    for k in kids:
        assert k.id is not None
        rings: list[list[tuple[float, float]]] = []
        if k.boundary is not None:
            shape = to_shape(k.boundary)
            polygons = list(shape.geoms) if hasattr(shape, "geoms") else [shape]
            rings = [[(float(x), float(y)) for x, y in poly.exterior.coords] for poly in polygons]
        units.append(MapUnit(k.name, k.code, rings, result.numbers[k.id].percent))
    return units


def map_caption(unit: OrgUnit, total: coverage.UnitNumbers) -> str:
    """The whole unit's figure under the map, and the counting rule it used."""
    percent = "无数据" if total.percent is None else f"{total.percent:.1f}%"
    return (f"{unit.name}{TOTAL_ZH}：已走访 {total.visited} / {total.households} 户，覆盖率 {percent}"
            f"（计数口径：{counting_zh(total.counting)}）")


@dataclass(frozen=True)
class ReportFiles:
    xlsx: bytes
    png: bytes
    figures: dict[str, Any]


def build(session: Session, unit: OrgUnit, period: Period) -> ReportFiles:
    """The workbook and map of one unit and month (no storage, no audit)."""
    kids, result = coverage.unit_coverage(session, unit, period)
    _, targets = _targets_for(session, unit)
    params = period_params(period, targets)
    numbers = ChildNumbers()
    sheets = [
        _visits_sheet(session, unit, kids, targets, params),
        _coverage_sheet(unit, kids, result),
        _risk_sheet(session, targets, params, numbers),
        _helpers_sheet(session, unit, kids, targets, params, result, numbers),
        _inspections_sheet(session, unit, kids, targets, params),
        _problems_sheet(session, unit, kids, targets, params),
        _referrals_sheet(unit, kids, result),
        _cases_sheet(unit, kids, result),
    ]
    total = coverage.UnitNumbers(unit_id=unit.id or 0)
    for n in result.numbers.values():
        total.add(n)
    png = coverage_png(f"{unit.name} {period.label_zh} 走访覆盖率", _map_units(kids, result), map_caption(unit, total))
    return ReportFiles(workbook_bytes(sheets), png, total.as_properties())


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def generate(session: Session, principal: Principal, unit: OrgUnit, month: str) -> MonthlyReport:
    """Build and store the report of a unit and month (replacing an unsubmitted one)."""
    period = campaigns.month_period(month)
    assert unit.id is not None
    report = session.execute(
        select(MonthlyReport).where(col(MonthlyReport.org_unit_id) == unit.id, col(MonthlyReport.month) == month)
    ).scalar_one_or_none()
    if report is not None and report.status in _FINAL:
        raise ReportAlreadySubmitted(f"{unit.name}{month}月报已报送，不能再生成",
                                     f"the {month} report of {unit.code} was submitted (regenerate it once returned)")
    files = build(session, unit, period)
    stamp = clock.now().strftime("%Y%m%dT%H%M%S")
    xlsx_key = f"reports/{unit.code}/{month}/report-{stamp}.xlsx"
    png_key = f"reports/{unit.code}/{month}/coverage-{stamp}.png"
    storage = get_storage()
    storage.put_bytes(xlsx_key, files.xlsx, XLSX_TYPE)
    storage.put_bytes(png_key, files.png, PNG_TYPE)
    values: dict[str, Any] = {
        "xlsx_key": xlsx_key, "xlsx_sha256": _sha(files.xlsx), "xlsx_bytes": len(files.xlsx),
        "png_key": png_key, "png_sha256": _sha(files.png), "png_bytes": len(files.png),
        "figures": files.figures, "generated_by": principal.user_id, "generated_at": clock.now(),
        "due_date": campaigns.report_due_date(session, month, unit),
    }
    # The files took seconds to build without a lock; now, in the lock order (the sync counter first,
    # then the row), check again that no one submitted the report or generated it first meanwhile.
    revisions.hold(session)
    report = session.execute(
        select(MonthlyReport).where(col(MonthlyReport.org_unit_id) == unit.id, col(MonthlyReport.month) == month)
        .with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if report is not None and report.status in _FINAL:
        raise ReportAlreadySubmitted(f"{unit.name}{month}月报已报送，不能再生成",
                                     f"the {month} report of {unit.code} was submitted (regenerate it once returned)")
    if report is None:
        report = MonthlyReport(org_unit_id=unit.id, month=month, **values)
    else:
        for key, value in values.items():
            setattr(report, key, value)
    session.add(report)
    session.flush()
    way_up = submissions.ensure_draft(session, principal, SubmissionKind.monthly, unit, month)
    if way_up.monthly_report_id is None:
        way_up.monthly_report_id = report.id
        session.add(way_up)
        session.flush()
    audit.record(session, actor=principal, action="report.generate", object_type="monthly_report",
                 object_id=report.id, org_unit_id=unit.id, details={"month": month})
    return report


def get_visible(session: Session, principal: Principal, report_id: int) -> tuple[MonthlyReport, OrgUnit]:
    report = session.get(MonthlyReport, report_id)
    if report is None:
        raise NotFound()
    unit = session.get(OrgUnit, report.org_unit_id)
    principal.ensure_covers(unit.path if unit else None)
    assert unit is not None
    return report, unit


def submit(session: Session, principal: Principal, report_id: int, narrative: dict[str, str | None] | None = None
           ) -> MonthlyReport:
    """Send the report upward with its narrative (progress, problems, next steps); the level above
    approves or returns it. Audited as report.submit and by the submission's own entry."""
    report, unit = get_visible(session, principal, report_id)
    submissions.ensure_may_submit(principal, SubmissionKind.monthly, unit)  # only the unit itself
    if report.status in _FINAL:
        raise ReportAlreadySubmitted("月报已报送", "the report was already submitted")
    revisions.hold(session)  # before the draft's audit entry locks the log's head (lock order)
    way_up = submissions.ensure_draft(session, principal, SubmissionKind.monthly, unit, report.month)
    submissions.submit(session, principal, way_up.id or 0, **(narrative or {}))
    session.refresh(report)
    audit.record(session, actor=principal, action="report.submit", object_type="monthly_report",
                 object_id=report.id, org_unit_id=unit.id, details={"month": report.month})
    return report


def decide(session: Session, principal: Principal, report_id: int, *, approve: bool, comment: str | None
           ) -> MonthlyReport:
    """The level above approves or returns (with a comment) a submitted monthly report."""
    report, unit = get_visible(session, principal, report_id)
    way_up = submissions.find(session, SubmissionKind.monthly, unit.id or 0, report.month)
    if way_up is None:
        raise submissions.SubmissionStateConflict("月报尚未报送", "the report has not been submitted",
                                                  current_status=report.status)
    submissions.decide(session, principal, way_up.id or 0, approve=approve, comment=comment)
    session.refresh(report)
    return report


def submission_of(session: Session, report: MonthlyReport) -> ReportSubmission | None:
    return submissions.find(session, SubmissionKind.monthly, report.org_unit_id, report.month)


def file_bytes(session: Session, principal: Principal, report_id: int, kind: str) -> tuple[bytes, str, str]:
    """(bytes, content type, file name) of a report's workbook or map; the download is audited."""
    report, unit = get_visible(session, principal, report_id)
    key, content_type, ext = (
        (report.xlsx_key, XLSX_TYPE, "xlsx") if kind == "xlsx" else (report.png_key, PNG_TYPE, "png")
    )
    audit.record(session, actor=principal, action=f"report.download.{ext}", object_type="monthly_report",
                 object_id=report.id, org_unit_id=unit.id, details={"month": report.month})
    return get_storage().get_bytes(key), content_type, f"hulei-{unit.code}-{report.month}.{ext}"


def list_reports(session: Session, principal: Principal, unit: OrgUnit, month: str | None) -> list[MonthlyReport]:
    """Reports of the unit and its subtree (one month, or all)."""
    from backend.orgunits.service import subtree_unit_ids

    query = select(MonthlyReport).where(col(MonthlyReport.org_unit_id).in_(subtree_unit_ids(unit.path)))
    if month is not None:
        campaigns.month_period(month)
        query = query.where(col(MonthlyReport.month) == month)
    return list(session.execute(query.order_by(col(MonthlyReport.month).desc(), col(MonthlyReport.id))).scalars())


@dataclass(frozen=True)
class SubmissionState:
    unit: OrgUnit
    report: MonthlyReport | None
    state: str  # pending | generated | late | submitted | submitted_late | approved | returned
    due_date: date
    submission: ReportSubmission | None = None
    returns: int = 0


def submission_states(session: Session, unit: OrgUnit, month: str) -> list[SubmissionState]:
    """For each child unit: not submitted (pending, generated, late), submitted on time or late,
    approved or returned (and how many times), with the due date of the campaign's rule."""
    kids = coverage.child_units(session, unit) or [unit]
    reports = {
        r.org_unit_id: r for r in session.execute(
            select(MonthlyReport).where(col(MonthlyReport.month) == month,
                                        col(MonthlyReport.org_unit_id).in_([k.id for k in kids]))
        ).scalars()
    }
    found = submissions.states(session, SubmissionKind.monthly, kids, month, frozenset(reports))
    return [SubmissionState(s.unit, reports.get(s.unit.id or 0), s.state, s.due.date, s.submission, s.returns)
            for s in found]
