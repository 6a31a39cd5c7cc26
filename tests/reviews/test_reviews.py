"""Review of field work (审核): a coordinator decides on visits and inspections, "has issues" goes back to
the recorder's phone, the recorder answers, and a town may count only approved visits in coverage."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.campaigns import service as campaigns
from backend.core import clock
from backend.core.config import get_settings
from backend.coverage import service as coverage
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel
from tests.factories import SignedIn, user_client
from tests.registry.factories import World, grid_centre, make_world, push, seed_household, visit_item
from tests.sync.test_sync_pull import pull_all
from tests.venues.factories import inspection_body, make_venue
from tests.venues.factories import make_world as make_venue_world

API = "/api/v1"

def _month() -> str:
    """This month in China: the visits below are recorded now."""
    return campaigns.today().strftime("%Y-%m")


def _visit(client: TestClient, w: World, *, far: bool = False, village: int = 0) -> dict[str, Any]:
    """A visit pushed by volunteer A (flagged location_mismatch when `far`); its stored record."""
    home, _ = seed_household(client, w.volunteer_a if village == 0 else w.volunteer_b, village=village)
    lon, lat = home["lon"], home["lat"]
    item = visit_item(home["uuid"], at=(lon + 0.01, lat) if far else (lon, lat), device_time=clock.now().isoformat())
    who = w.volunteer_a if village == 0 else w.volunteer_b
    record: dict[str, Any] = push(client, who, [item])["results"][0]["record"]
    record["client_uuid"], record["household_uuid"] = item["client_uuid"], home["uuid"]
    return record


def _other_town(client: TestClient, session: Session, w: World) -> tuple[Any, SignedIn]:
    """A second town of the same county, and its coordinator."""
    town = orgunits.create_unit(session, code=f"T{uuid.uuid4().hex[:8]}", name="第二镇", level=OrgLevel.town,
                                parent=w.town.county)
    session.commit()
    return town, user_client(client, session, town, Role.coordinator)


def _review(client: TestClient, who: SignedIn, visit_id: int, state: str, comment: str | None = None,
            expected: str | None = None, kind: str = "visits") -> Any:
    body: dict[str, Any] = {"state": state}
    if comment is not None:
        body["comment"] = comment
    if expected is not None:
        body["expected_state"] = expected
    return client.post(f"{API}/{kind}/{visit_id}/review", json=body, headers=who.headers)


def _queue(client: TestClient, who: SignedIn, **params: Any) -> list[dict[str, Any]]:
    resp = client.get(f"{API}/reviews/queue", params=params, headers=who.headers)
    assert resp.status_code == 200, resp.text
    body: list[dict[str, Any]] = resp.json()
    return body


def _summary(client: TestClient, who: SignedIn) -> dict[str, Any]:
    resp = client.get(f"{API}/reviews/summary", headers=who.headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


# ---------------------------------------------------------------- states and transitions


def test_a_coordinator_approves_or_sends_back_with_a_comment_and_the_history_says_who_and_when(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    visit = _visit(client, w)
    assert client.get(f"{API}/visits/{visit['id']}/reviews", headers=w.coordinator.headers).json() == []
    # has_issues and rejected need a comment; nothing goes back to pending.
    missing = _review(client, w.coordinator, visit["id"], "has_issues", comment="  ")
    assert missing.status_code == 422 and missing.json()["code"] == "review-comment-required"
    assert _review(client, w.coordinator, visit["id"], "rejected").status_code == 422
    assert _review(client, w.coordinator, visit["id"], "pending").status_code == 422
    sent_back = _review(client, w.coordinator, visit["id"], "has_issues", comment="定位与住户相距太远，请核实")
    assert sent_back.status_code == 201, sent_back.text
    assert sent_back.json()["from_state"] == "pending" and sent_back.json()["review_state"] == "has_issues"
    approved = _review(client, w.coordinator, visit["id"], "approved", expected="has_issues")
    assert approved.status_code == 201, approved.text
    history = client.get(f"{API}/visits/{visit['id']}/reviews", headers=w.coordinator.headers).json()
    assert [(h["from_state"], h["review_state"]) for h in history] == [("pending", "has_issues"),
                                                                       ("has_issues", "approved")]
    assert history[0]["comment"] == "定位与住户相距太远，请核实"
    assert {h["decided_by"] for h in history} == {w.coordinator.user.id}
    entries = session.execute(select(AuditEntry).where(col(AuditEntry.action).like("review.%"))).scalars().all()
    assert {"review.decide", "review.read"} <= {e.action for e in entries}
    assert all(e.object_type == "visit" and e.object_id == str(visit["id"]) for e in entries)


def test_a_decision_on_a_state_that_changed_meanwhile_is_a_conflict_not_an_overwrite(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    other = user_client(client, session, w.town.county, Role.coordinator)
    visit = _visit(client, w)
    # Both coordinators saw it pending; the town's decision lands first.
    assert _review(client, w.coordinator, visit["id"], "approved").status_code == 201
    late = _review(client, other, visit["id"], "rejected", comment="重复录入")
    assert late.status_code == 409
    assert late.json()["code"] == "review-state" and late.json()["current_status"] == "approved"
    stale = _review(client, other, visit["id"], "rejected", comment="重复录入", expected="pending")
    assert stale.status_code == 409 and stale.json()["current_status"] == "approved"
    # Naming the state it now sees, the county coordinator may revise the decision.
    assert _review(client, other, visit["id"], "rejected", comment="重复录入", expected="approved").status_code == 201
    again = _review(client, other, visit["id"], "rejected", comment="重复录入", expected="rejected")
    assert again.status_code == 409


def test_only_coordinators_of_the_records_unit_decide(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    visit = _visit(client, w)
    _, elsewhere = _other_town(client, session, w)
    assert _review(client, elsewhere, visit["id"], "approved").status_code == 404
    assert client.get(f"{API}/visits/{visit['id']}/reviews", headers=elsewhere.headers).status_code == 404
    assert _review(client, w.coordinator, 10**9, "approved").status_code == 404
    # The volunteer who recorded it, police and market officers do not decide.
    for who in (w.volunteer_a, w.police, w.market):
        assert _review(client, who, visit["id"], "approved").status_code == 403
    assert client.get(f"{API}/reviews/queue", headers=w.volunteer_a.headers).status_code == 403
    assert client.get(f"{API}/visits/{visit['id']}", headers=w.coordinator.headers).json()["review_state"] == "pending"


# ---------------------------------------------------------------- the queue and the summary


def test_flagged_pending_visits_queue_for_review_without_names_and_leave_it_once_decided(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    near = _visit(client, w)
    far = _visit(client, w, far=True)
    queued = _queue(client, w.coordinator)
    assert [(q["record_kind"], q["record_id"], q["flags"]) for q in queued] == [
        ("visit", far["id"], ["location_mismatch"])]
    item = queued[0]
    assert item["review_state"] == "pending" and item["recorded_by"] == w.volunteer_a.user.id
    assert item["org_unit_id"] == far["org_unit_id"] and item["comment"] is None
    assert "儿童" not in str(queued) and "张某" not in str(queued)
    assert _summary(client, w.coordinator) == {"unit_id": w.town.town.id, "pending_flagged": 1, "has_issues": 0,
                                               "amended_waiting": 0, "rejected": 0, "approved": 0}
    # Any state on request; a village's queue is its own subtree.
    assert [q["record_id"] for q in _queue(client, w.coordinator, state="pending")] == [near["id"], far["id"]]
    assert _queue(client, w.coordinator, unit_id=w.town.villages[1].id) == []
    assert _review(client, w.coordinator, far["id"], "approved").status_code == 201
    assert _queue(client, w.coordinator) == []
    assert [q["record_id"] for q in _queue(client, w.coordinator, state="approved")] == [far["id"]]
    assert _summary(client, w.coordinator)["approved"] == 1
    # The paged form walks the same list.
    first = client.get(f"{API}/reviews/queue", params={"state": "pending", "paged": True, "limit": 1},
                       headers=w.coordinator.headers).json()
    assert [i["record_id"] for i in first["items"]] == [near["id"]] and first["next_cursor"] is None
    _, foreign = _other_town(client, session, w)
    assert client.get(f"{API}/reviews/queue", params={"unit_id": w.town.town.id},
                      headers=foreign.headers).status_code == 404


# ---------------------------------------------------------------- has_issues goes back to the phone


def test_has_issues_reaches_the_recorders_inbox_and_phone_and_the_amendment_queues_as_its_answer(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    visit = _visit(client, w, far=True)
    _, cursor = pull_all(client, w.volunteer_a)
    comment = "定位与住户相距太远，请核实后更正"
    assert _review(client, w.coordinator, visit["id"], "has_issues", comment=comment).status_code == 201
    # The notification names the record, never a person.
    inbox = client.get(f"{API}/notifications", headers=w.volunteer_a.headers).json()["items"]
    note = next(n for n in inbox if n["kind"] == "review.has_issues")
    assert note["data"] == {"record_kind": "visit", "record_id": str(visit["id"])}
    assert comment not in str(note)
    # The phone pulls the decision on its own visit; another volunteer's phone does not.
    items, _ = pull_all(client, w.volunteer_a, cursor)
    reviews = [i["record"] for i in items if i["kind"] == "review"]
    assert [(r["record_kind"], r["record_uuid"], r["review_state"], r["comment"]) for r in reviews] == [
        ("visit", visit["client_uuid"], "has_issues", comment)]
    other, _ = pull_all(client, user_client(client, session, w.town.villages[0], Role.volunteer))
    assert [i for i in other if i["kind"] == "review"] == []
    assert _summary(client, w.coordinator)["has_issues"] == 1
    assert client.get(f"{API}/visits/{visit['id']}/reviews", headers=w.volunteer_a.headers).status_code == 200
    assert client.get(f"{API}/visits/{visit['id']}/reviews", headers=w.volunteer_b.headers).status_code == 403
    # The volunteer answers with an amendment through the ordinary push.
    amendment = visit_item(visit["household_uuid"], at=grid_centre(0), kind="amendment",
                           amends_uuid=visit["client_uuid"], note="已核实，重新定位")
    stored = push(client, w.volunteer_a, [amendment])["results"][0]
    assert stored["status"] == "created", stored
    amended_id = stored["record"]["id"]
    queued = _queue(client, w.coordinator)
    answer = next(q for q in queued if q["record_id"] == amended_id)
    assert answer["review_state"] == "pending" and answer["amends_id"] == visit["id"]
    assert answer["answers_review_id"] == reviews[0]["id"] and answer["comment"] == comment
    assert all(q["record_id"] != visit["id"] for q in queued)
    assert _summary(client, w.coordinator) | {"unit_id": 0} == {
        "unit_id": 0, "pending_flagged": 0, "has_issues": 0, "amended_waiting": 1, "rejected": 0, "approved": 0}
    # Resending the amendment (a lost answer) changes nothing; approving it empties the queue.
    assert push(client, w.volunteer_a, [amendment])["results"][0]["status"] == "duplicate"
    assert _review(client, w.coordinator, amended_id, "approved").status_code == 201
    assert _queue(client, w.coordinator) == []
    assert _summary(client, w.coordinator)["amended_waiting"] == 0


def test_an_inspector_answers_has_issues_with_a_note_once(client: TestClient, session: Session) -> None:
    vw = make_venue_world(client, session)
    hotel = make_venue(session, vw.town)
    created = client.post(f"{API}/inspections", json=inspection_body(hotel), headers=vw.market.headers)
    assert created.status_code == 201, created.text
    inspection_id = created.json()["id"]
    assert client.post(f"{API}/inspections/{inspection_id}/review/response", json={"note": "x"},
                       headers=vw.market.headers).status_code == 409  # nothing to answer yet
    sent = _review(client, vw.coordinator, inspection_id, "has_issues", comment="缺少联合执法人员签名",
                   kind="inspections")
    assert sent.status_code == 201, sent.text
    inbox = client.get(f"{API}/notifications", headers=vw.market.headers).json()["items"]
    assert any(n["data"] == {"record_kind": "inspection", "record_id": str(inspection_id)} for n in inbox)
    # The inspector reads the comment by REST (a market officer's phone has no sync pull); others may not.
    read = client.get(f"{API}/inspections/{inspection_id}/reviews", headers=vw.market.headers)
    assert read.status_code == 200 and read.json()[0]["comment"] == "缺少联合执法人员签名"
    assert client.get(f"{API}/inspections/{inspection_id}/reviews", headers=vw.police.headers).status_code == 403
    # Only the inspector who recorded it answers.
    assert client.post(f"{API}/inspections/{inspection_id}/review/response", json={"note": "已补签"},
                       headers=vw.police.headers).status_code == 404
    answered = client.post(f"{API}/inspections/{inspection_id}/review/response", json={"note": "已补签"},
                           headers=vw.market.headers)
    assert answered.status_code == 200 and answered.json()["answer_note"] == "已补签"
    again = client.post(f"{API}/inspections/{inspection_id}/review/response", json={"note": "已补签"},
                        headers=vw.market.headers)
    assert again.status_code == 200 and again.json()["id"] == answered.json()["id"]
    assert client.post(f"{API}/inspections/{inspection_id}/review/response", json={"note": "另一答复"},
                       headers=vw.market.headers).status_code == 409
    queued = _queue(client, vw.coordinator, record_kind="inspection")
    assert [(q["record_id"], q["review_state"], q["answer_note"]) for q in queued] == [
        (inspection_id, "has_issues", "已补签")]
    assert _summary(client, vw.coordinator)["amended_waiting"] == 1
    assert _review(client, vw.coordinator, inspection_id, "approved", expected="has_issues",
                   kind="inspections").status_code == 201
    assert _queue(client, vw.coordinator) == []


# ---------------------------------------------------------------- the town's counting rule


def _coverage(client: TestClient, who: SignedIn, unit_id: int | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"month": _month()}
    if unit_id is not None:
        params["unit_id"] = unit_id
    resp = client.get(f"{API}/coverage", params=params, headers=who.headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _village(body: dict[str, Any], unit_id: int) -> dict[str, Any]:
    found: dict[str, Any] = next(f["properties"] for f in body["features"] if f["id"] == unit_id)
    return found


def test_the_same_visits_count_differently_when_the_town_counts_approved_only_live_and_summary(
        client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    w = make_world(client, session)
    village = w.town.villages[0].id
    assert village is not None
    visits = [_visit(client, w) for _ in range(3)]
    assert _review(client, w.coordinator, visits[0]["id"], "approved").status_code == 201
    assert _review(client, w.coordinator, visits[1]["id"], "rejected", comment="虚假走访").status_code == 201
    county = user_client(client, session, w.town.county, Role.coordinator)
    second, foreign = _other_town(client, session, w)

    def figures() -> tuple[int, int, str, str, str]:
        town = _coverage(client, w.coordinator)
        numbers = _village(town, village)
        by_county = _coverage(client, county)
        return (numbers["visited"], numbers["never_visited"], numbers["counting"], town["totals"]["counting"],
                by_county["totals"]["counting"])

    # By default every visit counts but the rejected one.
    assert figures() == (2, 1, "all", "all", "all")
    setting = client.put(f"{API}/reviews/settings", params={"unit_id": w.town.town.id},
                         json={"approved_only": True}, headers=w.coordinator.headers)
    assert setting.status_code == 200 and setting.json()["counting"] == "approved_only"
    assert figures() == (1, 2, "approved_only", "approved_only", "mixed")
    county_view = _coverage(client, county)
    assert _village(county_view, w.town.town.id or 0)["counting"] == "approved_only"
    assert _village(county_view, second.id or 0)["counting"] == "all"
    assert _village(county_view, w.town.town.id or 0)["visited"] == 1
    # The summary path keeps both figures: the setting applies without a refresh, either way.
    coverage.refresh_summary(session, campaigns.month_period(_month()))
    session.commit()
    monkeypatch.setenv("HULEI_COVERAGE_LIVE_MAX_GRIDS", "0")
    get_settings.cache_clear()
    summary = _coverage(client, w.coordinator)
    assert summary["source"] == "summary"
    assert (_village(summary, village)["visited"], _village(summary, village)["never_visited"]) == (1, 2)
    assert _village(summary, village)["counting"] == "approved_only"
    client.put(f"{API}/reviews/settings", params={"unit_id": w.town.town.id}, json={"approved_only": False},
               headers=w.coordinator.headers)
    summary = _coverage(client, w.coordinator)
    assert (_village(summary, village)["visited"], _village(summary, village)["counting"]) == (2, "all")
    # Only a town has a rule; a village coordinator's county is out of reach.
    assert client.put(f"{API}/reviews/settings", params={"unit_id": village}, json={"approved_only": True},
                      headers=w.coordinator.headers).status_code == 422
    assert client.put(f"{API}/reviews/settings", params={"unit_id": w.town.town.id}, json={"approved_only": True},
                      headers=w.volunteer_a.headers).status_code == 403
    assert client.get(f"{API}/reviews/settings", params={"unit_id": w.town.town.id},
                      headers=foreign.headers).status_code == 404
    actions = set(session.execute(select(AuditEntry.action)).scalars())
    assert "review.setting.change" in actions
