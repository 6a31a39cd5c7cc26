"""The venue ledger over HTTP: registration, jurisdiction, the risk score and .xlsx import/export."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

from backend.venues.models import Venue, VenueType
from tests.venues.factories import credit_code, grid_point, make_venue, make_world
from tests.xlsx_support import sheet_rows, xlsx_bytes


def _venue_body(**extra: Any) -> dict[str, Any]:
    lon, lat = grid_point((2, 3))
    return {"venue_type": "esports_hotel", "name": "溪口电竞酒店", "credit_code": credit_code(), "address": "溪口村",
            "lon": lon, "lat": lat, "owner_name": "钱明", "owner_phone": "19900001111", "is_key": True, **extra}


def test_officer_registers_a_venue_and_its_grid_is_found_from_the_point(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    resp = client.post("/api/v1/venues", json=_venue_body(), headers=w.market.headers)
    assert resp.status_code == 201, resp.text
    venue = resp.json()
    assert venue["org_unit_id"] == w.town.grids[2][3].id
    assert venue["venue_type_zh"] == "电竞酒店"
    got = client.get(f"/api/v1/venues/{venue['id']}", headers=w.police.headers).json()
    assert got["credit_code"] == venue["credit_code"] and got["risk"]["total"] > 0


def test_a_mistyped_credit_code_is_refused_naming_the_field(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    good = credit_code()
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    resp = client.post("/api/v1/venues", json=_venue_body(credit_code=bad), headers=w.market.headers)
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "credit_code"


def test_the_same_credit_code_cannot_be_registered_twice(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    body = _venue_body()
    assert client.post("/api/v1/venues", json=body, headers=w.market.headers).status_code == 201
    again = client.post("/api/v1/venues", json={**body, "name": "改名"}, headers=w.police.headers)
    assert again.status_code == 409 and again.json()["code"] == "venue-exists"


def test_a_venue_outside_the_callers_jurisdiction_answers_404(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    venue = make_venue(session, w.town, village=0)
    assert client.get(f"/api/v1/venues/{venue.id}", headers=w.foreign_market.headers).status_code == 404
    assert client.get(f"/api/v1/venues/{venue.id}", headers=w.market.headers).status_code == 200
    listed = client.get("/api/v1/venues", headers=w.foreign_market.headers).json()["items"]
    assert venue.id not in [v["id"] for v in listed]


def test_risk_score_is_shown_with_its_formula_and_parts(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    venue = make_venue(session, w.town, venue_type=VenueType.esports_hotel)
    risk = client.get(f"/api/v1/venues/{venue.id}/risk", headers=w.coordinator.headers).json()
    parts = {p["name"]: p["points"] for p in risk["parts"]}
    assert parts == {"type": 25, "open": 0, "overdue": 0, "violations": 0, "gap": 20}
    assert risk["total"] == 45 and not risk["high_risk"]
    assert risk["formula"] == "min(100, type 25 + open 0 + overdue 0 + violations 0 + gap 20)"


def _sheet(rows: list[list[Any]]) -> bytes:
    return xlsx_bytes([["场所类型", "场所名称", "统一社会信用代码", "地址", "经度", "纬度", "负责人", "联系电话",
                        "重点场所", "状态"], *rows])


def _import(client: TestClient, headers: dict[str, str], content: bytes) -> Any:
    return client.post("/api/v1/venues/import", headers=headers,
                       files={"file": ("venues.xlsx", content, "application/octet-stream")})


def test_xlsx_import_merges_rows_with_the_same_credit_code_instead_of_doubling(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    stored = make_venue(session, w.town, name="旧名称")
    lon, lat = grid_point((0, 1))
    new_code = credit_code()
    content = _sheet([
        ["网吧", "青山网咖", new_code, "青山村1组", lon, lat, "孙华", "19900002222", "否", "营业"],
        ["酒店", "新名称", stored.credit_code.lower(), "", "", "", "", "", "是", ""],
        ["网吧", "", new_code, "青山村1组2号", "", "", "", "", "是", ""],  # same code again: merged
    ])
    resp = _import(client, w.market.headers, content)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"ok": True, "created": 1, "updated": 1, "unchanged": 0, "merged_in_file": 1,
                           "errors": []}
    again = _import(client, w.market.headers, content)  # the same file again changes nothing
    assert (again.json()["created"], again.json()["updated"], again.json()["unchanged"]) == (0, 0, 2)
    assert session.execute(select(func.count()).select_from(Venue)).scalar_one() == 2
    session.expire_all()
    merged = session.execute(select(Venue).where(Venue.credit_code == new_code)).scalar_one()
    assert (merged.name, merged.address, merged.is_key) == ("青山网咖", "青山村1组2号", True)
    assert session.get(Venue, stored.id).name == "新名称"  # type: ignore[union-attr]


def test_xlsx_import_with_a_bad_row_writes_nothing_and_names_the_row(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    lon, lat = grid_point((0, 1))
    content = _sheet([
        ["KTV", "欢乐KTV", credit_code(), "", lon, lat, "", "", "否", "营业"],
        ["KTV", "错误KTV", "91990101MA12345670", "", lon, lat, "", "", "否", "营业"],
    ])
    resp = _import(client, w.market.headers, content)
    assert resp.status_code == 422
    assert [e["row"] for e in resp.json()["errors"]] == [3]
    assert session.execute(select(func.count()).select_from(Venue)).scalar_one() == 0


def test_xlsx_export_lists_the_jurisdiction_and_round_trips_through_import(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    make_venue(session, w.town, village=0)
    make_venue(session, w.town, village=1, venue_type=VenueType.bar, is_key=True)
    resp = client.get("/api/v1/venues/export.xlsx", headers=w.market.headers)
    assert resp.status_code == 200
    rows = sheet_rows(resp.content)
    assert len(rows) == 3 and rows[0][2] == "统一社会信用代码"
    foreign = client.get("/api/v1/venues/export.xlsx", headers=w.foreign_market.headers)
    assert len(sheet_rows(foreign.content)) == 2
    back = _import(client, w.market.headers, resp.content)
    assert (back.json()["created"], back.json()["updated"], back.json()["unchanged"]) == (0, 0, 2)
