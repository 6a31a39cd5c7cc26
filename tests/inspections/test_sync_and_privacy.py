"""Inspections recorded offline sync through the same push endpoint as visits; market officers
never see children's records."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.venues.models import VenueType
from tests.factories import user_client
from tests.registry.factories import push, seed_household, statuses
from tests.venues.factories import inspection_body, make_venue, make_world


def _item(body: dict[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in body.items() if k != "client_uuid"}
    return {"kind": "inspection", "client_uuid": body["client_uuid"], "data": data}


def test_an_inspection_pushed_twice_through_sync_is_stored_once(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    hotel = make_venue(session, w.town, venue_type=VenueType.hotel)
    body = inspection_body(hotel, no=("five_musts.companion",))
    first = push(client, w.market, [_item(body)])
    assert statuses(first) == ["created"]
    record = first["results"][0]["record"]
    assert record["problems_opened"][0]["item_code"] == "five_musts.companion"
    again = push(client, w.market, [_item(body), _item({**body, "notes": "changed"})])
    assert statuses(again) == ["duplicate", "conflict"]
    assert again["results"][0]["record"]["id"] == record["id"]
    problems = client.get("/api/v1/problems", params={"venue_id": hotel.id}, headers=w.police.headers).json()
    assert len(problems) == 1


def test_a_bad_inspection_in_a_batch_is_rejected_without_failing_the_others(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    cafe = make_venue(session, w.town, venue_type=VenueType.internet_cafe)
    good = inspection_body(cafe)
    bad = inspection_body(cafe)
    bad["answers"] = {}
    body = push(client, w.police, [_item(good), _item(bad)])
    assert statuses(body) == ["created", "rejected"]
    assert body["results"][1]["problem"]["code"] == "incomplete-answers"


def test_a_market_officer_cannot_see_childrens_records(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    volunteer = user_client(client, session, w.town.villages[0], Role.volunteer)
    household, children = seed_household(client, volunteer, village=0, children=1)
    child_id = children[0]["id"]
    assert client.get(f"/api/v1/persons/{child_id}", headers=volunteer.headers).status_code == 200
    for path in (f"/api/v1/persons/{child_id}", f"/api/v1/households/{household['id']}/members",
                 "/api/v1/households"):
        resp = client.get(path, headers=w.market.headers)
        assert resp.status_code in (403, 404), (path, resp.status_code)
        assert "儿童" not in resp.text
