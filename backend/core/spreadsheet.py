""".xlsx rows from stored values: whatever text the API accepted must still export."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE


def xlsx_row(values: Iterable[Any]) -> list[Any]:
    """`values` ready for a worksheet row: control characters, which XML cannot hold and openpyxl
    refuses (one such name would otherwise fail the whole export), are dropped from text."""
    return [ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str) else value for value in values]
