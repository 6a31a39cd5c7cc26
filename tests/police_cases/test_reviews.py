"""One-case-one-review (seed 001: 一案一倒查、一案一剖析、一案一整治): findings on venues and units,
the analysis, and rectification tasks; a venue's task is a problem of the existing problem loop."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.audit import disclosure
from backend.audit.models import AuditEntry
from backend.inspections.models import Problem
from backend.venues.models import Venue
from tests.police_cases.factories import API, Station, china_today, register
from tests.venues.factories import inspection_body


def _review(st: Station, who: str = "police", status: int = 201, **body: Any) -> dict[str, Any]:
    resp = st.client.post(f"{API}/case-reviews", json=body, headers=st.headers(who))
    assert resp.status_code == status, resp.text
    out: dict[str, Any] = resp.json()
    return out


def test_a_review_raises_problems_on_venues_and_keeps_tasks_of_units(client: TestClient, session: Session) -> None:
    st = Station(client, session)
    venue = st.venue()
    case = register(st, venue_ids=[venue.id])
    deadline = (china_today() + timedelta(days=10)).isoformat()
    school = st.town.villages[0].id
    made = _review(st, police_case_id=case["id"], analysis="宾馆未落实五必须；学校未开展防性侵教育",
                   findings=[{"subject": "venue", "venue_id": venue.id, "finding": "未登记未成年人入住信息"},
                             {"subject": "unit", "org_unit_id": school, "agency": "education",
                              "finding": "未开展防性侵教育"}],
                   tasks=[{"subject": "venue", "venue_id": venue.id, "description": "落实五必须登记制度",
                           "measure": "建立未成年人入住登记簿", "deadline_date": deadline},
                          {"subject": "unit", "org_unit_id": school, "agency": "education",
                           "description": "开展防性侵专题教育", "deadline_date": deadline}])
    assert made["police_case_id"] == case["id"] and made["org_unit_id"] == st.town.town.id
    assert [(f["subject"], f["venue_id"], f["org_unit_id"], f["agency"]) for f in made["findings"]] == [
        ("venue", venue.id, None, None), ("unit", None, school, "education")]
    venue_task, unit_task = made["tasks"]
    assert (venue_task["status"], venue_task["problem_status"], unit_task["status"], unit_task["problem_id"]) == (
        "open", "open", "open", None)

    # The venue's task is in the problem ledger, with its source, for apps that ask for such problems; a v1
    # app (reading found_in_inspection_id as a number) never meets it.
    v1 = client.get(f"{API}/problems", params={"venue_id": venue.id}, headers=st.headers("coordinator")).json()
    assert venue_task["problem_id"] not in [p["id"] for p in v1]
    assert all(isinstance(p["found_in_inspection_id"], int) for p in v1)
    listed = client.get(f"{API}/problems", params={"venue_id": venue.id, "include_review_problems": "true"},
                        headers=st.headers("coordinator")).json()
    [problem] = [p for p in listed if p["id"] == venue_task["problem_id"]]
    assert (problem["source"], problem["case_review_id"], problem["found_in_inspection_id"]) == (
        "case_review", made["id"], None)
    assert (problem["description"], problem["measure"], problem["deadline_date"]) == (
        "落实五必须登记制度", "建立未成年人入住登记簿", deadline)
    assert problem["responsible_party"].startswith(session.get(Venue, venue.id).name)  # type: ignore[union-attr]
    # It follows the loop: rectified, then verified only by a re-inspection; the task follows it.
    moved = client.patch(f"{API}/problems/{problem['id']}", json={"status": "submitted"}, headers=st.headers("market"))
    assert moved.status_code == 200, moved.text
    refused = client.post(f"{API}/case-reviews/{made['id']}/tasks/{venue_task['id']}/done", json={"note": "已整改"},
                          headers=st.headers("police"))
    assert refused.status_code == 409 and refused.json()["code"] == "case-review-task-follows-problem"
    recheck = client.post(f"{API}/inspections", headers=st.headers("market"), json=inspection_body(
        session.get(Venue, venue.id), rechecks=[{"problem_id": problem["id"], "fixed": True}]))  # type: ignore[arg-type]
    assert recheck.status_code == 201, recheck.text
    again = client.get(f"{API}/case-reviews/{made['id']}", headers=st.headers("coordinator")).json()
    assert (again["tasks"][0]["status"], again["tasks"][0]["problem_status"]) == ("done", "verified")

    # A unit's task is done with a note, once.
    done = client.post(f"{API}/case-reviews/{made['id']}/tasks/{unit_task['id']}/done",
                       json={"note": "已开展专题教育2次"}, headers=st.headers("coordinator"))
    assert done.status_code == 200, done.text
    assert (done.json()["tasks"][1]["status"], done.json()["tasks"][1]["done_note"]) == ("done", "已开展专题教育2次")
    twice = client.post(f"{API}/case-reviews/{made['id']}/tasks/{unit_task['id']}/done", json={"note": "再次"},
                        headers=st.headers("coordinator"))
    assert twice.status_code == 409 and twice.json()["code"] == "case-review-task-done"
    assert client.post(f"{API}/case-reviews/{made['id']}/tasks/999999/done", json={"note": "x"},
                       headers=st.headers("police")).status_code == 404

    # Findings and tasks are added later too; the analysis is rewritten.
    added = client.post(f"{API}/case-reviews/{made['id']}/tasks", headers=st.headers("coordinator"), json={
        "subject": "unit", "org_unit_id": st.town.villages[0].id, "agency": "village_committee",
        "description": "落实村属地责任", "deadline_date": deadline})
    assert added.status_code == 201 and len(added.json()["tasks"]) == 3
    finding = client.post(f"{API}/case-reviews/{made['id']}/findings", headers=st.headers("police"), json={
        "subject": "unit", "org_unit_id": st.town.town.id, "agency": "government", "finding": "职能部门督导不力"})
    assert finding.status_code == 201 and len(finding.json()["findings"]) == 3
    edited = client.patch(f"{API}/case-reviews/{made['id']}", json={"analysis": "更新后的剖析"},
                          headers=st.headers("police"))
    assert edited.json()["analysis"] == "更新后的剖析"
    # The police case names its reviews.
    assert client.get(f"{API}/police-cases/{case['id']}", headers=st.headers("police")).json()["review_ids"] == [
        made["id"]]
    listed_reviews = client.get(f"{API}/case-reviews", params={"police_case_id": case["id"]},
                                headers=st.headers("coordinator")).json()
    assert [r["id"] for r in listed_reviews] == [made["id"]]


def test_review_validation(client: TestClient, session: Session) -> None:
    st = Station(client, session)
    case = register(st)
    by_hand = st.case_by_hand()
    deadline = (china_today() + timedelta(days=5)).isoformat()
    both = _review(st, status=422, police_case_id=case["id"], child_case_id=by_hand)
    assert both["code"] == "case-review-case-invalid"
    assert _review(st, status=422)["code"] == "case-review-case-invalid"
    assert _review(st, status=404, police_case_id=999999)["code"] == "police-case-not-found"
    # Police do not see a case no referral opened: as if it did not exist.
    assert _review(st, status=404, child_case_id=by_hand)["code"] == "case-not-found"
    other_venue = st.venue(village=1)
    neighbour = st.other_town()
    bad_subjects = [
        {"subject": "venue", "finding": "x"},
        {"subject": "unit", "org_unit_id": st.town.villages[0].id, "finding": "x"},
        {"subject": "unit", "org_unit_id": st.town.villages[0].id, "agency": "army", "finding": "x"},
        {"subject": "unit", "org_unit_id": 999999, "agency": "education", "finding": "x"},
    ]
    for subject in bad_subjects:
        refused = _review(st, status=422, police_case_id=case["id"], findings=[subject])
        assert refused["code"] == "case-review-subject-invalid", subject
    # Outside the town police's jurisdiction: a unit of another town.
    outside = _review(st, status=422, police_case_id=case["id"], findings=[
        {"subject": "unit", "org_unit_id": neighbour.id, "agency": "education", "finding": "x"}])
    assert outside["field"] == "org_unit_id"
    past = _review(st, status=422, police_case_id=case["id"], tasks=[
        {"subject": "venue", "venue_id": other_venue.id, "description": "x",
         "deadline_date": (china_today() - timedelta(days=1)).isoformat()}])
    assert past["field"] == "deadline_date"
    assert session.execute(select(Problem)).first() is None  # nothing half-made
    ok = _review(st, police_case_id=case["id"], tasks=[
        {"subject": "venue", "venue_id": other_venue.id, "description": "整改", "deadline_date": deadline}])
    assert ok["tasks"][0]["problem_id"] is not None


def test_who_reads_and_writes_reviews(client: TestClient, session: Session) -> None:
    st = Station(client, session)
    case = register(st)
    by_hand = st.case_by_hand()
    _, referred = st.referred_case()
    of_police_case = _review(st, police_case_id=case["id"], analysis="剖析")
    of_child_case = _review(st, who="coordinator", child_case_id=by_hand, analysis="个案剖析")
    of_referred = _review(st, who="police", child_case_id=referred)
    # Police read reviews of cases they see; a review of a case no referral opened is not theirs.
    assert client.get(f"{API}/case-reviews/{of_police_case['id']}", headers=st.headers("police")).status_code == 200
    assert client.get(f"{API}/case-reviews/{of_referred['id']}", headers=st.headers("police")).status_code == 200
    hidden = client.get(f"{API}/case-reviews/{of_child_case['id']}", headers=st.headers("police"))
    assert hidden.status_code == 404 and hidden.json()["code"] == "case-review-not-found"
    assert {r["id"] for r in client.get(f"{API}/case-reviews", headers=st.headers("police")).json()} == {
        of_police_case["id"], of_referred["id"]}
    assert {r["id"] for r in client.get(f"{API}/case-reviews", headers=st.headers("coordinator")).json()} == {
        of_police_case["id"], of_child_case["id"], of_referred["id"]}
    # Another town's police and coordinators see none of them; other roles learn nothing.
    neighbour = st.police_of(st.other_town())
    assert client.get(f"{API}/case-reviews/{of_police_case['id']}", headers=neighbour).status_code == 404
    assert client.patch(f"{API}/case-reviews/{of_police_case['id']}", json={"analysis": "x"},
                        headers=neighbour).status_code == 404
    assert client.get(f"{API}/case-reviews", headers=neighbour).json() == []
    for who in ("market", "volunteer", "helper", "agency_staff"):
        assert client.get(f"{API}/case-reviews/{of_police_case['id']}", headers=st.headers(who)).status_code == 404
        assert client.post(f"{API}/case-reviews", json={"police_case_id": case["id"]},
                           headers=st.headers(who)).status_code == 404
    # Reads and changes are audited.
    entries = [(e.action, e.object_id, e.actor_user_id, e.details) for e in session.execute(
        select(AuditEntry).where(col(AuditEntry.object_type) == "case_review")).scalars()]
    created = [d for action, _, _, d in entries if action == "case_review.create"]
    assert [d["changed"][disclosure.CASE_REVIEW] for d in created] == [
        str(r["id"]) for r in (of_police_case, of_child_case, of_referred)]
    police = st.users["police"].id
    assert ("case_review.read", str(of_police_case["id"]), police) in [e[:3] for e in entries]


def test_a_task_is_bounded_like_any_deadline_and_carries_no_childs_number(client: TestClient,
                                                                        session: Session) -> None:
    # A unit's task due in 2199 would never fall overdue; a task's text reaches the unit it names (a
    # venue's becomes a ledger problem every officer reads). Outside tester, issue 18.
    st = Station(client, session)
    venue = st.venue()
    case = register(st, venue_ids=[venue.id])
    school = st.town.villages[0].id
    soon = (china_today() + timedelta(days=10)).isoformat()
    for task, code in (({"subject": "unit", "org_unit_id": school, "agency": "education", "description": "专题教育",
                         "deadline_date": (china_today() + timedelta(days=366)).isoformat()}, "deadline-out-of-range"),
                       ({"subject": "venue", "venue_id": venue.id, "description": "核查990101198003037712入住记录",
                         "deadline_date": soon}, "text-personal-data")):
        refused = _review(st, status=422, police_case_id=case["id"], analysis="分析", tasks=[task])
        assert refused["code"] == code, refused
    assert _review(st, police_case_id=case["id"], analysis="分析", tasks=[
        {"subject": "unit", "org_unit_id": school, "agency": "education", "description": "专题教育",
         "deadline_date": (china_today() + timedelta(days=365)).isoformat()}])["tasks"][0]["status"] == "open"
