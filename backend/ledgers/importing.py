"""Ledger import: what a clerk's 附件1/2/3 file means, checked row by row, then written all or nothing.

The file's every sheet is read (backend/ledgers/reading.py: .xlsx, .xls, .ods, .csv) or reported as
skipped with its reason. In each sheet the header row is looked for in the first HEADER_SCAN_ROWS rows
by the attachment's column names (backend/ledgers/sheets.py); columns the importer does not use are
reported. A dry run and a real import run the same code, writes included, inside a SAVEPOINT; the dry
run (and a real import with errors) rolls it back, so the dry run's verdict is the real import's.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any, BinaryIO

from openpyxl.utils.cell import get_column_letter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.core import clock, crypto, identifiers, spreadsheet
from backend.core.config import get_settings
from backend.core.errors import Conflict, DomainError
from backend.ledgers import reading
from backend.ledgers.service import LedgerInvalid, _require
from backend.ledgers.sheets import BIRTH_DATE, EXTRA_CHECKED, HEADERS, Annex, accepted_keys, header_key
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgUnit
from backend.registry import duplicates, idnumber
from backend.registry import service as registry
from backend.registry.models import (
    RISK_PERSON_CATEGORY_ZH,
    ChildCategory,
    Guardianship,
    Person,
    PersonRole,
    RiskLevel,
    RiskPerson,
    RiskPersonCategory,
)
from backend.registry.schemas import RiskPersonData
from backend.sealing import service as sealing
from backend.sync import revisions

# The header is looked for in this many rows at the top of each sheet (填报单位/填报人/日期, the title
# and the 附件N line come above it).
HEADER_SCAN_ROWS = 10
_SPLIT = re.compile(r"[、,，;；/\s]+")
_NUMBERING = re.compile(r"^[(（]?[0-9]+[)）.、．]?")
# What Excel shows, and writes into a CSV, for an 18-digit number: 9.90101E+17.
_SCIENTIFIC = re.compile(r"^[0-9](\.[0-9]+)?E\+?[0-9]+$")
_DATE = re.compile(r"^([0-9]{4})\s*[-./年]?\s*([0-9]{1,2})\s*[-./月]?\s*([0-9]{1,2})\s*日?$")

SEX_SPELLINGS = {"男": idnumber.Sex.male, "男性": idnumber.Sex.male, "女": idnumber.Sex.female,
                 "女性": idnumber.Sex.female}
YES = ("是", "Y", "YES", "√", "✓", "✔", "在读", "在校", "1", "TRUE")
NO = ("否", "N", "NO", "×", "✗", "✘", "辍学", "休学", "不在读", "未在读", "失学", "0", "FALSE")
NUMERIC_ID_ZH = ("该单元格是数字格式：Excel 把身份证号码当作数字保存，超过15位的部分已被改为0，号码的末几位已经丢失"
                 "（显示为 9.90101E+17 之类）。请把本列设置为“文本”格式，再逐个重新输入身份证号码后导入")
FIELD_ZH = {"name": "姓名", "hukou_place": "户籍地", "residence": "常住地", "contact": "联系方式",
            "in_school": "是否在读", "task_force": "专班人员及联系方式", "assistance": "帮扶措施",
            "categories": "分类", "signs": "具体表现", "key_minor": "重点未成年人", "vulnerable": "易受侵害未成年人",
            "risk_level": "综合研判风险等级", "control_measures": "管控措施", "sex": "性别", "guardian": "监护人",
            "sealed": "封存"}


@dataclass
class ImportReport:
    annex: str
    dry_run: bool
    rows: int = 0
    created: int = 0
    matched: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    matched_rows: list[int] = field(default_factory=list)
    created_rows: list[int] = field(default_factory=list)
    format: str | None = None
    sheets: list[dict[str, Any]] = field(default_factory=list)
    unused_columns: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    elsewhere: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0
    # Audits the rows refused for an ID number registered elsewhere and tells the coordinators
    # (registry/duplicates.py); run by raise_if_failed's refusal after its rollback.
    aftermath: Callable[[Session], None] | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "annex": self.annex,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "created": self.created,
            "matched": self.matched,
            "matched_rows": self.matched_rows,
            "created_rows": self.created_rows,
            **spreadsheet.capped_errors(self.errors),
            "ok": not self.errors,
            "format": self.format,
            "sheets": self.sheets,
            "unused_columns": self.unused_columns,
            "unchanged": self.unchanged,
            "changes": self.changes,
            "elsewhere": self.elsewhere,
        }


@dataclass
class _Layout:
    header_row: int  # 1-based
    columns: dict[int, int]  # expected index -> sheet column (0-based)
    extras: dict[str, int]  # checked extra column (出生日期) -> sheet column
    extra_headers: dict[str, str]
    # Expected columns named by more than one sheet column (身份证号码 and 身份证号（旧）): which one
    # holds the value cannot be guessed, so such a sheet is refused. (index, first, second column)
    repeated: list[tuple[int, int, int]] = field(default_factory=list)


@dataclass
class _Row:
    number: int
    sheet: str | None  # named in errors when the file has more than one ledger sheet
    cells: dict[int, Any]  # expected index -> typed cell
    extras: dict[str, Any]
    extra_headers: dict[str, str]


def _text(value: Any) -> str | None:
    """A non-identifier cell as text: numbers as written, dates as YYYY-MM-DD."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip() or None


