"""Deadlines of problems cannot be pushed out from below or parked for years (outside test M3): on a
挂牌督办 problem only the supervising unit (or one above it) moves the deadline; a new deadline (PATCH,
a failed re-inspection, a failed verification) lies between today and 365 days ahead."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from tests.factories import user_client
from tests.supervision.factories import API, make_world, raise_problem, today
from tests.venues.factories import inspection_body, make_venue


def test_only_the_supervising_unit_moves_a_supervised_venue_problems_deadline(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    market = user_client(client, session, w.town.town, Role.market_officer, agency=Agency.market_supervision)
    hotel = make_venue(session, w.town)
    pid = raise_problem(client, w.coordinator, {"kind": "venue", "venue_id": hotel.id})["id"]
    assert client.post(f"{API}/supervision/problems/{pid}/supervise", json={},
                       headers=w.county.headers).status_code == 200
    later = (today() + timedelta(days=30)).isoformat()
    for who in (market, w.coordinator):
        pushed = client.patch(f"{API}/problems/{pid}", json={"deadline_date": "2030-12-31"}, headers=who.headers)
        assert pushed.status_code in (403, 422), pushed.text  # 2030 is out of range as well as from below
        below = client.patch(f"{API}/problems/{pid}", json={"deadline_date": later}, headers=who.headers)
        assert below.status_code == 403 and below.json()["code"] == "deadline-set-by-supervising-unit", below.text
    # Progress without a new deadline still goes through from below.
    assert client.patch(f"{API}/problems/{pid}", json={"status": "rectifying"},
                        headers=market.headers).status_code == 200
    # A failed re-inspection by the market officer may not move it either.
    recheck = client.post(f"{API}/inspections", headers=market.headers, json=inspection_body(
        hotel, rechecks=[{"problem_id": pid, "fixed": False, "new_deadline_date": later}]))
    assert recheck.status_code == 403 and recheck.json()["code"] == "deadline-set-by-supervising-unit", recheck.text
    county = client.patch(f"{API}/problems/{pid}", json={"deadline_date": later}, headers=w.county.headers)
    assert county.status_code == 200 and county.json()["deadline_date"] == later


def test_a_new_deadline_lies_between_today_and_a_year_ahead(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    market = user_client(client, session, w.town.town, Role.market_officer, agency=Agency.market_supervision)
    hotel = make_venue(session, w.town)
    pid = raise_problem(client, w.coordinator, {"kind": "venue", "venue_id": hotel.id})["id"]
    for bad in ("2030-12-31", (today() + timedelta(days=366)).isoformat(), (today() - timedelta(days=1)).isoformat()):
        resp = client.patch(f"{API}/problems/{pid}", json={"deadline_date": bad}, headers=market.headers)
        assert resp.status_code == 422 and resp.json()["code"] == "deadline-out-of-range", (bad, resp.text)
        assert resp.json()["field"] == "deadline_date"
        recheck = client.post(f"{API}/inspections", headers=market.headers, json=inspection_body(
            hotel, rechecks=[{"problem_id": pid, "fixed": False, "new_deadline_date": bad}]))
        assert recheck.status_code == 422 and recheck.json()["code"] == "deadline-out-of-range", (bad, recheck.text)
    edge = (today() + timedelta(days=365)).isoformat()
    assert client.patch(f"{API}/problems/{pid}", json={"deadline_date": edge},
                        headers=market.headers).json()["deadline_date"] == edge

    unit = raise_problem(client, w.coordinator, {"kind": "unit", "org_unit_id": w.town.villages[0].id})["id"]
    client.post(f"{API}/supervision/problems/{unit}/rectification", json={"report": "已整改"},
                headers=w.village.headers)
    far = client.post(f"{API}/supervision/problems/{unit}/verification", headers=w.coordinator.headers,
                      json={"passed": False, "new_deadline_date": "2030-12-31"})
    assert far.status_code == 422 and far.json()["code"] == "deadline-out-of-range"
    assert far.json()["field"] == "new_deadline_date"
    month = (today() + timedelta(days=30)).isoformat()
    ok = client.post(f"{API}/supervision/problems/{unit}/verification", headers=w.coordinator.headers,
                     json={"passed": False, "new_deadline_date": month})
    assert ok.status_code == 200 and ok.json()["deadline_date"] == month and ok.json()["status"] == "rectifying"
