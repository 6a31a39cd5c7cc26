"""What a phone queues offline arrives in one push: items of one push relate as if pushed one by one.

A visit sent twice in one push (the queue resent an item it had not marked as sent) is stored once
and the second answers `duplicate`, not `conflict` (which tells the phone to record an amendment);
a correction of a correction made offline is stored after the correction it corrects."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlmodel import Session

from tests.registry.factories import household_item, make_world, push, statuses, visit_item


def test_the_same_visit_twice_in_one_push_is_stored_once(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home = household_item(0)
    push(client, w.volunteer_a, [home])
    visit = visit_item(home["client_uuid"])
    changed = {**visit, "data": {**visit["data"], "note": "另一份"}}
    body = push(client, w.volunteer_a, [visit, visit, changed])
    assert statuses(body) == ["created", "duplicate", "conflict"], body
    assert body["results"][1]["record"]["id"] == body["results"][0]["record"]["id"]
    assert body["results"][2]["record"] is not None  # a conflict carries the server's copy
    listed = client.get("/api/v1/visits", headers=w.volunteer_a.headers).json()
    assert [v["client_uuid"] for v in listed].count(visit["client_uuid"]) == 1


def test_a_correction_of_a_correction_in_one_push_is_stored_in_order(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home = household_item(0)
    visit = visit_item(home["client_uuid"])
    first = visit_item(home["client_uuid"], kind="amendment", amends_uuid=visit["client_uuid"], note="更正")
    second = visit_item(home["client_uuid"], kind="amendment", amends_uuid=first["client_uuid"], note="再更正")
    unrelated = visit_item(home["client_uuid"], kind="amendment", amends_uuid=str(uuid.uuid4()))
    body = push(client, w.volunteer_a, [home, visit, first, second, unrelated])
    assert statuses(body) == ["created", "created", "created", "created", "rejected"], body
    # Every version names the first visit of its chain (a later review may skip a version without
    # cutting the chain).
    assert body["results"][3]["record"]["amends_id"] == body["results"][1]["record"]["id"]