# ---------------------------------------------------------------- layout


def _match_header(annex: Annex, cells: list[Any]
                  ) -> tuple[dict[int, int], dict[str, int], list[tuple[int, str]], list[tuple[int, int, int]]]:
    """Which sheet column holds which expected column, the checked extras, the unknown header cells,
    and the expected columns a second sheet column names too."""
    wanted = [accepted_keys(annex, i) for i in range(len(HEADERS[annex]))]
    columns: dict[int, int] = {}
    extras: dict[str, int] = {}
    unknown: list[tuple[int, str]] = []
    repeated: list[tuple[int, int, int]] = []
    for at, cell in enumerate(cells):
        key = header_key(cell)
        if not key:
            continue
        # The printed 附件3 names two columns 联系电话 (the child's, the guardian's): a name goes to the
        # first expected column it may name that is still free; only when none is free is it a repeat.
        index = next((i for i, keys in enumerate(wanted) if i not in columns and key in keys), None)
        if index is not None:
            columns[index] = at
            continue
        taken = next((i for i, keys in enumerate(wanted) if key in keys), None)
        if taken is not None:
            repeated.append((taken, columns[taken], at))
            continue
        extra = next((name for name, keys in EXTRA_CHECKED.items() if key in keys and name not in extras), None)
        if extra is not None:
            extras[extra] = at
        else:
            unknown.append((at, str(cell).strip()))
    return columns, extras, unknown, repeated


@dataclass
class _Candidate:
    sheet: str
    row: int
    found: int
    missing: list[str]
    unknown: list[str]


def _find_layout(annex: Annex, sheet: reading.RawSheet) -> tuple[_Layout | None, _Candidate | None,
                                                                  list[tuple[int, str]]]:
    required = set(range(1, len(HEADERS[annex])))  # every printed column but 序号
    best: _Candidate | None = None
    for number, cells in enumerate(sheet.rows[:HEADER_SCAN_ROWS], start=1):
        # The header in one row, or in two: a group cell (监护人) over its parts (姓名, 联系电话), the
        # other cells merged down over both rows.
        below = sheet.rows[number] if number < len(sheet.rows) else []
        for header_row, header in ((number, cells), (number + 1, _two_row_header(cells, below))):
            columns, extras, unknown, repeated = _match_header(annex, header)
            if required <= set(columns):
                headers = {name: str(header[at]).strip() for name, at in extras.items()}
                return _Layout(header_row, columns, extras, headers, repeated), None, unknown
        columns, extras, unknown, _ = _match_header(annex, cells)
        found = len(set(columns) & required)
        if best is None or found > best.found:
            best = _Candidate(sheet.name, number, found,
                              [HEADERS[annex][i] for i in sorted(required - set(columns))],
                              [text for _, text in unknown])
    return None, best, []


def _two_row_header(top: list[Any], bottom: list[Any]) -> list[Any]:
    out: list[Any] = []
    for at in range(max(len(top), len(bottom))):
        upper = top[at] if at < len(top) else None
        lower = bottom[at] if at < len(bottom) else None
        if upper is None or lower is None or str(upper).strip() == str(lower).strip():
            out.append(lower if upper is None else upper)
        else:
            out.append(f"{str(upper).strip()}{str(lower).strip()}")
    return out


def _looks_like_ledger(annex: Annex, candidate: _Candidate | None) -> bool:
    """A sheet whose best row names the ID column or the name and two more printed columns: a ledger
    with a layout fault (refused, its rows would be lost), not an instructions sheet (skipped)."""
    if candidate is None:
        return False
    return HEADERS[annex][2] not in candidate.missing or candidate.found >= 4


