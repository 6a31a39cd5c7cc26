"""Managing users within a jurisdiction."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from tests.factories import make_town, user_client


def _new_user(unit_id: int, roles: list[str], phone: str = "13800000001",
              agency: str = "womens_federation") -> dict[str, object]:
    return {"phone": phone, "display_name": "新志愿者", "password": "long-enough-pw", "org_unit_id": unit_id,
            "roles": roles, "agency": agency}


def test_town_coordinator_creates_a_volunteer_in_a_village(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    resp = client.post("/api/v1/users", json=_new_user(town.villages[2].id or 0, ["volunteer"]),
                       headers=coordinator.headers)
    assert resp.status_code == 201, resp.text
    assert resp.json()["roles"] == ["volunteer"]


def test_coordinator_cannot_create_users_outside_the_town(client: TestClient, session: Session) -> None:
    town = make_town(session)
    village_coordinator = user_client(client, session, town.villages[0], Role.coordinator)
    resp = client.post("/api/v1/users", json=_new_user(town.villages[1].id or 0, ["volunteer"]),
                       headers=village_coordinator.headers)
    assert resp.status_code == 404


def test_coordinator_cannot_grant_admin(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    resp = client.post("/api/v1/users", json=_new_user(town.town.id or 0, ["admin"], agency="government"),
                       headers=coordinator.headers)
    assert resp.status_code == 403
    assert resp.json()["code"] == "role-not-grantable"


def test_invalid_mobile_number_is_refused_with_the_field_named(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    resp = client.post("/api/v1/users", json=_new_user(town.town.id or 0, ["volunteer"], phone="12000000000"),
                       headers=coordinator.headers)
    assert resp.status_code == 422
    assert resp.json()["field"] == "phone"


def test_reading_a_users_record_is_audited(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    volunteer = user_client(client, session, town.villages[0], Role.volunteer)
    assert client.get(f"/api/v1/users/{volunteer.user.id}", headers=coordinator.headers).status_code == 200
    entries = session.exec(select(AuditEntry).where(AuditEntry.action == "user.read")).all()
    assert [(e.actor_user_id, e.object_id) for e in entries] == [(coordinator.user.id, str(volunteer.user.id))]


def test_user_list_holds_only_the_jurisdiction(client: TestClient, session: Session) -> None:
    town = make_town(session)
    village_coordinator = user_client(client, session, town.villages[0], Role.coordinator)
    inside = user_client(client, session, town.grids[0][1], Role.grid_worker)
    outside = user_client(client, session, town.villages[3], Role.volunteer)
    ids = {u["id"] for u in client.get("/api/v1/users", headers=village_coordinator.headers).json()["items"]}
    assert inside.user.id in ids
    assert outside.user.id not in ids
