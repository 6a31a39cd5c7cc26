"""Every sheet of an uploaded ledger, with each cell's type: .xlsx, .xls, .ods and .csv.

- .xlsx (Excel, WPS): the hostile-file checks of backend/core/spreadsheet.py (zip bomb, DOCTYPE and
  entities, declared size), then openpyxl in read-only mode through defusedxml; merged ranges are read
  from the sheet's <mergeCells>.
- .xls and .ods: python-calamine (the Rust calamine reader). It holds a sheet as one dense grid, so a
  hand-made file with a single cell at row 1,048,576, column XFD would make it ask for half a terabyte
  and abort the process; it therefore runs in a child process with a memory limit
  (backend/ledgers/calamine_worker.py) and any failure there is a refusal, never a server error. An
  .ods is a zip of XML and gets the same zip and prolog checks first; its merged ranges, which calamine
  does not report, are read from content.xml through defusedxml.
- .csv (and .txt): UTF-8 (with or without BOM), else GB18030 (a superset of GBK, what Excel and WPS
  write for a Chinese "CSV"); UTF-16 LE or BE with its BOM (Excel's "Unicode text"); comma, tab or
  semicolon separated. Every cell is text. A NUL in a cell is read (the importer refuses it at its row
  and column); bytes with a NUL beside every ASCII character are UTF-16 without its BOM, refused.

A cell is str, int, float, bool, date/datetime or None (empty). Numbers stay numbers: an ID number
stored as a number has already lost its last digits, and the importer must know that.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from defusedxml import ElementTree as DefusedElementTree  # type: ignore[import-untyped]
from openpyxl import load_workbook
from openpyxl.utils.cell import range_boundaries

from backend.core import spreadsheet
from backend.core.spreadsheet import ImportFileUnreadable

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ROW_TAG = re.compile(rb"<(?:\w+:)?row(?=[\s/>])([^>]*)>")
_ROW_NUMBER = re.compile(rb"\br=\"([0-9]+)\"")
_ROW_HIDDEN = re.compile(rb"\bhidden=\"(?:1|true)\"")
_MERGE = re.compile(rb"<(?:\w+:)?mergeCell\s+ref=\"([A-Z]+[0-9]+(?::[A-Z]+[0-9]+)?)\"")
# A merged range larger than this is refused (a hand-made file could merge a million rows).
MAX_MERGED_CELLS = 2_000_000
CALAMINE_TIMEOUT_SECONDS = 120
FORMATS = (".xlsx", ".xls", ".csv", ".ods")


# A hidden sheet is what a clerk keeps out of sight: last year's data, a lookup list. Importing it
# would create or change people nobody looking at the file sees; it is listed as not read instead.
HIDDEN = "隐藏的工作表，未导入（如需导入请先取消隐藏）"
HIDDEN_EN = "a hidden sheet, not imported (unhide it to import it)"


@dataclass
class RawSheet:
    """One sheet's cells as typed values, merged ranges already spread over every cell they cover."""

    name: str
    rows: list[list[Any]]
    merged: int = 0  # merged ranges applied
    skipped: str | None = None  # why the sheet cannot hold a ledger (a chart sheet), else None
    skipped_en: str | None = None
    # The rows (1-based) hidden in the file (<row hidden="1"> in .xlsx, table:visibility in .ods; an
    # .xls's are not known): imported, and listed as warnings by the importer.
    hidden_rows: frozenset[int] = frozenset()


@dataclass
class Workbook:
    format: str  # xlsx, xls, ods, csv
    sheets: list[RawSheet] = field(default_factory=list)


def _unreadable(zh: str, en: str, **extensions: Any) -> ImportFileUnreadable:
    return ImportFileUnreadable(zh, en, **extensions)


def read(content: bytes, filename: str, *, max_rows: int, header_rows: int) -> Workbook:
    """The workbook's sheets. Refused (422 import-file-unreadable, 413) as a whole when the file is none
    of the accepted formats, hostile, or holds more than `max_rows` rows below `header_rows` in a sheet."""
    name = (filename or "").lower()
    if not content:
        raise _unreadable("文件是空的", "The file is empty")
    if content.startswith(_ZIP_MAGIC):
        if _is_ods(content):
            spreadsheet.check_archive(content, required=("mimetype", "content.xml"))
            return _calamine(content, "ods", max_rows=max_rows, header_rows=header_rows)
        return _xlsx(content, max_rows=max_rows, header_rows=header_rows)
    if content.startswith(_OLE_MAGIC):
        return _calamine(content, "xls", max_rows=max_rows, header_rows=header_rows)
    if name.endswith((".csv", ".txt")):
        return _csv(content, max_rows=max_rows, header_rows=header_rows)
    raise _unreadable(
        "文件格式无法识别：请上传 .xlsx、.xls、.ods 或 .csv 文件（可用 Excel/WPS 另存为 .xlsx）",
        "The file format is not recognised: upload an .xlsx, .xls, .ods or .csv file "
        "(Excel or WPS can save it as .xlsx)",
        formats=list(FORMATS),
    )