def _header_refusal(annex: Annex, candidate: _Candidate) -> str:
    missing = "、".join(candidate.missing) or "无"
    unknown = "、".join(u.replace("\n", "") for u in candidate.unknown) or "无"
    return (f"未找到附件{annex.value}的表头（在每个工作表的前{HEADER_SCAN_ROWS}行中查找）。"
            f"最接近的是工作表“{candidate.sheet}”第{candidate.row}行：缺少列：{missing}；无法识别的列：{unknown}。应有的列为：{'、'.join(HEADERS[annex])}")


def _read_rows(stream: BinaryIO, filename: str, annex: Annex, report: ImportReport) -> list[_Row]:
    """The data rows of every ledger sheet below its header. A file over the byte or row cap, hostile,
    or of no accepted format (backend/ledgers/reading.py) is refused as a whole."""
    settings = get_settings()
    content = spreadsheet.read_upload(stream, settings.ledger_import_max_bytes)
    max_rows = settings.ledger_import_max_rows
    book = reading.read(content, filename, max_rows=max_rows, header_rows=HEADER_SCAN_ROWS)
    report.format = book.format
    laid_out: list[tuple[reading.RawSheet, _Layout]] = []
    best: _Candidate | None = None
    for sheet in book.sheets:
        entry: dict[str, Any] = {"name": sheet.name, "read": False, "header_row": None, "rows": 0,
                                 "merged_ranges": sheet.merged}
        report.sheets.append(entry)
        if sheet.skipped:
            entry.update(reason=sheet.skipped, reason_en=sheet.skipped_en)
            continue
        if not any(v is not None for row in sheet.rows for v in row):
            entry.update(reason="空白工作表", reason_en="the sheet is empty")
            continue
        layout, candidate, unknown = _find_layout(annex, sheet)
        if layout is None:
            assert candidate is not None
            if best is None or candidate.found > best.found:
                best = candidate
            if _looks_like_ledger(annex, candidate):
                report.errors.append({"row": candidate.row, "column": None, "sheet": sheet.name,
                                      "reason": _header_refusal(annex, candidate)})
                entry.update(reason="表头不完整", reason_en="the header lacks columns")
            else:
                entry.update(reason=f"未找到附件{annex.value}的表头（说明页或其他内容），未导入",
                             reason_en=f"no 附件{annex.value} header (instructions or other content); not imported")
            continue
        if layout.repeated:
            for index, first, second in layout.repeated:
                name = HEADERS[annex][index]
                a, b = get_column_letter(first + 1), get_column_letter(second + 1)
                report.errors.append({
                    "row": layout.header_row, "column": b, "sheet": sheet.name,
                    "reason": f"{a}列和{b}列都是“{name}”，无法确定以哪一列为准；请删除或改名其中一列后重新导入",
                })
            entry.update(reason="有重复的列", reason_en="two columns name the same field")
            continue
        entry.update(read=True, header_row=layout.header_row)
        laid_out.append((sheet, layout))
        for at, text in unknown:
            report.unused_columns.append({"sheet": sheet.name, "column": get_column_letter(at + 1), "header": text})
    if not laid_out and not report.errors:
        candidate = best or _Candidate(book.sheets[0].name if book.sheets else "", 1, 0,
                                       list(HEADERS[annex][1:]), [])
        report.errors.append({"row": candidate.row, "column": None, "reason": _header_refusal(annex, candidate)})
        return []
    named = len(laid_out) > 1
    id_keys = accepted_keys(annex, 2)
    out: list[_Row] = []
    for sheet, layout in laid_out:
        used = set(layout.columns.values()) | set(layout.extras.values())
        data_columns: set[int] = set()
        count = 0
        for number, cells in enumerate(sheet.rows[layout.header_row:], start=layout.header_row + 1):
            def cell(column: int, cells: list[Any] = cells) -> Any:
                return cells[column] if column < len(cells) else None

            picked = {i: cell(c) for i, c in layout.columns.items()}
            if all(v is None for i, v in picked.items() if i != 0):
                continue
            if isinstance(picked.get(2), str) and header_key(picked[2]) in id_keys:
                continue  # the header again (printed at the top of every page)
            data_columns.update(c for c, v in enumerate(cells) if v is not None and c not in used)
            out.append(_Row(number, sheet.name if named else None, picked,
                            {name: cell(c) for name, c in layout.extras.items()}, layout.extra_headers))
            count += 1
        headed = {u["column"] for u in report.unused_columns if u["sheet"] == sheet.name}
        for c in sorted(data_columns):
            if get_column_letter(c + 1) not in headed:
                report.unused_columns.append({"sheet": sheet.name, "column": get_column_letter(c + 1), "header": ""})
        next(e for e in report.sheets if e["name"] == sheet.name and e["read"])["rows"] = count
    if len(out) > max_rows:
        raise spreadsheet.too_many_rows(max_rows, f"共 {len(out)} 行", f"{len(out)} rows")
    return out


