"""Uploaded spreadsheets, before any XML of them is parsed: the zip and XML checks that refuse a
hostile file with a 4xx, the byte cap of an upload, and the refusals every import shares. The one
reader of uploaded workbooks (ledgers and venues alike) is backend/ledgers/reading.py, which runs
these checks first; every .xlsx the service writes goes through backend/core/workbook.py.

An .xlsx is a zip of XML parts. A file someone made by hand can be a zip bomb (a sheet that
decompresses to gigabytes), carry a DOCTYPE with external entities (file:///etc/passwd) or nested
entities (billion laughs), declare a sheet of a million rows by sixteen thousand columns, or be
something else altogether (an old .xls, a password-protected workbook, a zip without a workbook).
`check_archive` checks the zip directory (sizes as declared there bound what zipfile will ever
inflate), the prolog of every XML part, and how many rows, cells and shared strings the sheets hold
(counted in the bytes: a small file of millions of empty elements costs a parser gigabytes) before
openpyxl sees the file, and openpyxl itself parses through defusedxml (a dependency: openpyxl uses it
whenever it is importable). Every refusal is 422
`import-file-unreadable` or 413 `payload-too-large`, naming the limit.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any, BinaryIO

from backend.core.config import get_settings
from backend.core.errors import InvalidInput, PayloadTooLarge

# What an uploaded workbook may expand to, in all its parts together, and how many parts it may have.
# A 20,000-row ledger of 15 columns is about 15 MB of XML.
MAX_EXPANDED_BYTES = 128 * 1024 * 1024
MAX_PARTS = 1000
# The columns read from a sheet (the ledgers have at most 15); a sheet declaring more is refused.
MAX_COLUMNS = 64
# An XML part's prolog (declaration, comments) must end within this many bytes.
_PROLOG_BYTES = 64 * 1024
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# What a workbook may hold in elements and attributes: a parser builds an object for each, so a few
# hundred kilobytes of `<row/>`, `<si/>`, `<xf/>` or `<mergeCell>` repeated, or one tag with a million
# attributes (all well under the size bound), cost gigabytes and minutes. A 20,000-row ledger of 15
# columns has 20,000 rows, 300,000 cells (about a million elements and attributes) and at most as many
# distinct strings; the other parts (styles, workbook, relations) hold thousands, not millions.
MAX_ROW_ELEMENTS = 100_000
MAX_CELL_ELEMENTS = 1_000_000
MAX_SHARED_STRINGS = 400_000
MAX_MERGED_RANGES = 50_000
MAX_SHEET_ELEMENTS = 3_000_000  # every sheet together
MAX_SHEET_ATTRIBUTES = 4_000_000
MAX_STRINGS_ELEMENTS = 1_500_000  # the shared strings, rich text included
MAX_OTHER_ELEMENTS = 200_000  # every other part together
MAX_ATTRIBUTES_PER_ELEMENT = 1_000
# A start tag (its local name in group 1) or an attribute's `="` / `='`.
_MARKUP = re.compile(rb"<(?:[A-Za-z_][\w.-]{0,30}:)?([A-Za-z_][\w.-]{0,40})|=\s{0,8}[\"']")
_WORKSHEET = re.compile(r"xl/worksheets/[^/]+\.xml")
_SHARED_STRINGS = "xl/sharedStrings.xml"
_SCAN_CHUNK = 1024 * 1024
_SCAN_CARRY = 96
_ENCODINGS = {"utf-8", "utf8", "utf-16", "utf16", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1"}
_ENCODING = re.compile(r"""encoding\s*=\s*["']([^"']*)["']""")


class ImportFileUnreadable(InvalidInput):
    code = "import-file-unreadable"
    title_zh = "无法读取导入文件"
    title_en = "The import file cannot be read"


def capped_errors(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """An import's problems as answered: the first `import_max_errors` of them, their total, and
    whether the list was cut (a file of 20,000 bad rows is not answered with 100,000 objects)."""
    cap = get_settings().import_max_errors
    return {"errors": errors[:cap], "errors_total": len(errors), "errors_truncated": len(errors) > cap}


def read_upload(stream: BinaryIO, max_bytes: int) -> bytes:
    """An uploaded file's bytes, refused with 413 (naming the limit) beyond `max_bytes`."""
    content = stream.read(max_bytes + 1)
    if len(content) > max_bytes:
        mb = max_bytes / (1024 * 1024)
        raise PayloadTooLarge(f"导入文件不能超过 {mb:g} MB", f"The import file may not exceed {mb:g} MB",
                              limit_bytes=max_bytes)
    return content


