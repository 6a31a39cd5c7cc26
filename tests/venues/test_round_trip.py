"""Export then import of the venue ledger is the identity: the .xlsx GET /venues/export.xlsx answers,
uploaded again unchanged, creates nothing, changes nothing (0 updated, every venue `unchanged`) and
every venue reads back through the API exactly as before, its `updated_at` too. Venues are registered
through the API with names an export must not disturb: odd whitespace around them (which the import
trims), formula-like text, CJK, numbers as text, optional fields empty (hypothesis over generated
registries, kept to a few examples per run, as tests/ledgers/test_round_trip.py does for 附件1/2/3)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlmodel import Session

from backend.venues.models import Venue, VenueStatus, VenueType
from tests.venues.factories import VenueWorld, credit_code, grid_point, make_world
from tests.xlsx_support import read_workbook, saved

HAN = "赵钱孙李周吴郑王冯陈溪口青山网咖酒店宾馆培训电竞影院村镇组号"
SPACE = st.sampled_from(["", "", " ", "  ", "\t", "\u3000", "\xa0", "\n", "\r\n", "\r", " \t\u3000"])
FORMULA = st.sampled_from(["=1+2", "-2+3", "+86", "@SUM(A1)", '=HYPERLINK("http://x","点击")', "#N/A", "'=A1",
                           "=", "-", "+"])
NUMBER = st.sampled_from(["007", "1.50", "1e5", "12345678901234567890", "0.1", "-0", "3", "2026-11-30", "TRUE"])
CORE = st.one_of(
    st.text(alphabet=HAN, min_size=1, max_size=8),
    FORMULA,
    NUMBER,
    st.text(alphabet=HAN + "0123456789 =+-@\t\n#（）()", min_size=1, max_size=12),
    st.builds(lambda a, b: a + b, FORMULA, st.text(alphabet=HAN, min_size=1, max_size=4)),
)


def _text(max_size: int) -> st.SearchStrategy[str]:
    return st.builds(lambda a, core, b: a + core + b, SPACE, CORE, SPACE).filter(lambda t: len(t) <= max_size)


def _optional(max_size: int) -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), _text(max_size))


PHONE = st.one_of(st.just(""), st.integers(13000000000, 19999999999).map(str),
                  st.sampled_from(["+86 139 0000 1111", "0771-2345678", "座机", " 139-0000-2222 ", "转812"]))


@st.composite
def venue(draw: Any) -> dict[str, Any]:
    lon, lat = grid_point((draw(st.integers(0, 2)), draw(st.integers(0, 3))),
                          draw(st.floats(0.05, 0.95)), draw(st.floats(0.05, 0.95)))
    code = credit_code()
    return {"venue_type": draw(st.sampled_from([t.value for t in VenueType])), "name": draw(_text(120)),
            "credit_code": code.lower() if draw(st.booleans()) else code, "address": draw(_optional(200)),
            "lon": lon, "lat": lat, "owner_name": draw(_optional(60)), "owner_phone": draw(PHONE),
            "is_key": draw(st.booleans()), "status": draw(st.sampled_from([s.value for s in VenueStatus]))}


def _listed(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    resp = client.get("/api/v1/venues", params={"limit": 500}, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["next_cursor"] is None
    return list(resp.json()["items"])


def _import(client: TestClient, headers: dict[str, str], content: bytes) -> Any:
    return client.post("/api/v1/venues/import", headers=headers,
                       files={"file": ("venues.xlsx", content, "application/octet-stream")})


def _world(client: TestClient, session: Session) -> VenueWorld:
    # Hypothesis runs every example on the same database: one town for all of them.
    if "venue_round_trip_world" not in session.info:
        session.info["venue_round_trip_world"] = make_world(client, session)
    world: VenueWorld = session.info["venue_round_trip_world"]
    return world


def _round_trip(client: TestClient, session: Session, headers: dict[str, str]) -> None:
    before = _listed(client, headers)
    exported = client.get("/api/v1/venues/export.xlsx", headers=headers)
    assert exported.status_code == 200, exported.text
    resp = _import(client, headers, exported.content)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"ok": True, "created": 0, "updated": 0, "unchanged": len(before), "merged_in_file": 0,
                           "errors": []}
    assert _listed(client, headers) == before
    assert session.execute(select(func.count()).select_from(Venue)).scalar_one() == len(before)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(registry=st.lists(venue(), min_size=1, max_size=5))
def test_an_exported_venue_ledger_reimported_creates_and_changes_nothing(
        client: TestClient, session: Session, registry: list[dict[str, Any]]) -> None:
    w = _world(client, session)
    for body in registry:
        resp = client.post("/api/v1/venues", json=body, headers=w.market.headers)
        assert resp.status_code == 201, (body, resp.text)
    _round_trip(client, session, w.market.headers)


def test_a_name_with_a_leading_tab_keeps_it_and_is_not_counted_updated(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    lon, lat = grid_point((0, 1))
    body = {"venue_type": "ktv", "name": "\t-2+3", "credit_code": credit_code(), "lon": lon, "lat": lat}
    created = client.post("/api/v1/venues", json=body, headers=w.market.headers)
    assert created.status_code == 201, created.text
    _round_trip(client, session, w.market.headers)
    got = client.get(f"/api/v1/venues/{created.json()['id']}", headers=w.market.headers).json()
    assert got["name"] == "\t-2+3"


def test_a_row_really_changed_is_counted_updated_and_the_others_unchanged(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    ids = []
    for n in range(3):
        lon, lat = grid_point((0, n))
        body = {"venue_type": "bar", "name": f" 酒吧{n} ", "credit_code": credit_code(), "lon": lon, "lat": lat,
                "address": "溪口村"}
        resp = client.post("/api/v1/venues", json=body, headers=w.market.headers)
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["id"])
    before = {v["id"]: v for v in _listed(client, w.market.headers)}
    book = read_workbook(client.get("/api/v1/venues/export.xlsx", headers=w.market.headers).content)
    sheet = book.active
    assert sheet is not None
    sheet["B2"] = "  改名酒吧\u3000"  # a real change, with whitespace the import trims
    sheet["E3"] = float(f"{sheet['E3'].value:.15g}")  # Excel keeps 15 significant digits: the same point
    sheet["F3"] = float(f"{sheet['F3'].value:.15g}")
    sheet["D4"] = "\t溪口村 "  # the same address in other whitespace
    resp = _import(client, w.market.headers, saved(book))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"ok": True, "created": 0, "updated": 1, "unchanged": 2, "merged_in_file": 0, "errors": []}
    after = {v["id"]: v for v in _listed(client, w.market.headers)}
    assert after[ids[0]]["name"] == "改名酒吧" and after[ids[0]]["updated_at"] != before[ids[0]]["updated_at"]
    assert after[ids[1]] == before[ids[1]] and after[ids[2]] == before[ids[2]]


def test_a_stored_venue_at_its_point_keeps_its_unit_when_the_file_has_no_unit_code(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    lon, lat = grid_point((1, 2))
    village = w.town.villages[1].id
    body = {"venue_type": "hotel", "name": "村属旅馆", "credit_code": credit_code(), "lon": lon, "lat": lat,
            "org_unit_id": village}
    created = client.post("/api/v1/venues", json=body, headers=w.market.headers)
    assert created.status_code == 201 and created.json()["org_unit_id"] == village, created.text
    book = read_workbook(client.get("/api/v1/venues/export.xlsx", headers=w.market.headers).content)
    sheet = book.active
    assert sheet is not None and sheet["L1"].value == "所属单位编码"
    sheet.delete_cols(12, 2)  # no unit code, no unit name: the unit is not in the file
    resp = _import(client, w.market.headers, saved(book))
    assert resp.status_code == 200, resp.text
    assert (resp.json()["updated"], resp.json()["unchanged"]) == (0, 1)
    got = client.get(f"/api/v1/venues/{created.json()['id']}", headers=w.market.headers).json()
    assert got["org_unit_id"] == village and got["updated_at"] == created.json()["updated_at"]