# ---------------------------------------------------------------- cells


class _RowErrors:
    def __init__(self, report: ImportReport, annex: Annex, row: _Row) -> None:
        self.report, self.annex, self.row, self.failed = report, annex, row, False

    def add(self, index: int | str, reason: str) -> None:
        self.failed = True
        column = HEADERS[self.annex][index] if isinstance(index, int) else self.row.extra_headers.get(index, index)
        error: dict[str, Any] = {"row": self.row.number, "column": column, "reason": reason}
        if self.row.sheet is not None:
            error["sheet"] = self.row.sheet
        self.report.errors.append(error)


def _fold(value: str) -> str:
    return identifiers.fold(value)


def _parse_bool(value: str | None, errs: _RowErrors, index: int) -> bool | None:
    if value is None:
        return None
    folded = _fold(value)
    if folded in YES:
        return True
    if folded in NO:
        return False
    errs.add(index, f"应填“是”或“否”（也可填 在读/辍学/休学、√/×、Y/N），而不是“{value}”")
    return None


def _parse_contact(value: str | None, errs: _RowErrors, index: int) -> str | None:
    """A contact cell in its canonical form (a phone number as ASCII digits, backend/core/identifiers.py)."""
    if value is None:
        return None
    try:
        return identifiers.contact(value)
    except ValueError:
        errs.add(index, f"联系方式中的数字只能是0-9，而不是“{value}”")
        return None


def _parse_level(value: str | None, errs: _RowErrors, index: int) -> RiskLevel | None:
    if value is None:
        return None
    for spelling in (value.strip(), value.strip() + "风险"):
        try:
            return RiskLevel.parse(spelling)  # the label the sheet shows, or its code
        except ValueError:
            continue
    errs.add(index, f"风险等级应为{'、'.join(lv.value for lv in RiskLevel)}之一，而不是“{value}”")
    return None


def _parse_sex(value: str | None, errs: _RowErrors) -> idnumber.Sex | None:
    if value is None:
        return None
    sex = SEX_SPELLINGS.get(_fold(value))
    if sex is None:
        errs.add(3, f"性别应填“男”或“女”（也可填 男性/女性），而不是“{value}”")
    return sex


def _parse_birth(value: Any, errs: _RowErrors) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    match = _DATE.match(_fold(_text(value) or ""))
    if match:
        try:
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:
            pass
    errs.add(BIRTH_DATE, f"出生日期应写成 2012-03-04 或 2012年3月4日，而不是“{_text(value)}”")
    return None


def _id_text(value: Any, errs: _RowErrors) -> str | None:
    """The ID cell as text, or None (an error added): a number cell is never turned into digits."""
    if value is None:
        errs.add(2, "身份证号码必填")
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        errs.add(2, NUMERIC_ID_ZH)
        return None
    if not isinstance(value, str):
        errs.add(2, f"身份证号码应为18位文本，而不是“{_text(value)}”")
        return None
    folded = _fold(value)
    if _SCIENTIFIC.match(folded):
        errs.add(2, NUMERIC_ID_ZH)
        return None
    if idnumber.is_masked(folded):
        errs.add(2, "这是隐藏了部分数字的身份证号码（脱敏导出），无法据此登记或匹配，请填写完整的18位号码")
        return None
    return folded


def _parse_id(row: _Row, errs: _RowErrors, *, minor: bool) -> idnumber.IdNumber | None:
    sex = _parse_sex(_text(row.cells.get(3)), errs)
    birth = _parse_birth(row.extras.get(BIRTH_DATE), errs)
    value = _id_text(row.cells.get(2), errs)
    if value is None:
        return None
    try:
        return idnumber.parse_for_person(value, today=clock.now().date(), sex=sex, birth_date=birth, minor=minor)
    except DomainError as exc:
        field_name = str(exc.extensions.get("field"))
        where: int | str = 3 if field_name == "sex" else BIRTH_DATE if field_name == "birth_date" else 2
        errs.add(where, exc.detail_zh or exc.title_zh)
        return None


