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
from uuid import UUID

from annotated_types import MaxLen
from openpyxl.utils.cell import get_column_letter
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from backend.accounts import scope
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.core import clock, crypto, identifiers, spreadsheet
from backend.core.config import get_settings
from backend.core.errors import Conflict, DomainError
from backend.core.text import cell_reason, clean, first_refused
from backend.ledgers import reading
from backend.ledgers.service import LedgerInvalid, _require
from backend.ledgers.sheets import BIRTH_DATE, EXTRA_CHECKED, HEADERS, Annex, accepted_keys, header_key
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgUnit
from backend.registry import duplicates, idnumber, risk_person_history
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
from backend.registry.schemas import PersonData, RiskPersonData
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
NUMERIC_ID_ZH = ("该单元格是数字格式：表格软件（Excel、WPS、LibreOffice）把身份证号码当作数字保存，超过15位的部分"
                 "已被改为0，号码的末几位已经丢失（显示为 9.90101E+17 之类）。请把本列设置为“文本”格式，"
                 "再逐个重新输入身份证号码后导入")
NUMERIC_ID_EN = ("The cell is a number: the spreadsheet program (Excel, WPS, LibreOffice) stored the ID number as "
                 "a number and replaced every digit after the 15th with 0, so its last digits are lost (it shows "
                 "as 9.90101E+17 or the like). Format the column as Text, type the ID numbers again and import")
# A phone number typed into a General column becomes a number: its leading 0 (0571…) is gone. Only an
# 11-digit mobile number (1…) survives a number cell whole, and is taken as its digits.
NUMERIC_CONTACT_ZH = ("该单元格是数字格式：表格软件（Excel、WPS、LibreOffice）把电话号码当作数字保存，"
                      "号码开头的0（如区号0571的0）已经丢失。请把本列设置为“文本”格式，再重新输入号码后导入"
                      "（11位手机号码不受影响）")
NUMERIC_CONTACT_EN = ("The cell is a number: the spreadsheet program (Excel, WPS, LibreOffice) stored the phone "
                      "number as a number, so its leading 0 (as in the area code 0571) is lost. Format the column "
                      "as Text, type the number again and import (an 11-digit mobile number is not affected)")
_MOBILE = re.compile(r"1[0-9]{10}")
_EXCEL_15 = re.compile(r"[0-9]{15}000")
EXCEL_15_ZH = ("身份证号码末三位是000，且校验位不正确：这是 Excel 把号码当作数字保存后只保留了前15位、其余改为0的结果，"
               "号码的末几位已经丢失。请把本列设置为“文本”格式，再逐个重新输入身份证号码后导入")
EXCEL_15_EN = ("The ID number ends in 000 and its check character is wrong: Excel held it as a number, kept its "
               "first 15 digits and replaced the rest with 0, so its last digits are lost. Format the column as "
               "Text, type the ID numbers again and import")
EXCEL_15_WARNING_ZH = ("身份证号码末三位是000：可能是 Excel 只保留了前15位数字的结果（校验位恰好正确）。"
                       "请与原始证件核对；如有误，请把本列设置为“文本”格式后重新输入")
EXCEL_15_WARNING_EN = ("The ID number ends in 000: Excel may have kept only its first 15 digits (the check "
                       "character happens to be right). Check it against the ID card; if it is wrong, format the "
                       "column as Text and type it again")
FIELD_ZH = {"name": "姓名", "hukou_place": "户籍地", "residence": "常住地", "contact": "联系方式",
            "in_school": "是否在读", "task_force": "专班人员及联系方式", "assistance": "帮扶措施",
            "categories": "分类", "signs": "具体表现", "key_minor": "重点未成年人", "vulnerable": "易受侵害未成年人",
            "risk_level": "综合研判风险等级", "control_measures": "管控措施", "sex": "性别", "guardian": "监护人",
            "guardian_contact": "监护人联系方式",
            "sealed": "封存"}