def _unreadable(zh: str, en: str, **extensions: Any) -> ImportFileUnreadable:
    return ImportFileUnreadable(zh, en, **extensions)


def _check_prolog(name: str, head: bytes) -> None:
    """Refuse an XML part whose prolog holds a DOCTYPE (entities live there) or an unusual encoding."""
    if head.startswith((b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00", b"\x00\x00\x00<", b"<\x00\x00\x00")):
        raise _unreadable(f"文件部件 {name} 的编码不受支持", f"part {name} uses an unsupported encoding (UTF-32)")
    if head.startswith((b"\xff\xfe", b"<\x00?\x00")):
        text = head.decode("utf-16-le", errors="replace")
    elif head.startswith((b"\xfe\xff", b"\x00<\x00?")):
        text = head.decode("utf-16-be", errors="replace")
    else:
        text = head.decode("latin-1")  # ASCII-compatible: the markup looked for is ASCII
    if text.startswith("\u00ef\u00bb\u00bf"):
        text = text[3:]
    text = text.lstrip("\ufeff")
    position = 0
    while True:
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        rest = text[position:]
        if rest.startswith("<?"):
            end, close = rest.find("?>"), 2
            match = _ENCODING.search(rest[: end if end >= 0 else len(rest)])
            if match and match.group(1).strip().lower() not in _ENCODINGS:
                raise _unreadable(f"文件部件 {name} 的编码 {match.group(1)[:20]} 不受支持",
                                  f"part {name} declares the unsupported encoding {match.group(1)[:20]}")
        elif rest.startswith("<!--"):
            end, close = rest.find("-->"), 3
        elif rest.startswith("<!"):
            raise _unreadable("文件含有 DOCTYPE 或实体声明，已拒绝（请用 Excel/WPS 另存为 .xlsx 后重试）",
                              f"part {name} carries a DOCTYPE or entity declarations; refused "
                              "(save it again as .xlsx from Excel or WPS)")
        elif rest:
            return  # the root element (or not XML at all): the prolog is clean
        else:
            end, close = -1, 0
        if end < 0:
            # The part ends inside its prolog: padded to hide what follows (refused), or malformed
            # (openpyxl refuses it).
            if len(head) >= _PROLOG_BYTES:
                raise _unreadable(f"文件部件 {name} 的 XML 声明过长", f"part {name} has an oversized XML prolog")
            return
        position += end + close


def check_archive(content: bytes, *, required: tuple[str, ...] = ("[Content_Types].xml", "_rels/.rels")) -> None:
    """The zip checks (sizes, parts, password flags, every XML prolog, element counts) for any zip-based
    spreadsheet; `required` names the parts its format must have (an .ods: mimetype, content.xml)."""
    _check_archive(content, required=required)


def _check_archive(content: bytes, *, required: tuple[str, ...] = ("[Content_Types].xml", "_rels/.rels")) -> None:
    if content.startswith(_OLE_MAGIC):
        raise _unreadable("文件是旧版 .xls 或已设置密码，请用 Excel/WPS 另存为不加密的 .xlsx 后重试",
                          "The file is an old .xls or is password-protected; save it as an unencrypted .xlsx")
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise _unreadable("文件不是有效的 .xlsx", f"not a valid .xlsx file ({type(exc).__name__})") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_PARTS:
            raise _unreadable(f"文件部件超过 {MAX_PARTS} 个", f"the file has more than {MAX_PARTS} parts")
        names = {info.filename for info in infos}
        if any(part not in names for part in required):
            raise _unreadable("文件中没有工作簿，不是有效的 .xlsx", "the zip holds no workbook: not a valid .xlsx")
        expanded = sum(info.file_size for info in infos)
        if expanded > MAX_EXPANDED_BYTES:
            mb = MAX_EXPANDED_BYTES // (1024 * 1024)
            raise PayloadTooLarge(f"文件解压后超过 {mb} MB，已拒绝", f"The file expands beyond {mb} MB; refused",
                                  limit_bytes=MAX_EXPANDED_BYTES)
        for info in infos:
            if info.flag_bits & 0x1:
                raise _unreadable("文件已设置密码，请另存为不加密的 .xlsx", "the file is password-protected")
            if info.is_dir() or info.filename.startswith("xl/media/"):
                continue
            try:
                with archive.open(info) as part:
                    head = part.read(_PROLOG_BYTES)
            except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, RuntimeError) as exc:
                raise _unreadable("文件已损坏，不是有效的 .xlsx",
                                  f"the part {info.filename[:80]} cannot be read ({type(exc).__name__})") from exc
            _check_prolog(info.filename[:80], head)
        _check_elements(archive, infos)


def _check_elements(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
    """Count the elements and attributes of every XML part by scanning it as bytes (no parser, one
    pass, stopping at the first bound passed) and refuse a workbook holding more than the bounds."""
    counts: dict[str, int] = {}

    def over(what: str, bound: int, zh: str, en: str) -> None:
        counts[what] = counts.get(what, 0) + 1
        if counts[what] > bound:
            raise _unreadable(f"文件中的{zh}超过 {bound:,} 个，请删除空行、多余格式或分成几个文件导入",
                              f"The workbook holds more than {bound:,} {en}; delete empty rows or "
                              "unused formatting, or split the file", limit_elements=bound)

    named = {b"row": (MAX_ROW_ELEMENTS, "行", "rows"), b"c": (MAX_CELL_ELEMENTS, "单元格", "cells"),
             b"si": (MAX_SHARED_STRINGS, "不同文字", "distinct strings"),
             b"mergeCell": (MAX_MERGED_RANGES, "合并单元格", "merged ranges")}
    for info in infos:
        if info.is_dir() or info.filename.startswith("xl/media/"):
            continue
        sheet = bool(_WORKSHEET.fullmatch(info.filename))
        strings = info.filename == _SHARED_STRINGS
        part = ("sheet", MAX_SHEET_ELEMENTS) if sheet else ("strings", MAX_STRINGS_ELEMENTS) if strings else (
            "other", MAX_OTHER_ELEMENTS)
        attribute_bound = MAX_SHEET_ATTRIBUTES if sheet else MAX_STRINGS_ELEMENTS if strings else 2 * MAX_OTHER_ELEMENTS
        in_tag = 0  # attributes since the last start tag
        with archive.open(info) as stream:
            carry = b""
            while True:
                chunk = stream.read(_SCAN_CHUNK)
                buffer = carry + chunk
                # Markup starting in the last _SCAN_CARRY bytes may be cut by the chunk's end: it is
                # carried into the next round and counted there (a match is shorter than the carry).
                end = len(buffer) - _SCAN_CARRY if chunk else len(buffer)
                for match in _MARKUP.finditer(buffer):
                    if match.start() >= end:
                        break
                    name = match.group(1)
                    if name is None:
                        in_tag += 1
                        if in_tag > MAX_ATTRIBUTES_PER_ELEMENT:
                            bound = MAX_ATTRIBUTES_PER_ELEMENT
                            raise _unreadable(f"文件中有元素的属性超过 {bound:,} 个，不是正常的表格",
                                              f"An element of the workbook has more than {bound:,} attributes; "
                                              "not a normal sheet", limit_elements=bound)
                        over(part[0] + "@", attribute_bound, "属性", "attributes")
                        continue
                    in_tag = 0
                    over(part[0], part[1], "元素", "elements")
                    if (sheet or strings) and name in named:
                        over(name.decode(), *named[name])
                if not chunk:
                    break
                carry = buffer[max(end, 0):]


def too_many_rows(max_rows: int, found_zh: str, found_en: str) -> ImportFileUnreadable:
    """The refusal of a sheet with more than `max_rows` rows of data; `found` says what was seen."""
    return _unreadable(f"数据行超过 {max_rows} 行（{found_zh}），请分成几个文件导入",
                       f"More than {max_rows} rows of data ({found_en}); split the file", limit_rows=max_rows)
