"""Ledger imports are bounded like the venue import: a byte cap checked before parsing, a row cap
(a 100,000-row file is refused at once, naming the cap, instead of checked for 13 s), and an error
list cut at import_max_errors with the total and `errors_truncated` (not 100,000 objects)."""

from __future__ import annotations

import io
import time
import zipfile
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

from backend.core.config import get_settings
from backend.registry.models import Person
from backend.venues.models import Venue
from tests.registry.factories import make_world, xlsx_bytes

ANNEX3 = ["序号", "姓名", "身份证号码", "性别", "户籍地", "常住地", "联系电话", "是否在读", "监护人姓名", "联系电话",
          "专班人员及联系方式", "帮扶措施"]
NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def _with_sheet(rows: int, *, dimension: str | None) -> bytes:
    """附件3 with `rows` data rows written straight as sheet XML (openpyxl would take a minute),
    declaring `dimension` (None: no dimension element, as some tools write)."""
    base = zipfile.ZipFile(io.BytesIO(xlsx_bytes([ANNEX3])))
    cells = "".join(f'<c r="{chr(65 + i)}1" t="inlineStr"><is><t>{h}</t></is></c>' for i, h in enumerate(ANNEX3))
    body = [f'<row r="1">{cells}</row>']
    body += [f'<row r="{r}"><c r="A{r}"><v>{r - 1}</v></c><c r="B{r}" t="inlineStr"><is><t>某{r}</t></is></c>'
             f'<c r="C{r}" t="inlineStr"><is><t>11010520120304001{r % 10}</t></is></c></row>'
             for r in range(2, rows + 2)]
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    sheet = (f'<?xml version="1.0" encoding="UTF-8"?><worksheet {NS}>{dim}<sheetData>{"".join(body)}</sheetData>'
             "</worksheet>")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in base.infolist():
            data = sheet.encode() if info.filename == "xl/worksheets/sheet1.xml" else base.read(info.filename)
            z.writestr(info.filename, data)
    return out.getvalue()


def _post(client: TestClient, headers: dict[str, str], content: bytes, *, dry_run: bool = True) -> Any:
    return client.post("/api/v1/ledgers/3/import", params={"dry_run": dry_run},
                       headers={**headers, "Accept-Language": "en"}, files={"file": ("a3.xlsx", content)})


def _bad_rows(n: int) -> list[list[Any]]:
    return [[i + 1, f"某{i}", "123", "男", "", "", "", "也许", "", "", "", ""] for i in range(n)]


def test_a_90000_row_ledger_is_refused_at_once_naming_the_cap(client: TestClient, session: Session) -> None:
    # Under the workbook's element bounds (backend/core/spreadsheet.py; a file beyond them is refused
    # before its dimension is read: tests/core/test_hostile_xlsx.py), so the row cap is what refuses it.
    w = make_world(client, session)
    content = _with_sheet(90_000, dimension="A1:L90001")
    started = time.monotonic()
    resp = _post(client, w.coordinator.headers, content)
    elapsed = time.monotonic() - started
    assert resp.status_code == 422, resp.text[:300]
    problem = resp.json()
    assert problem["code"] == "import-file-unreadable"
    assert problem["limit_rows"] == 20000 and "20000" in problem["detail"]
    assert elapsed < 5, elapsed  # from the declared dimension, not by checking 100,000 rows
    assert session.execute(select(func.count()).select_from(Person)).scalar_one() == 0


def test_rows_beyond_the_cap_are_found_when_the_sheet_declares_no_dimension(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HULEI_LEDGER_IMPORT_MAX_ROWS", "50")
    get_settings.cache_clear()
    w = make_world(client, session)
    for dimension in (None, "A1:L2"):  # absent, or understating the sheet
        resp = _post(client, w.coordinator.headers, _with_sheet(51, dimension=dimension), dry_run=False)
        assert resp.status_code == 422 and resp.json()["limit_rows"] == 50, resp.text[:300]
    at_cap = _post(client, w.coordinator.headers, _with_sheet(50, dimension=None))
    assert at_cap.status_code == 200 and at_cap.json()["rows"] == 50


def test_a_ledger_over_the_byte_cap_is_refused_before_it_is_read(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HULEI_LEDGER_IMPORT_MAX_BYTES", "4096")
    get_settings.cache_clear()
    w = make_world(client, session)
    content = xlsx_bytes([ANNEX3, *_bad_rows(300)])
    assert len(content) > 4096
    for dry_run in (True, False):
        resp = _post(client, w.coordinator.headers, content, dry_run=dry_run)
        assert resp.status_code == 413 and resp.json()["code"] == "payload-too-large"
        assert resp.json()["limit_bytes"] == 4096


def test_the_error_list_is_cut_at_the_cap_with_its_total(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    content = xlsx_bytes([ANNEX3, *_bad_rows(250)])  # each row: a bad ID number and a bad 是否在读
    dry = _post(client, w.coordinator.headers, content)
    assert dry.status_code == 200
    report = dry.json()
    assert report["ok"] is False and report["rows"] == 250
    assert len(report["errors"]) == 200 and report["errors_truncated"] is True
    assert report["errors_total"] == 500
    real = _post(client, w.coordinator.headers, content, dry_run=False)
    assert real.status_code == 422
    problem = real.json()
    assert len(problem["errors"]) == 200 and problem["errors_total"] == 500 and problem["errors_truncated"] is True
    assert session.execute(select(func.count()).select_from(Person)).scalar_one() == 0


def test_a_short_error_list_is_whole_and_says_so(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    report = _post(client, w.coordinator.headers, xlsx_bytes([ANNEX3, *_bad_rows(2)])).json()
    assert (len(report["errors"]), report["errors_total"], report["errors_truncated"]) == (4, 4, False)


def test_the_venue_import_cuts_its_error_list_too(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    rows = [["场所类型", "场所名称", "统一社会信用代码"]] + [["KTV", f"K{i}", f"BAD{i}"] for i in range(230)]
    resp = client.post("/api/v1/venues/import", headers=w.market.headers,
                       files={"file": ("venues.xlsx", xlsx_bytes(rows), "application/octet-stream")})
    assert resp.status_code == 422
    problem = resp.json()
    assert len(problem["errors"]) == 200 and problem["errors_total"] == 230 and problem["errors_truncated"] is True
    assert session.execute(select(func.count()).select_from(Venue)).scalar_one() == 0
