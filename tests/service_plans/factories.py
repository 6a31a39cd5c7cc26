"""Cases with services, member-unit staff and their tokens, for the service and referral tests."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.models import Agency, User
from backend.accounts.permissions import Role
from backend.orgunits.models import OrgUnit
from backend.registry.models import Person
from backend.service_plans.models import SEED_KINDS, ServiceKind
from tests.factories import SignedIn, make_user
from tests.helpers.factories import make_child
from tests.notifications.factories import headers_for

API = "/api/v1"


def ensure_service_kinds(session: Session) -> None:
    """The seeds' kinds of service (written by migration 0021; emptied between PostGIS tests)."""
    for code, zh, en, agency in SEED_KINDS:
        if session.get(ServiceKind, code) is None:
            session.add(ServiceKind(code=code, name_zh=zh, name_en=en, default_agency=agency))
    session.commit()


def staff(session: Session, unit: OrgUnit, agency: Agency, role: Role = Role.agency_staff) -> SignedIn:
    """A member unit's staff (without the slow password round trip)."""
    user: User = make_user(session, unit, role, agency=agency)
    return SignedIn(user, headers_for(session, user), "")


def open_case(client: TestClient, coordinator: SignedIn, child: Person) -> dict[str, Any]:
    resp = client.post(f"{API}/cases", json={"child_id": child.id, "reason": "专班研判"}, headers=coordinator.headers)
    assert resp.status_code in (200, 201), resp.text
    body: dict[str, Any] = resp.json()
    return body


def case_of_new_child(client: TestClient, session: Session, coordinator: SignedIn, grid: OrgUnit) -> dict[str, Any]:
    ensure_service_kinds(session)
    return open_case(client, coordinator, make_child(session, grid))


def plan(client: TestClient, coordinator: SignedIn, case_id: int, kind: str = "legal_aid",
         **body: Any) -> dict[str, Any]:
    resp = client.post(f"{API}/cases/{case_id}/services", json={"kind": kind, **body}, headers=coordinator.headers)
    assert resp.status_code == 201, resp.text
    made: dict[str, Any] = resp.json()
    return made


def step(client: TestClient, who: SignedIn, service_id: int, to_status: str, **body: Any) -> Any:
    return client.post(f"{API}/services/{service_id}/steps", json={"to_status": to_status, **body},
                       headers=who.headers)
