"""The monthly report: workbook sheets, the server-rendered map, storage, submission and lateness."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.config import get_settings
from backend.reports.service import HELPER_DETAIL_HEADER, HELPER_SUMMARY_HEADER, SHEET_TITLES
from tests.coverage.fixture import MONTH, build_world
from tests.factories import sign_in, user_client
from tests.xlsx_support import read_workbook


@pytest.fixture(autouse=True)
def _media_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HULEI_MEDIA_ROOT", str(tmp_path / "media"))
    get_settings.cache_clear()


def _trimmed(row: list[object]) -> list[object]:
    """A row without the empty cells openpyxl pads it with up to the sheet's width."""
    while row and row[-1] is None:
        row = row[:-1]
    return row


def _rows(ws: object) -> list[list[object]]:
    return [list(r) for r in ws.iter_rows(values_only=True)]  # type: ignore[attr-defined]


def test_monthly_report_workbook_holds_the_hand_counted_figures(client: TestClient, session: Session) -> None:
    world = build_world(session)
    coordinator = user_client(client, session, world.town.town, Role.coordinator)
    resp = client.post("/api/v1/reports/monthly", json={"month": MONTH}, headers=coordinator.headers)
    assert resp.status_code == 201, resp.text
    report = resp.json()
    # Seed 002's reading, the default rule: March's report is due by 17 March.
    assert report["due_date"] == "2026-03-17" and report["status"] == "generated"
    assert report["figures"]["households"] == 7 and report["figures"]["visited"] == 3

    xlsx = client.get(report["xlsx_url"], headers=coordinator.headers)
    assert xlsx.status_code == 200
    book = read_workbook(xlsx.content)
    assert tuple(book.sheetnames) == SHEET_TITLES

    visits = {r[1]: r for r in _rows(book["走访"])[1:]}
    # 青山村 in March: H1 visited, H3 nobody home, H4 visited (mismatch), H5 amended to nobody home,
    # plus the nobody-home visit behind the 10 March referral = 5 effective visits on 4 households.
    assert visits["青山村"][2:] == [5, 2, 3, 0, 0, 1, 4]
    # 溪口村: H7 visited on 31 March (China time) + the referral visit on 12 March.
    assert visits["溪口村"][2:] == [2, 1, 1, 0, 0, 0, 1]
    assert visits["柳湾村"][2:] == [0, 0, 0, 0, 0, 0, 0]

    cov = {r[1]: r for r in _rows(book["覆盖"])[1:]}
    assert cov["青山村"][2:] == [5, 2, 40.0, 2, 1, 1, 0, 1, 1, 1, "计入全部走访"]
    assert cov["溪口村"][2:] == [2, 1, 50.0, 1, 0, 0, 1, 0, 0, 0, "计入全部走访"]
    assert cov["柳湾村"][4] is None  # no households: no percentage

    problems = {r[1]: r for r in _rows(book["问题清单"])[1:] if r and len(r) > 2}
    # Found in March: 3; verified in March: 1; still open at the end of March: 2; overdue now: 1.
    assert problems["青山村"][2:] == [3, 1, 2, 1]

    inspections = {r[1]: r for r in _rows(book["场所检查"])[1:]}
    assert inspections["青山村"][2:] == [1, 1, 0, 1]

    referrals = {r[1]: r for r in _rows(book["强制报告"])[1:]}
    assert referrals["青山村"][2:] == [1, 1, 0, 0, 2]
    assert referrals["溪口村"][2:] == [1, 0, 0, 1, 0]

    helpers = [_trimmed(r) for r in _rows(book["帮扶"])]
    assert helpers[0] == HELPER_SUMMARY_HEADER
    summary = {r[1]: r[2:] for r in helpers[1:9]}
    # 青山村 in March: A1-A4 in effect (A5 only offered, A6 ended in February) for 3 children; A1-A3 started,
    # A4 ended; follow-ups 2 + 4 (the 1 April one is April's) + 1; A1 and A3 overdue now (5 April).
    assert summary["青山村"] == [4, 3, 3, 1, 7, 2]
    # 溪口村: B1 (accepted in February); its follow-up at 00:30 on 1 March China time is March's.
    assert summary["溪口村"] == [1, 1, 0, 0, 1, 1]
    assert summary["柳湾村"] == [0, 0, 0, 0, 0, 0]
    assert helpers[9][1] == "合计" and helpers[10] == [] and helpers[11] == HELPER_DETAIL_HEADER
    # Children numbered within the report (no risk change this month): by first appearance below.
    c = {"severe": "C001", "major": "C002", "none": "C003", "general": "C004"}
    a = world.assignments
    # One line per assignment in effect: unit, child number, level, helper number, mode, state, follow-ups, overdue.
    assert [[r[1], *r[2:7], r[9], r[10]] for r in helpers[12:17]] == [
        ["青山村", c["severe"], "重大风险", f"H{a['A1'].helper_id:04d}", "多对一", "帮扶中", 2, "是"],
        ["青山村", c["severe"], "重大风险", f"H{a['A2'].helper_id:04d}", "多对一", "帮扶中", 4, "否"],
        ["青山村", c["major"], "较大风险", f"H{a['A3'].helper_id:04d}", "一对一", "帮扶中", 0, "是"],
        ["青山村", c["none"], "未评级", f"H{a['A4'].helper_id:04d}", "一对一", "已结束", 1, "否"],
        ["溪口村", c["general"], "一般风险", f"H{a['B1'].helper_id:04d}", "一对一", "帮扶中", 1, "是"],
    ]
    assert helpers[15][7:9] == ["2026-02-01 10:00", "2026-03-15 10:00"]
    assert helpers[17] == [] and "编号" in str(helpers[18][0])  # then only the note
    # No child's name or ID number anywhere on the sheet.
    text = " ".join(str(v) for r in helpers for v in r if v is not None)
    assert "测试儿童" not in text and "王H" not in text
    risk = _rows(book["风险变化"])
    assert risk[0][:3] == ["单位代码", "单位", "儿童编号"]

    png = client.get(report["png_url"], headers=coordinator.headers)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(png.content))
    assert image.size[0] > 400 and image.size[1] > 300
    # Coverage colours: 青山村 (40%) and 溪口村 (50%) are filled, so the map is not blank.
    assert len(image.convert("RGB").getcolors(maxcolors=1_000_000) or []) > 20


