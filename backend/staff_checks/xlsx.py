"""An institution's staff list as .xlsx: export and an all-or-nothing import with a dry run.

Read through backend/ledgers/reading.py, written through backend/core/workbook.py (text stays text).
The export carries the ID number masked (region only) and each member's 编号 (id); a row with 编号
names that member and keeps its number (the cell empty or masked as exported; a full number is
refused whatever it is, so no row compares a typed number with a stored one), a row without one is
checked as a new member (status employed unless the row says otherwise: a list typed from the payroll
is of staff at work) and, in a real import, names the member with the same ID number at the
institution (its name, position and hire date follow the row, its status does not) or adds one. Numbers
typed as numbers (Excel keeps 15 digits), masked, invalid or repeated in the file are row errors;
status changes follow the same rules as the API (a flagged member cannot be hired). Any bad row
answers every bad row and nothing is written; a dry run writes nothing either.

No answer depends on a stored number the caller did not type: a row without 编号 fails or passes
alike whether its number is listed or not (a dry run answers only the number of valid rows, not how
many would be created or changed), and a hire date is checked against the age only of a typed
number. The real import matches by number and names the members it matched in its audit entry, so
probing shows there, and each typed number of a real import counts against the user's daily
allowance, all the file's at once or the import is refused whole (backend/staff_checks/quota.py).
A new member whose person is flagged anywhere starts flagged
(`service.inherit_flag`). Two imports (or an import and POST /staff) adding the same number at once:
the later one is 409 `staff-import-conflict`, nothing of it written."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.core import clock, crypto, workbook
from backend.core.errors import Conflict, DomainError
from backend.institutions.models import Institution
from backend.institutions.xlsx import Problems, cell_text, read_sheet, refused_cell
from backend.ledgers.importing import NUMERIC_ID_EN, NUMERIC_ID_ZH
from backend.registry import idnumber
from backend.staff_checks import quota, service
from backend.staff_checks.models import STATUS_ZH, StaffMember, StaffStatus

COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "编号"),
    ("name", "姓名"),
    ("id_number", "身份证号码"),
    ("position", "岗位"),
    ("hire_date", "入职日期"),
    ("status", "状态"),
    # Written by the export for the reader, passed over by the import (checks are the police's to record).
    ("last_check_date", "最近查询日期"),
    ("next_check_due", "下次定期查询"),
    ("flagged", "需解聘/不予聘用"),
)
_ZH = dict(COLUMNS)
_STATUS = {zh: s for s, zh in STATUS_ZH.items()} | {s.value: s for s in StaffStatus} | {
    "在岗": StaffStatus.employed, "拟录用": StaffStatus.candidate, "离职": StaffStatus.left,
    "解聘": StaffStatus.dismissed}
_SCIENTIFIC = re.compile(r"^[0-9](\.[0-9]+)?E\+?[0-9]+$", re.IGNORECASE)
_DATE = re.compile(r"^([0-9]{4})\s*[-./年]\s*([0-9]{1,2})\s*[-./月]\s*([0-9]{1,2})\s*日?$")


class StaffImportConflict(Conflict):
    code = "staff-import-conflict"
    title_zh = "导入时其他人同时登记了相同身份证号码的人员，未导入任何数据，请重新导入"
    title_en = "Someone added a member with the same ID number meanwhile; nothing was imported, import again"


@dataclass
class StaffImport:
    dry_run: bool
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: Problems = field(default_factory=Problems)
    matched: list[int] = field(default_factory=list)  # members matched by number (not by 编号)
    inherited: list[int] = field(default_factory=list)  # members elsewhere whose flag a new member took


def _id_text(value: Any) -> tuple[str | None, tuple[str, str] | None]:
    """The ID number cell as text, or why it cannot be one."""
    if isinstance(value, bool):
        return None, ("身份证号码无效", "Invalid ID number")
    if isinstance(value, int | float):
        return None, (NUMERIC_ID_ZH, NUMERIC_ID_EN)
    text = cell_text(value)
    if text.startswith('="') and text.endswith('"') and len(text) >= 3:
        text = text[2:-1].strip()
    elif text.startswith("'"):
        text = text[1:].strip()
    if _SCIENTIFIC.match(text):
        return None, (NUMERIC_ID_ZH, NUMERIC_ID_EN)
    return text, None


def _date(value: Any) -> tuple[date | None, bool]:
    """A date cell (a date, or text 2024-09-01 / 2024/9/1 / 2024年9月1日); (None, False) when unreadable."""
    if isinstance(value, datetime):
        return value.date(), True
    if isinstance(value, date):
        return value, True
    match = _DATE.match(cell_text(value))
    if match is None:
        return None, False
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3))), True
    except ValueError:
        return None, False


def import_staff(session: Session, principal: Principal, institution_id: int, content: bytes, filename: str,
                 *, dry_run: bool) -> StaffImport:
    """Create or change an institution's members from a file (module docstring)."""
    institution: Institution = service.institution_for_staff(session, principal, institution_id)
    assert institution.id is not None
    report = StaffImport(dry_run=dry_run)
    problems = report.problems
    sheet = read_sheet(content, filename, COLUMNS, ("name", "id_number"))
    by_index: dict[str, int] = {}
    by_id: dict[int, int] = {}
    d = disclosure.current()
    saved = {k: set(v) for k, v in d.changed.items()} if d is not None else None
    savepoint = session.begin_nested()
    try:
        for number, raw in sheet.rows:
            refused = refused_cell(raw, _ZH)
            if refused:
                problems.add(number, *refused)
                continue
            outcome = _row(session, institution, number, raw, problems, by_index, by_id, report)
            if outcome is not None:
                report.rows += 1
            if outcome == "created":
                report.created += 1
            elif outcome == "updated":
                report.updated += 1
            elif outcome == "unchanged":
                report.unchanged += 1
        session.flush()
    except IntegrityError as exc:  # the same number added meanwhile by another import or POST /staff
        savepoint.rollback()
        if d is not None and saved is not None:
            d.changed = saved
        disclosure.event(session, "staff.import", actor=principal, object_type="institution",
                         object_id=institution.id, org_unit_id=institution.org_unit_id,
                         details={"dry_run": dry_run, "rows": len(sheet.rows), "refused": StaffImportConflict.code})
        raise StaffImportConflict() from exc
    except BaseException:
        savepoint.rollback()
        raise
    if not problems and not dry_run:
        # Each row's typed number is looked up (matched or added): all of them taken from the day's
        # allowance at once, or the import is refused whole (backend/staff_checks/quota.py).
        try:
            quota.take(session, principal, len(by_index))
        except quota.StaffTypedNumbersCapped:
            savepoint.rollback()
            if d is not None and saved is not None:
                d.changed = saved
            disclosure.event(session, "staff.import", actor=principal, object_type="institution",
                             object_id=institution.id, org_unit_id=institution.org_unit_id,
                             details={"dry_run": dry_run, "rows": len(sheet.rows), "typed_numbers": len(by_index),
                                      "refused": quota.StaffTypedNumbersCapped.code})
            raise
    if problems or dry_run:
        savepoint.rollback()
        if d is not None and saved is not None:
            d.changed = saved
    else:
        savepoint.commit()
    if dry_run:  # the counts would tell which typed numbers are listed (module docstring)
        report.created = report.updated = report.unchanged = 0
    details: dict[str, Any] = {"dry_run": dry_run, "rows": len(sheet.rows), "valid_rows": report.rows,
                               "created": report.created, "updated": report.updated, "unchanged": report.unchanged,
                               "errors": len(problems.errors)}
    if not dry_run:
        details |= {"matched_member_ids": sorted(report.matched), "flag_inherited_from": sorted(report.inherited)}
    disclosure.event(session, "staff.import", actor=principal, object_type="institution", object_id=institution.id,
                     org_unit_id=institution.org_unit_id, details=details)
    return report


