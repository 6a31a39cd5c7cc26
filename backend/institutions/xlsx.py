"""The institution register as .xlsx: export, and an all-or-nothing import (with a dry run).

Files are read through backend/ledgers/reading.py (the one reader of uploads: hostile files refused
before any XML is parsed; formulas read as their cached value, never evaluated) and written through
backend/core/workbook.py (text stays text: a name "=HYPERLINK(…)" is written as a string, never a
formula). A row names a stored institution by its 编号 (id, as exported) or, without one, by its
unit and name; a row naming none creates one. The helpers here (`Sheet`, `Problems`, `cell_text`)
are shared with the staff lists (backend/staff_checks/xlsx.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.grants import AGENCY_ZH
from backend.accounts.models import Agency
from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.core import clock, workbook
from backend.core import text as texts
from backend.core.spreadsheet import ImportFileUnreadable
from backend.institutions import service as institutions
from backend.institutions.models import INSTITUTION_KIND_ZH, SUPERVISOR, Institution, InstitutionKind
from backend.ledgers import reading
from backend.orgunits.models import OrgUnit

MAX_ROWS = 5000


@dataclass
class Problems:
    """Row errors of an import, in both languages (the answer gives the caller's)."""

    errors: list[dict[str, Any]] = field(default_factory=list)

    def add(self, row: int, column: str | None, zh: str, en: str) -> None:
        self.errors.append({"row": row, "column": column, "reason": zh, "reason_en": en})

    def __bool__(self) -> bool:
        return bool(self.errors)


@dataclass
class Sheet:
    """The data rows of a file's first sheet holding data, keyed by field (header in row 1)."""

    rows: list[tuple[int, dict[str, Any]]]


def cell_text(value: Any) -> str:
    """A cell as trimmed text (a whole float as an int: a count typed in Excel)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_sheet(content: bytes, filename: str, columns: Sequence[tuple[str, str]], required: Sequence[str]) -> Sheet:
    """Read the first sheet holding data; refuse a header that lacks a required column, repeats one or
    names one nobody knows (a misspelt header must not drop a column's values unseen)."""
    book = reading.read(content, filename, max_rows=MAX_ROWS, header_rows=1)
    rows = next((s.rows for s in book.sheets if not s.skipped and s.rows), [])
    if not rows:
        raise ImportFileUnreadable("文件为空", "the sheet is empty")
    by_header = {zh: f for f, zh in columns} | {f: f for f, _ in columns}
    fields: list[str | None] = []
    unknown: list[str] = []
    for raw in rows[0]:
        header = cell_text(raw)
        name = by_header.get(header)
        if header and name is None:
            unknown.append(header)
        fields.append(name)
    zh = dict(columns)
    if unknown:
        raise ImportFileUnreadable(
            f"表头有无法识别的列：{'、'.join(unknown[:5])}（应为：{'、'.join(zh.values())}）",
            f"Unknown header(s): {', '.join(unknown[:5])}; expected: {', '.join(zh.values())}", columns=unknown[:5])
    doubled = sorted({f for f in fields if f and fields.count(f) > 1})
    if doubled:
        raise ImportFileUnreadable(f"表头重复：{'、'.join(zh[f] for f in doubled)}",
                                   f"Repeated header(s): {', '.join(doubled)}")
    missing = [f for f in required if f not in fields]
    if missing:
        raise ImportFileUnreadable(f"缺少列：{'、'.join(zh[f] for f in missing)}",
                                   f"Missing column(s): {', '.join(missing)}")
    out: list[tuple[int, dict[str, Any]]] = []
    for number, values in enumerate(rows[1:], start=2):
        if all(cell_text(v) == "" for v in values):
            continue
        out.append((number, {f: v for f, v in zip(fields, values, strict=False) if f}))
    return Sheet(out)


def refused_cell(row: dict[str, Any], columns: dict[str, str]) -> tuple[str, str, str] | None:
    """The first cell holding a character Hulei refuses: (header, zh, en), or None."""
    for name, value in row.items():
        if isinstance(value, str) and (bad := texts.first_refused(value)) is not None:
            return columns[name], texts.cell_reason(bad), texts.cell_reason(bad, "en")
    return None


COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "编号"),
    ("name", "单位名称"),
    ("kind", "单位类型"),
    ("unit_code", "所属单位编码"),
    ("supervising_agency", "主管部门"),
    ("address", "地址"),
    ("student_count", "在校学生数"),
    ("is_active", "是否在用"),
)
_ZH = dict(COLUMNS)
_KIND_ALIASES: dict[str, InstitutionKind] = {zh: k for k, zh in INSTITUTION_KIND_ZH.items()} | {
    k.value: k for k in InstitutionKind} | {
    "初中": InstitutionKind.secondary_school, "高中": InstitutionKind.secondary_school,
    "中职": InstitutionKind.secondary_school, "培训机构": InstitutionKind.training,
    "旅馆": InstitutionKind.hotel, "酒店": InstitutionKind.hotel, "宾馆": InstitutionKind.hotel,
    "网咖": InstitutionKind.internet_cafe, "卫生院": InstitutionKind.health, "诊所": InstitutionKind.health,
    "KTV": InstitutionKind.entertainment, "ktv": InstitutionKind.entertainment,
}
_AGENCY_ALIASES: dict[str, Agency] = {zh: a for a, zh in AGENCY_ZH.items()} | {a.value: a for a in Agency} | {
    "教育": Agency.education, "公安": Agency.police, "卫健": Agency.health, "民政": Agency.civil_affairs}