def _child_categories(value: str | None, errs: _RowErrors) -> list[str]:
    out: list[str] = []
    allowed = [c.value for c in ChildCategory]
    for raw in _SPLIT.split(unicodedata.normalize("NFKC", value or "")):
        part = _NUMBERING.sub("", raw).strip()
        if not part:
            # A bare number: the category's place in the printed list (1 严重不良行为 … 5 生活困境).
            digits = re.sub(r"[^0-9]", "", raw)
            if not digits:
                continue
            if 1 <= int(digits) <= len(allowed):
                part = allowed[int(digits) - 1]
            else:
                errs.add(8, f"分类“{raw}”不在{'、'.join(allowed)}之中（也可填序号1-{len(allowed)}）")
                continue
        found = part if part in allowed else None
        if found is None:
            near = [c for c in allowed if part in c]
            found = near[0] if len(near) == 1 else None
        if found is None:
            errs.add(8, f"分类“{part}”不在{'、'.join(allowed)}之中")
        elif found not in out:
            out.append(found)
    return [ChildCategory(c).value for c in out]


def _risk_categories(value: str | None, errs: _RowErrors) -> list[str]:
    """附件2 分类 by number (1-7, as the seed prints them), full name, or a short name (社区矫正)."""
    out: list[str] = []
    names = {k.value: v for k, v in RISK_PERSON_CATEGORY_ZH.items()}
    for raw in _SPLIT.split(unicodedata.normalize("NFKC", value or "")):
        part = raw.strip().rstrip(".。")
        if not part:
            continue
        number = _NUMBERING.match(part)
        rest = _NUMBERING.sub("", part) if number else part
        found: str | None = None
        if number and not rest:
            digits = re.sub(r"[^0-9]", "", part)
            found = digits if digits in names else None
        else:
            key = rest.replace("(", "（").replace(")", "）")
            exact = [k for k, v in names.items() if v == key]
            near = [k for k, v in names.items() if len(key) >= 2 and key in v]
            found = exact[0] if exact else (near[0] if len(near) == 1 else None)
        if found is None:
            allowed = "；".join(f"{k}、{v}" for k, v in names.items())
            errs.add(7, f"分类“{raw}”不是附件2的7类之一（可填序号或名称）：{allowed}")
        elif found not in out:
            out.append(found)
    return out


# The longest text each free-text column may hold: the stored field's length (registry/models.py).
# Checked per cell, so an over-long 户籍地 is a row error naming its column, not a refusal of the file.
_MAX_LENGTH: dict[Annex, dict[int, int]] = {
    Annex.key_minors: {4: 200, 5: 200, 7: 40, 9: 1000, 12: 200, 13: 1000},
    Annex.vulnerable_minors: {4: 200, 5: 200, 6: 40, 10: 200, 11: 1000},
    Annex.risk_persons: {4: 200, 5: 200, 6: 40, 9: 1000},
}


def _row_values(row: _Row, annex: Annex, errs: _RowErrors) -> dict[str, Any] | None:
    def c(index: int) -> str | None:
        text = _text(row.cells.get(index))
        longest = _MAX_LENGTH[annex].get(index)
        if text is not None and longest is not None and len(text) > longest:
            errs.add(index, f"内容过长：最多 {longest} 字，现有 {len(text)} 字")
            return None
        return text

    name = c(1)
    if name is None:
        errs.add(1, "姓名必填")
    if name is not None and len(name) > 60:
        errs.add(1, "姓名过长")
    parsed = _parse_id(row, errs, minor=annex is not Annex.risk_persons)
    values: dict[str, Any] = {"name": name, "hukou_place": c(4), "residence": c(5)}
    if annex is Annex.key_minors:
        values.update(
            contact=_parse_contact(c(7), errs, 7),
            in_school=_parse_bool(c(6), errs, 6),
            categories=_child_categories(c(8), errs),
            signs=c(9),
            guardian_name=c(10),
            guardian_contact=_parse_contact(c(11), errs, 11),
            task_force=c(12),
            assistance=c(13),
            risk_level=_parse_level(c(14), errs, 14),
        )
    elif annex is Annex.vulnerable_minors:
        values.update(
            contact=_parse_contact(c(6), errs, 6),
            in_school=_parse_bool(c(7), errs, 7),
            guardian_name=c(8),
            guardian_contact=_parse_contact(c(9), errs, 9),
            task_force=c(10),
            assistance=c(11),
        )
    else:
        cats = _risk_categories(c(7), errs)
        if not cats and c(7) is None:
            errs.add(7, "分类必填")
        values.update(contact=_parse_contact(c(6), errs, 6), categories=cats, risk_level=_parse_level(c(8), errs, 8),
                      control_measures=c(9))
    if parsed is None or errs.failed:
        return None
    values["id_number"] = parsed.value
    values["sex"] = parsed.sex
    values["birth_date"] = parsed.birth_date
    return values