@dataclass
class ImportReport:
    annex: str
    dry_run: bool
    rows: int = 0
    created: int = 0
    matched: int = 0
    # Each reason is kept in both languages ("reason" zh, "reason_en"), answered in the caller's
    # (as_dict, raise_if_failed).
    errors: list[dict[str, Any]] = field(default_factory=list)
    matched_rows: list[int] = field(default_factory=list)
    created_rows: list[int] = field(default_factory=list)
    format: str | None = None
    sheets: list[dict[str, Any]] = field(default_factory=list)
    unused_columns: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    elsewhere: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0
    # The rows with their sheet ({row, sheet}): a row number alone is ambiguous in a workbook of
    # several sheets (matched_rows / created_rows are kept as they were).
    created_entries: list[dict[str, Any]] = field(default_factory=list)
    matched_entries: list[dict[str, Any]] = field(default_factory=list)
    # 附件2 rows of a minor's number ({row, sheet}): whether this import sealed the entry or one was
    # sealed already is not told (sealing/service.py); nothing is counted as created or matched.
    sealed_rows: list[dict[str, Any]] = field(default_factory=list)
    # Rows read but not imported, not errors: a 合计/总计/小计 line ({row, sheet, kind, reason}).
    skipped_rows: list[dict[str, Any]] = field(default_factory=list)
    # Imported, but worth a look ({row, sheet, column, kind, reason}): a hidden row, an ID number
    # that may have lost its last digits to Excel.
    warnings: list[dict[str, Any]] = field(default_factory=list)
    # Audits the rows refused for an ID number registered elsewhere and tells the coordinators
    # (registry/duplicates.py); run by raise_if_failed's refusal after its rollback.
    aftermath: Callable[[Session], None] | None = field(default=None, repr=False, compare=False)

    def as_dict(self, locale: str = "zh-CN") -> dict[str, Any]:
        return {
            "annex": self.annex,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "created": self.created,
            "matched": self.matched,
            "matched_rows": self.matched_rows,
            "created_rows": self.created_rows,
            **spreadsheet.capped_errors(localised(self.errors, locale)),
            "ok": not self.errors,
            "format": self.format,
            "sheets": self.sheets,
            "unused_columns": self.unused_columns,
            "unchanged": self.unchanged,
            "changes": self.changes,
            "elsewhere": self.elsewhere,
            "created_entries": self.created_entries,
            "matched_entries": self.matched_entries,
            "sealed_rows": self.sealed_rows,
            "skipped_rows": localised(self.skipped_rows, locale),
            "warnings": localised(self.warnings, locale),
        }


def localised(items: list[dict[str, Any]], locale: str) -> list[dict[str, Any]]:
    """Errors, warnings and skipped rows with their `reason` in the caller's language (zh-CN unless
    it asked for en)."""
    english = locale == "en"
    out = []
    for item in items:
        shown = {k: v for k, v in item.items() if k != "reason_en"}
        if english and item.get("reason_en"):
            shown["reason"] = item["reason_en"]
        out.append(shown)
    return out


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
    sheet_name: str  # the sheet's name, always (created_entries, warnings)
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
            if header_row > number and required <= set(_match_header(annex, below)[0]):
                # The row below is a whole header by itself: the row above is a title or a 填报单位
                # row, not a group row, and none of its text belongs in a column's name.
                continue
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


