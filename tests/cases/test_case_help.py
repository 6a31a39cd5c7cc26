"""Every child with a case that is not closed gets a helper proposed, whatever its risk level: a victim
a mandatory report names may have no 较大/重大 rating yet (seeds 001/002: 一对一 help for each)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from tests.factories import make_town, make_user
from tests.helpers.factories import make_child, make_helper
from tests.notifications.factories import headers_for

API = "/api/v1"


def test_a_child_with_an_open_case_is_proposed_a_helper_and_listed_until_it_has_one(
    client: TestClient, session: Session
) -> None:
    town = make_town(session)
    coordinator = headers_for(session, make_user(session, town.town, Role.coordinator, agency=Agency.government))
    make_helper(session, town.town, sex="female")
    child = make_child(session, town.grids[0][0])  # no risk level, not on 附件3

    def without_helper() -> list[int]:
        resp = client.get(f"{API}/helpers/children-without-helper", headers=coordinator)
        assert resp.status_code == 200, resp.text
        return [c["child_id"] for c in resp.json()["items"]]

    proposed = client.post(f"{API}/helpers/proposals", headers=coordinator)
    assert proposed.status_code == 200 and child.id not in [a["child_id"] for a in proposed.json()]
    assert child.id not in without_helper()

    opened = client.post(f"{API}/cases", json={"child_id": child.id, "reason": "强制报告核实"}, headers=coordinator)
    assert opened.status_code == 201, opened.text
    assert child.id in without_helper()
    proposed = client.post(f"{API}/helpers/proposals", headers=coordinator)
    assert proposed.status_code == 200, proposed.text
    [offer] = [a for a in proposed.json() if a["child_id"] == child.id]
    assert offer["mode"] == "one_to_one" and offer["case_id"] == opened.json()["id"]

    closed = client.post(f"{API}/cases/{opened.json()['id']}/close", json={"reason": "risk_lowered"},
                         headers=coordinator)
    assert closed.status_code == 200, closed.text
    again = client.post(f"{API}/helpers/proposals", headers=coordinator)
    assert child.id not in [a["child_id"] for a in again.json()]

    # A new case for the child: its former helper (whose help ended with the case) may help again.
    reopened = client.post(f"{API}/cases/{opened.json()['id']}/reopen", json={"reason": "再次发现风险"},
                           headers=coordinator)
    assert reopened.status_code == 200, reopened.text
    proposed = client.post(f"{API}/helpers/proposals", params={"child_id": child.id}, headers=coordinator)
    assert proposed.status_code == 200, proposed.text
    assert [(a["child_id"], a["helper_id"]) for a in proposed.json()] == [(child.id, offer["helper_id"])]
    # A child the coordinator may not see is as good as none.
    village = headers_for(session, make_user(session, town.villages[1], Role.coordinator, agency=Agency.government))
    for child_id in (child.id, 10_000_000):
        refused = client.post(f"{API}/helpers/proposals", params={"child_id": child_id}, headers=village)
        assert refused.status_code == 404, refused.text
