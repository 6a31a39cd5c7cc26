"""A record that leaves a user's view leaves the user's phone too: incremental pulls carry removals."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session

from backend.accounts.models import User
from backend.accounts.permissions import Role
from backend.core.config import get_settings
from backend.registry.models import RiskLevel
from tests.factories import SignedIn, make_town, make_user
from tests.helpers.factories import grid_point, make_child, make_helper, raise_risk
from tests.notifications.factories import headers_for
from tests.registry.factories import make_world, seed_household
from tests.sync.test_sync_pull import pull_all


def _apply(store: dict[tuple[str, str], dict[str, Any]], items: list[dict[str, Any]]) -> None:
    """What a phone does with pull items: upsert by key, delete on removal."""
    for item in items:
        record = item["record"]
        if item["kind"] == "removal":
            key = record["uuid"] if record["uuid"] is not None else str(record["id"])
            store.pop((record["kind"], key), None)
        elif item["kind"] in {"household", "person"}:
            store[(item["kind"], record["uuid"])] = record
        elif item["kind"] == "assignment":
            store[("assignment", str(record["id"]))] = record


def _phone(client: TestClient, who: SignedIn) -> tuple[dict[tuple[str, str], dict[str, Any]], str]:
    store: dict[tuple[str, str], dict[str, Any]] = {}
    items, cursor = pull_all(client, who, limit=2)
    _apply(store, items)
    return store, cursor


def _catch_up(client: TestClient, who: SignedIn, store: dict[tuple[str, str], dict[str, Any]], cursor: str) -> str:
    items, cursor = pull_all(client, who, cursor, limit=2)
    _apply(store, items)
    return cursor


def _registry_keys(store: dict[tuple[str, str], dict[str, Any]]) -> set[tuple[str, str]]:
    return {k for k in store if k[0] in {"household", "person"}}


def test_a_household_moved_to_another_village_leaves_the_old_phone_and_reaches_the_new_one_with_its_children(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    home, kids = seed_household(client, w.volunteer_a, children=2)
    kept, _ = seed_household(client, w.volunteer_a, grid=1)
    phone_a, cursor_a = _phone(client, w.volunteer_a)
    phone_b, cursor_b = _phone(client, w.volunteer_b)
    assert ("household", home["uuid"]) in phone_a

    new_grid = w.town.grids[1][0].id
    resp = client.put(f"/api/v1/households/{home['id']}", json={"version": 1, "grid_id": new_grid},
                      headers=w.coordinator.headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["org_unit_id"] == new_grid and resp.json()["address"] == home["address"]

    _catch_up(client, w.volunteer_a, phone_a, cursor_a)
    moved = {("household", home["uuid"])} | {("person", k["uuid"]) for k in kids}
    assert not moved & set(phone_a), "village 1's phone still holds the family it may no longer see"
    assert ("household", kept["uuid"]) in phone_a
    _catch_up(client, w.volunteer_b, phone_b, cursor_b)
    assert moved <= set(phone_b), "village 2's phone got the household without its children"
    assert {r["org_unit_id"] for k, r in phone_b.items() if k in moved} == {new_grid}
    # And the server agrees: what each phone holds is what it may read.
    assert client.get(f"/api/v1/households/{home['id']}", headers=w.volunteer_a.headers).status_code == 404
    for kid in kids:
        assert client.get(f"/api/v1/persons/{kid['id']}", headers=w.volunteer_b.headers).status_code == 200


def test_a_move_within_the_coordinators_town_is_an_update_not_a_removal(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    phone, cursor = _phone(client, w.coordinator)
    client.put(f"/api/v1/households/{home['id']}", json={"version": 1, "grid_id": w.town.grids[1][0].id},
               headers=w.coordinator.headers)
    items, _ = pull_all(client, w.coordinator, cursor)
    assert "removal" not in {i["kind"] for i in items}
    _apply(phone, items)
    assert phone[("household", home["uuid"])]["org_unit_id"] == w.town.grids[1][0].id


def test_any_path_that_moves_or_deletes_a_record_tells_the_phones_that_held_it(
    client: TestClient, session: Session
) -> None:
    """The tombstone is the database's doing: a bulk UPDATE or a DELETE written by hand (a future job,
    an operator's fix) is seen by phones exactly like a coordinator's move."""
    w = make_world(client, session)
    home, kids = seed_household(client, w.volunteer_a, children=2)
    phone, cursor = _phone(client, w.volunteer_a)
    village_b_grid = w.town.grids[1][0].id
    session.execute(text("UPDATE sync_counter SET value = value + 1 WHERE id = 1"))
    session.execute(text("UPDATE person SET org_unit_id = :g WHERE uuid = :u"),
                    {"g": village_b_grid, "u": _db_uuid(session, kids[0]["uuid"])})
    session.execute(text("DELETE FROM guardianship WHERE child_id = :id"), {"id": kids[1]["id"]})
    session.execute(text("DELETE FROM person WHERE id = :id"), {"id": kids[1]["id"]})
    session.commit()
    _catch_up(client, w.volunteer_a, phone, cursor)
    assert _registry_keys(phone) == {("household", home["uuid"])}


def _db_uuid(session: Session, value: str) -> Any:
    """A uuid as the backend stores it (PostgreSQL uuid, SQLite 32 hex characters)."""
    import uuid

    u = uuid.UUID(value)
    return u if session.get_bind().dialect.name == "postgresql" else u.hex


def test_an_assignment_declined_leaves_the_helpers_phone_and_other_helpers_never_see_it(
    client: TestClient, session: Session
) -> None:
    town = make_town(session)
    coordinator = make_user(session, town.town, Role.coordinator)
    child = make_child(session, town.grids[0][0], sex="male", at=grid_point(0, 0))
    first = make_helper(session, town.town, sex="male", at=grid_point(0, 0, east=0.55))
    raise_risk(session, child, RiskLevel.major)
    coord = headers_for(session, coordinator)
    [proposal] = client.post("/api/v1/helpers/proposals", headers=coord).json()
    client.post(f"/api/v1/helpers/assignments/{proposal['id']}/confirm", headers=coord)
    helper_user = session.get(User, first.user_id)
    assert helper_user is not None
    helper = SignedIn(helper_user, headers_for(session, helper_user), "")
    phone, cursor = _phone(client, helper)
    assert ("assignment", str(proposal["id"])) in phone

    resp = client.post(f"/api/v1/helpers/assignments/{proposal['id']}/decline", headers=helper.headers)
    assert resp.status_code == 204, resp.text
    _catch_up(client, helper, phone, cursor)
    assert ("assignment", str(proposal["id"])) not in phone
    # A new phone of the same helper agrees with the old one.
    fresh, _ = _phone(client, helper)
    assert {k for k in fresh if k[0] == "assignment"} == {k for k in phone if k[0] == "assignment"}


def test_a_removal_names_no_record_of_another_jurisdiction(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    seed_household(client, w.volunteer_a)
    b_home, _ = seed_household(client, w.volunteer_b, village=1)
    _, cursor = _phone(client, w.volunteer_a)
    # Village 2's household moves inside village 2: village 1 hears nothing of it.
    client.put(f"/api/v1/households/{b_home['id']}", json={"version": 1, "grid_id": w.town.grids[1][1].id},
               headers=w.coordinator.headers)
    items, _ = pull_all(client, w.volunteer_a, cursor)
    assert items == []


def test_a_phone_whose_user_gained_or_lost_a_kind_rebuilds(client: TestClient, session: Session) -> None:
    from backend.accounts.models import UserRole

    w = make_world(client, session)
    seed_household(client, w.volunteer_a)
    _, cursor = _phone(client, w.volunteer_a)
    session.add(UserRole(user_id=w.volunteer_a.user.id or 0, role=Role.helper.value))  # now reads assignments
    session.commit()
    resp = client.get("/api/v1/sync/pull", params={"cursor": cursor}, headers=w.volunteer_a.headers)
    assert resp.status_code == 200 and resp.json()["reset"] is True
    assert {i["kind"] for i in resp.json()["items"]} >= {"household", "person", "template"}


def test_a_households_visit_history_moves_with_it(client: TestClient, session: Session) -> None:
    from tests.registry.factories import grid_centre, push, visit_item

    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    visit = visit_item(home["uuid"], at=grid_centre(0))
    push(client, w.volunteer_a, [visit])
    _, cursor_b = _phone(client, w.volunteer_b)
    client.put(f"/api/v1/households/{home['id']}", json={"version": 1, "grid_id": w.town.grids[1][0].id},
               headers=w.coordinator.headers)
    items, _ = pull_all(client, w.volunteer_b, cursor_b)
    assert [i["record"]["client_uuid"] for i in items if i["kind"] == "visit"] == [visit["client_uuid"]]
    fresh_a, _ = pull_all(client, w.volunteer_a)
    assert [i for i in fresh_a if i["kind"] in {"visit", "household"}] == []
    # The answers are about the family: the old village reads them no more, through any path.
    assert client.get("/api/v1/visits", headers=w.volunteer_a.headers).json() == []
    resent = push(client, w.volunteer_a, [visit])
    assert resent["results"][0]["record"] is None
    assert len(client.get("/api/v1/visits", headers=w.volunteer_b.headers).json()) == 1


def test_a_visit_recorded_offline_before_the_phone_heard_of_a_move_is_kept(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.registry.factories import child_item, grid_centre, push, statuses, visit_item

    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    client.put(f"/api/v1/households/{home['id']}", json={"version": 1, "grid_id": w.town.grids[1][0].id},
               headers=w.coordinator.headers)
    body = push(client, w.volunteer_a, [visit_item(home["uuid"], at=grid_centre(0))])
    assert statuses(body) == ["created"], body
    record = body["results"][0]["record"]
    assert (record["household_id"], record["org_unit_id"], record["lon"]) == (None, None, None)
    history, _ = pull_all(client, w.volunteer_b)
    assert [i["record"]["household_uuid"] for i in history if i["kind"] == "visit"] == [home["uuid"]]
    # A household that was never in the pusher's village stays out of reach.
    b_home, _ = seed_household(client, w.volunteer_b, village=1, grid=2)
    assert statuses(push(client, w.volunteer_a, [visit_item(b_home["uuid"], at=grid_centre(1))])) == ["rejected"]
    # Nor can the old village add people to the moved family, or read them through a create's answer.
    assert statuses(push(client, w.volunteer_a, [child_item(home["uuid"])])) == ["rejected"]
    member = client.get(f"/api/v1/households/{home['id']}/members", headers=w.volunteer_b.headers).json()[0]
    probe = push(client, w.volunteer_a, [child_item(home["uuid"], uid=uuid.UUID(member["uuid"]))])
    assert statuses(probe) == ["rejected"] and probe["results"][0]["record"] is None
    # Past the grace period after the move (30 days by default) the old village's visits are refused too.
    monkeypatch.setenv("HULEI_SYNC_MOVED_RECORD_GRACE_DAYS", "0")
    get_settings.cache_clear()
    assert statuses(push(client, w.volunteer_a, [visit_item(home["uuid"], at=grid_centre(0))])) == ["rejected"]


def test_a_guardians_edit_reaches_the_phones_holding_the_child(client: TestClient, session: Session) -> None:
    from tests.registry.factories import child_item, household_item, push, statuses

    w = make_world(client, session)
    h = household_item(0)
    guardian = child_item(h["client_uuid"], role="guardian", name="王母", id_number="", contact="13700000000")
    kid = child_item(h["client_uuid"], guardians=[{"uuid": guardian["client_uuid"], "relation": "母亲"}])
    assert statuses(push(client, w.volunteer_a, [h, guardian, kid])) == ["created"] * 3
    phone, cursor = _phone(client, w.volunteer_a)
    edit = {"kind": "person", "client_uuid": guardian["client_uuid"], "base_version": 1,
            "data": {"contact": "13700000001"}}
    assert statuses(push(client, w.volunteer_a, [edit])) == ["updated"]
    _catch_up(client, w.volunteer_a, phone, cursor)
    assert phone[("person", kid["client_uuid"])]["guardians"][0]["contact"] == "13700000001"