# ---------------------------------------------------------------- import


class ImportRaced(Conflict):
    code = "import-raced"
    title_zh = "另一次导入刚刚写入了同一批人员，本次未导入任何内容，请重新导入"
    title_en = "Another import stored the same people a moment ago; nothing of this one was kept: import again"


@contextmanager
def _changes_kept_only_if(session: Session, keep: Callable[[], bool]) -> Iterator[None]:
    """A SAVEPOINT around the writes, released when keep() holds at the end and rolled back (with the
    request's record of changed records) otherwise."""
    d = disclosure.current()
    saved = ({k: set(v) for k, v in d.changed.items()}, set(d.units)) if d is not None else None
    savepoint = session.begin_nested()
    try:
        yield
    except IntegrityError as exc:
        # Another request stored the same person (its unique index) between this import's check and
        # its write: two clerks, or a double click, importing one file at once. Nothing of this one is
        # kept; importing again matches what the other stored.
        savepoint.rollback()
        raise ImportRaced() from exc
    except BaseException:
        savepoint.rollback()
        raise
    if keep():
        savepoint.commit()
        return
    savepoint.rollback()
    if d is not None and saved is not None:
        d.changed, d.units = saved


def import_ledger(
    session: Session, principal: Principal, annex: Annex, stream: BinaryIO, *, dry_run: bool,
    org_unit_id: int | None, filename: str = "",
) -> ImportReport:
    """Check every row and write it; a dry run, or any error, rolls every write back (all or nothing)."""
    _require(principal, annex, write=True)
    unit = orgunits.get_visible_unit(session, principal, org_unit_id or principal.org_unit_id)
    assert unit.id is not None
    report = ImportReport(annex=annex.value, dry_run=dry_run)
    rows = _read_rows(stream, filename, annex, report)
    report.rows = len(rows)
    planned: list[tuple[_Row, dict[str, Any], Any]] = []
    seen: dict[str, _Row] = {}
    model: type[Person] | type[RiskPerson] = RiskPerson if annex is Annex.risk_persons else Person
    collisions: list[duplicates.Collision] = []
    for row in rows:
        errs = _RowErrors(report, annex, row)
        values = _row_values(row, annex, errs)
        if values is None or errs.failed:
            continue
        index = crypto.blind_index(values["id_number"])
        if index in seen:
            first = seen[index]
            where = f"工作表“{first.sheet}”" if first.sheet and first.sheet != row.sheet else ""
            errs.add(2, f"与{where}第{first.number}行的身份证号码重复")
            continue
        seen[index] = row
        # A sealed 附件2 entry is never matched (the answer would show it exists): a row of its number is a
        # new entry, sealed again if its person is still a minor.
        unsealed = [sealing.unsealed(RiskPerson)] if model is RiskPerson else []
        existing = session.execute(select(model).where(col(model.id_index) == index, *unsealed)).scalar_one_or_none()
        if existing is not None:
            # A row updates the record of its number when that record is a child (or 附件2 entry) of
            # the caller's area, which the importer (police, coordinators) may read with its full
            # number anyway. Any other holder, elsewhere or a guardian, refuses the row in the words of
            # every other refusal of a registered number, audited and told (registry/duplicates.py).
            path = orgunits.unit_path(session, existing.org_unit_id)
            if (path is None or not principal.covers(path)
                    or (isinstance(existing, Person) and existing.role != PersonRole.child.value)):
                errs.add(2, duplicates.REFUSAL_ZH)
                collisions.append(duplicates.collision(session, model, index, unit_id=unit.id, operation="import"))
                continue
            if existing.org_unit_id != unit.id and not _within(session, existing.org_unit_id, unit):
                held = session.get(OrgUnit, existing.org_unit_id)
                report.elsewhere.append({"row": row.number, **({"sheet": row.sheet} if row.sheet else {}),
                                         "org_unit_id": existing.org_unit_id,
                                         "org_unit_name": held.name if held else None,
                                         "imported_into": unit.name})
        planned.append((row, values, existing))
    report.matched = sum(1 for _, _, e in planned if e is not None)
    report.created = len(planned) - report.matched
    report.matched_rows = [row.number for row, _, e in planned if e is not None]
    report.created_rows = [row.number for row, _, e in planned if e is None]
    kind = disclosure.RISK_PERSON if annex is Annex.risk_persons else disclosure.PERSON
    disclosure.record(kind, [e.id for _, _, e in planned if e is not None])
    # The writes, the same for a dry run and a real one; kept only by a real import without errors.
    with _changes_kept_only_if(session, lambda: not dry_run and not report.errors):
        for row, values, existing in planned:
            errs = _RowErrors(report, annex, row)
            try:
                if annex is Annex.risk_persons:
                    changed = _write_risk_person(session, principal, unit.id, values, existing)
                else:
                    changed = _write_child(session, principal, annex, unit.id, values, existing)
            except DomainError as exc:
                errs.add(2, exc.detail_zh or exc.title_zh)
                continue
            if existing is not None:
                if changed:
                    report.changes.append({"row": row.number, **({"sheet": row.sheet} if row.sheet else {}),
                                           "changes": changed})
                else:
                    report.unchanged += 1
    if collisions:
        report.aftermath = partial(duplicates.report, principal=principal, found=collisions)
        if dry_run:  # a dry run answers 200 and commits: the refusals are kept with it
            duplicates.report(session, principal=principal, found=collisions)
    # Every import is audited, a dry run and a refused one too: the answer tells which ID numbers are
    # registered already (those records are named as read).
    disclosure.event(session, "ledger.import", actor=principal, object_type="ledger", object_id=annex.value,
                     org_unit_id=unit.id, details={"rows": report.rows, "created": report.created,
                                                   "matched": report.matched, "dry_run": dry_run,
                                                   "errors": len(report.errors)})
    return report


