"""POST /sync/push: exactly once, per-item results, one bad item never loses the others."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

from backend.main import create_app
from backend.registry.models import Household, Person
from backend.visits.models import Visit
from tests.registry.factories import (
    child_id,
    child_item,
    grid_centre,
    household_item,
    make_world,
    push,
    seed_household,
    statuses,
    visit_item,
)


def _count(session: Session, model: Any) -> int:
    session.expire_all()
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_same_batch_pushed_twice_creates_nothing_new(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    h = household_item(0)
    batch = [h, child_item(h["client_uuid"]), *[visit_item(h["client_uuid"], at=grid_centre(0)) for _ in range(3)]]
    first = push(client, w.volunteer_a, batch)
    assert statuses(first) == ["created"] * 5
    counts = (_count(session, Household), _count(session, Person), _count(session, Visit))
    second = push(client, w.volunteer_a, batch)
    assert statuses(second) == ["duplicate"] * 5
    assert (_count(session, Household), _count(session, Person), _count(session, Visit)) == counts == (1, 1, 3)
    # The duplicate answer carries the stored record.
    assert second["results"][2]["record"]["id"] == first["results"][2]["record"]["id"]


def test_two_concurrent_pushes_of_one_uuid_store_one_record(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    item = visit_item(home["uuid"], at=grid_centre(0))
    barrier = threading.Barrier(2)
    answers: list[dict[str, Any]] = []

    def send() -> None:
        with TestClient(create_app()) as own:  # a second, independent HTTP client and connection pool
            barrier.wait()
            resp = own.post("/api/v1/sync/push", json={"items": [item]}, headers=w.volunteer_a.headers)
            assert resp.status_code == 200, resp.text
            answers.append(resp.json())

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(a["results"][0]["status"] for a in answers) == ["created", "duplicate"]
    assert _count(session, Visit) == 1
    assert answers[0]["results"][0]["record"]["id"] == answers[1]["results"][0]["record"]["id"]


def test_same_uuid_with_changed_content_is_a_conflict_and_keeps_the_stored_record(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    item = visit_item(home["uuid"], at=grid_centre(0), note="第一次")
    push(client, w.volunteer_a, [item])
    changed = {**item, "data": {**item["data"], "note": "改过的"}}
    body = push(client, w.volunteer_a, [changed])
    assert statuses(body) == ["conflict"]
    assert body["results"][0]["record"]["note"] == "第一次"
    assert _count(session, Visit) == 1


def test_a_batch_with_one_invalid_id_number_stores_the_others(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    h = household_item(0)
    good = child_id()
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    items = [
        h,
        child_item(h["client_uuid"], name="甲"),
        child_item(h["client_uuid"], name="乙", id_number=bad),
        child_item(h["client_uuid"], name="丙"),
        visit_item(h["client_uuid"], at=grid_centre(0)),
    ]
    body = push(client, w.volunteer_a, items)
    assert statuses(body) == ["created", "created", "rejected", "created", "created"]
    problem = body["results"][2]["problem"]
    assert problem["code"] == "invalid-id-number"
    assert "校验位" in problem["detail"]  # Chinese, actionable
    assert _count(session, Person) == 2


def test_an_adult_id_number_is_rejected_for_a_child(client: TestClient, session: Session) -> None:
    from datetime import date

    w = make_world(client, session)
    h = household_item(0)
    body = push(client, w.volunteer_a, [h, child_item(h["client_uuid"], id_number=child_id(date(1990, 1, 1)))])
    assert statuses(body) == ["created", "rejected"]
    assert "18" in body["results"][1]["problem"]["detail"]


def test_a_stale_edit_is_a_conflict_that_returns_the_server_copy(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    h = household_item(0)
    push(client, w.volunteer_a, [h])
    uid = uuid.UUID(h["client_uuid"])
    first_edit = household_item(0, uid=uid, base_version=1, address="青山村1组5号")
    assert statuses(push(client, w.volunteer_a, [first_edit])) == ["updated"]
    stale = household_item(0, uid=uid, base_version=1, address="青山村2组1号")
    body = push(client, w.volunteer_a, [stale])
    assert statuses(body) == ["conflict"]
    assert body["results"][0]["record"]["address"] == "青山村1组5号"
    assert body["results"][0]["record"]["version"] == 2
    # Resending the edit that was applied is harmless.
    assert statuses(push(client, w.volunteer_a, [first_edit])) == ["duplicate"]


def test_volunteer_cannot_edit_another_villages_household(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_b, village=1)
    edit = household_item(1, uid=uuid.UUID(home["uuid"]), base_version=1, address="改地址")
    body = push(client, w.volunteer_a, [edit])
    assert statuses(body) == ["rejected"]
    assert body["results"][0]["problem"]["status"] == 404
    visit = push(client, w.volunteer_a, [visit_item(home["uuid"], at=grid_centre(1))])
    assert visit["results"][0]["problem"]["status"] == 404
    assert _count(session, Visit) == 0


def test_household_outside_own_grids_cannot_be_created(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    body = push(client, w.volunteer_a, [household_item(3)])
    assert statuses(body) == ["rejected"]
    assert body["results"][0]["problem"]["code"] == "household-grid-unknown"


def test_more_than_500_items_are_refused_whole(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    items = [household_item(0) for _ in range(501)]
    resp = client.post("/api/v1/sync/push", json={"items": items}, headers=w.volunteer_a.headers)
    assert resp.status_code == 413
    assert resp.json()["code"] == "payload-too-large"


def test_unknown_kinds_and_malformed_items_are_rejected_individually(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    items = [
        {"kind": "inspection-v9", "client_uuid": str(uuid.uuid4()), "data": {}},
        {"kind": "visit", "client_uuid": str(uuid.uuid4()), "data": {"household_uuid": home["uuid"]}},
        visit_item(home["uuid"], at=grid_centre(0)),
    ]
    body = push(client, w.volunteer_a, items)
    assert statuses(body) == ["rejected", "rejected", "created"]
    assert body["results"][0]["problem"]["code"] == "sync-unknown-kind"
    assert body["results"][1]["problem"]["code"] == "invalid-input"


def test_market_officer_pushes_nothing_about_children(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    body = push(client, w.market, [household_item(0), visit_item(home["uuid"], at=grid_centre(0))])
    assert statuses(body) == ["rejected", "rejected"]
    assert _count(session, Visit) == 0


def test_push_results_in_english_when_the_phone_asks(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    h = household_item(0)
    bad = child_item(h["client_uuid"], id_number="990101201405061230")
    resp = client.post(
        "/api/v1/sync/push", json={"items": [h, bad]}, headers={**w.volunteer_a.headers, "Accept-Language": "en"}
    )
    problem = resp.json()["results"][1]["problem"]
    assert problem["title"] == "Invalid resident ID number"
