"""A town with the people of supervision: coordinators of the county, the town and a village, the
town's police, member-unit staff of village 0 (its school, its village committee) and a coordinator
of village 1 (foreign to village 0)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.core import clock
from backend.demo.town import DemoTown
from tests.factories import SignedIn, make_town, user_client

API = "/api/v1"


@dataclass
class SupervisionWorld:
    town: DemoTown
    county: SignedIn  # coordinator of the county
    coordinator: SignedIn  # coordinator of the town
    village: SignedIn  # coordinator of village 0
    police: SignedIn  # police of the town
    teacher: SignedIn  # agency_staff, education, village 0
    committee: SignedIn  # agency_staff, village committee, village 0
    foreign: SignedIn  # coordinator of village 1


def make_world(client: TestClient, session: Session) -> SupervisionWorld:
    town = make_town(session)
    v0, v1 = town.villages[0], town.villages[1]
    return SupervisionWorld(
        town=town,
        county=user_client(client, session, town.county, Role.coordinator, agency=Agency.government),
        coordinator=user_client(client, session, town.town, Role.coordinator, agency=Agency.government),
        village=user_client(client, session, v0, Role.coordinator, agency=Agency.village_committee),
        police=user_client(client, session, town.town, Role.police, agency=Agency.police),
        teacher=user_client(client, session, v0, Role.agency_staff, agency=Agency.education),
        committee=user_client(client, session, v0, Role.agency_staff, agency=Agency.village_committee),
        foreign=user_client(client, session, v1, Role.coordinator, agency=Agency.village_committee),
    )


def today() -> date:
    return clock.now().astimezone(clock.SHANGHAI).date()


def raise_body(subject: dict[str, Any], *, days: int = 7, source: str = "unannounced_check") -> dict[str, Any]:
    return {"subject": subject, "source": source, "description": "暗访发现未落实强制报告制度培训",
            "measure": "组织全员培训并建立台账", "deadline_date": (today() + timedelta(days=days)).isoformat()}


def raise_problem(client: TestClient, who: SignedIn, subject: dict[str, Any], **kw: Any) -> dict[str, Any]:
    resp = client.post(f"{API}/supervision/problems", json=raise_body(subject, **kw), headers=who.headers)
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body
