"""No decision is lost silently: two coordinators deciding on the same record at the same moment get one
result and one 409 with the state that won, and any sequence of decisions, each naming the state its
coordinator saw (or none), leaves a history in which every step starts where the previous one ended."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from backend.accounts.permissions import Role
from tests.factories import user_client
from tests.races import together as _together
from tests.registry.factories import World, make_world, push, seed_household, visit_item

API = "/api/v1"
STATES = ("pending", "approved", "has_issues", "rejected")


def _visit_id(client: TestClient, w: World) -> int:
    home, _ = seed_household(client, w.volunteer_a)
    record = push(client, w.volunteer_a, [visit_item(home["uuid"], at=(home["lon"], home["lat"]))])["results"][0]
    return int(record["record"]["id"])


def test_two_coordinators_deciding_at_once_get_one_decision_and_one_conflict(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    county = user_client(client, session, w.town.county, Role.coordinator)
    for _ in range(3):
        visit_id = _visit_id(client, w)
        town_says, county_says = _together(
            lambda c: c.post(f"{API}/visits/{visit_id}/review", json={"state": "approved"},
                             headers=w.coordinator.headers),
            lambda c: c.post(f"{API}/visits/{visit_id}/review", json={"state": "rejected", "comment": "虚假"},
                             headers=county.headers),
        )
        codes = sorted([town_says.status_code, county_says.status_code])
        assert codes == [201, 409], (town_says.text, county_says.text)
        won = town_says if town_says.status_code == 201 else county_says
        lost = county_says if won is town_says else town_says
        assert lost.json()["current_status"] == won.json()["review_state"]
        history = client.get(f"{API}/visits/{visit_id}/reviews", headers=w.coordinator.headers).json()
        assert [(h["from_state"], h["review_state"]) for h in history] == [("pending", won.json()["review_state"])]


_STEP = st.tuples(st.sampled_from((0, 1)), st.sampled_from(STATES), st.sampled_from((None, *STATES)))


def test_any_sequence_of_decisions_keeps_an_unbroken_history(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    coordinators = [w.coordinator, user_client(client, session, w.town.county, Role.coordinator)]

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(steps=st.lists(_STEP, min_size=1, max_size=8))
    def decide(steps: list[tuple[int, str, str | None]]) -> None:
        visit_id = _visit_id(client, w)  # a fresh visit per example
        state = "pending"
        for who, wanted, expected in steps:
            body: dict[str, Any] = {"state": wanted, "comment": "意见", "expected_state": expected}
            answer = client.post(f"{API}/visits/{visit_id}/review", json=body, headers=coordinators[who].headers)
            seen_ok = (expected is None and state == "pending") or expected == state
            if wanted == "pending":
                assert answer.status_code == 422
            elif seen_ok and wanted != state:
                assert answer.status_code == 201, answer.text
                state = wanted
            else:
                assert answer.status_code == 409, answer.text
                assert answer.json()["current_status"] == state
        history = client.get(f"{API}/visits/{visit_id}/reviews", headers=w.coordinator.headers).json()
        chain = ["pending", *[h["review_state"] for h in history]]
        assert [h["from_state"] for h in history] == chain[:-1]
        assert chain[-1] == state
        queued = client.get(f"{API}/reviews/queue", params={"state": state, "limit": 500},
                            headers=w.coordinator.headers).json()
        assert visit_id in [q["record_id"] for q in queued]

    decide()
