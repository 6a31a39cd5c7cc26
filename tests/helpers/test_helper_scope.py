"""Issue 13, fault 2: a helper sees the children assigned to them, and nothing else of the town.

A principal whose access to children's records comes only from the helper role sees the children
with an accepted assignment to them, those children's households and those households' visits,
inside its jurisdiction; everything else answers exactly as a record outside the jurisdiction does
(404, absent from lists, pulls, counts). The condition is one function (backend/accounts/scope.py)
used by every read: REST lookups and lists, the sync pull (records and removals), coverage counts,
photos. The endpoint and permission matrices walk the same axis over every operation.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session

from backend.accounts.models import User, UserRole
from backend.accounts.permissions import Action, Role
from backend.accounts.principal import Principal
from backend.core.pagination import encode_cursor
from backend.helpers.models import AssignmentStatus, HelperProfile
from backend.registry.models import Person
from tests.factories import SignedIn
from tests.helpers.factories import assign, make_helper
from tests.matrix_support import JPEG
from tests.media.conftest import media_root  # noqa: F401 (a fixture)
from tests.notifications.factories import headers_for
from tests.registry.factories import (
    World,
    child_item,
    grid_centre,
    household_item,
    make_world,
    push,
    statuses,
    visit_item,
)
from tests.sync.test_sync_pull import pull_all

API = "/api/v1"
REGISTRY_KINDS = {"household", "person", "visit"}


def _family(client: TestClient, who: SignedIn, village: int = 0, grid: int = 0) -> dict[str, Any]:
    """A household with a guardian, two children (the guardian's wards) and a visit, pushed by `who`."""
    home = household_item(village, grid, address=f"护蕾测试{uuid.uuid4().hex[:6]}号")
    guardian = {"kind": "person", "client_uuid": str(uuid.uuid4()), "base_version": None,
                "data": {"role": "guardian", "household_uuid": home["client_uuid"], "name": "监护人甲",
                         "contact": "13900000001"}}
    wards = [{"uuid": guardian["client_uuid"], "relation": "祖母"}]
    kids = [child_item(home["client_uuid"], name=f"儿童{n}", guardians=wards) for n in range(2)]
    visit = visit_item(home["client_uuid"], at=grid_centre(village, grid))
    body = push(client, who, [home, guardian, *kids, visit])
    assert statuses(body) == ["created"] * 5, body
    records = [r["record"] for r in body["results"]]
    return {"household": records[0], "guardian": records[1], "children": records[2:4], "visit": records[4],
            "visit_uuid": visit["client_uuid"]}


def _helper(session: Session, w: World, *extra: Role) -> tuple[HelperProfile, SignedIn]:
    """A helper of the town (the demo helper's place) with a profile, signed in; `extra` roles added."""
    profile = make_helper(session, w.town.town, sex="female")
    for role in extra:
        session.add(UserRole(user_id=profile.user_id, role=role.value))
    session.commit()
    user = session.get(User, profile.user_id)
    assert user is not None
    return profile, SignedIn(user, headers_for(session, user), "")


def _person(session: Session, record: dict[str, Any]) -> Person:
    found = session.get(Person, record["id"])
    assert found is not None
    return found


def _photo(client: TestClient, who: SignedIn, visit_uuid: str) -> str:
    client_uuid = str(uuid.uuid4())
    resp = client.put(f"{API}/media/{client_uuid}", content=JPEG, headers=who.headers,
                      params={"parent_kind": "visit", "parent_uuid": visit_uuid})
    assert resp.status_code == 201, resp.text
    return client_uuid


def _households_counted(client: TestClient, who: SignedIn, unit_id: int | None) -> dict[str, Any]:
    resp = client.get(f"{API}/coverage", params={"unit_id": unit_id}, headers=who.headers)
    assert resp.status_code == 200, resp.text
    totals: dict[str, Any] = resp.json()["totals"]
    return totals


def _keys(items: list[dict[str, Any]], kind: str) -> set[str]:
    key = "client_uuid" if kind == "visit" else "uuid"
    return {str(i["record"][key]) for i in items if i["kind"] == kind}


def test_who_sees_children_by_assignment_only() -> None:
    """The helper role reaches children by assignment; another role granting the same right (a
    volunteer's, a police officer's) keeps its area-wide view; a role without the right adds nothing."""

    def principal(*roles: Role) -> Principal:
        return Principal(user_id=1, roles=frozenset(roles), org_unit_id=1, org_path="/1/")

    helper = principal(Role.helper)
    assert all(helper.by_assignment(a) for a in (Action.child_read, Action.household_read, Action.visit_read,
                                                 Action.visit_create, Action.media_read, Action.coverage_read))
    assert not principal(Role.helper, Role.volunteer).by_assignment(Action.child_read)
    assert not principal(Role.helper, Role.police).by_assignment(Action.visit_read)
    assert principal(Role.helper, Role.police).by_assignment(Action.visit_create)  # police record no visits
    assert principal(Role.helper, Role.market_officer).by_assignment(Action.child_read)
    assert not principal(Role.helper, Role.market_officer).by_assignment(Action.media_read)
    assert not principal(Role.helper, Role.admin).by_assignment(Action.coverage_read)
    assert not principal(Role.volunteer).by_assignment(Action.child_read)
    assert not principal(Role.market_officer).by_assignment(Action.child_read)  # no access at all


def test_a_helper_without_an_accepted_assignment_reads_no_child_household_or_visit(
    client: TestClient, session: Session, media_root: Any  # noqa: F811
) -> None:
    w = make_world(client, session)
    families = [_family(client, w.volunteer_a), _family(client, w.volunteer_a, grid=1)]
    photo = _photo(client, w.volunteer_a, families[0]["visit_uuid"])
    profile, helper = _helper(session, w)
    # An offer waiting for the helper's answer opens nothing: the child's record comes with accepting.
    assign(session, _person(session, families[0]["children"][0]), profile, AssignmentStatus.offered)

    items, _ = pull_all(client, helper)
    assert {i["kind"] for i in items} & REGISTRY_KINDS == set(), "the helper's phone received the town's children"
    assert [i["record"]["status"] for i in items if i["kind"] == "assignment"] == ["offered"]
    listed = client.get(f"{API}/households", headers=helper.headers)
    assert listed.status_code == 200 and listed.json()["items"] == []
    assert client.get(f"{API}/visits", headers=helper.headers).json() == []
    for family in families:
        home = family["household"]
        for path in (f"households/{home['id']}", f"households/{home['id']}/members", f"visits/{family['visit']['id']}",
                     *(f"persons/{p['id']}" for p in [*family["children"], family["guardian"]]),
                     *(f"persons/{p['id']}/risk-history" for p in family["children"])):
            resp = client.get(f"{API}/{path}", headers=helper.headers)
            assert resp.status_code == 404, f"{path}: {resp.status_code} {resp.text[:200]}"
        pushed = push(client, helper, [visit_item(home["uuid"], at=grid_centre(0))])["results"][0]
        assert pushed["status"] == "rejected" and pushed["problem"]["code"] == "household-not-found"
    assert client.get(f"{API}/media/{photo}", headers=helper.headers).status_code == 404
    assert client.get(f"{API}/media/{photo}/upload", headers=helper.headers).status_code == 404
    media = client.get(f"{API}/media", params={"parent_kind": "visit", "parent_uuid": families[0]["visit_uuid"]},
                       headers=helper.headers)
    assert media.status_code == 200 and media.json() == []
    totals = _households_counted(client, helper, w.town.villages[0].id)
    assert totals["households"] == 0 and sum(totals["children"].values()) == 0
    # The same records are there for a volunteer of the village: the helper is refused by the relation.
    assert _households_counted(client, w.volunteer_a, w.town.villages[0].id)["households"] == 2


def test_an_accepted_assignment_opens_the_child_its_household_and_their_visits_and_nothing_more(
    client: TestClient, session: Session, media_root: Any  # noqa: F811
) -> None:
    w = make_world(client, session)
    family, other = _family(client, w.volunteer_a), _family(client, w.volunteer_a, grid=1)
    photo = _photo(client, w.volunteer_a, family["visit_uuid"])
    mine, sibling = family["children"]
    home = family["household"]
    profile, helper = _helper(session, w)
    assign(session, _person(session, mine), profile)

    child = client.get(f"{API}/persons/{mine['id']}", headers=helper.headers)
    assert child.status_code == 200, child.text
    assert [g["name"] for g in child.json()["guardians"]] == ["监护人甲"]  # how to reach the family
    assert client.get(f"{API}/persons/{mine['id']}/risk-history", headers=helper.headers).status_code == 200
    for hidden in (sibling, family["guardian"], *other["children"]):
        assert client.get(f"{API}/persons/{hidden['id']}", headers=helper.headers).status_code == 404
    assert client.get(f"{API}/households/{home['id']}", headers=helper.headers).status_code == 200
    members = client.get(f"{API}/households/{home['id']}/members", headers=helper.headers).json()
    assert [m["uuid"] for m in members] == [mine["uuid"]]
    assert [h["id"] for h in client.get(f"{API}/households", headers=helper.headers).json()["items"]] == [home["id"]]
    assert client.get(f"{API}/households/{other['household']['id']}", headers=helper.headers).status_code == 404
    assert [v["id"] for v in client.get(f"{API}/visits", headers=helper.headers).json()] == [family["visit"]["id"]]
    assert client.get(f"{API}/visits/{other['visit']['id']}", headers=helper.headers).status_code == 404
    assert client.get(f"{API}/media/{photo}", headers=helper.headers).status_code == 200
    # A follow-up visit of the family is recorded like any visit; another family's is refused.
    results = push(client, helper, [visit_item(home["uuid"], at=grid_centre(0)),
                                    visit_item(other["household"]["uuid"], at=grid_centre(0, 1))])["results"]
    assert [r["status"] for r in results] == ["created", "rejected"]
    assert results[1]["problem"]["code"] == "household-not-found"

    items, _ = pull_all(client, helper)
    assert _keys(items, "person") == {mine["uuid"]}
    assert _keys(items, "household") == {home["uuid"]}
    assert {i["record"]["household_uuid"] for i in items if i["kind"] == "visit"} == {home["uuid"]}
    totals = _households_counted(client, helper, w.town.villages[0].id)
    assert totals["households"] == 1 and sum(totals["children"].values()) == 1


def test_a_helper_who_is_also_a_volunteer_keeps_the_volunteers_view(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    family = _family(client, w.volunteer_a)
    _, helper = _helper(session, w, Role.volunteer)
    assert client.get(f"{API}/persons/{family['children'][1]['id']}", headers=helper.headers).status_code == 200
    items, _ = pull_all(client, helper)
    assert _keys(items, "household") == {family["household"]["uuid"]}


def _apply(store: dict[tuple[str, str], dict[str, Any]], items: list[dict[str, Any]]) -> None:
    """What a phone does with pull items (sync.md): upsert by key; a removal deletes the record, and a
    household's removal its visits too."""
    for item in items:
        record = item["record"]
        if item["kind"] == "removal":
            if record["kind"] == "assignment":
                store.pop(("assignment", str(record["id"])), None)
                continue
            store.pop((record["kind"], str(record["uuid"])), None)
            if record["kind"] == "household":
                for key in [k for k, v in store.items() if k[0] == "visit" and v["household_uuid"] == record["uuid"]]:
                    del store[key]
        elif item["kind"] in {"household", "person"}:
            store[(item["kind"], str(record["uuid"]))] = record
        elif item["kind"] == "visit":
            store[("visit", str(record["client_uuid"]))] = record
        elif item["kind"] == "assignment":
            store[("assignment", str(record["id"]))] = record


def _phone(client: TestClient, who: SignedIn, cursor: str | None = None,
           store: dict[tuple[str, str], dict[str, Any]] | None = None) -> tuple[dict[tuple[str, str], Any], str]:
    held = {} if store is None else store
    items, cursor = pull_all(client, who, cursor, limit=2)
    _apply(held, items)
    return held, cursor


def _registry(store: dict[tuple[str, str], Any]) -> set[tuple[str, str]]:
    return {k for k in store if k[0] in REGISTRY_KINDS}


def test_accepting_brings_the_child_to_the_helpers_phone_and_ending_takes_it_away(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    family = _family(client, w.volunteer_a)
    mine, sibling = family["children"]
    home = family["household"]
    profile, helper = _helper(session, w)
    coordinator = w.coordinator.headers
    offer = assign(session, _person(session, mine), profile, AssignmentStatus.offered)
    phone, cursor = _phone(client, helper)
    assert _registry(phone) == set()

    accepted = client.post(f"{API}/helpers/assignments/{offer.id}/accept", headers=helper.headers)
    assert accepted.status_code == 200, accepted.text
    phone, cursor = _phone(client, helper, cursor, phone)
    everything = {("person", mine["uuid"]), ("household", home["uuid"]), ("visit", family["visit_uuid"])}
    assert _registry(phone) == everything, "accepting did not bring the child's records (older than the cursor)"

    # The sibling is taken on too; ending the first keeps the household (the sibling's) on the phone.
    second = assign(session, _person(session, sibling), profile)
    phone, cursor = _phone(client, helper, cursor, phone)
    assert ("person", sibling["uuid"]) in phone
    ended = client.post(f"{API}/helpers/assignments/{offer.id}/end", headers=coordinator)
    assert ended.status_code == 200 and ended.json()["status"] == "ended", ended.text
    phone, cursor = _phone(client, helper, cursor, phone)
    assert _registry(phone) == everything - {("person", mine["uuid"])} | {("person", sibling["uuid"])}
    assert client.get(f"{API}/persons/{mine['id']}", headers=helper.headers).status_code == 404

    # The last child goes to another helper: household, child and visit history leave this phone and
    # reach the other helper's, whose cursor is older than all of them.
    other_profile, other = _helper(session, w)
    other_phone, other_cursor = _phone(client, other)
    session.execute(text("UPDATE helper_assignment SET helper_id = :h WHERE id = :id"),
                    {"h": other_profile.id, "id": second.id})
    session.commit()
    phone, cursor = _phone(client, helper, cursor, phone)
    assert _registry(phone) == set(), f"the helper's phone still holds {_registry(phone)}"
    other_phone, _ = _phone(client, other, other_cursor, other_phone)
    assert _registry(other_phone) == {("person", sibling["uuid"]), ("household", home["uuid"]),
                                      ("visit", family["visit_uuid"])}
    # A new install of each phone agrees with the incremental one.
    for who, store in ((helper, phone), (other, other_phone)):
        fresh, _ = _phone(client, who)
        assert _registry(fresh) == _registry(store)


def test_a_child_who_moves_to_another_household_takes_its_helpers_view_along(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    family, other = _family(client, w.volunteer_a), _family(client, w.volunteer_a, grid=1)
    mine = family["children"][0]
    profile, helper = _helper(session, w)
    assign(session, _person(session, mine), profile)
    phone, cursor = _phone(client, helper)
    assert ("household", family["household"]["uuid"]) in phone
    moved = client.put(f"{API}/persons/{mine['id']}", headers=w.volunteer_a.headers,
                       json={"version": mine["version"], "household_uuid": other["household"]["uuid"]})
    assert moved.status_code == 200, moved.text
    phone, _ = _phone(client, helper, cursor, phone)
    assert _registry(phone) == {("person", mine["uuid"]), ("household", other["household"]["uuid"]),
                                ("visit", other["visit_uuid"])}
    fresh, _ = _phone(client, helper)
    assert _registry(fresh) == _registry(phone)


def test_a_helper_hears_nothing_of_families_it_does_not_help(client: TestClient, session: Session) -> None:
    """A family moved within the town leaves a tombstone for the units' phones; a helper's phone never
    held it and must not receive even its ids, nor may the helper record a visit for it as 'left
    its view lately'."""
    w = make_world(client, session)
    family = _family(client, w.volunteer_a)
    _, helper = _helper(session, w)
    _, cursor = _phone(client, helper)
    home = family["household"]
    moved = client.put(f"{API}/households/{home['id']}", headers=w.coordinator.headers,
                       json={"version": home["version"], "grid_id": w.town.grids[1][0].id})
    assert moved.status_code == 200, moved.text
    items, _ = pull_all(client, helper, cursor)
    assert [i for i in items if i["kind"] == "removal"] == []
    [result] = push(client, helper, [visit_item(home["uuid"], at=grid_centre(1))])["results"]
    assert result["status"] == "rejected" and result["problem"]["code"] == "household-not-found"


def test_a_visit_recorded_offline_before_the_help_ended_is_kept(client: TestClient, session: Session) -> None:
    """Field work is never lost: the helper's phone recorded a follow-up visit offline, the help
    ended meanwhile; the visit is stored and its answer tells nothing of where the family lives."""
    w = make_world(client, session)
    family = _family(client, w.volunteer_a)
    profile, helper = _helper(session, w)
    held = assign(session, _person(session, family["children"][0]), profile)
    resp = client.post(f"{API}/helpers/assignments/{held.id}/end", headers=w.coordinator.headers)
    assert resp.status_code == 200, resp.text
    [result] = push(client, helper, [visit_item(family["household"]["uuid"], at=grid_centre(0))])["results"]
    assert result["status"] == "created", result
    assert result["record"]["household_id"] is None and result["record"]["lon"] is None


def test_only_a_coordinator_ends_help_and_only_help_under_way(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    family = _family(client, w.volunteer_a)
    profile, helper = _helper(session, w)
    offered = assign(session, _person(session, family["children"][0]), profile, AssignmentStatus.offered)
    accepted = assign(session, _person(session, family["children"][1]), profile)
    assert client.post(f"{API}/helpers/assignments/{accepted.id}/end", headers=helper.headers).status_code == 403
    refused = client.post(f"{API}/helpers/assignments/{offered.id}/end", headers=w.coordinator.headers)
    assert refused.status_code == 409 and refused.json()["code"] == "assignment-state", refused.text
    outside = client.post(f"{API}/helpers/assignments/{accepted.id}/end", headers=w.volunteer_b.headers)
    assert outside.status_code == 403
    done = client.post(f"{API}/helpers/assignments/{accepted.id}/end", headers=w.coordinator.headers)
    assert done.status_code == 200 and done.json()["status"] == "ended", done.text


def test_a_helpers_phone_synced_before_the_scope_existed_is_rebuilt(client: TestClient, session: Session) -> None:
    """Phones of helpers hold the whole town from before: their cursor no longer matches what they
    may see, so the next pull says reset and the phone drops its copy."""
    w = make_world(client, session)
    _family(client, w.volunteer_a)
    _, helper = _helper(session, w)
    old = encode_cursor({"r": 1, "p": w.town.town.path, "k": "household,person,template,assignment,visit"})
    resp = client.get(f"{API}/sync/pull", params={"cursor": old}, headers=helper.headers)
    assert resp.status_code == 200 and resp.json()["reset"] is True, resp.text
    assert {i["kind"] for i in resp.json()["items"]} & REGISTRY_KINDS == set()