_TRUE, _FALSE = {"是", "在用", "y", "yes", "true", "1"}, {"否", "停用", "n", "no", "false", "0"}


@dataclass
class InstitutionImport:
    dry_run: bool
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: Problems = field(default_factory=Problems)


def _parse(number: int, raw: dict[str, Any], problems: Problems) -> dict[str, Any] | None:
    refused = refused_cell(raw, _ZH)
    if refused:
        problems.add(number, *refused)
        return None
    out: dict[str, Any] = {}
    before = len(problems.errors)
    ident = raw.get("id")
    if cell_text(ident):
        if isinstance(ident, bool) or not cell_text(ident).isdigit():
            problems.add(number, _ZH["id"], f"编号应为数字，而不是“{cell_text(ident)}”",
                         f"The id is a number, not “{cell_text(ident)}”")
        else:
            out["id"] = int(cell_text(ident))
    name = cell_text(raw.get("name"))
    if name:
        if len(name) > 120 or not texts.visible(name):
            problems.add(number, _ZH["name"], "单位名称为空白或超过120字",
                         "The name is blank or longer than 120 characters")
        out["name"] = name
    kind = cell_text(raw.get("kind"))
    if kind:
        parsed = _KIND_ALIASES.get(kind)
        if parsed is None:
            problems.add(number, _ZH["kind"], f"单位类型无法识别：“{kind}”", f"Unknown kind “{kind}”")
        out["kind"] = parsed
    agency = cell_text(raw.get("supervising_agency"))
    if agency:
        found = _AGENCY_ALIASES.get(agency)
        if found is None:
            problems.add(number, _ZH["supervising_agency"], f"主管部门无法识别：“{agency}”",
                         f"Unknown supervising agency “{agency}”")
        out["supervising_agency"] = found
    for name_ in ("unit_code", "address"):
        if value := cell_text(raw.get(name_)):
            out[name_] = value
    if len(out.get("address", "")) > 200:
        problems.add(number, _ZH["address"], "地址超过200字", "The address is longer than 200 characters")
    count = raw.get("student_count")
    if cell_text(count):
        text = cell_text(count)
        if isinstance(count, bool) or not text.isdigit() or int(text) > 100_000:
            problems.add(number, _ZH["student_count"], f"在校学生数应为0-100000的整数，而不是“{text}”",
                         f"The enrolment is a whole number from 0 to 100000, not “{text}”")
        else:
            out["student_count"] = int(text)
    active = cell_text(raw.get("is_active")).lower()
    if active:
        if active not in _TRUE | _FALSE:
            problems.add(number, _ZH["is_active"], f"是否在用应为“是”或“否”，而不是“{active}”",
                         f"Write “是” or “否”, not “{active}”")
        out["is_active"] = active in _TRUE
    return out if len(problems.errors) == before else None