def _header_refusal_en(annex: Annex, candidate: _Candidate) -> str:
    def quoted(names: list[str]) -> str:
        return ", ".join(f"“{n}”" for n in names) or "none"

    unknown = quoted([u.replace("\n", "") for u in candidate.unknown])
    return (f"No Annex {annex.value} header found (looked for in the first {HEADER_SCAN_ROWS} rows of every sheet). "
            f"The nearest is row {candidate.row} of sheet “{candidate.sheet}”: missing columns: "
            f"{quoted(candidate.missing)}; unknown columns: {unknown}. "
            f"The columns are: {quoted(list(HEADERS[annex]))}")


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
                                      "reason": _header_refusal(annex, candidate),
                                      "reason_en": _header_refusal_en(annex, candidate)})
                entry.update(reason="表头不完整", reason_en="the header lacks columns")
            else:
                entry.update(reason=f"未找到附件{annex.value}的表头（说明页或其他内容），未导入",
                             reason_en=f"no Annex {annex.value} header (instructions or other content); not imported")
            continue
        if layout.repeated:
            for index, first, second in layout.repeated:
                name = HEADERS[annex][index]
                a, b = get_column_letter(first + 1), get_column_letter(second + 1)
                report.errors.append({
                    "row": layout.header_row, "column": b, "sheet": sheet.name,
                    "reason": f"{a}列和{b}列都是“{name}”，无法确定以哪一列为准；请删除或改名其中一列后重新导入",
                    "reason_en": f"Columns {a} and {b} are both “{name}”: which one holds the value cannot be "
                                 "told; delete or rename one of them and import again",
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
        report.errors.append({"row": candidate.row, "column": None, "reason": _header_refusal(annex, candidate),
                              "reason_en": _header_refusal_en(annex, candidate)})
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
            if _is_totals(cells, picked):
                report.skipped_rows.append({
                    "row": number, "sheet": sheet.name, "kind": "totals",
                    "reason": "合计行（合计/总计/小计，没有身份证号码），未导入",
                    "reason_en": "a totals row (“合计”, “总计”, “小计”, no ID number); not imported"})
                continue
            if number in sheet.hidden_rows:
                report.warnings.append({
                    "row": number, "sheet": sheet.name, "column": None, "kind": "hidden_row",
                    "reason": "该行在文件中是隐藏的（或被筛选隐藏），已导入；请确认这一行确实需要导入",
                    "reason_en": "The row is hidden in the file (or filtered out); it was imported: make sure it "
                                 "belongs in the ledger"})
            data_columns.update(c for c, v in enumerate(cells) if v is not None and c not in used)
            out.append(_Row(number, sheet.name if named else None, sheet.name, picked,
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


_TOTALS = re.compile(r"^(合计|总计|小计|共计)")
_ID_LIKE = re.compile(r"[0-9]{15}")


def _is_totals(cells: list[Any], picked: dict[int, Any]) -> bool:
    """A 合计/总计/小计 line at the foot of a ledger (or of each village's block): the label in one of
    the first columns (序号, 姓名, or the sheet's first three), no ID number."""
    ident = picked.get(2)
    if ident is not None and _ID_LIKE.search(identifiers.fold(str(ident))):
        return False
    firsts = [*cells[:3], picked.get(0), picked.get(1)]
    return any(isinstance(v, str) and _TOTALS.match(identifiers.fold(v)) for v in firsts)


# ---------------------------------------------------------------- cells


class _RowErrors:
    def __init__(self, report: ImportReport, annex: Annex, row: _Row) -> None:
        self.report, self.annex, self.row, self.failed = report, annex, row, False
        self.limits = _MAX_LENGTH[annex]

    def _column(self, index: int | str) -> str:
        return HEADERS[self.annex][index] if isinstance(index, int) else self.row.extra_headers.get(index, index)

    def add(self, index: int | str, reason: str, reason_en: str) -> None:
        self.failed = True
        error: dict[str, Any] = {"row": self.row.number, "column": self._column(index), "reason": reason,
                                 "reason_en": reason_en}
        if self.row.sheet is not None:
            error["sheet"] = self.row.sheet
        self.report.errors.append(error)

    def warn(self, index: int | str, kind: str, reason: str, reason_en: str) -> None:
        """Imported, but the answer says what to look at (never silent)."""
        self.report.warnings.append({"row": self.row.number, "sheet": self.row.sheet_name,
                                     "column": self._column(index), "kind": kind, "reason": reason,
                                     "reason_en": reason_en})


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
    errs.add(index, f"应填“是”或“否”（也可填 在读/辍学/休学、√/×、Y/N），而不是“{value}”",
             f"Write “是” (yes) or “否” (no) (or “在读”, “辍学”, “休学”, √/×, Y/N), not “{value}”")
    return None


def _parse_contact(value: str | None, errs: _RowErrors, index: int) -> str | None:
    """A contact cell in its canonical form (a phone number as ASCII digits, backend/core/identifiers.py)."""
    if value is None:
        return None
    value = _unwrapped(value) or value
    try:
        return identifiers.contact(value)
    except identifiers.SpreadsheetNumber:
        errs.add(index, f"“{value}”是表格软件把电话号码当作数字保存后的写法，号码开头的0或末几位可能已经丢失。"
                        "请把本列设置为“文本”格式，再重新输入号码后导入",
                 f"“{value}” is how a spreadsheet program writes a phone number it stored as a number; its "
                 "leading 0 or its last digits may be lost. Format the column as Text, type the number again "
                 "and import")
        return None
    except ValueError:
        errs.add(index, f"联系方式中的数字只能是0-9，而不是“{value}”",
                 f"The digits of a contact are 0-9, not “{value}”")
        return None


def _parse_level(value: str | None, errs: _RowErrors, index: int) -> RiskLevel | None:
    if value is None:
        return None
    for spelling in (value.strip(), value.strip() + "风险"):
        try:
            return RiskLevel.parse(spelling)  # the label the sheet shows, or its code
        except ValueError:
            continue
    errs.add(index, f"风险等级应为{'、'.join(lv.value for lv in RiskLevel)}之一，而不是“{value}”",
             "The risk level is one of " + ", ".join(f"“{lv.value}”" for lv in RiskLevel) + f", not “{value}”")
    return None


def _parse_sex(value: str | None, errs: _RowErrors) -> idnumber.Sex | None:
    if value is None:
        return None
    sex = SEX_SPELLINGS.get(_fold(value))
    if sex is None:
        errs.add(3, f"性别应填“男”或“女”（也可填 男性/女性），而不是“{value}”",
                 f"Write the sex as “男” (male) or “女” (female) (or “男性”/“女性”), not “{value}”")
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
    errs.add(BIRTH_DATE, f"出生日期应写成 2012-03-04 或 2012年3月4日，而不是“{_text(value)}”",
             f"Write the birth date as 2012-03-04 or “2012年3月4日”, not “{_text(value)}”")
    return None


def _id_text(value: Any, errs: _RowErrors) -> str | None:
    """The ID cell as text, or None (an error added): a number cell is never turned into digits."""
    if value is None:
        errs.add(2, "身份证号码必填", "The ID number is required")
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        errs.add(2, NUMERIC_ID_ZH, NUMERIC_ID_EN)
        return None
    if not isinstance(value, str):
        errs.add(2, f"身份证号码应为18位文本，而不是“{_text(value)}”",
                 f"The ID number is 18 characters of text, not “{_text(value)}”")
        return None
    folded = _unwrapped(_fold(value))
    if _SCIENTIFIC.match(folded):
        errs.add(2, NUMERIC_ID_ZH, NUMERIC_ID_EN)
        return None
    if idnumber.is_masked(folded):
        errs.add(2, "这是隐藏了部分数字的身份证号码（脱敏导出），无法据此登记或匹配，请填写完整的18位号码",
                 "This ID number has digits hidden (a masked export): it can neither register nor match anyone; "
                 "write the full 18 characters")
        return None
    return folded


def _unwrapped(text: str) -> str:
    """An identifier or contact without the wrapper a clerk types in a CSV to keep it text: a leading
    apostrophe ('990101…) or an Excel formula of a string (="990101…")."""
    text = text.strip()
    if text.startswith('="') and text.endswith('"') and len(text) >= 3:
        return text[2:-1].strip()
    if text.startswith("'"):
        return text[1:].strip()
    return text


def _parse_id(row: _Row, errs: _RowErrors, *, minor: bool) -> idnumber.IdNumber | None:
    sex = _parse_sex(_text(row.cells.get(3)), errs)
    birth = _parse_birth(row.extras.get(BIRTH_DATE), errs)
    value = _id_text(row.cells.get(2), errs)
    if value is None:
        return None
    if _EXCEL_15.fullmatch(value):
        # 15 digits then 000: what Excel writes for an ID number it held as a number (15 significant
        # digits) and then saved as text or CSV. Its check character fails 10 times in 11; when it
        # passes, the number may still be a real one (1 in ~1100 end in 000), so it is imported and
        # the answer says to look at it.
        if idnumber.check_character(value[:17]) != value[17]:
            errs.add(2, EXCEL_15_ZH, EXCEL_15_EN)
            return None
        errs.warn(2, "id_number_excel_15", EXCEL_15_WARNING_ZH, EXCEL_15_WARNING_EN)
    try:
        return idnumber.parse_for_person(value, today=clock.now().date(), sex=sex, birth_date=birth, minor=minor)
    except DomainError as exc:
        field_name = str(exc.extensions.get("field"))
        where: int | str = 3 if field_name == "sex" else BIRTH_DATE if field_name == "birth_date" else 2
        errs.add(where, exc.detail_zh or exc.title_zh, exc.detail_en or exc.title_en)
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
                errs.add(8, f"分类“{raw}”不在{'、'.join(allowed)}之中（也可填序号1-{len(allowed)}）",
                         f"The category “{raw}” is not one of " + ", ".join(f"“{a}”" for a in allowed)
                         + f" (or their numbers 1-{len(allowed)})")
                continue
        found = part if part in allowed else None
        if found is None:
            near = [c for c in allowed if part in c]
            found = near[0] if len(near) == 1 else None
        if found is None:
            errs.add(8, f"分类“{part}”不在{'、'.join(allowed)}之中",
                     f"The category “{part}” is not one of " + ", ".join(f"“{a}”" for a in allowed))
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
            errs.add(7, f"分类“{raw}”不是附件2的7类之一（可填序号或名称）：{allowed}",
                     f"The category “{raw}” is none of the 7 of Annex 2 (write its number or name): “{allowed}”")
        elif found not in out:
            out.append(found)
    return out


def _schema_limit(schema: type[BaseModel], name: str) -> int:
    """The max_length the API schema gives field `name` (a text's characters, a list's items)."""
    return next(m.max_length for m in schema.model_fields[name].metadata if isinstance(m, MaxLen))


def _limit(schema: type[BaseModel], table: Any, name: str) -> int:
    """The longest value field `name` may hold: its API schema's limit, and never more than its
    column's (registry/models.py), so an import can store nothing the API would refuse."""
    column = table.__table__.c[name].type.length
    return min(_schema_limit(schema, name), column or _schema_limit(schema, name))


# The field of the API's schemas each text column is written to. Its limit is checked on the value
# as written (a contact in its canonical form, each guardian's name and phone), per cell, so an
# over-long value is a row error naming its column, never a refusal of the whole file.
_WRITTEN_TO: dict[Annex, dict[int, str]] = {
    Annex.key_minors: {1: "name", 4: "hukou_place", 5: "residence", 7: "contact", 9: "signs", 10: "name",
                       11: "contact", 12: "task_force", 13: "assistance"},
    Annex.vulnerable_minors: {1: "name", 4: "hukou_place", 5: "residence", 6: "contact", 8: "name", 9: "contact",
                              10: "task_force", 11: "assistance"},
    Annex.risk_persons: {1: "name", 4: "hukou_place", 5: "residence", 6: "contact", 9: "control_measures"},
}
_MAX_LENGTH: dict[Annex, dict[int, int]] = {
    annex: {index: _limit(RiskPersonData if annex is Annex.risk_persons else PersonData,
                          RiskPerson if annex is Annex.risk_persons else Person, name)
            for index, name in columns.items()}
    for annex, columns in _WRITTEN_TO.items()
}
# The guardians a child may have (PersonData.guardians), the columns naming them and their phones,
# and the columns holding a contact (a number cell there has lost its leading 0).
MAX_GUARDIANS = _schema_limit(PersonData, "guardians")
_GUARDIAN_COLUMNS = {Annex.key_minors: (10, 11), Annex.vulnerable_minors: (8, 9)}
_CONTACT_COLUMNS = {Annex.key_minors: (7, 11, 12), Annex.vulnerable_minors: (6, 9, 10), Annex.risk_persons: (6,)}
# What a guardian without a phone is written as among the phones ("13800138000、无、13900139000").
NO_PHONE = ("无", "没有", "暂无", "-", "—", "/", "－", "／")


def _too_long(limit: int, length: int, what: str = "", what_en: str = "") -> tuple[str, str]:
    return (f"内容过长：{what}最多 {limit} 字，现有 {length} 字",
            f"Too long: {what_en}at most {limit} characters, this cell holds {length}")


class _RowRefused(Exception):
    """A row refused while it is written (its column, the reason in both languages)."""

    def __init__(self, index: int, zh: str, en: str) -> None:
        super().__init__(en)
        self.index, self.zh, self.en = index, zh, en


def _row_values(row: _Row, annex: Annex, errs: _RowErrors) -> dict[str, Any] | None:
    limits = _MAX_LENGTH[annex]
    contacts = _CONTACT_COLUMNS[annex]
    guardian_columns = _GUARDIAN_COLUMNS.get(annex, ())

    def fits(index: int, text: str | None) -> str | None:
        longest = limits.get(index)
        if text is not None and longest is not None and len(text) > longest:
            errs.add(index, *_too_long(longest, len(text)))
            return None
        return text

    def raw(index: int) -> str | None:
        """The cell as text; a number cell of a contact column only when it is a mobile number."""
        value = row.cells.get(index)
        if index in contacts and isinstance(value, int | float) and not isinstance(value, bool):
            digits = str(int(value)) if float(value).is_integer() else ""
            if not _MOBILE.fullmatch(digits):
                errs.add(index, NUMERIC_CONTACT_ZH, NUMERIC_CONTACT_EN)
                return None
            return digits
        return _text(value)

    def c(index: int) -> str | None:
        text = raw(index)
        # A contact is checked as it is stored (canonical), a guardian's parts one by one.
        return text if index in guardian_columns else fits(index, text)

    def contact(index: int) -> str | None:
        return fits(index, _parse_contact(raw(index), errs, index))

    # A cell holding a character Hulei refuses (backend/core/text.py) is a row error, never stored.
    cells: list[tuple[int | str, Any]] = [*row.cells.items(), *row.extras.items()]
    for at, value in cells:
        if isinstance(value, str) and (bad := first_refused(value)) is not None:
            errs.add(at, cell_reason(bad), cell_reason(bad, "en"))
    name = c(1)
    if name is None and _text(row.cells.get(1)) is None:
        errs.add(1, "姓名必填", "The name is required")
    parsed = _parse_id(row, errs, minor=annex is not Annex.risk_persons)
    values: dict[str, Any] = {"name": name, "hukou_place": c(4), "residence": c(5)}
    if annex is Annex.key_minors:
        values.update(
            contact=contact(7),
            in_school=_parse_bool(c(6), errs, 6),
            categories=_child_categories(c(8), errs),
            signs=c(9),
            guardians=_guardians(c(10), c(11), errs, 10, 11),
            task_force=c(12),
            assistance=c(13),
            risk_level=_parse_level(c(14), errs, 14),
        )
    elif annex is Annex.vulnerable_minors:
        values.update(
            contact=contact(6),
            in_school=_parse_bool(c(7), errs, 7),
            guardians=_guardians(c(8), c(9), errs, 8, 9),
            task_force=c(10),
            assistance=c(11),
        )
    else:
        cats = _risk_categories(c(7), errs)
        if not cats and c(7) is None:
            errs.add(7, "分类必填", "The category is required")
        values.update(contact=contact(6), categories=cats, risk_level=_parse_level(c(8), errs, 8),
                      control_measures=c(9))
    if parsed is None or errs.failed:
        return None
    values["id_number"] = parsed.value
    values["sex"] = parsed.sex
    values["birth_date"] = parsed.birth_date
    return values


def _guardians(names_cell: str | None, phones_cell: str | None, errs: _RowErrors, name_at: int,
               phone_at: int) -> list[tuple[str, str | None]]:
    """The guardians a row names, each with its phone: the phones pair with the names in order, one
    each, “无” for a guardian without one; no phones at all is every guardian without one. Each name
    and phone fits the field it is written to, and there are no more than the API allows."""
    names = list(dict.fromkeys(n.strip() for n in _split_names(names_cell)))
    phones = [p.strip() for p in _split_names(phones_cell)]
    if len(names) > MAX_GUARDIANS:
        errs.add(name_at, f"监护人最多 {MAX_GUARDIANS} 名，本行有 {len(names)} 名",
                 f"At most {MAX_GUARDIANS} guardians; the row names {len(names)}")
        return []
    name_limit, phone_limit = errs.limits[name_at], errs.limits[phone_at]
    for name in names:
        if len(name) > name_limit:
            errs.add(name_at, *_too_long(name_limit, len(name), "每位监护人的姓名", "each guardian's name "))
            return []
    if phones and len(phones) != len(names):
        errs.add(phone_at,
                 f"监护人联系方式有 {len(phones)} 个，监护人姓名有 {len(names)} 个：请按姓名的顺序每人填一个联系方式，"
                 "用“、”分隔，没有联系方式的填“无”（如“13800138000、无”）",
                 f"The row has {len(phones)} guardian phones and {len(names)} guardian names: write one phone per "
                 "guardian in the order of the names, separated by “、”, and “无” for a guardian without one "
                 "(as in “13800138000、无”)")
        return []
    paired: list[tuple[str, str | None]] = []
    for at, name in enumerate(names):
        phone = phones[at] if phones and phones[at] not in NO_PHONE else None
        if phone is not None:
            phone = _parse_contact(phone, errs, phone_at)
            if phone is not None and len(phone) > phone_limit:
                errs.add(phone_at, *_too_long(phone_limit, len(phone), "每位监护人的联系方式",
                                              "each guardian's phone "))
                return []
        paired.append((name, phone))
    return paired


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
    # 附件2 rows of a minor's number: the entry is created sealed when none is, else left as it is;
    # both are answered alike (sealed_rows), so the answer never tells that a sealed entry existed.
    sealed_rows: list[_Row] = []
    seen: dict[str, _Row] = {}
    model: type[Person] | type[RiskPerson] = RiskPerson if annex is Annex.risk_persons else Person
    collisions: list[duplicates.Collision] = []
    pending = _registered_without_id(session, principal, unit) if annex is not Annex.risk_persons else {}
    for row in rows:
        errs = _RowErrors(report, annex, row)
        if row.cells.get(2) is None and (ids := pending.get(_text(row.cells.get(1)) or "")):
            # The export lists a child registered without an ID number with an empty cell: its row is
            # that child, not a new one, and is left alone (never an error, never a match).
            disclosure.record(disclosure.PERSON, ids)
            report.skipped_rows.append({"row": row.number, "sheet": row.sheet_name,
                                        "kind": "registered_without_id_number",
                                        "reason": REGISTERED_WITHOUT_ID_ZH, "reason_en": REGISTERED_WITHOUT_ID_EN})
            continue
        values = _row_values(row, annex, errs)
        if values is None or errs.failed:
            continue
        index = crypto.blind_index(values["id_number"])
        if index in seen:
            first = seen[index]
            where = f"工作表“{first.sheet}”" if first.sheet and first.sheet != row.sheet else ""
            where_en = f"sheet “{first.sheet}” " if where else ""
            errs.add(2, f"与{where}第{first.number}行的身份证号码重复",
                     f"The same ID number as {where_en}row {first.number}")
            continue
        seen[index] = row
        # A sealed 附件2 entry is never matched (the answer would show it exists): an adult's row of its
        # number is a new entry, and a minor's row is answered as sealed whether or not one exists.
        unsealed = [sealing.unsealed(RiskPerson)] if model is RiskPerson else []
        existing = session.execute(select(model).where(col(model.id_index) == index, *unsealed)).scalar_one_or_none()
        if existing is None and model is RiskPerson and sealing.judge(values["birth_date"], clock.now()):
            sealed_rows.append(row)
            sealed_before = session.execute(select(col(RiskPerson.id)).where(
                col(RiskPerson.id_index) == index, col(RiskPerson.sealed).is_(True))).first()
            if sealed_before is None:
                planned.append((row, values, None))
            continue
        if existing is not None:
            # A row updates the record of its number when that record is a child (or 附件2 entry) of
            # the caller's area, which the importer (police, coordinators) may read with its full
            # number anyway. Any other holder, elsewhere or a guardian, refuses the row in the words of
            # every other refusal of a registered number, audited and told (registry/duplicates.py).
            path = orgunits.unit_path(session, existing.org_unit_id)
            if (path is None or not principal.covers(path)
                    or (isinstance(existing, Person) and existing.role != PersonRole.child.value)):
                errs.add(2, duplicates.REFUSAL_ZH, duplicates.REFUSAL_EN)
                collisions.append(duplicates.collision(session, model, index, unit_id=unit.id, operation="import"))
                continue
            if existing.org_unit_id != unit.id and not _within(session, existing.org_unit_id, unit):
                held = session.get(OrgUnit, existing.org_unit_id)
                report.elsewhere.append({"row": row.number, **({"sheet": row.sheet} if row.sheet else {}),
                                         "org_unit_id": existing.org_unit_id,
                                         "org_unit_name": held.name if held else None,
                                         "imported_into": unit.name})
        planned.append((row, values, existing))
    sealing_rows = {id(r) for r in sealed_rows}
    matched = [row for row, _, e in planned if e is not None]
    created = [row for row, _, e in planned if e is None and id(row) not in sealing_rows]
    report.matched, report.created = len(matched), len(created)
    report.matched_rows = [row.number for row in matched]
    report.created_rows = [row.number for row in created]
    report.matched_entries = [{"row": row.number, "sheet": row.sheet_name} for row in matched]
    report.created_entries = [{"row": row.number, "sheet": row.sheet_name} for row in created]
    report.sealed_rows = [{"row": row.number, "sheet": row.sheet_name} for row in sealed_rows]
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
                errs.add(2, exc.detail_zh or exc.title_zh, exc.detail_en or exc.title_en)
                continue
            except _RowRefused as refused:
                errs.add(refused.index, refused.zh, refused.en)
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


REGISTERED_WITHOUT_ID_ZH = ("该儿童已登记，但尚未登记身份证号码，本行未导入。请在应用中（或通过接口）"
                            "为该儿童补填身份证号码；不要在台账中填写后导入：带号码的行会被当作新儿童，另建一条记录")
REGISTERED_WITHOUT_ID_EN = ("The child is registered without an ID number; the row was not imported. Add the number "
                            "to the child in the app (or through the API), not in the ledger: a row with an ID "
                            "number is taken as a new child and would make a second record")


def _registered_without_id(session: Session, principal: Principal, unit: OrgUnit) -> dict[str, list[int]]:
    """The children registered without an ID number (a volunteer's push, the number to follow) in
    `unit` or below it that the caller may see, by name: a ledger row without a number naming one is
    that child as the export lists it, skipped; any other row without a number is an error."""
    found: dict[str, list[int]] = {}
    for person_id, name in session.execute(select(col(Person.id), col(Person.name)).where(
            col(Person.role) == PersonRole.child.value, col(Person.id_index).is_(None),
            col(Person.retired_at).is_(None), col(Person.org_unit_id).in_(orgunits.subtree_unit_ids(unit.path)),
            scope.visible(principal, Person))):
        if name:
            found.setdefault(name.strip(), []).append(person_id)
    return found


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


def _differs(stored: Any, given: Any) -> bool:
    """Whether a cell's value changes what is stored. Text is compared as the export writes it (CR LF
    as LF, characters no input accepts dropped: backend/core/text.py), so the town's own export
    brings back what it holds, and the stored spelling is kept."""
    if isinstance(stored, str) and isinstance(given, str):
        return clean(stored) != clean(given)
    return bool(stored != given)


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
        differing = {k: v for k, v in fields.items() if _differs(getattr(person, k), v)}
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
    guardians: list[tuple[str, str | None]] = values.get("guardians") or []
    if guardians:
        held = registry.guardians_of(session, [person.id])[person.id]
        stored = [g["name"] for g in held]
        known = set(stored)
        new = [(name, contact) for name, contact in guardians if name not in known]
        # A registered guardian's phone the ledger now gives otherwise is the clerk's newer knowledge: it
        # is changed, and shown (an empty cell or “无” never clears a stored phone).
        phones_before = {g["name"]: g["contact"] for g in held}
        rephoned: list[tuple[str, str]] = [(who, phone) for who, phone in guardians
                                           if who in known and phone is not None and phone != phones_before[who]]
        if rephoned:
            uuids = {g["name"]: g["uuid"] for g in held}
            for who, phone in rephoned:
                guardian_row = session.execute(select(Person).where(
                    col(Person.uuid) == UUID(uuids[who]))).scalar_one()
                guardian_row.contact = phone
                guardian_row.rev = revisions.allocate(session)
                guardian_row.version += 1
                guardian_row.updated_at = now
                session.add(guardian_row)
                disclosure.changed(disclosure.PERSON, [guardian_row.id], unit_id=guardian_row.org_unit_id)
            session.flush()
            if existing is not None:
                changes.append(_change(
                    "guardian_contact",
                    "、".join(f"{n}：{phones_before[n] or '无'}" for n, _ in rephoned),
                    "、".join(f"{n}：{c}" for n, c in rephoned)))
        if len(stored) + len(new) > MAX_GUARDIANS:
            name_at = _GUARDIAN_COLUMNS[annex][0]
            raise _RowRefused(name_at,
                              f"监护人最多 {MAX_GUARDIANS} 名：已登记 {len(stored)} 名，本行又列出 {len(new)} 名",
                              f"At most {MAX_GUARDIANS} guardians: {len(stored)} are registered and the row names "
                              f"{len(new)} more")
        added: list[str] = []
        for name, contact in new:
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
            added.append(name)
        # The guardians before and after, as the ledger lists them (the export's 监护人姓名 cell).
        if existing is not None and added:
            changes.append(_change("guardian", "、".join(stored) or None, "、".join([*stored, *added])))
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
    differing = {k: v for k, v in fields.items() if v is not None and _differs(getattr(existing, k), v)}
    if not differing:
        return []
    changes = [_change(k, getattr(existing, k), v) for k, v in differing.items() if k not in _ID_FIELDS]
    before = risk_person_history.snapshot(existing)
    for key, value in differing.items():
        setattr(existing, key, value)
    existing.version += 1
    existing.updated_at = clock.now()
    session.add(existing)
    session.flush()
    risk_person_history.record(session, existing, before, actor_user_id=principal.user_id)
    disclosure.changed(disclosure.RISK_PERSON, [existing.id], unit_id=existing.org_unit_id)
    return changes


def raise_if_failed(report: ImportReport, locale: str = "zh-CN") -> None:
    """A real import with errors answers 422 listing the bad rows and columns (the first
    import_max_errors of them, with their total, each reason in the caller's language); nothing was
    written. The problem carries the dry run's whole report (sheets, warnings, unused columns…) as
    its extension members, so the refusal tells all the dry run would have."""
    if report.errors and not report.dry_run:
        raise LedgerInvalid(
            f"台账有{len(report.errors)}处错误，未导入任何数据",
            f"The ledger has {len(report.errors)} errors; nothing was imported",
            **report.as_dict(locale),
            aftermath=report.aftermath,
        )
