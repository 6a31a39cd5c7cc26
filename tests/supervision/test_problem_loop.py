"""The problem loop for any subject: raised by a supervising unit, rectified by the responsible unit,
verified (or sent back) by the raising side; venues keep their re-inspection rule."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.audit.models import AuditEntry
from backend.institutions.models import InstitutionKind
from tests.institutions.factories import make_institution
from tests.races import together
from tests.supervision.factories import API, make_world, raise_body, raise_problem
from tests.venues.factories import inspection_body, make_venue


def _actions(session: Session, problem_id: int) -> list[str]:
    session.expire_all()
    return list(session.execute(select(col(AuditEntry.action)).where(
        col(AuditEntry.object_type) == "problem", col(AuditEntry.object_id) == str(problem_id))
        .order_by(col(AuditEntry.id))).scalars())


def test_a_village_committee_rectifies_and_only_a_passed_verification_closes_the_problem(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    found = raise_problem(client, w.coordinator, {"kind": "unit", "org_unit_id": w.town.villages[0].id,
                                                  "agency": "village_committee"})
    pid = found["id"]
    assert found["subject"] == "unit" and found["venue_id"] is None and found["status"] == "open"
    assert found["responsible_agency"] == "village_committee" and found["source"] == "unannounced_check"
    assert found["raised_unit_id"] == w.town.town.id and found["subject_name"].startswith(w.town.villages[0].name)

    reported = client.post(f"{API}/supervision/problems/{pid}/rectification", json={"report": "已组织培训"},
                           headers=w.committee.headers)
    assert reported.status_code == 200, reported.text
    assert reported.json()["status"] == "submitted" and reported.json()["rectification"] == "已组织培训"
    again = client.post(f"{API}/supervision/problems/{pid}/rectification", json={"report": "再次提交"},
                        headers=w.committee.headers)
    assert again.status_code == 409 and again.json()["code"] == "problem-transition-refused"

    failed = client.post(f"{API}/supervision/problems/{pid}/verification", json={"passed": False, "note": "台账缺失"},
                         headers=w.coordinator.headers)
    assert failed.status_code == 200, failed.text
    assert failed.json()["status"] == "rectifying" and failed.json()["failed_rechecks"] == 1
    premature = client.post(f"{API}/supervision/problems/{pid}/verification", json={"passed": True},
                            headers=w.coordinator.headers)
    assert premature.status_code == 409  # nothing reported since it was sent back

    client.post(f"{API}/supervision/problems/{pid}/rectification", json={"report": "已补建台账"},
                headers=w.committee.headers)
    closed = client.post(f"{API}/supervision/problems/{pid}/verification", json={"passed": True},
                         headers=w.coordinator.headers)
    assert closed.status_code == 200 and closed.json()["status"] == "verified" and closed.json()["verified_at"]
    assert client.post(f"{API}/supervision/problems/{pid}/rectification", json={"report": "x"},
                       headers=w.committee.headers).status_code == 409
    assert _actions(session, pid) == ["supervision.raise", "supervision.rectify", "supervision.verify",
                                      "supervision.rectify", "supervision.verify"]


def test_a_schools_problem_is_addressed_to_its_supervising_agency_not_to_other_staff_of_the_village(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    school = make_institution(session, w.town.villages[0].id or 0, InstitutionKind.primary_school)
    found = raise_problem(client, w.coordinator, {"kind": "institution", "institution_id": school.id})
    assert found["responsible_agency"] == "education" and found["org_unit_id"] == school.org_unit_id
    assert found["subject_name"] == school.name and found["responsible_party"] == school.name

    assert client.get(f"{API}/supervision/problems/{found['id']}", headers=w.teacher.headers).status_code == 200
    assert client.get(f"{API}/supervision/problems/{found['id']}", headers=w.committee.headers).status_code == 404
    listed = client.get(f"{API}/supervision/problems", headers=w.committee.headers).json()
    assert found["id"] not in [p["id"] for p in listed]
    assert client.post(f"{API}/supervision/problems/{found['id']}/rectification", json={"report": "已整改"},
                       headers=w.committee.headers).status_code == 404
    assert client.post(f"{API}/supervision/problems/{found['id']}/rectification", json={"report": "已整改"},
                       headers=w.teacher.headers).status_code == 200


def test_a_venue_problem_from_an_unannounced_check_is_closed_only_by_a_reinspection(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    hotel = make_venue(session, w.town)
    found = raise_problem(client, w.coordinator, {"kind": "venue", "venue_id": hotel.id})
    pid = found["id"]
    client.post(f"{API}/supervision/problems/{pid}/rectification", json={"report": "已整改"},
                headers=w.police.headers)
    refused = client.post(f"{API}/supervision/problems/{pid}/verification", json={"passed": True},
                          headers=w.coordinator.headers)
    assert refused.status_code == 409 and refused.json()["code"] == "problem-transition-refused"
    # In the v1 ledger with the problems that no inspection found, as a review's are.
    v1 = client.get(f"{API}/problems", params={"include_review_problems": "true"}, headers=w.police.headers).json()
    assert pid in [p["id"] for p in v1]
    assert pid not in [p["id"] for p in client.get(f"{API}/problems", headers=w.police.headers).json()]
    recheck = client.post(f"{API}/inspections", headers=w.police.headers,
                          json=inspection_body(hotel, rechecks=[{"problem_id": pid, "fixed": True}]))
    assert recheck.status_code == 201, recheck.text
    assert client.get(f"{API}/supervision/problems/{pid}", headers=w.coordinator.headers).json()["status"] == "verified"


def test_a_units_problem_stays_out_of_the_v1_venue_ledger(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    pid = raise_problem(client, w.coordinator, {"kind": "unit", "org_unit_id": w.town.villages[0].id})["id"]
    for params in ({}, {"include_review_problems": "true"}):
        assert pid not in [p["id"] for p in client.get(f"{API}/problems", params=params,
                                                       headers=w.coordinator.headers).json()]
    assert client.get(f"{API}/problems/{pid}", headers=w.coordinator.headers).status_code == 404
    assert client.patch(f"{API}/problems/{pid}", json={"status": "rectifying"},
                        headers=w.coordinator.headers).status_code == 404
    hotel = make_venue(session, w.town)
    penalty = client.post(f"{API}/penalties", headers=w.police.headers,
                          json={"venue_id": hotel.id, "kind": "warning", "problem_id": pid})
    assert penalty.status_code == 404
    assert client.get(f"{API}/supervision/problems/{pid}", headers=w.coordinator.headers).status_code == 200


def test_only_the_raising_unit_or_one_above_it_verifies(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    pid = raise_problem(client, w.coordinator, {"kind": "unit", "org_unit_id": w.town.villages[0].id})["id"]
    client.post(f"{API}/supervision/problems/{pid}/rectification", json={"report": "已整改"},
                headers=w.village.headers)
    below = client.post(f"{API}/supervision/problems/{pid}/verification", json={"passed": True},
                        headers=w.village.headers)
    assert below.status_code == 409 and below.json()["raised_unit_id"] == w.town.town.id
    assert client.post(f"{API}/supervision/problems/{pid}/verification", json={"passed": True},
                       headers=w.foreign.headers).status_code == 404
    above = client.post(f"{API}/supervision/problems/{pid}/verification", json={"passed": True},
                        headers=w.county.headers)
    assert above.status_code == 200 and above.json()["status"] == "verified"


def test_a_subject_names_exactly_its_own_field_inside_the_callers_area(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    hotel = make_venue(session, w.town)
    for subject in ({"kind": "unit"}, {"kind": "venue", "org_unit_id": w.town.villages[0].id},
                    {"kind": "venue", "venue_id": hotel.id, "org_unit_id": w.town.villages[0].id},
                    {"kind": "institution", "institution_id": 1, "agency": "education"}):
        resp = client.post(f"{API}/supervision/problems", json=raise_body(subject), headers=w.coordinator.headers)
        assert resp.status_code == 422 and resp.json()["code"] == "supervision-subject-invalid", (subject, resp.text)
    foreign = client.post(f"{API}/supervision/problems", headers=w.village.headers,
                          json=raise_body({"kind": "unit", "org_unit_id": w.town.villages[1].id}))
    assert foreign.status_code == 404
    past = client.post(f"{API}/supervision/problems", headers=w.coordinator.headers,
                       json=raise_body({"kind": "unit", "org_unit_id": w.town.villages[0].id}, days=-1))
    assert past.status_code == 422 and past.json()["field"] == "deadline_date"
    blank = raise_body({"kind": "unit", "org_unit_id": w.town.villages[0].id}) | {"measure": "\u200b "}
    assert client.post(f"{API}/supervision/problems", json=blank, headers=w.coordinator.headers).status_code == 422


def test_two_verdicts_at_once_on_one_rectification_are_taken_one_after_the_other(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    pid = raise_problem(client, w.coordinator, {"kind": "unit", "org_unit_id": w.town.villages[0].id})["id"]
    client.post(f"{API}/supervision/problems/{pid}/rectification", json={"report": "已整改"},
                headers=w.village.headers)
    url = f"{API}/supervision/problems/{pid}/verification"
    answers = together(lambda c: c.post(url, json={"passed": True}, headers=w.coordinator.headers),
                       lambda c: c.post(url, json={"passed": False}, headers=w.county.headers))
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    final = client.get(f"{API}/supervision/problems/{pid}", headers=w.coordinator.headers).json()
    winner = next(a for a in answers if a.status_code == 200).json()
    assert final["status"] == winner["status"] and final["failed_rechecks"] == winner["failed_rechecks"]


def test_the_user_who_reported_a_rectification_never_verifies_it(client: TestClient, session: Session) -> None:
    """Outside test M2 (a): one coordinator raised, reported and verified its own problem."""
    w = make_world(client, session)
    pid = raise_problem(client, w.coordinator, {"kind": "unit", "org_unit_id": w.town.villages[0].id})["id"]
    assert client.post(f"{API}/supervision/problems/{pid}/rectification", json={"report": "已整改"},
                       headers=w.coordinator.headers).status_code == 200
    for passed in (True, False):
        own = client.post(f"{API}/supervision/problems/{pid}/verification", json={"passed": passed},
                          headers=w.coordinator.headers)
        assert own.status_code == 403 and own.json()["code"] == "verify-own-rectification", own.text
    other = client.post(f"{API}/supervision/problems/{pid}/verification", json={"passed": True},
                        headers=w.county.headers)
    assert other.status_code == 200 and other.json()["status"] == "verified"


def test_a_supervised_problem_is_closed_by_the_supervising_unit_not_by_the_raising_unit_below_it(
        client: TestClient, session: Session) -> None:
    """Outside test M2 (b): a county-supervised problem was rectified and verified by the town."""
    w = make_world(client, session)
    pid = raise_problem(client, w.coordinator, {"kind": "unit", "org_unit_id": w.town.villages[0].id,
                                                "agency": "village_committee"})["id"]
    assert client.post(f"{API}/supervision/problems/{pid}/supervise", json={},
                       headers=w.county.headers).status_code == 200
    client.post(f"{API}/supervision/problems/{pid}/rectification", json={"report": "已整改"},
                headers=w.committee.headers)
    for passed in (True, False):
        town = client.post(f"{API}/supervision/problems/{pid}/verification", json={"passed": passed},
                           headers=w.coordinator.headers)
        assert town.status_code == 403 and town.json()["code"] == "verify-by-supervising-unit", town.text
        assert town.json()["supervised_unit_id"] == w.town.county.id
    county = client.post(f"{API}/supervision/problems/{pid}/verification", json={"passed": True},
                         headers=w.county.headers)
    assert county.status_code == 200 and county.json()["status"] == "verified"


def test_rectification_is_reported_by_the_responsible_unit_or_one_above_not_another_agency(
        client: TestClient, session: Session) -> None:
    """Outside test M2 (c): the town police reported the rectification of a village committee's problem."""
    w = make_world(client, session)
    v0 = w.town.villages[0].id
    committee_problem = raise_problem(client, w.coordinator, {"kind": "unit", "org_unit_id": v0,
                                                              "agency": "village_committee"})["id"]
    url = f"{API}/supervision/problems/{committee_problem}/rectification"
    police = client.post(url, json={"report": "已整改"}, headers=w.police.headers)
    assert police.status_code == 403 and police.json()["code"] == "rectify-not-responsible", police.text
    assert client.post(url, json={"report": "已整改"}, headers=w.committee.headers).status_code == 200
    # The town government, above the village committee, reports for it.
    second = raise_problem(client, w.county, {"kind": "unit", "org_unit_id": v0, "agency": "village_committee"})["id"]
    assert client.post(f"{API}/supervision/problems/{second}/rectification", json={"report": "已整改"},
                       headers=w.coordinator.headers).status_code == 200
    # A school's problem (education): not the village committee of the same village, but the school.
    school = make_institution(session, v0 or 0, InstitutionKind.primary_school)
    school_problem = raise_problem(client, w.coordinator, {"kind": "institution", "institution_id": school.id})["id"]
    url = f"{API}/supervision/problems/{school_problem}/rectification"
    village = client.post(url, json={"report": "已整改"}, headers=w.village.headers)
    assert village.status_code == 403 and village.json()["code"] == "rectify-not-responsible"
    assert client.post(url, json={"report": "已整改"}, headers=w.teacher.headers).status_code == 200
