"""A hand-made .xlsx never reaches a server error: both importers (the 附件1/2/3 ledgers, dry run and
real, and the venue ledger) refuse every file of a corpus of hostile workbooks with a 4xx
problem+json, store nothing, and never echo a local file an entity points at.

The corpus is built here from a real workbook written by openpyxl, with parts replaced or added: a
DOCTYPE with an external entity on file:///etc/passwd (in the sheet, the shared strings, the
workbook, the content types; in UTF-8, in UTF-16, behind a long comment), billion laughs, a sheet
that inflates past the expansion cap (a zip bomb), a declared dimension of a million rows or
sixteen thousand columns, an old .xls / password-protected OLE file, a zip with no workbook, a
password flag on a part, plain text, malformed XML."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl.xml
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

from backend.core.spreadsheet import MAX_EXPANDED_BYTES
from backend.registry.models import Person, RiskPerson
from backend.venues.models import Venue
from tests.registry.factories import World, make_world
from tests.xlsx_support import xlsx_bytes

SHEET = "xl/worksheets/sheet1.xml"
STRINGS = "xl/sharedStrings.xml"
NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
XXE = '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE worksheet [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
          + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
          + "]>\n")
PASSWD_MARKERS = ("root:x:0:0", "/bin/bash", "/usr/sbin/nologin", "daemon:")


def _base(rows: int = 3) -> bytes:
    return xlsx_bytes([["序号", "姓名", "统一社会信用代码"], *([n + 1, f"名称{n}", "文本"] for n in range(rows))])


def _replace(parts: dict[str, bytes | None], *, base: bytes | None = None) -> bytes:
    """The base workbook with `parts` replaced or added (None removes a part)."""
    source = zipfile.ZipFile(io.BytesIO(base or _base()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename in parts:
                continue
            target.writestr(info.filename, source.read(info.filename))
        for name, data in parts.items():
            if data is not None:
                target.writestr(name, data)
    return out.getvalue()


def _sheet(body: str, prolog: str = '<?xml version="1.0" encoding="UTF-8"?>\n', dimension: str = "A1:C4") -> bytes:
    return (f'{prolog}<worksheet {NS}><dimension ref="{dimension}"/><sheetData>{body}</sheetData></worksheet>'
            ).encode()


def _inline_row(r: int, text: str) -> str:
    return f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>{text}</t></is></c></row>'


def _zip_bomb() -> bytes:
    """A sheet that deflates to a few hundred KB and inflates past the expansion cap."""
    out = io.BytesIO()
    source = zipfile.ZipFile(io.BytesIO(_base()))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename != SHEET:
                target.writestr(info.filename, source.read(info.filename))
        with target.open(SHEET, "w", force_zip64=True) as part:
            part.write(f'<?xml version="1.0"?><worksheet {NS}><sheetData><row r="1">'.encode())
            block = b" " * (1 << 20)
            for _ in range(MAX_EXPANDED_BYTES // len(block) + 8):
                part.write(block)
            part.write(b"</row></sheetData></worksheet>")
    return out.getvalue()


def _password_flag() -> bytes:
    """A workbook whose sheet part is marked encrypted (general purpose bit 0) in the zip directory."""
    data = bytearray(_base())
    name = SHEET.encode()
    for signature, flag_offset, name_offset in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        at = data.find(signature)
        while at >= 0:
            if data[at + name_offset: at + name_offset + len(name)] == name:
                data[at + flag_offset] |= 0x01
            at = data.find(signature, at + 4)
    return bytes(data)


CORPUS: dict[str, Callable[[], bytes]] = {
    "xxe in the sheet": lambda: _replace({SHEET: _sheet(_inline_row(1, "&xxe;"), prolog=XXE)}),
    "xxe in the shared strings": lambda: _replace({STRINGS: (
        XXE.replace("worksheet", "sst") + f'<sst {NS} count="1"><si><t>&xxe;</t></si></sst>').encode()}),
    "xxe in the workbook": lambda: _replace({"xl/workbook.xml": (
        XXE.replace("worksheet", "workbook") + f"<workbook {NS}><sheets>&xxe;</sheets></workbook>").encode()}),
    "xxe in the content types": lambda: _replace({"[Content_Types].xml": (
        XXE.replace("worksheet", "Types")
        + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">&xxe;</Types>').encode()}),
    "xxe in UTF-16": lambda: _replace({SHEET: _sheet(_inline_row(1, "&xxe;"), prolog=XXE.replace(
        "UTF-8", "UTF-16")).decode().encode("utf-16")}),
    "xxe behind a long comment": lambda: _replace({SHEET: _sheet(_inline_row(1, "&xxe;"), prolog=(
        '<?xml version="1.0"?>\n<!--' + "x" * 70_000 + "-->\n" + XXE.split("\n", 1)[1]))}),
    "xxe behind padding": lambda: _replace({SHEET: _sheet(_inline_row(1, "&xxe;"), prolog=(
        '<?xml version="1.0"?>' + " " * 70_000 + XXE.split("\n", 1)[1]))}),
    "parameter entity": lambda: _replace({SHEET: _sheet(_inline_row(1, "x"), prolog=(
        '<?xml version="1.0"?><!DOCTYPE w [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'))}),
    "utf-7 declaration": lambda: _replace({SHEET: _sheet(_inline_row(1, "x"), prolog=(
        '<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE w+AD4-'))}),
    "billion laughs in the sheet": lambda: _replace({SHEET: _sheet(_inline_row(1, "&lol9;"), prolog=LAUGHS)}),
    "billion laughs in the shared strings": lambda: _replace({STRINGS: (
        LAUGHS + f'<sst {NS} count="1" uniqueCount="1"><si><t>&lol9;</t></si></sst>').encode()}),
    "zip bomb": _zip_bomb,
    "a million declared rows": lambda: _replace({SHEET: _sheet(_inline_row(1, "x"), dimension="A1:C1048576")}),
    "sixteen thousand declared columns": lambda: _replace({SHEET: _sheet(_inline_row(1, "x"), dimension="A1:XFD3")}),
    "malformed sheet xml": lambda: _replace({SHEET: b'<?xml version="1.0"?><worksheet><sheetData><row r="1"><c'}),
    "sheet missing": lambda: _replace({SHEET: None}),
    "zip without a workbook": lambda: _replace({"xl/workbook.xml": None}),
    "a plain zip": lambda: _replace({}, base=_plain_zip()),
    "old .xls or password-protected (OLE)": lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 4096,
    "password flag on a part": _password_flag,
    "not a zip": lambda: "序号,姓名\n1,张三\n".encode(),
    "empty file": lambda: b"",
    "truncated zip": lambda: _base()[:700],
    # Small files under every size bound whose elements a parser turns into millions of objects.
    "two hundred thousand empty rows": lambda: _replace({SHEET: _sheet(_inline_row(1, "x") + "<row/>" * 200_000)}),
    "empty rows behind a namespace prefix": lambda: _replace({SHEET: (
        '<?xml version="1.0"?><x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        "<x:sheetData>" + "<x:row/>" * 200_000 + "</x:sheetData></x:worksheet>").encode()}),
    "half a million empty shared strings": lambda: _replace({STRINGS: (
        f'<?xml version="1.0"?><sst {NS}>' + "<si/>" * 500_000 + "</sst>").encode()}),
    "a million cells in one row": lambda: _replace({SHEET: _sheet('<row r="1">' + "<c/>" * 1_100_000 + "</row>")}),
    "a million attributes on one row": lambda: _replace({SHEET: _sheet(
        '<row r="1" ' + " ".join(f'a{i}=""' for i in range(1_000_000)) + "/>")}),
    "half a million cell formats": lambda: _replace({"xl/styles.xml": (
        f'<?xml version="1.0"?><styleSheet {NS}><fonts count="1"><font/></fonts><fills count="1"><fill/></fills>'
        '<borders count="1"><border/></borders><cellXfs count="1">' + "<xf/>" * 500_000
        + "</cellXfs></styleSheet>").encode()}),
    "a hundred thousand merged ranges": lambda: _replace({SHEET: _sheet(
        _inline_row(1, "x"), dimension="A1:C4").replace(b"</worksheet>", (
            "<mergeCells>" + "".join(f'<mergeCell ref="A{i}:B{i}"/>' for i in range(1, 100_001))
            + "</mergeCells></worksheet>").encode())}),
    "a quarter million defined names": lambda: _replace({"xl/workbook.xml": (
        f'<?xml version="1.0"?><workbook {NS} xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships"><sheets><sheet name="Sheet" sheetId="1" r:id="rId1"/></sheets><definedNames>'
        + "".join(f'<definedName name="n{i}">1</definedName>' for i in range(250_000))
        + "</definedNames></workbook>").encode()}),
}


def _plain_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("readme.txt", "hello")
    return out.getvalue()


@pytest.fixture(scope="module")
def corpus() -> dict[str, bytes]:
    return {name: make() for name, make in CORPUS.items()}


def _targets(w: World) -> list[tuple[str, dict[str, str], dict[str, str]]]:
    ledgers = [(f"/api/v1/ledgers/{annex}/import", {"dry_run": dry}, who.headers)
               for annex, who in (("1", w.coordinator), ("2", w.police), ("3", w.coordinator))
               for dry in ("true", "false")]
    return [*ledgers, ("/api/v1/venues/import", {}, w.market.headers)]


def _spread(names: list[str], w: World) -> list[tuple[str, tuple[str, dict[str, str], dict[str, str]]]]:
    """Each file to one import endpoint in turn, and the first file to every one of them: every
    endpoint meets several hostile files and every file one endpoint (they share one reader; sending
    each file everywhere took half a minute and found nothing more)."""
    targets = _targets(w)
    pairs = [(name, targets[n % len(targets)]) for n, name in enumerate(names)]
    return pairs + [(names[0], target) for target in targets[1:]]


def test_openpyxl_parses_through_defusedxml() -> None:
    assert openpyxl.xml.DEFUSEDXML is True


def test_every_hostile_workbook_is_refused_with_a_4xx_and_nothing_is_stored(
    client: TestClient, session: Session, corpus: dict[str, bytes]
) -> None:
    w = make_world(client, session)
    failures = []
    for name, (path, params, headers) in _spread(list(corpus), w):
        content = corpus[name]
        resp = client.post(path, params=params, headers=headers,
                           files={"file": ("ledger.xlsx", content, "application/octet-stream")})
        text = resp.text
        if not 400 <= resp.status_code < 500 or resp.headers["content-type"] != "application/problem+json":
            failures.append(f"{name} at {path} {params}: {resp.status_code} {text[:200]}")
        elif any(marker in text for marker in PASSWD_MARKERS):
            failures.append(f"{name} at {path} {params}: the answer shows /etc/passwd")
        elif resp.json()["code"] not in ("import-file-unreadable", "payload-too-large"):
            failures.append(f"{name} at {path} {params}: code {resp.json()['code']}")
    assert not failures, "\n".join(failures)
    for model in (Person, RiskPerson, Venue):
        assert session.execute(select(func.count()).select_from(model)).scalar_one() == 0


ELEMENT_BOMBS = ("two hundred thousand empty rows", "empty rows behind a namespace prefix",
                 "half a million empty shared strings", "a million cells in one row",
                 "a million attributes on one row", "half a million cell formats",
                 "a hundred thousand merged ranges", "a quarter million defined names")


def test_a_workbook_of_millions_of_empty_elements_is_refused_at_once(client: TestClient, session: Session,
                                                                     corpus: dict[str, bytes]) -> None:
    """A few hundred kilobytes of `<row/>` or `<si/>` once cost an importer gigabytes and minutes; the
    elements are counted before any parser sees them."""
    w = make_world(client, session)
    for name in ELEMENT_BOMBS:
        assert len(corpus[name]) < 3_000_000, name  # well under the 10 MB upload bound
    for name, (path, params, headers) in _spread(list(ELEMENT_BOMBS), w):
        started = time.perf_counter()
        resp = client.post(path, params=params, headers={**headers, "Accept-Language": "en"},
                           files={"file": ("ledger.xlsx", corpus[name], "application/octet-stream")})
        detail = resp.json()["detail"]
        assert resp.status_code == 422 and ("The workbook holds more than" in detail
                                            or "attributes; not a normal sheet" in detail), (
            name, path, resp.status_code, resp.text[:300])
        assert time.perf_counter() - started < 3, (name, path)


def test_the_refusal_says_why_in_the_callers_language(client: TestClient, session: Session,
                                                     corpus: dict[str, bytes]) -> None:
    w = make_world(client, session)
    for name, words in (("xxe in the sheet", "DOCTYPE"), ("zip bomb", "expands beyond"),
                        ("old .xls or password-protected (OLE)", "password-protected"),
                        ("a million declared rows", "1048576 rows")):
        resp = client.post("/api/v1/ledgers/1/import", params={"dry_run": "true"},
                           headers={**w.coordinator.headers, "Accept-Language": "en"},
                           files={"file": ("a1.xlsx", corpus[name])})
        assert words in resp.json()["detail"], (name, resp.json())


def test_a_real_workbook_still_imports_after_the_checks(tmp_path: Path, client: TestClient,
                                                       session: Session) -> None:
    """The checks refuse what is hostile, not what Excel and openpyxl write."""
    w = make_world(client, session)
    resp = client.post("/api/v1/ledgers/1/import", params={"dry_run": "true"}, headers=w.coordinator.headers,
                       files={"file": ("a1.xlsx", _base())})
    assert resp.status_code == 200, resp.text
    assert resp.json()["errors"][0]["row"] == 1  # the header is not 附件1's: an ordinary report
