"""Deadlines of problems cannot be pushed out from below or parked for years (outside test M3): on a
挂牌督办 problem only the supervising unit (or one above it) moves the deadline; a new deadline (PATCH,
a failed re-inspection, a failed verification) lies between today and 365 days ahead."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
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


def test_a_problem_is_raised_with_a_deadline_inside_the_same_range(client: TestClient, session: Session) -> None:
    """Outside test round 3, 5: raising with 2199-12-31 was 201, so the problem never fell due and its
    escalation never started."""
    w = make_world(client, session)
    hotel = make_venue(session, w.town)
    subjects = ({"kind": "venue", "venue_id": hotel.id}, {"kind": "unit", "org_unit_id": w.town.villages[0].id})
    for subject in subjects:
        for bad in ("2199-12-31", (today() + timedelta(days=366)).isoformat(),
                    (today() - timedelta(days=1)).isoformat()):
            body = {"subject": subject, "source": "report", "description": "未建立强制报告台账", "measure": "建立台账",
                    "deadline_date": bad}
            resp = client.post(f"{API}/supervision/problems", json=body, headers=w.coordinator.headers)
            assert resp.status_code == 422, (bad, resp.text)
            assert resp.json()["code"] == "deadline-out-of-range" and resp.json()["field"] == "deadline_date"
        assert raise_problem(client, w.coordinator, subject, days=365)["deadline_date"] == (
            today() + timedelta(days=365)).isoformat()


def test_a_supervised_unit_problems_deadline_moves_only_from_the_supervising_unit(
        client: TestClient, session: Session) -> None:
    """Outside test round 3, 5: a non-venue problem had no way to move its deadline (the v1 ledger's
    PATCH /problems/{id} is venues' only). PATCH /supervision/problems/{id} moves it, by the one rule."""
    w = make_world(client, session)
    pid = raise_problem(client, w.village, {"kind": "unit", "org_unit_id": w.town.grids[0][0].id})["id"]
    later = (today() + timedelta(days=30)).isoformat()
    moved = client.patch(f"{API}/supervision/problems/{pid}", json={"deadline_date": later},
                         headers=w.village.headers)
    assert moved.status_code == 200 and moved.json()["deadline_date"] == later, moved.text
    assert client.patch(f"{API}/supervision/problems/{pid}", json={"deadline_date": "2199-12-31"},
                        headers=w.village.headers).json()["code"] == "deadline-out-of-range"
    assert client.post(f"{API}/supervision/problems/{pid}/supervise", json={},
                       headers=w.county.headers).status_code == 200
    # The village (the raising unit, now supervised from the county) may not push it out; the town neither.
    month = (today() + timedelta(days=60)).isoformat()
    for who in (w.village, w.coordinator):
        below = client.patch(f"{API}/supervision/problems/{pid}", json={"deadline_date": month}, headers=who.headers)
        assert below.status_code == 403 and below.json()["code"] == "deadline-set-by-supervising-unit", below.text
    # A unit that did not raise it and is not above the raising unit: refused as its verification is.
    assert client.patch(f"{API}/supervision/problems/{pid}", json={"deadline_date": month},
                        headers=w.foreign.headers).status_code == 404
    county = client.patch(f"{API}/supervision/problems/{pid}", json={"deadline_date": month},
                          headers=w.county.headers)
    assert county.status_code == 200 and county.json()["deadline_date"] == month
    assert client.patch(f"{API}/supervision/problems/{pid}", json={"deadline_date": "2199-12-31"},
                        headers=w.county.headers).json()["code"] == "deadline-out-of-range"
    # Clerks (supervision.rectify only) cannot move a deadline at all.
    assert client.patch(f"{API}/supervision/problems/{pid}", json={"deadline_date": later},
                        headers=w.committee.headers).status_code == 403
    # A venue's problem moves in the v1 ledger.
    hotel = make_venue(session, w.town)
    venue_pid = raise_problem(client, w.coordinator, {"kind": "venue", "venue_id": hotel.id})["id"]
    venue = client.patch(f"{API}/supervision/problems/{venue_pid}", json={"deadline_date": later},
                         headers=w.coordinator.headers)
    assert venue.status_code == 409, venue.text
    session.expire_all()
    moves = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "supervision.deadline",
                                                     col(AuditEntry.object_id) == str(pid))).scalars().all()
    assert [(m.details or {}).get("to") for m in moves] == [later, month]
