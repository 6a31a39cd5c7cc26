"""Inspections and the problem ledger: found -> measure and deadline -> re-inspection -> closed."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.core import clock
from backend.inspections.service import mark_overdue
from backend.venues.models import VenueType
from tests.factories import sign_in
from tests.venues.factories import grid_point, inspection_body, make_venue, make_world


def _today() -> date:
    return clock.now().astimezone(clock.SHANGHAI).date()


def test_a_hotel_answering_no_to_a_five_musts_item_gets_a_problem_with_a_deadline(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    hotel = make_venue(session, w.town, venue_type=VenueType.hotel)
    body = inspection_body(hotel, no=("five_musts.guardian",), at=grid_point((0, 0)))
    resp = client.post("/api/v1/inspections", json=body, headers=w.market.headers)
    assert resp.status_code == 201, resp.text
    inspection = resp.json()
    assert inspection["checklist_code"] == "accommodation"
    [problem] = inspection["problems_opened"]
    assert problem["item_code"] == "five_musts.guardian"
    assert problem["status"] == "open"
    assert problem["deadline_date"] == (_today() + timedelta(days=3)).isoformat()
    assert "监护人联系方式" in problem["measure"]
    assert problem["responsible_party"].startswith(hotel.name)
    ledger = client.get("/api/v1/problems", params={"venue_id": hotel.id}, headers=w.coordinator.headers).json()
    assert [p["id"] for p in ledger] == [problem["id"]]


def test_only_a_reinspection_by_an_officer_closes_a_problem(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    hotel = make_venue(session, w.town)
    first = client.post("/api/v1/inspections", json=inspection_body(hotel, no=("five_musts.identity",)),
                        headers=w.police.headers).json()
    pid = first["problems_opened"][0]["id"]

    refused = client.patch(f"/api/v1/problems/{pid}", json={"status": "verified"}, headers=w.coordinator.headers)
    assert refused.status_code == 409 and refused.json()["code"] == "problem-transition-refused"
    submitted = client.patch(f"/api/v1/problems/{pid}", json={"status": "submitted", "note": "已整改并提交照片"},
                             headers=w.coordinator.headers)
    assert submitted.status_code == 200 and submitted.json()["status"] == "submitted"
    coordinator_recheck = client.post("/api/v1/inspections", headers=w.coordinator.headers,
                                      json=inspection_body(hotel, rechecks=[{"problem_id": pid, "fixed": True}]))
    assert coordinator_recheck.status_code == 403
    assert client.get(f"/api/v1/problems/{pid}", headers=w.police.headers).json()["status"] == "submitted"

    recheck = client.post("/api/v1/inspections", headers=w.market.headers,
                          json=inspection_body(hotel, rechecks=[{"problem_id": pid, "fixed": True}]))
    assert recheck.status_code == 201, recheck.text
    assert recheck.json()["is_reinspection"] and recheck.json()["problems_verified"] == [pid]
    closed = client.get(f"/api/v1/problems/{pid}", headers=w.police.headers).json()
    assert closed["status"] == "verified" and closed["verified_by_inspection_id"] == recheck.json()["id"]
    reopen = client.patch(f"/api/v1/problems/{pid}", json={"status": "rectifying"}, headers=w.coordinator.headers)
    assert reopen.status_code == 409


def test_a_failed_recheck_keeps_the_problem_open(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    cafe = make_venue(session, w.town, venue_type=VenueType.internet_cafe)
    first = client.post("/api/v1/inspections", json=inspection_body(cafe, no=("no_minors.sign",)),
                        headers=w.police.headers).json()
    pid = first["problems_opened"][0]["id"]
    client.post("/api/v1/inspections", headers=w.police.headers,
                json=inspection_body(cafe, rechecks=[{"problem_id": pid, "fixed": False, "note": "标志仍未张贴"}]))
    problem = client.get(f"/api/v1/problems/{pid}", headers=w.police.headers).json()
    assert problem["status"] == "rectifying" and problem["failed_rechecks"] == 1


def test_a_problem_past_its_deadline_is_overdue_and_listed_for_coordinators(
        client: TestClient, session: Session) -> None:
    # Start ten days back so that moving forward stays in the past for the token library's checks.
    clock.freeze(clock.now() - timedelta(days=10))
    w = make_world(client, session)
    ktv = make_venue(session, w.town, venue_type=VenueType.ktv)
    opened = client.post("/api/v1/inspections", json=inspection_body(ktv, no=("no_minors.admitted",)),
                         headers=w.police.headers).json()["problems_opened"][0]
    assert opened["deadline_date"] == (_today() + timedelta(days=1)).isoformat()
    assert client.get("/api/v1/problems/overdue", headers=w.coordinator.headers).json() == []

    clock.advance(timedelta(days=2))
    coordinator = sign_in(client, w.coordinator.user)  # the earlier token expired with the clock
    overdue = client.get("/api/v1/problems/overdue", headers=coordinator.headers).json()
    assert [(p["id"], p["status"], p["days_overdue"]) for p in overdue] == [(opened["id"], "overdue", 1)]
    risk = client.get(f"/api/v1/venues/{ktv.id}/risk", headers=coordinator.headers).json()
    assert {p["name"]: p["points"] for p in risk["parts"]}["overdue"] == 15
    assert mark_overdue(session) == 1
    session.commit()
    stored = client.get(f"/api/v1/problems/{opened['id']}", headers=coordinator.headers).json()
    assert stored["stored_status"] == "overdue"


def test_the_same_inspection_synced_twice_is_stored_once_and_a_changed_body_conflicts(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    bar = make_venue(session, w.town, venue_type=VenueType.bar)
    body = inspection_body(bar, no=("no_minors.employed",))
    first = client.post("/api/v1/inspections", json=body, headers=w.police.headers)
    again = client.post("/api/v1/inspections", json=body, headers=w.police.headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["replayed"]
    assert len(client.get("/api/v1/problems", params={"venue_id": bar.id}, headers=w.police.headers).json()) == 1
    changed = client.post("/api/v1/inspections", json={**body, "notes": "改了"}, headers=w.police.headers)
    assert changed.status_code == 409 and changed.json()["code"] == "inspection-conflict"


def test_a_joint_inspection_far_from_the_venue_is_flagged(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    hotel = make_venue(session, w.town)
    far = grid_point((0, 4))  # another grid, well over 200 m away
    body = inspection_body(hotel, at=far, inspector_ids=[w.market.user.id])
    got = client.post("/api/v1/inspections", json=body, headers=w.police.headers).json()
    assert got["is_joint"] and {i["agency"] for i in got["inspectors"]} == {"police", "market_supervision"}
    assert got["location_mismatch"] and got["distance_m"] > 200
    near = client.post("/api/v1/inspections", json=inspection_body(hotel, at=grid_point((0, 0), 0.51, 0.5)),
                       headers=w.police.headers).json()
    assert not near["location_mismatch"] and not near["is_joint"]


def test_an_unanswered_item_or_a_checklist_for_another_venue_type_is_refused(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    hotel = make_venue(session, w.town)
    body = inspection_body(hotel)
    del body["answers"]["five_musts.report"]
    missing = client.post("/api/v1/inspections", json=body, headers=w.police.headers)
    assert missing.status_code == 422 and missing.json()["missing"] == ["five_musts.report"]
    wrong = client.post("/api/v1/inspections", json={**inspection_body(hotel), "checklist_code": "entertainment"},
                        headers=w.police.headers)
    assert wrong.status_code == 422 and wrong.json()["expected_code"] == "accommodation"


def test_checklists_come_in_chinese_and_english_per_venue_type(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    lists = client.get("/api/v1/inspection-checklists", params={"venue_type": "ktv"}, headers=w.police.headers).json()
    [ktv] = lists
    assert ktv["code"] == "entertainment" and ktv["current"]
    assert {i["code"] for i in ktv["items"]} == {"no_minors.admitted", "no_minors.sign", "no_minors.employed",
                                                 "no_minors.accompaniment", "no_minors.id_checks"}
    assert all(i["text_zh"] and i["text_en"] for i in ktv["items"])
    esports = client.get("/api/v1/inspection-checklists", params={"venue_type": "esports_hotel"},
                         headers=w.police.headers).json()[0]
    assert len([i for i in esports["items"] if i["code"].startswith("five_musts.")]) == 5


def test_penalties_are_recorded_with_the_inspection_and_count_in_the_risk(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    cafe = make_venue(session, w.town, venue_type=VenueType.internet_cafe)
    body = inspection_body(cafe, no=("no_minors.admitted",),
                           penalties=[{"kind": "fine", "amount_yuan": 5000, "decision_number": "市监罚〔2026〕1号"}])
    got = client.post("/api/v1/inspections", json=body, headers=w.market.headers).json()
    assert [p["kind"] for p in got["penalties"]] == ["fine"]
    extra = client.post("/api/v1/penalties", headers=w.market.headers,
                        json={"venue_id": cafe.id, "kind": "suspension", "note": "责令停业整顿"})
    assert extra.status_code == 201
    listed = client.get("/api/v1/penalties", params={"venue_id": cafe.id}, headers=w.coordinator.headers).json()
    assert [p["kind"] for p in listed] == ["suspension", "fine"]
    risk = client.get(f"/api/v1/venues/{cafe.id}/risk", headers=w.coordinator.headers).json()
    assert {p["name"]: p["points"] for p in risk["parts"]}["violations"] == 12  # 1 problem + 2 penalties


def test_a_photo_of_an_inspection_finds_its_inspection_and_the_venue_point(
        client: TestClient, session: Session) -> None:
    import uuid

    from backend.core.geo import point_lon_lat
    from backend.inspections.media_parent import resolve_inspection

    w = make_world(client, session)
    hotel = make_venue(session, w.town, venue_type=VenueType.hotel)
    body = inspection_body(hotel, at=grid_point((0, 0)))
    assert resolve_inspection(session, uuid.UUID(body["client_uuid"])) is None  # the photo came first
    assert client.post("/api/v1/inspections", json=body, headers=w.market.headers).status_code == 201
    parent = resolve_inspection(session, uuid.UUID(body["client_uuid"]))
    assert parent is not None
    assert (parent.kind, parent.org_unit_id) == ("inspection", hotel.org_unit_id)
    assert (parent.lon, parent.lat) == point_lon_lat(hotel.location)


def test_an_inspection_cannot_set_a_first_deadline_past_a_year_and_stores_nothing(
        client: TestClient, session: Session) -> None:
    # A deadline in 2199 would keep the problem from ever falling overdue, and so from escalating.
    w = make_world(client, session)
    hotel = make_venue(session, w.town, venue_type=VenueType.hotel)
    far = _today() + timedelta(days=366)
    body = inspection_body(hotel, no=("five_musts.guardian",),
                           findings=[{"item_code": "five_musts.guardian", "deadline_date": far.isoformat()}])
    refused = client.post("/api/v1/inspections", json=body, headers=w.market.headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "deadline-out-of-range"
    assert client.get("/api/v1/problems", params={"venue_id": hotel.id}, headers=w.coordinator.headers).json() == []
    body["findings"][0]["deadline_date"] = (_today() + timedelta(days=365)).isoformat()
    accepted = client.post("/api/v1/inspections", json=body, headers=w.market.headers)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["problems_opened"][0]["deadline_date"] == (_today() + timedelta(days=365)).isoformat()


def test_a_finding_naming_a_registered_child_or_an_id_number_is_refused_and_stores_nothing(
        client: TestClient, session: Session) -> None:
    # Problems are read by every officer, coordinator and member unit of the area; children's data
    # stays in the registry.
    w = make_world(client, session)
    hotel = make_venue(session, w.town, venue_type=VenueType.hotel)
    for finding, field in ((["接待未成年人，身份证110101201202290014", "整改"], "findings.0.description"),
                           (["未登记", "联系家长 13812345678"], "findings.0.measure")):
        body = inspection_body(hotel, findings=[{"description": finding[0], "measure": finding[1],
                                                 "deadline_date": (_today() + timedelta(days=3)).isoformat()}])
        refused = client.post("/api/v1/inspections", json=body, headers=w.market.headers)
        assert refused.status_code == 422, refused.text
        assert (refused.json()["code"], refused.json()["field"]) == ("text-personal-data", field)
    assert client.get("/api/v1/problems", params={"venue_id": hotel.id}, headers=w.coordinator.headers).json() == []


def test_a_measure_or_note_carrying_a_mobile_is_refused_on_the_ledger(client: TestClient, session: Session) -> None:
    # The measure is printed on the rectification notice handed to the venue's operator.
    w = make_world(client, session)
    hotel = make_venue(session, w.town, venue_type=VenueType.hotel)
    pid = client.post("/api/v1/inspections", json=inspection_body(hotel, no=("five_musts.identity",)),
                      headers=w.police.headers).json()["problems_opened"][0]["id"]
    for field in ("measure", "note"):
        refused = client.patch(f"/api/v1/problems/{pid}", json={field: "联系家长13812345678"}, headers=w.market.headers)
        assert refused.status_code == 422 and refused.json()["code"] == "text-personal-data", refused.text
    fine = client.patch(f"/api/v1/problems/{pid}", json={"measure": "完善登记"}, headers=w.market.headers)
    assert fine.status_code == 200, fine.text
