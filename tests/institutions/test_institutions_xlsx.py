"""The register's .xlsx: an export re-imported changes nothing, a dry run writes nothing, a bad file
writes nothing and names every bad row, text that looks like a formula stays text."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session, col

from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.demo.town import DemoTown
from backend.institutions import demo
from backend.institutions.models import Institution
from backend.venues.demo import demo_venues
from tests.factories import make_town, make_user
from tests.institutions.factories import make_institution
from tests.notifications.factories import headers_for
from tests.xlsx_support import sheet_rows, xlsx_bytes

API = "/api/v1"
HEADER = ["编号", "单位名称", "单位类型", "所属单位编码", "主管部门", "地址", "在校学生数", "是否在用"]


def book(rows: list[list[Any]], header: list[str] = HEADER) -> bytes:
    """A hand-made workbook (a clerk's file, not ours): openpyxl here plays the spreadsheet program."""
    return xlsx_bytes([header, *rows])


def _import(client: TestClient, h: dict[str, str], content: bytes, **params: Any) -> Any:
    return client.post(f"{API}/institutions/import", headers=h, params=params,
                       files={"file": ("institutions.xlsx", content)})


def _count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(Institution)).scalar_one())


def test_an_exported_register_imported_again_changes_nothing(client: TestClient, session: Session) -> None:
    town = make_town(session)
    h = headers_for(session, make_user(session, town.town, Role.coordinator))
    make_institution(session, town.villages[0].id or 0, name="=HYPERLINK(\"http://x\",\"点我\")")
    make_institution(session, town.town.id or 0, name="护蕾镇中学")
    exported = client.get(f"{API}/institutions/export.xlsx", headers=h)
    assert exported.status_code == 200
    with zipfile.ZipFile(io.BytesIO(exported.content)) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet  # the formula-like name is a string cell, never a formula
    cells = [list(r) for r in sheet_rows(exported.content)]
    assert cells[0] == HEADER and cells[1][1] == "=HYPERLINK(\"http://x\",\"点我\")"
    again = _import(client, h, exported.content)
    assert again.status_code == 200, again.text
    assert again.json() == {"dry_run": False, "created": 0, "updated": 0, "unchanged": 2}


def test_a_dry_run_counts_and_writes_nothing_then_the_import_writes(client: TestClient, session: Session) -> None:
    town = make_town(session)
    h = headers_for(session, make_user(session, town.town, Role.coordinator))
    content = book([[None, "青山幼儿园", "幼儿园", town.villages[0].code, None, "青山村", 80, "是"],
                    [None, "溪口网吧", "网咖", town.villages[1].code, "文旅", None, None, None]])
    dry = _import(client, h, content, dry_run="true")
    assert dry.status_code == 200 and dry.json()["created"] == 2 and _count(session) == 0
    done = _import(client, h, content)
    assert done.json()["created"] == 2 and _count(session) == 2
    cafe = session.execute(select(Institution).where(col(Institution.name) == "溪口网吧")).scalar_one()
    assert (cafe.kind, cafe.supervising_agency) == ("internet_cafe", "culture_tourism")
    assert _import(client, h, content).json()["unchanged"] == 2  # named by unit and name: not doubled
    audited = session.execute(select(col(AuditEntry.details)).where(
        col(AuditEntry.action) == "institution.import")).scalars().all()
    assert [d["dry_run"] for d in audited] == [True, False, False]


def test_a_file_with_bad_rows_writes_nothing_and_names_each_row(client: TestClient, session: Session) -> None:
    town = make_town(session)
    # A village coordinator: the second village is not its own.
    h = headers_for(session, make_user(session, town.villages[0], Role.coordinator))
    content = book([
        [None, "好学校", "小学", town.villages[0].code, None, None, 100, None],
        [None, "坏类型", "游乐场", town.villages[0].code, None, None, None, None],
        [None, "外村学校", "小学", town.villages[1].code, None, None, None, None],
        [None, "好学校", "小学", town.villages[0].code, None, None, None, None],
        [None, "负数学校", "小学", town.villages[0].code, None, None, -3, None],
        [None, "带\u202e控制符", "小学", town.villages[0].code, None, None, None, None],
        ["abc", "编号错", "小学", town.villages[0].code, None, None, None, None],
    ])
    resp = _import(client, h, content, headers={"Accept-Language": "zh-CN"})
    assert resp.status_code == 422, resp.text
    rows = [(e["row"], e["column"]) for e in resp.json()["errors"]]
    assert rows == [(3, "单位类型"), (4, "所属单位编码"), (5, "单位名称"), (6, "在校学生数"), (7, "单位名称"),
                    (8, "编号")]
    assert _count(session) == 0


def test_a_wrong_or_repeated_header_is_refused_before_any_row(client: TestClient, session: Session) -> None:
    town = make_town(session)
    h = headers_for(session, make_user(session, town.town, Role.coordinator))
    misspelt = _import(client, h, book([[None, "x", "小学", town.villages[0].code]],
                                       header=["编号", "单位名", "单位类型", "所属单位编码"]))
    assert misspelt.status_code == 422 and misspelt.json()["code"] == "import-file-unreadable"
    doubled = _import(client, h, book([], header=["单位名称", "单位类型", "所属单位编码", "单位名称"]))
    assert doubled.status_code == 422 and doubled.json()["code"] == "import-file-unreadable"
    not_xlsx = _import(client, h, b"PK\x03\x04 not really a zip")
    assert not_xlsx.status_code == 422


def test_an_id_outside_the_jurisdiction_cannot_be_changed_by_import(client: TestClient, session: Session) -> None:
    town = make_town(session)
    h = headers_for(session, make_user(session, town.villages[0], Role.coordinator))
    foreign = make_institution(session, town.villages[1].id or 0, name="外村小学")
    resp = _import(client, h, book([[foreign.id, "改名", "小学", town.villages[0].code, None, None, None, None]]))
    assert resp.status_code == 422 and resp.json()["errors"][0]["column"] == "编号"
    session.refresh(foreign)
    assert foreign.name == "外村小学"


def _venued_town(session: Session) -> DemoTown:
    town = make_town(session)
    session.add_all(demo_venues(town))
    session.commit()
    return town


def test_the_demo_town_gets_its_schools_and_venue_linked_institutions(session: Session) -> None:
    town = _venued_town(session)
    made = demo.seed_demo(session, town)
    session.commit()
    kinds = [i.kind for i in made]
    assert kinds.count("primary_school") == len(town.villages)
    assert {"secondary_school", "kindergarten", "training", "hotel", "internet_cafe"} <= set(kinds)
    linked = [i for i in made if i.venue_id is not None]
    assert {i.kind for i in linked} == {"hotel", "internet_cafe"}
