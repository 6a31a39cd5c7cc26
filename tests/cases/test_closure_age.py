"""A case closes as `turned_18` only for a child who is 18 by the registered birth date (China date)."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.core import clock
from tests.helpers.factories import make_child
from tests.registry.factories import make_world

API = "/api/v1"


def test_turned_18_closes_the_case_of_an_adult_only(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    today = clock.now().astimezone(clock.SHANGHAI).date()
    sixteen = make_child(session, w.town.grids[0][0])
    eighteen = make_child(session, w.town.grids[0][1])
    sixteen.birth_date = date(today.year - 16, 1, 1)
    eighteen.birth_date = date(today.year - 18, 1, 1) if (today.month, today.day) >= (1, 1) else None
    session.add_all([sixteen, eighteen])
    session.commit()
    cases = [client.post(f"{API}/cases", json={"child_id": c.id, "reason": "研判"}, headers=w.coordinator.headers)
             .json()["id"] for c in (sixteen, eighteen)]
    for what in ("closure", "close"):
        refused = client.post(f"{API}/cases/{cases[0]}/{what}", json={"reason": "turned_18"},
                              headers=w.coordinator.headers)
        assert refused.status_code == 422 and refused.json()["code"] == "closure-reason-invalid", refused.text
        assert str(sixteen.birth_date) not in refused.text
        assert "turned_18" not in refused.json()["allowed"] and "risk_lowered" in refused.json()["allowed"]
    closed = client.post(f"{API}/cases/{cases[1]}/close", json={"reason": "turned_18"}, headers=w.coordinator.headers)
    assert closed.status_code == 200 and closed.json()["close_reason"] == "turned_18", closed.text