APRIL = "2026-04"


def test_submitted_reports_are_final_and_lateness_is_shown(client: TestClient, session: Session) -> None:
    world = build_world(session)  # the clock now reads 5 April 2026: April's report is due 17 April
    village0 = user_client(client, session, world.town.villages[0], Role.coordinator)
    village1 = user_client(client, session, world.town.villages[1], Role.coordinator)
    town = user_client(client, session, world.town.town, Role.coordinator)
    r0 = client.post("/api/v1/reports/monthly", json={"month": APRIL}, headers=village0.headers).json()
    client.post("/api/v1/reports/monthly", json={"month": APRIL}, headers=village1.headers)
    submitted = client.post(f"/api/v1/reports/monthly/{r0['id']}/submit", headers=village0.headers)
    assert submitted.status_code == 200 and submitted.json()["status"] == "submitted"
    again = client.post("/api/v1/reports/monthly", json={"month": APRIL}, headers=village0.headers)
    assert again.status_code == 409 and again.json()["code"] == "report-already-submitted"

    states = {s["unit_name"]: s["state"] for s in client.get(
        "/api/v1/reports/monthly/status", params={"month": APRIL}, headers=town.headers).json()}
    assert states["青山村"] == "submitted" and states["溪口村"] == "generated" and states["柳湾村"] == "pending"

    clock.freeze(datetime(2026, 4, 18, 9, 0, tzinfo=clock.SHANGHAI))  # past the 17th
    town = sign_in(client, town.user)
    states = {s["unit_name"]: s["state"] for s in client.get(
        "/api/v1/reports/monthly/status", params={"month": APRIL}, headers=town.headers).json()}
    assert states["青山村"] == "submitted" and states["溪口村"] == "late" and states["柳湾村"] == "late"

    # Another village's coordinator cannot see or submit village 0's report.
    village1 = sign_in(client, village1.user)
    assert client.get(f"/api/v1/reports/monthly/{r0['id']}/report.xlsx", headers=village1.headers).status_code == 404
    volunteer = user_client(client, session, world.town.villages[0], Role.volunteer)
    assert client.post("/api/v1/reports/monthly", json={"month": MONTH}, headers=volunteer.headers).status_code == 403