def import_institutions(session: Session, principal: Principal, content: bytes, filename: str,
                        *, dry_run: bool) -> InstitutionImport:
    """Create or change institutions from a file; nothing is written when any row is bad or on a dry run."""
    report = InstitutionImport(dry_run=dry_run)
    sheet = read_sheet(content, filename, COLUMNS, ("name", "kind", "unit_code"))
    units: dict[str, OrgUnit | None] = {}
    seen_ids: dict[int, int] = {}
    seen_names: dict[tuple[int, str], int] = {}
    plans: list[tuple[Institution | None, dict[str, Any], int]] = []
    for number, raw in sheet.rows:
        values = _parse(number, raw, report.problems)
        if values is None:
            continue
        existing: Institution | None = None
        if "id" in values:
            existing = session.get(Institution, values["id"])
            path = session.get(OrgUnit, existing.org_unit_id).path if existing else None  # type: ignore[union-attr]
            if existing is None or path is None or not principal.covers(path):
                report.problems.add(number, _ZH["id"], f"编号 {values['id']} 不是您辖区内的单位",
                                    f"The id {values['id']} is no institution of your jurisdiction")
                continue
            if values["id"] in seen_ids:
                report.problems.add(number, _ZH["id"], f"编号 {values['id']} 与第 {seen_ids[values['id']]} 行重复",
                                    f"The id {values['id']} repeats row {seen_ids[values['id']]}")
                continue
            seen_ids[values["id"]] = number
        unit_id: int | None = existing.org_unit_id if existing else None
        if "unit_code" in values:
            code = values["unit_code"]
            if code not in units:
                units[code] = session.execute(select(OrgUnit).where(col(OrgUnit.code) == code)).scalar_one_or_none()
            unit = units[code]
            if unit is None or not principal.covers(unit.path):
                report.problems.add(number, _ZH["unit_code"], f"单位编码 {code} 不在您辖区",
                                    f"The unit code {code} is not in your jurisdiction")
                continue
            unit_id = unit.id
        missing = [f for f in ("name", "kind", "unit_code") if f not in values and existing is None]
        if missing:
            report.problems.add(number, _ZH[missing[0]], f"新单位缺少：{'、'.join(_ZH[f] for f in missing)}",
                                f"A new institution needs: {', '.join(missing)}")
            continue
        assert unit_id is not None
        name = values.get("name", existing.name if existing else "")
        key = (unit_id, name)
        if key in seen_names:
            report.problems.add(number, _ZH["name"], f"同一单位下的“{name}”与第 {seen_names[key]} 行重复",
                                f"“{name}” repeats row {seen_names[key]} in the same unit")
            continue
        seen_names[key] = number
        if existing is None:
            existing = session.execute(select(Institution).where(
                col(Institution.org_unit_id) == unit_id, col(Institution.name) == name)).scalars().first()
        values["org_unit_id"] = unit_id
        plans.append((existing, values, number))
    # Who reads an institution's staff checks follows its supervising agency and its unit: redirecting
    # either (or registering one under another agency than its kind's) is a county's decision.
    may_redirect = institutions.may_change_supervisor(session, principal)
    for existing, values, number in plans:
        if may_redirect:
            break
        agency = values.get("supervising_agency")
        current = existing.supervising_agency if existing is not None else SUPERVISOR[values["kind"]].value
        if agency is not None and agency.value != current:
            report.problems.add(number, _ZH["supervising_agency"], institutions.SupervisorChangeForbidden.title_zh,
                                institutions.SupervisorChangeForbidden.title_en)
        if existing is not None and values["org_unit_id"] != existing.org_unit_id:
            report.problems.add(number, _ZH["unit_code"], institutions.InstitutionMoveForbidden.title_zh,
                                institutions.InstitutionMoveForbidden.title_en)
        if existing is not None and values.get("kind") is not None and values["kind"].value != existing.kind:
            report.problems.add(number, _ZH["kind"], institutions.InstitutionKindChangeForbidden.title_zh,
                                institutions.InstitutionKindChangeForbidden.title_en)
        if existing is not None and "student_count" in values and values["student_count"] != existing.student_count:
            report.problems.add(number, _ZH["student_count"], institutions.InstitutionEnrolmentForbidden.title_zh,
                                institutions.InstitutionEnrolmentForbidden.title_en)
        if existing is not None and existing.is_active and values.get("is_active") is False:
            report.problems.add(number, _ZH["is_active"], institutions.InstitutionDeactivateForbidden.title_zh,
                                institutions.InstitutionDeactivateForbidden.title_en)
    if report.problems:
        return report
    redirected: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []  # each institution changed, with the old and new of each field
    for existing, values, _ in plans:
        if existing is None:
            kind = values["kind"]
            institution = Institution(name=values["name"], kind=kind.value, org_unit_id=values["org_unit_id"],
                                      supervising_agency=(values.get("supervising_agency") or SUPERVISOR[kind]).value,
                                      address=values.get("address", ""), student_count=values.get("student_count"),
                                      is_active=values.get("is_active", True))
            report.created += 1
            if not dry_run:
                session.add(institution)
            continue
        changes = _changes(existing, values)
        if not changes:
            report.unchanged += 1
            continue
        report.updated += 1
        changed.append({"id": existing.id, **{name: {"old": getattr(existing, name), "new": value}
                                               for name, value in changes.items()}})
        if "supervising_agency" in changes:
            redirected.append({"id": existing.id, "old": existing.supervising_agency,
                               "new": changes["supervising_agency"]})
        if not dry_run:
            for name, value in changes.items():
                setattr(existing, name, value)
            existing.updated_at = clock.now()
            session.add(existing)
    if not dry_run:
        session.flush()
    audit.record(session, actor=principal, action="institution.import", object_type="institution",
                 org_unit_id=principal.org_unit_id,
                 details={"dry_run": dry_run, "created": report.created, "updated": report.updated,
                          "unchanged": report.unchanged, "supervising_agency_changed": redirected,
                          "changed": changed})
    return report


