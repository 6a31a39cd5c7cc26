"""附件1/2/3: export with the printed headers, import with a dry run and all-or-nothing."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.ledgers.sheets import header_key
from backend.registry.models import Person
from tests.factories import SignedIn, user_client
from tests.registry.factories import child_id, child_item, household_item, make_world, push
from tests.xlsx_support import sheet_rows, xlsx_bytes

ANNEX1 = [
    "序号",
    "未成年人姓名",
    "身份证号码",
    "性别",
    "户籍地",
    "常住地",
    "是否在读",
    "联系方式",
    "分类",
    "具体表现",
    "监护人姓名",
    "监护人联系方式",
    "专班人员及联系方式",
    "帮扶措施",
    "综合研判风险等级",
]
ANNEX2 = ["序号", "姓名", "身份证号码", "性别", "户籍地", "常住地", "联系方式", "分类", "综合研判风险等级", "管控措施"]
ANNEX3 = [
    "序号",
    "姓名",
    "身份证号码",
    "性别",
    "户籍地",
    "常住地",
    "联系电话",
    "是否在读",
    "监护人姓名",
    "联系电话",
    "专班人员及联系方式",
    "帮扶措施",
]


def _sheet(client: TestClient, who: SignedIn, annex: int) -> list[list[Any]]:
    resp = client.get(f"/api/v1/ledgers/{annex}.xlsx", headers=who.headers)
    assert resp.status_code == 200, resp.text
    rows = [list(r) for r in sheet_rows(resp.content)]
    rows = rows[next(i for i, r in enumerate(rows) if r[0] == "序号"):]  # below the 附件N row and the title
    return [[header_key(c) for c in rows[0]], *rows[1:]]  # the header without the printed option lists


def test_exports_have_exactly_the_attachment_headers(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    h = household_item(0)
    push(client, w.volunteer_a, [h, child_item(h["client_uuid"], categories=["心理困境"], vulnerable=True)])
    sheet1 = _sheet(client, w.coordinator, 1)
    assert sheet1[0] == ANNEX1
    assert sheet1[1][0] == 1 and sheet1[1][8] == "心理困境"
    assert len(sheet1[1][2]) == 18 and "*" not in sheet1[1][2]  # coordinators may see full numbers
    assert _sheet(client, w.coordinator, 2)[0] == ANNEX2
    sheet3 = _sheet(client, w.coordinator, 3)
    assert sheet3[0] == ANNEX3 and len(sheet3) == 2
    assert {"ledger.export"} <= set(session.execute(select(AuditEntry.action)).scalars())


def test_export_is_scoped_and_masked_for_field_roles(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    h = household_item(0)
    push(client, w.volunteer_a, [h, child_item(h["client_uuid"], categories=["生活困境"])])
    assert client.get("/api/v1/ledgers/1.xlsx", headers=w.volunteer_a.headers).status_code == 403
    village_b = user_client(client, session, w.town.villages[1], Role.coordinator)
    assert _sheet(client, village_b, 1) == [ANNEX1]  # nothing of village 0
    police = _sheet(client, w.police, 1)
    assert len(police) == 2
    assert client.get("/api/v1/ledgers/2.xlsx", headers=w.volunteer_a.headers).status_code in (403, 404)
    assert client.get("/api/v1/ledgers/2.xlsx", headers=w.market.headers).status_code == 404


def test_import_dry_run_names_every_bad_row_and_column(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    good = child_id(date(2012, 3, 4))
    bad_sum = good[:-1] + ("1" if good[-1] != "1" else "2")
    rows = [
        ANNEX1,
        [
            1,
            "张一",
            good,
            "男",
            "示范县",
            "青山村",
            "是",
            "",
            "心理困境",
            "情绪低落",
            "张父",
            "13800000001",
            "",
            "",
            "一般风险",
        ],
        [2, "张二", bad_sum, "男", "示范县", "青山村", "是", "", "", "", "", "", "", "", ""],
        [3, "张三", child_id(date(2013, 1, 1)), "男", "", "", "也许", "", "厌学", "", "", "", "", "", "很高"],
    ]
    resp = client.post(
        "/api/v1/ledgers/1/import",
        params={"dry_run": True},
        headers=w.coordinator.headers,
        files={"file": ("a1.xlsx", xlsx_bytes(rows))},
    )
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["ok"] is False and report["rows"] == 3
    bad = {(e["row"], e["column"]) for e in report["errors"]}
    assert bad == {(3, "身份证号码"), (4, "是否在读"), (4, "分类"), (4, "综合研判风险等级")}
    assert all(e["reason"] for e in report["errors"])
    # The real import of the same file writes nothing at all.
    real = client.post(
        "/api/v1/ledgers/1/import",
        params={"dry_run": False},
        headers=w.coordinator.headers,
        files={"file": ("a1.xlsx", xlsx_bytes(rows))},
    )
    assert real.status_code == 422 and len(real.json()["errors"]) == 4
    assert session.execute(select(func.count()).select_from(Person)).scalar_one() == 0


def test_import_reports_created_and_matched_by_id(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    known = child_id(date(2011, 7, 8))
    h = household_item(0)
    push(client, w.volunteer_a, [h, child_item(h["client_uuid"], name="已登记", id_number=known)])
    rows = [
        ["易受性侵风险的未成年人摸排台账"],
        ANNEX3,
        [1, "已登记", known, "男", "示范县", "青山村", "", "是", "刘母", "13700000000", "专班甲", "心理疏导"],
        [2, "新儿童", child_id(date(2012, 1, 2), male=False), "女", "", "", "", "否", "", "", "", ""],
    ]
    resp = client.post(
        "/api/v1/ledgers/3/import",
        params={"dry_run": False},
        headers=w.coordinator.headers,
        files={"file": ("a3.xlsx", xlsx_bytes(rows))},
    )
    assert resp.status_code == 200, resp.text
    assert (resp.json()["created"], resp.json()["matched"]) == (1, 1)
    assert resp.json()["matched_rows"] == [3]
    sheet = _sheet(client, w.coordinator, 3)
    assert [r[1] for r in sheet[1:]] == ["已登记", "新儿童"]
    assert sheet[1][8] == "刘母"


def test_risk_person_ledger_round_trips_through_import(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    rows = [
        ANNEX2,
        [
            1,
            "某乙",
            "11010519491231002X",
            "女",
            "示范县",
            "示范镇",
            "13600000000",
            "社区矫正对象、性病患者",
            "较大风险",
            "每周报到",
        ],
    ]
    resp = client.post(
        "/api/v1/ledgers/2/import",
        params={"dry_run": False},
        headers=w.police.headers,
        files={"file": ("a2.xlsx", xlsx_bytes(rows))},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["created"] == 1
    sheet = _sheet(client, w.police, 2)
    assert sheet[1][1:] == [
        "某乙",
        "11010519491231002X",
        "女",
        "示范县",
        "示范镇",
        "13600000000",
        "社区矫正对象、性病患者",
        "较大风险",
        "每周报到",
    ]
