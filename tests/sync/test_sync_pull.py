"""GET /sync/pull: a stable cursor over everything in the caller's jurisdiction."""

from __future__ import annotations

import gzip
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.models import User
from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.config import get_settings
from backend.core.jobs import run_due_jobs
from backend.registry.models import RiskLevel
from tests.factories import SignedIn, make_town, make_user
from tests.helpers.factories import grid_point, make_child, make_helper, raise_risk
from tests.notifications.factories import headers_for
from tests.registry.factories import child_item, household_item, make_world, push, seed_household, statuses


def pull_all(
    client: TestClient, who: SignedIn, cursor: str | None = None, limit: int = 1000
) -> tuple[list[dict[str, Any]], str]:
    items: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        resp = client.get("/api/v1/sync/pull", params=params, headers=who.headers)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if not body["has_more"]:
            return items, cursor


def test_new_phone_rebuilds_its_jurisdiction_from_nothing(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    mine = [seed_household(client, w.volunteer_a, grid=g)[0]["uuid"] for g in range(3)]
    seed_household(client, w.volunteer_b, village=1)
    items, _ = pull_all(client, w.volunteer_a, limit=2)  # several pages
    households = {i["record"]["uuid"] for i in items if i["kind"] == "household"}
    assert households == set(mine)
    assert sum(1 for i in items if i["kind"] == "person") == 3
    assert any(i["kind"] == "template" and i["record"]["code"] == "six-looks-six-asks" for i in items)
    revs = [i["rev"] for i in items]
    assert revs == sorted(revs) and len(set(revs)) == len(revs)
    person = next(i["record"] for i in items if i["kind"] == "person")
    assert "*" in person["id_number_masked"] and "id_cipher" not in person


def test_a_phone_catches_up_with_only_what_changed(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    _, cursor = pull_all(client, w.volunteer_a)
    again, cursor = pull_all(client, w.volunteer_a, cursor)
    assert again == []
    edit = household_item(0, uid=uuid.UUID(home["uuid"]), base_version=1, address="新地址")
    assert statuses(push(client, w.volunteer_a, [edit])) == ["updated"]
    h2 = household_item(0, grid=1)
    push(client, w.volunteer_a, [h2, child_item(h2["client_uuid"])])
    changes, _ = pull_all(client, w.volunteer_a, cursor)
    assert [(c["kind"], c["record"]["uuid"]) for c in changes][:2] == [
        ("household", home["uuid"]),
        ("household", h2["client_uuid"]),
    ]
    assert changes[0]["record"]["address"] == "新地址"
    assert len(changes) == 3


def test_volunteer_of_village_a_cannot_read_or_pull_village_b(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    b_home, b_kids = seed_household(client, w.volunteer_b, village=1)
    items, _ = pull_all(client, w.volunteer_a)
    assert not [i for i in items if i["kind"] in ("household", "person")]
    assert client.get(f"/api/v1/households/{b_home['id']}", headers=w.volunteer_a.headers).status_code == 404
    assert client.get(f"/api/v1/persons/{b_kids[0]['id']}", headers=w.volunteer_a.headers).status_code == 404
    put = client.put(
        f"/api/v1/households/{b_home['id']}",
        headers=w.volunteer_a.headers,
        json={"version": 1, "address": "x", "grid_id": w.town.grids[1][0].id},
    )
    assert put.status_code == 404
    listing = client.get("/api/v1/households", headers=w.volunteer_a.headers).json()
    assert listing["items"] == []
    assert client.get(f"/api/v1/households/{b_home['id']}", headers=w.volunteer_b.headers).status_code == 200


def test_market_officer_cannot_pull_children(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    seed_household(client, w.volunteer_a)
    assert client.get("/api/v1/sync/pull", headers=w.market.headers).status_code == 404


def test_pull_is_gzip_compressed_when_accepted(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    for g in range(3):
        seed_household(client, w.volunteer_a, grid=g, children=2)
    resp = client.get("/api/v1/sync/pull", headers={**w.volunteer_a.headers, "Accept-Encoding": "gzip"})
    assert resp.headers.get("content-encoding") == "gzip"
    assert resp.json()["items"]  # httpx decodes it
    raw = client.get("/api/v1/sync/pull", headers={**w.volunteer_a.headers, "Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert len(gzip.compress(raw.content)) < len(raw.content)


def test_a_foreign_cursor_is_refused_clearly(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    resp = client.get("/api/v1/sync/pull", params={"cursor": "!!not-ours"}, headers=w.volunteer_a.headers)
    assert resp.status_code == 422


def _pulled_assignments(client: TestClient, session: Session, user: User | None, cursor: str | None = None
                        ) -> tuple[list[dict[str, Any]], str]:
    assert user is not None
    items, cursor = pull_all(client, SignedIn(user, headers_for(session, user), ""), cursor)
    return [i["record"] for i in items if i["kind"] == "assignment"], cursor


def test_a_helper_pulls_their_assignments_and_each_change_of_status(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = make_user(session, town.town, Role.coordinator)
    child = make_child(session, town.grids[0][0], sex="male", at=grid_point(0, 0))
    best = make_helper(session, town.town, sex="male", at=grid_point(0, 0, east=0.55))
    other = make_helper(session, town.town, sex="male", at=grid_point(0, 2), capacity=0)
    raise_risk(session, child, RiskLevel.major)
    coord = headers_for(session, coordinator)
    helper_user = session.get(User, best.user_id)
    assert helper_user is not None
    helper = headers_for(session, helper_user)

    [proposal] = client.post("/api/v1/helpers/proposals", headers=coord).json()
    offered = client.post(f"/api/v1/helpers/assignments/{proposal['id']}/confirm", headers=coord).json()
    pulled, cursor = _pulled_assignments(client, session, helper_user)
    assert pulled == [offered]  # the same shape as GET /helpers/assignments/{id}
    assert _pulled_assignments(client, session, helper_user, cursor)[0] == []

    assert client.post(f"/api/v1/helpers/assignments/{proposal['id']}/accept", headers=helper).status_code == 200
    changed, _ = _pulled_assignments(client, session, helper_user, cursor)
    assert [(a["id"], a["status"]) for a in changed] == [(proposal["id"], "accepted")]
    # Other helpers never get it; coordinators get their jurisdiction's.
    assert _pulled_assignments(client, session, session.get(User, other.user_id))[0] == []
    assert [a["id"] for a in _pulled_assignments(client, session, coordinator)[0]] == [proposal["id"]]


def test_an_offer_that_lapses_leaves_the_helpers_phone(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HULEI_HELPER_AUTO_CONFIRM", "true")
    get_settings.cache_clear()
    town = make_town(session)
    child = make_child(session, town.grids[0][0], sex="male", at=grid_point(0, 0))
    best = make_helper(session, town.town, sex="male", at=grid_point(0, 0, east=0.55))
    raise_risk(session, child, RiskLevel.major)
    run_due_jobs()
    helper_user = session.get(User, best.user_id)
    [offer], cursor = _pulled_assignments(client, session, helper_user)
    assert offer["status"] == "offered"
    clock.advance(timedelta(hours=25))
    run_due_jobs()  # the bulk UPDATE that lapses offers leaves a tombstone (a database trigger)
    items, _ = pull_all(client, SignedIn(helper_user, headers_for(session, helper_user), ""), cursor)
    assert [(i["kind"], i["record"]) for i in items] == [
        ("removal", {"kind": "assignment", "uuid": None, "id": offer["id"]})
    ]


def test_a_reinstalled_phone_learns_who_was_visited_and_when_but_no_answers(
    client: TestClient, session: Session
) -> None:
    from tests.registry.factories import grid_centre, visit_item

    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    visit = visit_item(home["uuid"], at=grid_centre(0))
    amendment = visit_item(home["uuid"], at=grid_centre(0), kind="amendment", amends_uuid=visit["client_uuid"])
    push(client, w.volunteer_a, [visit])
    push(client, w.volunteer_a, [amendment])
    b_home, _ = seed_household(client, w.volunteer_b, village=1)
    push(client, w.volunteer_b, [visit_item(b_home["uuid"], at=grid_centre(1))])

    items, _ = pull_all(client, w.volunteer_a)
    history = [i["record"] for i in items if i["kind"] == "visit"]
    assert [(v["client_uuid"], v["amends_uuid"]) for v in history] == [
        (visit["client_uuid"], None),
        (amendment["client_uuid"], visit["client_uuid"]),
    ]
    assert {v["household_uuid"] for v in history} == {home["uuid"]}
    assert history[0]["outcome"] == "visited" and history[0]["device_time"].startswith("2026-11-20")
    assert not {"answers", "note", "children_seen", "lon", "lat"} & set(history[0])


def test_visit_history_is_bounded_to_the_recent_window(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.registry.factories import grid_centre, visit_item

    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    visited = clock.now() - timedelta(days=9)
    push(client, w.volunteer_a, [visit_item(home["uuid"], at=grid_centre(0), device_time=visited.isoformat())])
    monkeypatch.setenv("HULEI_SYNC_VISIT_HISTORY_DAYS", "5")  # the visit is 9 days old by its phone's clock
    get_settings.cache_clear()
    items, _ = pull_all(client, w.volunteer_a)
    assert [i for i in items if i["kind"] == "visit"] == []
