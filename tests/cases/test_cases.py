"""Cases (个案, issue 16): one case per child at a time, open -> active -> closed with a reason a
coordinator approves, reopening with a reason, the history of every transition, who sees which case,
and the help that belongs to the case and ends with it."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts import service as accounts
from backend.accounts.models import User
from backend.accounts.permissions import Role
from backend.cases import service as cases
from backend.cases.models import Case, CaseEvent, CaseSource
from backend.core import clock
from backend.core.db import get_engine
from backend.core.errors import DomainError
from backend.helpers import service as helpers
from backend.helpers.models import Assignment, AssignmentStatus, HelperProfile
from backend.registry.models import Person, RiskLevel
from tests.factories import SignedIn, user_client
from tests.helpers.factories import make_child, make_helper, raise_risk
from tests.notifications.factories import headers_for
from tests.registry.factories import World, fine_answers, make_world, push, seed_household, visit_item
from tests.sync.test_sync_pull import pull_all

API = "/api/v1"


def _signed(session: Session, profile: HelperProfile) -> SignedIn:
    user = session.get(User, profile.user_id)
    assert user is not None
    return SignedIn(user, headers_for(session, user), "")


def _open(client: TestClient, w: World, child: Person, reason: str = "专班研判需要个案管理") -> dict[str, Any]:
    resp = client.post(f"{API}/cases", json={"child_id": child.id, "reason": reason}, headers=w.coordinator.headers)
    assert resp.status_code in (200, 201), resp.text
    body: dict[str, Any] = resp.json()
    return body


def _post(client: TestClient, who: SignedIn, case_id: int, what: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(f"{API}/cases/{case_id}/{what}", json=body, headers=who.headers)


def _helped(client: TestClient, session: Session, w: World, child: Person, *, capacity: int = 2
            ) -> tuple[HelperProfile, SignedIn, dict[str, Any]]:
    """The child raised to 较大风险, a helper proposed by the matcher, confirmed and accepted, all over HTTP."""
    profile = make_helper(session, w.town.town, sex="female", capacity=capacity)
    helper = _signed(session, profile)
    raise_risk(session, child, RiskLevel.major)
    proposed = client.post(f"{API}/helpers/proposals", headers=w.coordinator.headers)
    assert proposed.status_code == 200, proposed.text
    [offer] = [a for a in proposed.json() if a["child_id"] == child.id]
    assert offer["case_id"] is not None
    assert client.post(f"{API}/helpers/assignments/{offer['id']}/confirm", headers=w.coordinator.headers).is_success
    accepted = client.post(f"{API}/helpers/assignments/{offer['id']}/accept", headers=helper.headers)
    assert accepted.status_code == 200, accepted.text
    return profile, helper, accepted.json()


# ---------------------------------------------------------------- opening


def test_a_coordinator_opens_a_case_and_opening_again_gives_the_same_case(client: TestClient,
                                                                          session: Session) -> None:
    w = make_world(client, session)
    child = make_child(session, w.town.grids[0][0])
    first = client.post(f"{API}/cases", json={"child_id": child.id, "reason": "学校反映情况"},
                        headers=w.coordinator.headers)
    assert first.status_code == 201, first.text
    case = first.json()
    assert (case["status"], case["opened_from"], case["child_id"]) == ("open", "by_hand", child.id)
    assert case["org_unit_id"] == w.town.grids[0][0].id and case["opened_by"] == w.coordinator.user.id
    again = client.post(f"{API}/cases", json={"child_id": child.id, "reason": "再次反映"},
                        headers=w.coordinator.headers)
    assert again.status_code == 200 and again.json()["id"] == case["id"], again.text
    assert [(e["action"], e["note"]) for e in again.json()["history"]] == [("open", "学校反映情况"),
                                                                          ("source", "再次反映")]


def test_a_case_is_opened_only_for_a_child_of_the_jurisdiction(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    foreign = make_child(session, w.town.grids[1][0])
    village_coordinator = user_client(client, session, w.town.villages[0], Role.coordinator)
    for child_id in (foreign.id, 999999):
        resp = client.post(f"{API}/cases", json={"child_id": child_id, "reason": "x"},
                           headers=village_coordinator.headers)
        assert resp.status_code == 422 and resp.json()["code"] == "case-child-invalid", resp.text
    assert session.execute(select(Case)).first() is None


def test_two_openings_at_once_make_one_case(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    child = make_child(session, w.town.grids[0][0])
    start = threading.Barrier(2)
    made: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def opener(source: CaseSource) -> None:
        try:
            with Session(get_engine(), expire_on_commit=False) as s:
                start.wait()
                case, created = cases.open_case(s, child_id=child.id or 0, source=source, actor=None)
                s.commit()
                made.append((case.id or 0, created))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener, args=(s,)) for s in (CaseSource.by_hand, CaseSource.referral)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len({case_id for case_id, _ in made}) == 1 and sorted(c for _, c in made) == [False, True]
    session.expire_all()
    [case] = session.execute(select(Case)).scalars().all()
    events = session.execute(select(CaseEvent).where(col(CaseEvent.case_id) == case.id)).scalars().all()
    assert sorted(e.action for e in events) == ["open", "source"]


def test_a_visit_that_opens_a_referral_opens_a_case_for_each_child(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, kids = seed_household(client, w.volunteer_a, children=2)
    answers = {"look1": {"value": "yes"}}  # signs of abuse: a mandatory report opens at once
    body = push(client, w.volunteer_a, [visit_item(home["uuid"], answers={**fine_answers(), **answers})])
    assert body["results"][0]["status"] == "created", body
    referrals = client.get(f"{API}/referrals", headers=w.coordinator.headers).json()
    [referral] = referrals
    listed = client.get(f"{API}/cases", headers=w.coordinator.headers).json()
    assert sorted(c["child_id"] for c in listed) == sorted(k["id"] for k in kids)
    assert {(c["opened_from"], c["source_id"], c["referred"]) for c in listed} == {("referral", referral["id"], True)}
    # A second clue for the same children joins their open cases.
    push(client, w.volunteer_a, [visit_item(home["uuid"], answers={**fine_answers(), **answers})])
    again = client.get(f"{API}/cases", headers=w.coordinator.headers).json()
    assert sorted(c["id"] for c in again) == sorted(c["id"] for c in listed)
    detail = client.get(f"{API}/cases/{again[0]['id']}", headers=w.coordinator.headers).json()
    assert [(e["action"], e["source"]) for e in detail["history"]] == [("open", "referral"), ("source", "referral")]


# ---------------------------------------------------------------- transitions


def test_every_transition_allowed_and_refused(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    child = make_child(session, w.town.grids[0][0])
    coordinator = w.coordinator
    case_id = _open(client, w, child)["id"]

    def refused(resp: Any, allowed: list[str]) -> None:
        assert resp.status_code == 409, resp.text
        problem = resp.json()
        assert problem["code"] == "case-transition-invalid" and problem["allowed"] == allowed, problem
        assert resp.headers["content-type"].startswith("application/problem+json")

    assert _post(client, coordinator, case_id, "reopen", {"reason": "x"}).status_code == 409
    active = _post(client, coordinator, case_id, "activate", {"note": "开始帮扶"})
    assert active.status_code == 200 and active.json()["status"] == "active", active.text
    refused(_post(client, coordinator, case_id, "activate"), ["propose_closure", "close"])
    bad = _post(client, coordinator, case_id, "closure", {"reason": "bored"})
    assert bad.status_code == 422 and bad.json()["code"] == "closure-reason-invalid", bad.text
    assert "risk_lowered" in bad.json()["allowed"]
    bare = _post(client, coordinator, case_id, "closure", {"reason": "other"})
    assert bare.status_code == 422 and bare.json()["code"] == "closure-reason-invalid", bare.text
    refused(_post(client, coordinator, case_id, "closure/approve"), ["propose_closure", "close"])
    refused(_post(client, coordinator, case_id, "closure/reject", {"note": "n"}), ["propose_closure", "close"])
    proposed = _post(client, coordinator, case_id, "closure", {"reason": "moved_away", "note": "迁往外省"})
    assert proposed.status_code == 200, proposed.text
    assert proposed.json()["status"] == "active"
    assert proposed.json()["closure_pending"]["reason"] == "moved_away"
    refused(_post(client, coordinator, case_id, "closure", {"reason": "turned_18"}),
            ["approve_closure", "reject_closure", "close"])
    assert _post(client, coordinator, case_id, "closure/reject", {}).status_code == 422  # a note is required
    rejected = _post(client, coordinator, case_id, "closure/reject", {"note": "尚未核实迁出"})
    assert rejected.status_code == 200 and rejected.json()["closure_pending"] is None, rejected.text
    _post(client, coordinator, case_id, "closure", {"reason": "risk_lowered"})
    closed = _post(client, coordinator, case_id, "closure/approve")
    assert closed.status_code == 200, closed.text
    assert (closed.json()["status"], closed.json()["close_reason"]) == ("closed", "risk_lowered")
    for what, body in (("activate", None), ("closure", {"reason": "turned_18"}), ("closure/approve", None),
                       ("close", {"reason": "turned_18"})):
        refused(_post(client, coordinator, case_id, what, body), ["reopen"])
    assert _post(client, coordinator, case_id, "reopen", {}).status_code == 422  # a reason is required
    reopened = _post(client, coordinator, case_id, "reopen", {"reason": "再次发现风险"})
    assert reopened.status_code == 200 and reopened.json()["status"] == "open", reopened.text
    assert reopened.json()["close_reason"] is None
    refused(_post(client, coordinator, case_id, "reopen", {"reason": "x"}), ["activate", "propose_closure", "close"])
    direct = _post(client, coordinator, case_id, "close", {"reason": "transferred", "note": "移交县妇联"})
    assert direct.status_code == 200 and direct.json()["status"] == "closed", direct.text
    history = [(e["action"], e["from_status"], e["to_status"], e["reason"])
               for e in client.get(f"{API}/cases/{case_id}", headers=coordinator.headers).json()["history"]]
    assert history == [
        ("open", None, "open", None), ("activate", "open", "active", None),
        ("propose_closure", "active", "active", "moved_away"), ("reject_closure", "active", "active", "moved_away"),
        ("propose_closure", "active", "active", "risk_lowered"), ("close", "active", "closed", "risk_lowered"),
        ("reopen", "closed", "open", None), ("close", "open", "closed", "transferred"),
    ]
    missing = client.get(f"{API}/cases/999999", headers=coordinator.headers)
    assert missing.status_code == 404 and missing.json()["code"] == "case-not-found"


def test_a_closed_childs_new_case_blocks_reopening_the_old_one(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    child = make_child(session, w.town.grids[0][0])
    old = _open(client, w, child)["id"]
    _post(client, w.coordinator, old, "close", {"reason": "risk_lowered"})
    new = _open(client, w, child)
    assert new["id"] != old and new["status"] == "open"
    resp = _post(client, w.coordinator, old, "reopen", {"reason": "x"})
    assert resp.status_code == 409 and resp.json()["code"] == "case-already-open", resp.text
    assert resp.json()["case_id"] == new["id"]


def test_two_reopenings_at_once_reopen_once(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    child = make_child(session, w.town.grids[0][0])
    case_id = _open(client, w, child)["id"]
    _post(client, w.coordinator, case_id, "close", {"reason": "risk_lowered"})
    principal = accounts.principal_for(session, w.coordinator.user.id or 0, device_id=None, ip=None)
    assert principal is not None
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def reopener() -> None:
        with Session(get_engine(), expire_on_commit=False) as s:
            start.wait()
            try:
                cases.reopen(s, principal, case_id, reason="同时重开")
                s.commit()
                outcomes.append("reopened")
            except DomainError as exc:
                s.rollback()
                outcomes.append(exc.code)

    threads = [threading.Thread(target=reopener) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["case-transition-invalid", "reopened"]
    session.expire_all()
    events = session.execute(select(CaseEvent.action).where(col(CaseEvent.case_id) == case_id)).scalars().all()
    assert list(events).count("reopen") == 1


# ---------------------------------------------------------------- who sees which case


def test_who_sees_which_case(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    mine, other = make_child(session, w.town.grids[0][0]), make_child(session, w.town.grids[0][1])
    by_hand = _open(client, w, mine)["id"]
    _open(client, w, other)
    profile = make_helper(session, w.town.town, sex="female")
    helper = _signed(session, profile)
    offer = Assignment(child_id=mine.id or 0, helper_id=profile.id or 0, org_unit_id=mine.org_unit_id,
                       mode="one_to_one", status=AssignmentStatus.offered.value, case_id=by_hand)
    session.add(offer)
    session.commit()

    def sees(who: SignedIn, case_id: int) -> bool:
        one = client.get(f"{API}/cases/{case_id}", headers=who.headers)
        listed = client.get(f"{API}/cases", headers=who.headers)
        assert one.status_code in (200, 404) and listed.status_code in (200, 404), (one.text, listed.text)
        in_list = listed.status_code == 200 and case_id in {c["id"] for c in listed.json()}
        assert (one.status_code == 200) == in_list, (one.text, listed.text)
        return in_list

    assert sees(w.coordinator, by_hand)
    assert sees(user_client(client, session, w.town.villages[0], Role.coordinator), by_hand)
    assert not sees(user_client(client, session, w.town.villages[1], Role.coordinator), by_hand)
    assert not sees(helper, by_hand)  # an offer opens nothing
    accepted = client.post(f"{API}/helpers/assignments/{offer.id}/accept", headers=helper.headers)
    assert accepted.status_code == 200, accepted.text
    assert sees(helper, by_hand)
    assert [c["id"] for c in client.get(f"{API}/cases", headers=helper.headers).json()] == [by_hand]
    assert not sees(w.helper, by_hand)  # a helper without a profile or child
    for nobody in (w.volunteer_a, w.market):
        assert client.get(f"{API}/cases/{by_hand}", headers=nobody.headers).status_code == 404
        assert client.get(f"{API}/cases", headers=nobody.headers).status_code == 404
    assert not sees(w.police, by_hand)  # opened by hand: not the police's
    # A referral for the child joins the case: now the law gives it to the police too.
    cases.open_case(session, child_id=mine.id or 0, source=CaseSource.referral, source_id=None, actor=None)
    session.commit()
    assert sees(w.police, by_hand)
    # Filters.
    only = client.get(f"{API}/cases", params={"child_id": mine.id}, headers=w.coordinator.headers).json()
    assert [c["id"] for c in only] == [by_hand]
    page = client.get(f"{API}/cases", params={"status": "active", "paged": "true"}, headers=w.coordinator.headers)
    assert [c["id"] for c in page.json()["items"]] == [by_hand]
    assert client.get(f"{API}/cases", params={"status": "closed"}, headers=w.coordinator.headers).json() == []


def test_only_a_coordinator_manages_but_whoever_works_on_the_case_proposes_closure(client: TestClient,
                                                                                 session: Session) -> None:
    w = make_world(client, session)
    child = make_child(session, w.town.grids[0][0])
    _, helper, assignment = _helped(client, session, w, child)
    case_id = assignment["case_id"]
    for what, body in (("activate", None), ("close", {"reason": "risk_lowered"}), ("closure/approve", None),
                       ("closure/reject", {"note": "n"}), ("reopen", {"reason": "r"})):
        assert _post(client, helper, case_id, what, body).status_code == 404, what
    proposed = _post(client, helper, case_id, "closure", {"reason": "risk_lowered", "note": "孩子情况稳定"})
    assert proposed.status_code == 200, proposed.text
    assert proposed.json()["closure_pending"]["proposed_by"] == helper.user.id
    assert _post(client, w.volunteer_a, case_id, "closure", {"reason": "risk_lowered"}).status_code == 404


# ---------------------------------------------------------------- the help belongs to the case


def test_accepting_help_makes_the_childs_case_active(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    child = make_child(session, w.town.grids[0][0])
    _, helper, assignment = _helped(client, session, w, child)
    case = client.get(f"{API}/cases/{assignment['case_id']}", headers=w.coordinator.headers).json()
    assert (case["status"], case["opened_from"], case["child_id"]) == ("active", "visit_risk", child.id)
    assert [(e["action"], e["actor_user_id"]) for e in case["history"]][-1] == ("activate", helper.user.id)
    assert [(a["assignment_id"], a["status"]) for a in case["assignments"]] == [(assignment["id"], "accepted")]


def test_closing_the_case_ends_its_help_frees_the_helper_and_takes_the_child_off_the_phone(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    child = make_child(session, w.town.grids[0][0])
    profile, helper, assignment = _helped(client, session, w, child, capacity=1)
    items, cursor = pull_all(client, helper)
    assert str(child.uuid) in {i["record"].get("uuid") for i in items if i["kind"] == "person"}
    loads = {h["id"]: h["load"] for h in client.get(f"{API}/helpers", headers=w.coordinator.headers).json()}
    assert loads[profile.id] == 1

    closed = _post(client, w.coordinator, assignment["case_id"], "close", {"reason": "risk_lowered"})
    assert closed.status_code == 200, closed.text
    assert [(a["status"], a["end_reason"]) for a in closed.json()["assignments"]] == [("ended", "case_closed")]
    ended = client.get(f"{API}/helpers/assignments/{assignment['id']}", headers=helper.headers).json()
    assert ended["status"] == "ended" and ended["ended_at"] is not None and ended["followup_due_at"] is None
    loads = {h["id"]: h["load"] for h in client.get(f"{API}/helpers", headers=w.coordinator.headers).json()}
    assert loads[profile.id] == 0
    # The phone is told the child left; the child's record and case are closed to the helper.
    items, _ = pull_all(client, helper, cursor)
    removed = {(i["record"]["kind"], i["record"].get("uuid")) for i in items if i["kind"] == "removal"}
    assert ("person", str(child.uuid)) in removed, items
    assert client.get(f"{API}/persons/{child.id}", headers=helper.headers).status_code == 404
    assert client.get(f"{API}/cases/{assignment['case_id']}", headers=helper.headers).status_code == 404
    # No follow-up falls due any more, and the matcher leaves the child alone until a case opens again.
    assert client.post(f"{API}/helpers/proposals", headers=w.coordinator.headers).json() == []
    clock.advance(timedelta(days=400))
    assert helpers.overdue_followups(session) == []
    assert helpers.remind_overdue_followups(session) == 0


def test_closing_ends_offers_and_proposals_of_the_case_too(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    child = make_child(session, w.town.grids[0][0])
    make_helper(session, w.town.town, sex="female")
    raise_risk(session, child, RiskLevel.major)
    [proposal] = client.post(f"{API}/helpers/proposals", headers=w.coordinator.headers).json()
    closed = _post(client, w.coordinator, proposal["case_id"], "close", {"reason": "moved_away"})
    assert closed.status_code == 200, closed.text
    assert [a["status"] for a in closed.json()["assignments"]] == ["ended"]


def test_a_coordinator_ends_help_with_a_reason_and_the_case_goes_on(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    child = make_child(session, w.town.grids[0][0])
    _, helper, assignment = _helped(client, session, w, child)
    url = f"{API}/helpers/assignments/{assignment['id']}/end"
    for body in ({"reason": "case_closed"}, {"reason": "whatever"}, {"reason": "other"}):
        resp = client.post(url, json=body, headers=w.coordinator.headers)
        assert resp.status_code == 422 and resp.json()["code"] == "end-reason-invalid", resp.text
    assert client.post(url, json={"reason": "need_met"}, headers=helper.headers).status_code == 403
    done = client.post(url, json={"reason": "helper_unavailable", "note": "帮扶人调离"}, headers=w.coordinator.headers)
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["end_reason"]) == ("ended", "helper_unavailable")
    case = client.get(f"{API}/cases/{assignment['case_id']}", headers=w.coordinator.headers).json()
    assert case["status"] == "active"
    assert client.get(f"{API}/cases/{assignment['case_id']}", headers=helper.headers).status_code == 404