def _is_ods(content: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            info = archive.getinfo("mimetype")
            return info.file_size < 200 and archive.read(info).startswith(b"application/vnd.oasis.opendocument")
    except (KeyError, zipfile.BadZipFile, ValueError, OSError, RuntimeError, NotImplementedError):
        return False


def _too_many(max_rows: int, number: int) -> ImportFileUnreadable:
    return spreadsheet.too_many_rows(max_rows, f"第 {number} 行仍有数据", f"row {number} holds data")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _trim(rows: list[list[Any]], *, max_rows: int, header_rows: int) -> list[list[Any]]:
    """Rows without the empty ones at the end; more than header_rows + max_rows rows is refused."""
    while rows and all(_blank(v) for v in rows[-1]):
        rows.pop()
    if len(rows) > header_rows + max_rows:
        raise _too_many(max_rows, len(rows))
    return rows


def _spread(rows: list[list[Any]], ranges: list[tuple[int, int, int, int]]) -> int:
    """Give every cell of each merged range (1-based min_col, min_row, max_col, max_row) the value of
    its top-left cell; ranges beyond the data are cut to it."""
    applied = 0
    for min_col, min_row, max_col, max_row in ranges:
        if (max_row - min_row + 1) * (max_col - min_col + 1) > MAX_MERGED_CELLS:
            raise _unreadable("合并单元格的范围过大", "A merged range is too large")
        if min_row > len(rows) or (min_row == max_row and min_col == max_col):
            continue
        top = rows[min_row - 1]
        value = top[min_col - 1] if min_col - 1 < len(top) else None
        for r in range(min_row, min(max_row, len(rows)) + 1):
            row = rows[r - 1]
            if len(row) < max_col:
                row.extend([None] * (max_col - len(row)))
            for c in range(min_col, max_col + 1):
                row[c - 1] = value
        applied += 1
    return applied


def _xlsx(content: bytes, *, max_rows: int, header_rows: int) -> Workbook:
    spreadsheet.check_archive(content)
    limit = header_rows + max_rows
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # openpyxl raises many types for a file that is not .xlsx
        raise _unreadable("文件不是有效的 .xlsx", f"not a valid .xlsx file ({type(exc).__name__})") from exc
    out = Workbook("xlsx")
    try:
        if not workbook.worksheets:
            raise _unreadable("文件中没有工作表", "the workbook has no sheet")
        for chart in getattr(workbook, "chartsheets", []):
            out.sheets.append(RawSheet(chart.title, [], skipped="图表工作表，没有数据",
                                       skipped_en="a chart sheet, no data"))
        for sheet in workbook.worksheets:
            if getattr(sheet, "sheet_state", "visible") != "visible":
                out.sheets.append(RawSheet(sheet.title, [], skipped=HIDDEN, skipped_en=HIDDEN_EN))
                continue
            declared_rows, declared_columns = getattr(sheet, "max_row", None), getattr(sheet, "max_column", None)
            if isinstance(declared_rows, int) and declared_rows > limit:
                raise spreadsheet.too_many_rows(max_rows, f"工作表“{sheet.title}”声明 {declared_rows} 行",
                                                f"the sheet declares {declared_rows} rows")
            if isinstance(declared_columns, int) and declared_columns > spreadsheet.MAX_COLUMNS:
                raise _unreadable(f"工作表声明 {declared_columns} 列，最多 {spreadsheet.MAX_COLUMNS} 列",
                                  f"The sheet declares {declared_columns} columns; at most {spreadsheet.MAX_COLUMNS}",
                                  limit_columns=spreadsheet.MAX_COLUMNS)
            rows: list[list[Any]] = []
            for number, values in enumerate(sheet.iter_rows(min_row=1, max_row=1_048_576,
                                                            max_col=spreadsheet.MAX_COLUMNS, values_only=True),
                                            start=1):
                if number > limit:
                    if any(not _blank(v) for v in values):
                        raise _too_many(max_rows, number)
                    continue
                rows.append([None if _blank(v) else v for v in values])
            rows = _trim(rows, max_rows=max_rows, header_rows=header_rows)
            part = _sheet_part(workbook, sheet)
            merged = _spread(rows, _merged_ranges(part))
            out.sheets.append(RawSheet(sheet.title, rows, merged, hidden_rows=_hidden_rows(part, len(rows))))
    except ImportFileUnreadable:
        raise
    except Exception as exc:  # the XML of a part is malformed or forbidden (defusedxml)
        raise _unreadable("文件内容无法读取，不是有效的 .xlsx",
                          f"the sheet cannot be read ({type(exc).__name__})") from exc
    finally:
        workbook.close()
    return out


def _sheet_part(workbook: Any, sheet: Any) -> bytes:
    """The sheet's XML (its size already checked by check_archive)."""
    path = getattr(sheet, "_worksheet_path", None)
    archive = getattr(workbook, "_archive", None)
    if path is None or archive is None:
        return b""
    with archive.open(path) as part:
        return bytes(part.read(spreadsheet.MAX_EXPANDED_BYTES))


def _hidden_rows(data: bytes, height: int) -> frozenset[int]:
    """The rows up to `height` that the sheet's XML marks hidden (read-only openpyxl does not keep row
    properties): <row r="5" hidden="1">; a row without r is the one after the previous."""
    hidden: set[int] = set()
    number = 0
    for match in _ROW_TAG.finditer(data):
        attributes = match.group(1)
        given = _ROW_NUMBER.search(attributes)
        number = int(given.group(1)) if given else number + 1
        if number > height:
            break
        if _ROW_HIDDEN.search(attributes):
            hidden.add(number)
    return frozenset(hidden)


def _merged_ranges(data: bytes) -> list[tuple[int, int, int, int]]:
    """The sheet's merged ranges, from its <mergeCells> (read-only openpyxl does not keep them)."""
    start = data.find(b"mergeCells")
    if start < 0:
        return []
    ranges = []
    for match in _MERGE.finditer(data, max(0, start - 10)):
        ref = match.group(1).decode()
        bounds = range_boundaries(ref if ":" in ref else f"{ref}:{ref}")
        ranges.append(tuple(int(b or 0) for b in bounds))
    return ranges  # type: ignore[return-value]


_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"


def _ods_merges(content: bytes, hidden: dict[str, set[int]] | None = None,
                limit: int = 0) -> dict[str, list[tuple[int, int, int, int]]]:
    """The merged ranges of each sheet of an .ods (calamine does not report them): cells spanning rows
    or columns (table:number-rows-spanned / -columns-spanned), found by walking content.xml, whose
    prolog check_archive has passed, through defusedxml. The rows (1-based, up to `limit`) hidden or
    filtered out (table:visibility) are put in `hidden`, by sheet."""
    out: dict[str, list[tuple[int, int, int, int]]] = {}
    hidden_rows: set[int] = set()
    with zipfile.ZipFile(io.BytesIO(content)) as archive, archive.open("content.xml") as part:
        sheet: list[tuple[int, int, int, int]] | None = None
        row = column = repeat = 0
        for event, element in DefusedElementTree.iterparse(part, events=("start", "end")):
            tag = element.tag
            if event == "start" and tag == f"{_TABLE}table":
                name = element.get(f"{_TABLE}name", "")
                sheet = out.setdefault(name, [])
                hidden_rows = hidden.setdefault(name, set()) if hidden is not None else set()
                row = 0
            elif event == "start" and tag == f"{_TABLE}table-row":
                column, repeat = 0, int(element.get(f"{_TABLE}number-rows-repeated", "1"))
                if element.get(f"{_TABLE}visibility", "visible") != "visible" and row < limit:
                    hidden_rows.update(range(row + 1, min(row + repeat, limit) + 1))
            elif event == "start" and tag in (f"{_TABLE}table-cell", f"{_TABLE}covered-table-cell"):
                rows = int(element.get(f"{_TABLE}number-rows-spanned", "1"))
                columns = int(element.get(f"{_TABLE}number-columns-spanned", "1"))
                if sheet is not None and (rows > 1 or columns > 1):
                    sheet.append((column + 1, row + 1, column + columns, row + rows))
                column += int(element.get(f"{_TABLE}number-columns-repeated", "1"))
            elif event == "end" and tag == f"{_TABLE}table-row":
                row += repeat
            if event == "end":
                element.clear()
    return out


def _calamine(content: bytes, kind: str, *, max_rows: int, header_rows: int) -> Workbook:
    try:
        done = subprocess.run(  # noqa: S603 (our own module and two numbers, no shell)
            [sys.executable, "-m", "backend.ledgers.calamine_worker", str(header_rows + max_rows),
             str(spreadsheet.MAX_COLUMNS)],
            input=content, capture_output=True, timeout=CALAMINE_TIMEOUT_SECONDS, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise _unreadable("文件读取超时，请用 Excel/WPS 另存为 .xlsx 后重试",
                          "Reading the file took too long; save it as .xlsx from Excel or WPS") from exc
    answer: dict[str, Any] = {}
    if done.returncode == 0:
        try:
            answer = json.loads(done.stdout)
        except ValueError:
            answer = {}
    if answer.get("error") == "size":
        height, columns = int(answer.get("rows", 0)), int(answer.get("columns", 0))
        if height > header_rows + max_rows:
            raise spreadsheet.too_many_rows(max_rows, f"工作表有 {height} 行", f"the sheet has {height} rows")
        raise _unreadable(f"工作表有 {columns} 列，最多 {spreadsheet.MAX_COLUMNS} 列",
                          f"The sheet has {columns} columns; at most {spreadsheet.MAX_COLUMNS}",
                          limit_columns=spreadsheet.MAX_COLUMNS)
    if "sheets" not in answer:
        password = answer.get("error") == "password"
        if kind == "xls":
            raise _unreadable(
                "文件已设置密码，请另存为不加密的 .xlsx" if password else
                "文件是无法读取的旧版 .xls 或已设置密码，请用 Excel/WPS 另存为不加密的 .xlsx 后重试",
                "The file is password-protected" if password else
                "The file is an old .xls that cannot be read, or it is password-protected; "
                "save it as an unencrypted .xlsx from Excel or WPS",
            )
        raise _unreadable("文件不是有效的 .ods，请用 WPS/LibreOffice 另存为 .xlsx 后重试",
                          "Not a valid .ods file; save it as .xlsx")
    out = Workbook(kind)
    hidden: dict[str, set[int]] = {}
    merges = _ods_merges(content, hidden, header_rows + max_rows) if kind == "ods" else {}
    if not answer["sheets"]:
        raise _unreadable("文件中没有工作表", "the workbook has no sheet")
    for sheet in answer["sheets"]:
        if sheet.get("skipped"):
            out.sheets.append(RawSheet(sheet["name"], [], skipped="图表或宏工作表，没有数据",
                                       skipped_en="a chart or macro sheet, no data"))
            continue
        if sheet.get("hidden"):
            out.sheets.append(RawSheet(sheet["name"], [], skipped=HIDDEN, skipped_en=HIDDEN_EN))
            continue
        rows = [[_decode(v) for v in row[: spreadsheet.MAX_COLUMNS]] for row in sheet["rows"]]
        rows = _trim(rows, max_rows=max_rows, header_rows=header_rows)
        ranges = merges.get(sheet["name"]) or [(m[0], m[1], m[2], m[3]) for m in sheet["merged"]]
        merged = _spread(rows, ranges)
        out.sheets.append(RawSheet(sheet["name"], rows, merged, hidden_rows=frozenset(hidden.get(sheet["name"], ()))))
    return out


def _decode(cell: list[Any] | None) -> Any:
    if cell is None:
        return None
    kind, value = cell
    if kind == "d":
        return datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if kind == "s":
        return None if not value.strip() else value
    return value


def _utf16_without_bom(content: bytes) -> bool:
    """Whether the bytes look like UTF-16 without its BOM (not guessed, refused as an encoding): it
    decodes as UTF-8 or GB18030, but every ASCII character comes with a NUL byte beside it. A NUL
    or two in a cell of a UTF-8 file is not that: the file is read, and the cell is a row error
    (backend/core/text.py refuses U+0000)."""
    head = content[:4096]
    return head.count(0) * 16 > len(head)


def _csv(content: bytes, *, max_rows: int, header_rows: int) -> Workbook:
    text: str | None = None
    # Excel's "Unicode text" (and some "CSV UTF-16" savers): UTF-16 with its byte-order mark, tabs
    # between the cells. Without a BOM UTF-16 is not guessed (a GBK file could be misread as it).
    bom = next((e for b, e in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")) if content.startswith(b)), None)
    encodings = ((bom,) if bom else ("utf-8-sig", "gb18030"))
    for encoding in encodings:
        try:
            text = content.decode(encoding)
            if bom:
                text = text.removeprefix("\ufeff")
            break
        except UnicodeDecodeError:
            continue
    if text is None or (bom is None and _utf16_without_bom(content)):
        raise _unreadable("CSV 文件的编码无法识别，请保存为 UTF-8、GBK 或带 BOM 的 UTF-16 编码",
                          "The CSV file's encoding is not recognised; save it as UTF-8, GBK or UTF-16 with a BOM")
    first = text[:4096]
    delimiter = max(",\t;", key=first.count)
    rows: list[list[Any]] = []
    limit = header_rows + max_rows
    try:
        for number, row in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), start=1):
            if number > limit:
                if any(not _blank(v) for v in row):
                    raise _too_many(max_rows, number)
                continue
            rows.append([None if _blank(v) else v for v in row[: spreadsheet.MAX_COLUMNS]])
    except csv.Error as exc:
        raise _unreadable("CSV 文件格式有误（引号不成对？）", "The CSV file is malformed (unbalanced quotes?)") from exc
    return Workbook("csv", [RawSheet("CSV", _trim(rows, max_rows=max_rows, header_rows=header_rows))])
