"""A phone that lost the answer to its create sends it again, maybe days later: it is a duplicate for
its creator however the record changed or moved meanwhile (the convergence test met both), and never
more than a conflict for anyone else."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from backend.accounts.permissions import Role
from backend.registry.models import Household, Person
from tests.factories import user_client
from tests.registry.factories import child_item, household_item, make_world, push, statuses


def _count(session: Session, model: type[Household] | type[Person]) -> int:
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def _household(session: Session, uid: str) -> Household:
    return session.execute(select(Household).where(col(Household.uuid) == uuid.UUID(uid))).scalar_one()


def test_a_resent_create_after_someone_elses_edit_is_a_duplicate_with_the_current_record(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    home = household_item(0, 0)
    child = child_item(home["client_uuid"])
    assert statuses(push(client, w.volunteer_a, [home, child])) == ["created", "created"]
    stored = _household(session, home["client_uuid"])
    kid = session.execute(select(Person).where(col(Person.uuid) == uuid.UUID(child["client_uuid"]))).scalar_one()
    # A coordinator edits both (the phone never got its answer and does not know).
    edit = client.put(f"/api/v1/households/{stored.id}", json={"version": 1, "note": "协调员核实"},
                      headers=w.coordinator.headers)
    assert edit.status_code == 200, edit.text
    edit = client.put(f"/api/v1/persons/{kid.id}", json={"version": 1, "residence": "随祖母居住"},
                      headers=w.coordinator.headers)
    assert edit.status_code == 200, edit.text

    again = push(client, w.volunteer_a, [home, child])
    assert statuses(again) == ["duplicate", "duplicate"]
    assert again["results"][0]["record"]["version"] == 2 and again["results"][0]["record"]["note"] == "协调员核实"
    assert again["results"][1]["record"]["residence"] == "随祖母居住"
    # Another volunteer of the village sending the same create is not its creator: a conflict.
    other = user_client(client, session, w.town.villages[0], Role.volunteer)
    assert statuses(push(client, other, [home, child])) == ["conflict", "conflict"]
    # Changed content from the creator is not a resend.
    changed = {**home, "data": {**home["data"], "address": "青山村1组4号"}}
    assert statuses(push(client, w.volunteer_a, [changed])) == ["conflict"]
    assert (_count(session, Household), _count(session, Person)) == (1, 1)


def test_a_resent_create_after_the_household_moved_out_of_the_area_is_a_duplicate_showing_nothing(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    home = household_item(0, 0, address="青山村2组8号")
    child = child_item(home["client_uuid"], name="移走的孩子")
    assert statuses(push(client, w.volunteer_a, [home, child])) == ["created", "created"]
    stored = _household(session, home["client_uuid"])
    moved = client.put(f"/api/v1/households/{stored.id}", json={"version": 1, "grid_id": w.town.grids[1][0].id},
                       headers=w.coordinator.headers)
    assert moved.status_code == 200, moved.text

    again = push(client, w.volunteer_a, [home, child])
    assert statuses(again) == ["duplicate", "duplicate"]
    assert [r["record"] for r in again["results"]] == [None, None]
    assert "移走的孩子" not in str(again) and "青山村2组8号" not in str(again)
    # Someone else of the village left behind learns nothing either: as for any record not theirs.
    other = user_client(client, session, w.town.villages[0], Role.volunteer)
    refused = push(client, other, [home, child])
    assert statuses(refused) == ["rejected", "rejected"]
    assert [r["problem"]["code"] for r in refused["results"]] == ["household-not-found", "household-not-found"]
    assert (_count(session, Household), _count(session, Person)) == (1, 1)
