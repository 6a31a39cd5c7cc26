"""Workbooks in tests, both ways: reading what the API answers (a workbook, or a sheet's rows, from the
bytes of a response) and making what a clerk uploads (openpyxl plays the spreadsheet program)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.worksheet.worksheet import Worksheet

Row = list[Any] | tuple[Any, ...]


def read_workbook(content: bytes, **options: Any) -> Workbook:
    """The workbook held in `content` (options as openpyxl's load_workbook takes them, e.g. read_only)."""
    return load_workbook(io.BytesIO(content), **options)


def sheet_rows(content: bytes, sheet: int | str = 0) -> list[tuple[Any, ...]]:
    """The cell values of one sheet of the workbook in `content`, row by row; the sheet by position
    (the first by default: every workbook we write opens on it) or by title."""
    book = read_workbook(content)
    ws = book.worksheets[sheet] if isinstance(sheet, int) else book[sheet]
    return list(ws.iter_rows(values_only=True))


def new_sheet(rows: Iterable[Row] = ()) -> tuple[Workbook, Worksheet]:
    """A new workbook and its one sheet holding `rows` as typed, for a test to shape further (hide a
    row, merge a title, add sheets) before `saved`."""
    wb = Workbook()
    ws = wb.active
    assert isinstance(ws, Worksheet)
    for row in rows:
        ws.append(row)
    return wb, ws


def saved(wb: Workbook) -> bytes:
    """The .xlsx file of `wb`, as an upload sends it."""
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def xlsx_bytes(rows: Iterable[Row]) -> bytes:
    """A one-sheet .xlsx holding `rows` as typed (a clerk's file as a test writes it)."""
    wb, _ = new_sheet(rows)
    return saved(wb)
