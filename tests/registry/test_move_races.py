"""A household's children and guardians live where it lives, even when they are written while a
coordinator moves it (sync.md: "A household that moves takes its children and guardians with it").

Each test holds a move open in a transaction of its own, sends the member's write through the API
meanwhile, and commits the move half a second later: the write must neither place the member by the
unit the household is leaving nor overwrite the move. (PostgreSQL let both happen when the write read
the household before taking the sync counter's lock; SQLite's writers queue from their first
statement, so there the write simply waits.)
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from backend.accounts import service as accounts
from backend.core.db import get_engine
from backend.registry import service as registry
from backend.registry.models import Household, Person
from backend.registry.schemas import HouseholdPatch
from tests.factories import SignedIn
from tests.registry.factories import World, child_item, household_item, make_world, push, statuses

# Long enough for the write to reach the point where it waits for the move, on a slow machine too.
MOVE_HELD_S = 0.5


def _while_moving(w: World, household_uuid: str, write: Any) -> Any:
    """Run `write()` in a thread while the coordinator's move of the household to village 1 is held
    open; commit the move, then return what the write answered."""
    coordinator = w.coordinator
    with Session(get_engine()) as mover:
        principal = accounts.principal_for(mover, coordinator.user.id, device_id=None, ip=None)
        assert principal is not None
        _, status = registry.save_household(
            mover, principal, uuid.UUID(household_uuid), 1,
            HouseholdPatch.model_validate({"grid_id": w.town.grids[1][0].id}),
        )
        assert status == "updated"
        answer: dict[str, Any] = {}
        writer = threading.Thread(target=lambda: answer.update(body=write()))
        writer.start()
        time.sleep(MOVE_HELD_S)
        mover.commit()
    writer.join(30)
    assert not writer.is_alive()
    return answer["body"]


def _members_where_their_household_is(session: Session, household_uuid: str) -> list[tuple[int, int, int]]:
    session.expire_all()
    household = session.exec(select(Household).where(Household.uuid == uuid.UUID(household_uuid))).one()
    members = session.exec(select(Person).where(Person.household_id == household.id)).all()
    return [(m.id or 0, m.org_unit_id, household.org_unit_id) for m in members]


def _pushed(client: TestClient, who: SignedIn, items: list[dict[str, Any]]) -> dict[str, Any]:
    return push(client, who, items)


def test_a_child_registered_during_a_move_lives_where_the_household_moved(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    household = _pushed(client, w.coordinator, [household_item(0)])["results"][0]["record"]
    body = _while_moving(w, household["uuid"], lambda: _pushed(client, w.coordinator, [child_item(household["uuid"])]))
    assert statuses(body) == ["created"], body
    assert body["results"][0]["record"]["org_unit_id"] == w.town.grids[1][0].id
    members = _members_where_their_household_is(session, household["uuid"])
    assert len(members) == 1
    assert all(unit == home for _, unit, home in members), members


def test_a_child_edited_during_a_move_is_not_left_behind(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    household = _pushed(client, w.coordinator, [household_item(0)])["results"][0]["record"]
    child = _pushed(client, w.coordinator, [child_item(household["uuid"])])["results"][0]["record"]
    edit = {"kind": "person", "client_uuid": child["uuid"], "base_version": 1, "data": {"name": "改名儿童"}}
    body = _while_moving(w, household["uuid"], lambda: _pushed(client, w.coordinator, [edit]))
    assert statuses(body) == ["updated"], body
    members = _members_where_their_household_is(session, household["uuid"])
    assert members and all(unit == home for _, unit, home in members), members


def test_a_volunteer_registering_a_child_of_a_household_moved_away_meanwhile_is_refused_not_misfiled(
    client: TestClient, session: Session
) -> None:
    """The household left the volunteer's village while the push waited: the child is not stored in
    the village the family left (the phone learns of the move from its next pull)."""
    w = make_world(client, session)
    household = _pushed(client, w.volunteer_a, [household_item(0)])["results"][0]["record"]
    body = _while_moving(w, household["uuid"], lambda: _pushed(client, w.volunteer_a, [child_item(household["uuid"])]))
    assert statuses(body) == ["rejected"], body
    assert _members_where_their_household_is(session, household["uuid"]) == []
