"""The formats added besides .xlsx keep its protections: an .ods with a DOCTYPE is refused before it is
parsed, and a sheet made to blow up the dense grid calamine builds (a cell at row 1,048,576, column
16,000) is refused with a 4xx while the server keeps answering; nothing is stored."""

from __future__ import annotations

import io
import zipfile

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

from backend.registry.models import Person
from tests.registry.factories import make_world

OFFICE = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"')


def _ods(body: str, prolog: str = '<?xml version="1.0" encoding="UTF-8"?>') -> bytes:
    content = (f'{prolog}<office:document-content {OFFICE} office:version="1.2"><office:body><office:spreadsheet>'
               f'<table:table table:name="附件3">{body}</table:table></office:spreadsheet></office:body>'
               "</office:document-content>")
    manifest = ('<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
                'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
                '<manifest:file-entry manifest:full-path="/" '
                'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
                "</manifest:manifest>")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("META-INF/manifest.xml", manifest)
        z.writestr("content.xml", content)
    return out.getvalue()


def _cell(text: str) -> str:
    return f'<table:table-cell office:value-type="string"><text:p>{text}</text:p></table:table-cell>'


def test_an_ods_with_a_doctype_is_refused_before_it_is_read(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    xxe = '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    content = _ods(f"<table:table-row>{_cell('&x;')}</table:table-row>", prolog=xxe)
    resp = client.post("/api/v1/ledgers/3/import", params={"dry_run": True},
                       headers={**w.coordinator.headers, "Accept-Language": "en"},
                       files={"file": ("a3.ods", content)})
    assert resp.status_code == 422 and "DOCTYPE" in resp.json()["detail"], resp.text
    assert "root:" not in resp.text


def test_a_sheet_that_would_exhaust_memory_is_refused_and_the_server_stays_up(client: TestClient,
                                                                              session: Session) -> None:
    w = make_world(client, session)
    far = ('<table:table-row>' + _cell("序号") + "</table:table-row>"
           '<table:table-row table:number-rows-repeated="1048570"><table:table-cell/></table:table-row>'
           '<table:table-row><table:table-cell table:number-columns-repeated="16000"/>' + _cell("x")
           + "</table:table-row>")
    for dry_run in (True, False):
        resp = client.post("/api/v1/ledgers/3/import", params={"dry_run": dry_run}, headers=w.coordinator.headers,
                           files={"file": ("a3.ods", _ods(far))})
        assert 400 <= resp.status_code < 500, resp.text
        assert resp.json()["code"] in ("import-file-unreadable", "payload-too-large")
    assert client.get("/api/v1/ledgers/3.xlsx", headers=w.coordinator.headers).status_code == 200
    assert session.execute(select(func.count()).select_from(Person)).scalar_one() == 0