def _within(session: Session, unit_id: int, unit: OrgUnit) -> bool:
    """Whether `unit_id` is `unit` or below it (a child of a grid of the village imported into)."""
    path = orgunits.unit_path(session, unit_id)
    return path is not None and path.startswith(unit.path)


def _shown(key: str, value: Any) -> Any:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        if key == "categories" and value and all(v in {c.value for c in RiskPersonCategory} for v in value):
            return "、".join(RISK_PERSON_CATEGORY_ZH[RiskPersonCategory(v)] for v in value)
        return "、".join(str(v) for v in value)
    if key == "sex" and value in ("male", "female"):
        return idnumber.Sex(value).zh
    return value


def _change(key: str, before: Any, after: Any) -> dict[str, Any]:
    return {"field": key, "column": FIELD_ZH.get(key, key), "before": _shown(key, before), "after": _shown(key, after)}


def _split_names(value: str | None) -> list[str]:
    return [n for n in re.split(r"[、,，;；/]+", value or "") if n.strip()]


def _write_child(
    session: Session, principal: Principal, annex: Annex, unit_id: int, values: dict[str, Any], existing: Person | None
) -> list[dict[str, Any]]:
    """Create or update the child; the changes made to an existing one (before → after)."""
    now = clock.now()
    fields: dict[str, Any] = {
        k: values[k]
        for k in ("name", "hukou_place", "residence", "contact", "in_school", "task_force", "assistance")
        if values.get(k) is not None
    }
    if annex is Annex.key_minors:
        fields["key_minor"] = True
        if values.get("categories"):
            fields["categories"] = values["categories"]
        if values.get("signs"):
            fields["signs"] = values["signs"]
    else:
        fields["vulnerable"] = True
    changes: list[dict[str, Any]] = []
    if existing is None:
        sealed = registry.seal_id(values["id_number"])
        person = Person(
            uuid=registry.new_uuid(),
            role=PersonRole.child.value,
            org_unit_id=unit_id,
            sex=values["sex"].value,
            birth_date=values["birth_date"],
            id_cipher=sealed.cipher,
            id_key_id=sealed.key_id,
            id_index=sealed.index,
            id_masked=sealed.masked,
            content_hash=registry.content_hash({"import": values["id_number"], "at": now.isoformat()}),
            rev=revisions.allocate(session),
            created_by=principal.user_id,
            created_at=now,
            updated_at=now,
            **fields,
        )
        session.add(person)
        session.flush()
    else:
        person = existing
        differing = {k: v for k, v in fields.items() if getattr(person, k) != v}
        changes = [_change(k, getattr(person, k), v) for k, v in differing.items()]
        if differing:
            for key, value in differing.items():
                setattr(person, key, value)
            person.rev = revisions.allocate(session)
            person.version += 1
            person.updated_at = now
            session.add(person)
            session.flush()
    assert person.id is not None
    if existing is None or changes:
        disclosure.changed(disclosure.PERSON, [person.id], unit_id=person.org_unit_id)
    names = _split_names(values.get("guardian_name"))
    contacts = _split_names(values.get("guardian_contact"))
    if names:
        known = {g["name"] for g in registry.guardians_of(session, [person.id])[person.id]}
        for at, name in enumerate(names):
            if name in known:
                continue
            contact = contacts[at] if len(contacts) == len(names) else (contacts[0] if len(names) == 1 and contacts
                                                                        else None)
            guardian = Person(
                uuid=registry.new_uuid(),
                role=PersonRole.guardian.value,
                org_unit_id=person.org_unit_id,
                household_id=person.household_id,
                name=name,
                contact=contact,
                content_hash=registry.content_hash({"guardian_of": str(person.uuid), "name": name}),
                rev=revisions.allocate(session),
                created_by=principal.user_id,
                created_at=now,
                updated_at=now,
            )
            session.add(guardian)
            session.flush()
            disclosure.changed(disclosure.PERSON, [guardian.id], unit_id=guardian.org_unit_id)
            session.add(Guardianship(child_id=person.id, guardian_id=guardian.id or 0, relation=None))
            if existing is not None:
                changes.append(_change("guardian", None, name))
    level: RiskLevel | None = values.get("risk_level")
    if level is not None and level.value != person.risk_level:
        if existing is not None:
            changes.append(_change("risk_level", person.risk_level, level.value))
        registry.set_risk_level(
            session,
            person_id=person.id,
            previous=person.risk_level,
            level=level,
            reasons=[
                {
                    "rule": "ledger_import",
                    "reason_zh": "台账导入综合研判",
                    "reason_en": "Assessed on the imported ledger",
                }
            ],
            source="import",
            actor_user_id=principal.user_id,
        )
    return changes


