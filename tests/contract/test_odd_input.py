"""Input the schemas let through but the database or a spreadsheet cannot hold is the client's 422
or is exported cleaned, never a server error. Found by the schemathesis run (test_schemathesis.py);
pinned here with the exact values, because a generated run need not draw them again."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.registry.models import RiskPerson
from backend.venues.models import Venue
from tests.factories import make_town, make_user, sign_in
from tests.venues.factories import credit_code, grid_point
from tests.xlsx_support import sheet_rows


def _venue(name: str) -> dict[str, object]:
    lon, lat = grid_point((0, 0))
    return {"venue_type": "hotel", "name": name, "credit_code": credit_code(), "lon": lon, "lat": lat}


@pytest.fixture
def coordinator(client: TestClient, session: Session) -> dict[str, str]:
    town = make_town(session)
    return sign_in(client, make_user(session, town.town, Role.coordinator)).headers


def test_an_id_beyond_any_database_integer_is_a_422_problem(client: TestClient,
                                                            coordinator: dict[str, str]) -> None:
    resp = client.get(f"/api/v1/venues/{2**70}", headers=coordinator)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == "invalid-input"


def test_a_lone_surrogate_in_json_text_is_a_422_problem_naming_the_field(
    client: TestClient, coordinator: dict[str, str]
) -> None:
    # Python's json decodes "\ud800" to a string no database encoding can hold.
    body = json.dumps(_venue("酒店\ud800"))
    resp = client.post("/api/v1/venues", headers={**coordinator, "Content-Type": "application/json"}, content=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["code"] == "invalid-input"
    assert [e["field"] for e in resp.json()["errors"]] == ["name"]


def test_a_nul_character_is_refused_on_every_backend_naming_the_field(
    client: TestClient, coordinator: dict[str, str]
) -> None:
    # PostgreSQL text cannot hold NUL; SQLite could, so it is refused before either sees it.
    resp = client.post("/api/v1/venues", headers=coordinator, json=_venue("酒店\x00甲"))
    assert resp.status_code == 422, resp.text
    problem = resp.json()
    assert problem["code"] == "invalid-input"
    assert [(e["field"], e["type"]) for e in problem["errors"]] == [("name", "unstorable_text")]
    assert "U+0000" in problem["errors"][0]["message"]
    assert client.get("/api/v1/venues", headers=coordinator).json()["items"] == []


def test_unstorable_text_deep_in_a_body_or_in_a_key_is_named_by_its_path(
    client: TestClient, coordinator: dict[str, str]
) -> None:
    resp = client.post("/api/v1/risk-persons", headers=coordinator, json={"name": "某人", "categories": ["1", "2\x00"]})
    assert resp.status_code == 422, resp.text
    assert [e["field"] for e in resp.json()["errors"]] == ["categories.1"]
    body = json.dumps({"name": "某人", "categories": ["1"], "note\udc80": "x"})
    resp = client.post("/api/v1/risk-persons", headers={**coordinator, "Content-Type": "application/json"},
                       content=body)
    assert resp.status_code == 422, resp.text
    assert [e["field"] for e in resp.json()["errors"]] == ["note\\udc80"]  # escaped, never echoed raw


def test_control_characters_in_a_name_do_not_break_the_venue_export(
    client: TestClient, session: Session, coordinator: dict[str, str]
) -> None:
    # Refused at input now (backend/core/text.py); a name stored before may still hold them.
    assert client.post("/api/v1/venues", headers=coordinator, json=_venue("酒店\x01\x0b乙")).status_code == 422
    created = client.post("/api/v1/venues", headers=coordinator, json=_venue("酒店乙"))
    assert created.status_code == 201, created.text
    venue = session.get(Venue, created.json()["id"])
    assert venue is not None
    venue.name = "酒店\x01\x0b乙"
    session.commit()
    resp = client.get("/api/v1/venues/export.xlsx", headers=coordinator)
    assert resp.status_code == 200, resp.text
    rows = sheet_rows(resp.content)
    assert rows[1][1] == "酒店乙"


def test_control_characters_in_a_risk_person_do_not_break_the_annex_2_ledger(
    client: TestClient, session: Session, coordinator: dict[str, str]
) -> None:
    resp = client.post("/api/v1/risk-persons", headers=coordinator, json={"name": "某\x03人", "categories": ["1"]})
    assert resp.status_code == 422, resp.text
    resp = client.post("/api/v1/risk-persons", headers=coordinator, json={"name": "某人", "categories": ["1"]})
    assert resp.status_code == 201, resp.text
    person = session.get(RiskPerson, resp.json()["id"])
    assert person is not None
    person.name = "某\x03人"  # stored before such characters were refused
    session.commit()
    ledger = client.get("/api/v1/ledgers/2.xlsx", headers=coordinator)
    assert ledger.status_code == 200, ledger.text
    cells = {cell for row in sheet_rows(ledger.content) for cell in row}
    assert "某人" in cells


def test_a_calendar_token_with_non_ascii_characters_is_not_found(client: TestClient,
                                                                 coordinator: dict[str, str]) -> None:
    resp = client.get("/api/v1/calendar/1/%C3%A9%F0%9F%98%80.ics")
    assert resp.status_code == 404, resp.text
    assert resp.json()["code"] == "not-found"