def _row(session: Session, institution: Institution, number: int, raw: dict[str, Any], problems: Problems,
         by_index: dict[str, int], by_id: dict[int, int], report: StaffImport) -> str | None:
    before = len(problems.errors)

    def bad(column: str | None, zh: str, en: str) -> None:
        problems.add(number, _ZH[column] if column else None, zh, en)

    assert institution.id is not None
    member: StaffMember | None = None
    ident = cell_text(raw.get("id"))
    if ident:
        found = session.get(StaffMember, int(ident)) if ident.isdigit() else None
        if found is None or found.institution_id != institution.id:
            bad("id", f"编号 {ident} 不是本单位的人员", f"The id {ident} is no member of this institution")
            return None
        if found.id in by_id:
            bad("id", f"编号 {ident} 与第 {by_id[found.id]} 行重复", f"The id {ident} repeats row {by_id[found.id]}")
            return None
        assert found.id is not None
        by_id[found.id] = number
        member = found
    text, why = _id_text(raw.get("id_number"))
    parsed: idnumber.IdNumber | None = None
    if why is not None:
        bad("id_number", *why)
    elif member is not None:
        # A row with 编号 keeps its member's number: the cell is empty or the exported masked value. Any
        # other value is refused alike, whether or not it is the stored number (no test of a guess).
        if text and not (idnumber.is_masked(text) and idnumber.mask(text) == member.id_masked):
            bad("id_number", "有编号的行，身份证号码须留空或保留导出的隐藏号码"
                "（号码不能修改：号码有误请将该人员设为离职后不填编号新增）",
                "A row with an id keeps the member's number: leave the ID number empty or masked as exported (it "
                "cannot change: mark the member left and add a new row without an id)")
    elif text:
        try:
            parsed = service.parse_id_number(text)
        except DomainError as exc:
            bad("id_number", exc.detail_zh or exc.title_zh, exc.detail_en or exc.title_en)
    else:
        bad("id_number", "身份证号码为空", "The ID number is empty")
    if parsed is not None:
        index = crypto.blind_index(parsed.value)
        if index in by_index:
            bad("id_number", f"身份证号码与第 {by_index[index]} 行重复", f"The ID number repeats row {by_index[index]}")
        by_index[index] = number
    name = cell_text(raw.get("name"))
    if len(name) > 60:
        bad("name", "姓名超过60字", "The name is longer than 60 characters")
    position = cell_text(raw.get("position"))
    if len(position) > 60:
        bad("position", "岗位超过60字", "The position is longer than 60 characters")
    hire: date | None = None
    if cell_text(raw.get("hire_date")):
        hire, ok = _date(raw.get("hire_date"))
        if not ok or hire is None or hire.year < 1950:
            bad("hire_date", f"入职日期无法识别：“{cell_text(raw.get('hire_date'))}”（如 2024-09-01）",
                f"Unreadable hire date “{cell_text(raw.get('hire_date'))}” (write 2024-09-01)")
        else:
            try:  # not in the future; at least 16 on it only against a number typed in this row
                service.check_hire_date(hire, parsed)
            except DomainError as exc:
                bad("hire_date", exc.detail_zh or exc.title_zh, exc.detail_en or exc.title_en)
    status: StaffStatus | None = None
    if status_text := cell_text(raw.get("status")):
        status = _STATUS.get(status_text) or _STATUS.get(status_text.lower())
        if status is None:
            bad("status", f"状态无法识别：“{status_text}”", f"Unknown status “{status_text}”")
    if member is None and not name:
        bad("name", "新人员缺少姓名", "A new member needs a name")
    if len(problems.errors) > before:
        return None
    if member is None:
        # A row without 编号 is checked as a new member whatever is listed, in a dry run and a real
        # import alike: its answer must not tell whether its typed number is listed (module docstring).
        assert parsed is not None
        try:
            created = service.new_member(institution.id, name=name, number=parsed, position=position, hire_date=hire,
                                         status=status or StaffStatus.employed)
        except DomainError as exc:
            column = "hire_date" if isinstance(exc, service.StaffEmployedTooRecent) else "status"
            bad(column, exc.detail_zh or exc.title_zh, exc.detail_en or exc.title_en)
            return None
        if report.dry_run:
            return "created"
        member = service.find(session, institution.id, parsed)
        if member is not None:
            # The member of that number: its name, position and hire date follow the row; its 状态 is a new
            # member's starting status, not applied to a listed member (a status change reads the member's
            # flag and checks: it goes through 编号 or PATCH /staff/{id}).
            assert member.id is not None
            report.matched.append(member.id)
            status = None
    if member is None:
        assert parsed is not None
        matched, flagged = service.same_person(session, created.id_index)
        if flagged:
            created.flagged = True
            report.inherited.extend(matched)
        session.add(created)
        session.flush()
        disclosure.changed(service.KIND, [created.id], unit_id=institution.org_unit_id)
        return "created"
    changed = False
    if name and name != member.name:
        member.name, changed = name, True
    if "position" in raw and position != member.position:
        member.position, changed = position, True
    if hire is not None and hire != member.hire_date:
        member.hire_date, changed = hire, True
    if status is not None:
        try:
            changed = service.transition(session, member, status) or changed
        except DomainError as exc:
            bad("status", exc.detail_zh or exc.title_zh, exc.detail_en or exc.title_en)
            return None
    if not changed:
        return "unchanged"
    member.updated_at = clock.now()
    session.add(member)
    disclosure.changed(service.KIND, [member.id], unit_id=institution.org_unit_id)
    return "updated"


def export_staff(members: list[StaffMember]) -> bytes:
    """The staff list in the import layout, ID numbers masked (re-importing it changes nothing)."""
    rows = []
    for m in members:
        due = service.due_date(m)
        rows.append([m.id, m.name, m.id_masked, m.position, m.hire_date, STATUS_ZH[StaffStatus(m.status)],
                     m.last_check_date, due, "是" if m.flagged else ""])
    return workbook.xlsx_bytes([workbook.Table(
        title="从业人员名单", header=[zh for _, zh in COLUMNS], rows=rows, text_columns=frozenset({1, 2, 3}),
        widths=[8, 12, 22, 16, 12, 10, 14, 14, 14])])
