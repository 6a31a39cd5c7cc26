"""A ledger or venue sheet cell holding a character Hulei does not accept (backend/core/text.py) is a
row error naming the row, the column and the code point, and nothing of the file is stored: the
import cannot store what the API refuses, which the exports would then drop (issue 15). Such
characters reach a sheet through a .csv, an .xls (any UTF-16 text) or, for DEL, an .xlsx."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

from backend.ledgers.sheets import HEADERS, Annex
from backend.registry import idnumber
from backend.registry.models import Person
from backend.venues.models import Venue
from tests.registry.factories import make_world
from tests.venues.factories import credit_code, grid_point
from tests.venues.factories import make_world as venue_world
from tests.xlsx_support import xlsx_bytes

A3 = list(HEADERS[Annex.vulnerable_minors])
VENUE_HEADER = ["场所类型", "场所名称", "统一社会信用代码", "地址", "经度", "纬度"]


def _a3(n: int, name: str, *, residence: str = "溪口村") -> list[Any]:
    number = idnumber.make("990101", date(2013, 4, 5), 2 * n + 1)
    return [n, name, number, "男", "示范县", residence, "13800000002", "是", "", "", "", ""]


def _csv(rows: list[list[Any]]) -> bytes:
    return "\n".join(",".join(str(v) for v in row) for row in rows).encode()


def _count(session: Session, model: Any) -> int:
    session.expire_all()
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_a_ledger_cell_with_a_refused_character_is_a_row_error_naming_column_and_code_point(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    files = {
        "ledger.csv": (_csv([A3, _a3(1, "王某"), _a3(2, "李\x01某"), _a3(3, "赵某", residence="溪口\x1f村")]),
                       [(3, "姓名", "U+0001"), (4, "常住地", "U+001F")]),
        "ledger.xlsx": (xlsx_bytes([A3, _a3(1, "王某"), _a3(2, "李\x7f某")]), [(3, "姓名", "U+007F")]),
    }
    for name, (content, expected) in files.items():
        for dry_run in (True, False):
            resp = client.post("/api/v1/ledgers/3/import", params={"dry_run": dry_run}, headers=w.coordinator.headers,
                               files={"file": (name, content)})
            assert resp.status_code in (200, 422), resp.text
            errors = resp.json()["errors"]
            assert [(e["row"], e["column"]) for e in errors] == [(r, c) for r, c, _ in expected], (name, errors)
            for error, (_, _, code) in zip(errors, expected, strict=True):
                assert code in error["reason"] and "不允许的字符" in error["reason"], error
    assert _count(session, Person) == 0


def _venue_sheet(rows: list[list[Any]]) -> bytes:
    return xlsx_bytes([VENUE_HEADER, *rows])


def test_a_venue_cell_with_a_refused_character_is_a_row_error_naming_column_and_code_point(
    client: TestClient, session: Session
) -> None:
    w = venue_world(client, session)
    lon, lat = grid_point((0, 1))
    good = ["网吧", "青山网咖", credit_code(), "青山村1组", lon, lat]
    files = {
        "venues.xlsx": (_venue_sheet([good, ["酒店", "酒店\x7f", credit_code(), "", lon, lat]]), "场所名称", "U+007F"),
        "venues.csv": (_csv([VENUE_HEADER, good, ["酒店", "酒店", credit_code(), "青山\x1f村", lon, lat]]), "地址",
                       "U+001F"),
    }
    for name, (content, column, code) in files.items():
        resp = client.post("/api/v1/venues/import", headers=w.market.headers, files={"file": (name, content)})
        assert resp.status_code == 422, resp.text
        errors = resp.json()["errors"]
        assert [e["row"] for e in errors] == [3], errors
        assert errors[0]["column"] == column and code in errors[0]["reason"], errors
        english = client.post("/api/v1/venues/import", headers={**w.market.headers, "Accept-Language": "en"},
                              files={"file": (name, content)}).json()["errors"]
        assert english[0]["column"] == column and "not accepted" in english[0]["reason"], english
        assert not any("\u4e00" <= c <= "\u9fff" for c in english[0]["reason"]), english
    assert _count(session, Venue) == 0
    # The same file without the character imports, .csv included (the reader of the ledger import).
    clean = _csv([VENUE_HEADER, good, ["酒店", "酒店", credit_code(), "青山村", lon, lat]])
    resp = client.post("/api/v1/venues/import", headers=w.market.headers, files={"file": ("venues.csv", clean)})
    assert resp.status_code == 200, resp.text
    assert _count(session, Venue) == 2