def _changes(institution: Institution, values: dict[str, Any]) -> dict[str, Any]:
    wanted: dict[str, Any] = {"org_unit_id": values["org_unit_id"]}
    for name in ("name", "address", "student_count", "is_active"):
        if name in values:
            wanted[name] = values[name]
    if "kind" in values:
        wanted["kind"] = values["kind"].value
    if values.get("supervising_agency") is not None:
        wanted["supervising_agency"] = values["supervising_agency"].value
    out = {}
    for name, value in wanted.items():
        stored = getattr(institution, name)
        if isinstance(stored, str):
            same = texts.clean(stored).strip() == texts.clean(str(value)).strip()
        else:
            same = stored == value
        if not same:
            out[name] = value
    return out


def export_institutions(session: Session, institutions: Iterable[Institution]) -> bytes:
    """The register in the import layout (row 1 the header; re-importing it changes nothing)."""
    listed = list(institutions)
    units = {u.id: u for u in session.execute(
        select(OrgUnit).where(col(OrgUnit.id).in_({i.org_unit_id for i in listed}))).scalars()}
    rows = []
    for i in listed:
        unit = units.get(i.org_unit_id)
        agency = AGENCY_ZH.get(Agency(i.supervising_agency)) if i.supervising_agency in Agency.__members__ else None
        rows.append([i.id, i.name, INSTITUTION_KIND_ZH[InstitutionKind(i.kind)], unit.code if unit else "",
                     agency or i.supervising_agency, i.address, i.student_count, "是" if i.is_active else "否"])
    return workbook.xlsx_bytes([workbook.Table(
        title="密切接触未成年人单位", header=[zh for _, zh in COLUMNS], rows=rows,
        text_columns=frozenset({1, 3, 5}), widths=[8, 28, 14, 16, 18, 30, 10, 8])])
