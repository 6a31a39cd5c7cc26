"""The demo town's awareness rounds: rates to show, and schools still without a survey."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.awareness import demo
from backend.institutions import demo as institutions_demo
from tests.awareness.factories import API
from tests.factories import make_town, make_user, sign_in


def test_the_demo_shows_rates_below_target_and_schools_without_a_survey(client: TestClient,
                                                                         session: Session) -> None:
    town = make_town(session)
    coordinator = make_user(session, town.town, Role.coordinator)
    institutions_demo.seed_demo(session, town)
    made = demo.seed_demo(session, town)
    session.commit()
    again = [r.response_count for r in made]

    got = client.get(f"{API}/rates", params={"unit_id": town.town.id},
                     headers=sign_in(client, coordinator).headers).json()

    assert made and got["totals"]["responses"] == sum(again) > 0
    assert 0.8 < got["totals"]["rate"] < 1.0
    assert got["totals"]["schools_without_survey"] == 2
    assert all(r.closed_at is not None for r in made)  # no open code exists for the demo rounds
