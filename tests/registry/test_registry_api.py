"""Households and children over HTTP: masking, audited reveal, jurisdiction, stale edits, 附件2 access."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session

from backend.audit.models import AuditEntry
from backend.registry.models import Person
from tests.registry.factories import child_id, grid_centre, make_world, seed_household


def test_household_lands_in_the_grid_its_point_falls_in(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    lon, lat = grid_centre(0, 2)
    resp = client.post(
        "/api/v1/households", json={"address": "青山村3组", "lon": lon, "lat": lat}, headers=w.volunteer_a.headers
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["org_unit_id"] == w.town.grids[0][2].id


def test_id_numbers_are_masked_encrypted_and_reveals_are_audited(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a, children=0)
    number = child_id()
    resp = client.post(
        "/api/v1/persons",
        json={"household_uuid": home["uuid"], "name": "王小花", "id_number": number},
        headers=w.volunteer_a.headers,
    )
    assert resp.status_code == 201, resp.text
    child = resp.json()
    assert child["id_number_masked"] == number[:6] + "*" * 12
    assert number not in resp.text
    stored = session.get(Person, child["id"])
    assert stored is not None and number not in (stored.id_cipher or "") and stored.id_key_id == "dev-1"
    # Volunteers cannot reveal (hidden action: 404); police can, and it is audited.
    assert (
        client.post(f"/api/v1/persons/{child['id']}/reveal-id", json={}, headers=w.volunteer_a.headers).status_code
        == 404
    )
    revealed = client.post(
        f"/api/v1/persons/{child['id']}/reveal-id", json={"reason": "立案核查"}, headers=w.police.headers
    )
    assert revealed.json() == {"id_number": number}
    entry = session.execute(select(AuditEntry).where(AuditEntry.action == "child.reveal_id")).scalar_one()
    assert entry.object_id == str(child["id"]) and entry.details["reason"] == "立案核查"
    assert entry.details["read"] == {"person": str(child["id"])}  # one entry per request, naming whom


def test_same_id_number_cannot_be_registered_twice(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a, children=0)
    number = child_id()
    body = {"household_uuid": home["uuid"], "name": "甲", "id_number": number}
    assert client.post("/api/v1/persons", json=body, headers=w.volunteer_a.headers).status_code == 201
    again = client.post("/api/v1/persons", json={**body, "name": "乙"}, headers=w.volunteer_a.headers)
    assert again.status_code == 409 and again.json()["code"] == "id-number-registered"


def test_market_officer_never_sees_children(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, kids = seed_household(client, w.volunteer_a)
    for path in (
        f"/api/v1/persons/{kids[0]['id']}",
        f"/api/v1/households/{home['id']}",
        f"/api/v1/households/{home['id']}/members",
        "/api/v1/households",
    ):
        assert client.get(path, headers=w.market.headers).status_code == 404, path


def test_stale_household_edit_is_409_with_the_current_copy(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    grid = w.town.grids[0][0].id
    ok = client.put(
        f"/api/v1/households/{home['id']}",
        json={"version": 1, "address": "新址1", "grid_id": grid},
        headers=w.volunteer_a.headers,
    )
    assert ok.status_code == 200 and ok.json()["version"] == 2
    stale = client.put(
        f"/api/v1/households/{home['id']}",
        json={"version": 1, "address": "新址2", "grid_id": grid},
        headers=w.volunteer_a.headers,
    )
    assert stale.status_code == 409
    assert stale.json()["code"] == "stale-edit" and stale.json()["current"]["address"] == "新址1"


def test_members_list_children_with_their_guardians(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a, children=0)
    g = client.post(
        "/api/v1/persons",
        json={"role": "guardian", "household_uuid": home["uuid"], "name": "李奶奶", "contact": "13900000000"},
        headers=w.volunteer_a.headers,
    ).json()
    c = client.post(
        "/api/v1/persons",
        json={
            "household_uuid": home["uuid"],
            "name": "李小明",
            "id_number": child_id(),
            "groups": ["留守"],
            "guardians": [{"uuid": g["uuid"], "relation": "祖母"}],
        },
        headers=w.volunteer_a.headers,
    )
    assert c.status_code == 201, c.text
    members = client.get(f"/api/v1/households/{home['id']}/members", headers=w.police.headers).json()
    child = next(m for m in members if m["role"] == "child")
    assert child["guardians"] == [{"uuid": g["uuid"], "name": "李奶奶", "contact": "13900000000", "relation": "祖母"}]
    assert child["groups"] == ["留守"]


def test_risk_persons_ledger_is_police_and_coordinator_only(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    body = {
        "name": "某甲",
        "id_number": "11010519491231002X",
        "categories": ["1", "6"],
        "risk_level": "较大风险",
        "control_measures": "每月走访",
    }
    created = client.post("/api/v1/risk-persons", json=body, headers=w.police.headers)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    assert created.json()["id_number_masked"] == "110105************"
    assert client.get(f"/api/v1/risk-persons/{rid}", headers=w.coordinator.headers).status_code == 200
    for who in (w.volunteer_a, w.helper, w.market):
        assert client.get(f"/api/v1/risk-persons/{rid}", headers=who.headers).status_code == 404
        assert client.get("/api/v1/risk-persons", headers=who.headers).status_code == 404
        assert client.post("/api/v1/risk-persons", json=body, headers=who.headers).status_code == 404
