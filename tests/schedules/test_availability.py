"""An officer's weekdays (排班可用日): what is saved is what the planner uses."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from tests.factories import make_town, make_user, user_client

API = "/api/v1/schedules/availability"


def test_an_empty_week_is_refused_rather_answered_saved_and_planned_every_weekday(
        client: TestClient, session: Session) -> None:
    """No stored weekday means the default (Monday to Friday): saving an empty list used to answer
    `weekdays: []` while the officer stayed planned every weekday."""
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator, agency=Agency.government)
    officer = make_user(session, town.town, Role.market_officer, agency=Agency.health)
    assert client.put(f"{API}/{officer.id}", json={"weekdays": [1, 3]}, headers=coordinator.headers).status_code == 200
    refused = client.put(f"{API}/{officer.id}", json={"weekdays": []}, headers=coordinator.headers)
    assert refused.status_code == 422 and refused.json()["code"] == "availability-empty", refused.text
    kept = client.get(f"{API}/{officer.id}", headers=coordinator.headers).json()
    assert kept["weekdays"] == [1, 3] and kept["default"] is False