_ID_FIELDS = ("id_cipher", "id_key_id", "id_index", "id_masked")


def _write_risk_person(
    session: Session, principal: Principal, unit_id: int, values: dict[str, Any], existing: RiskPerson | None
) -> list[dict[str, Any]]:
    data = RiskPersonData(
        name=values["name"],
        id_number=values["id_number"],
        sex=values["sex"],
        hukou_place=values["hukou_place"],
        residence=values["residence"],
        contact=values["contact"],
        categories=[RiskPersonCategory(c) for c in values["categories"]],
        risk_level=values["risk_level"],
        control_measures=values["control_measures"],
        org_unit_id=unit_id,
    )
    if existing is None:
        existing = RiskPerson(created_by=principal.user_id, **registry.risk_person_values(session, principal, data))
        session.add(existing)
        session.flush()
        disclosure.changed(disclosure.RISK_PERSON, [existing.id], unit_id=unit_id)
        return []
    # Judged against the entry's own day, as every edit is; a matched entry stays in its unit, and an
    # empty cell keeps what is stored (as for children).
    fields = registry.risk_person_values(session, principal, data, record_at=existing.created_at,
                                         sealed_if_unknown=existing.sealed)
    fields.pop("org_unit_id", None)
    if fields.get("id_index") == existing.id_index:
        for key in _ID_FIELDS:
            fields.pop(key, None)
    differing = {k: v for k, v in fields.items() if v is not None and getattr(existing, k) != v}
    if not differing:
        return []
    changes = [_change(k, getattr(existing, k), v) for k, v in differing.items() if k not in _ID_FIELDS]
    for key, value in differing.items():
        setattr(existing, key, value)
    existing.version += 1
    existing.updated_at = clock.now()
    session.add(existing)
    session.flush()
    disclosure.changed(disclosure.RISK_PERSON, [existing.id], unit_id=existing.org_unit_id)
    return changes


def raise_if_failed(report: ImportReport) -> None:
    """A real import with errors answers 422 listing the bad rows and columns (the first
    import_max_errors of them, with their total); nothing was written."""
    if report.errors and not report.dry_run:
        raise LedgerInvalid(
            f"台账有{len(report.errors)}处错误，未导入任何数据",
            f"The ledger has {len(report.errors)} errors; nothing was imported",
            **spreadsheet.capped_errors(report.errors),
            aftermath=report.aftermath,
        )
