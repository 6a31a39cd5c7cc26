"""Faults a black-box tester found in service plans (issue 16): step times before the service or its
previous step, `referred` reached by a step without a referral, kinds added by any coordinator, the
overdue reminder through the worker, an unknown provider_agency filter, unknown push members, and a
record's state in a problem's `status` member."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.jobs import run_due_jobs
from backend.notifications.models import Notification
from backend.service_plans.models import CaseService
from tests.factories import SignedIn, make_user
from tests.helpers.factories import make_child
from tests.notifications.factories import headers_for
from tests.registry.factories import make_world, push, statuses
from tests.service_plans.factories import API, case_of_new_child, ensure_service_kinds, plan, staff, step
from tests.sync import test_case_sync as case_sync


def _step_item(service_id: int, to_status: str, **data: Any) -> dict[str, Any]:
    return {"kind": "service_step", "client_uuid": str(uuid.uuid4()), "base_version": None,
            "data": {"service_id": service_id, "to_status": to_status, **data}}


def _iso(delta: timedelta) -> str:
    return (clock.now() + delta).replace(microsecond=0).astimezone(clock.SHANGHAI).isoformat()


# ---------------------------------------------------------------- 1. step times


def test_a_step_cannot_predate_its_service_nor_its_previous_step(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    case = case_of_new_child(client, session, w.coordinator, w.town.grids[0][0])
    service = plan(client, w.coordinator, case["id"])
    who = w.coordinator
    for at in ("1900-01-01T00:00:00+08:00", "0001-01-01T00:00:00+00:00", _iso(-timedelta(hours=1))):
        resp = step(client, who, service["id"], "in_progress", at=at)
        assert resp.status_code == 422, (at, resp.text)
        problem = resp.json()
        assert (problem["code"], problem["field"]) == ("service-step-time-invalid", "at"), problem
    en = client.post(f"{API}/services/{service['id']}/steps", json={"to_status": "in_progress", "at": _iso(-timedelta(
        hours=1))}, headers={**who.headers, "Accept-Language": "en"})
    assert en.status_code == 422 and en.json()["title"].startswith("A step cannot be dated"), en.text
    # Ten minutes after planning, the service starts; a step dated after the planning but before that
    # start is refused, one a few minutes before it (a slow phone clock) is placed at it.
    clock.advance(timedelta(minutes=10))
    who = SignedIn(who.user, headers_for(session, who.user), "")  # a token of the new time
    started = step(client, who, service["id"], "in_progress", at=_iso(timedelta(0)))
    assert started.status_code == 200, started.text
    start_at = started.json()["steps"][-1]["at"]
    before_previous = step(client, who, service["id"], "done", outcome="已完成", at=_iso(-timedelta(minutes=8)))
    assert before_previous.status_code == 422 and before_previous.json()["field"] == "at", before_previous.text
    done = step(client, who, service["id"], "done", outcome="已完成", at=_iso(-timedelta(minutes=3)))
    assert done.status_code == 200, done.text
    assert done.json()["steps"][-1]["at"] == start_at
    assert done.json()["completed_at"] >= done.json()["created_at"]
    # The phones' push calls the same rule.
    helper, _, other = _helped_service(client, session, w)
    body = push(client, helper, [_step_item(other["id"], "in_progress", at="1900-01-01T00:00:00+08:00"),
                                 _step_item(other["id"], "in_progress", at=_iso(-timedelta(days=1)))])
    assert statuses(body) == ["rejected", "rejected"]
    assert [(r["problem"]["code"], r["problem"]["field"]) for r in body["results"]] == [
        ("service-step-time-invalid", "at")] * 2


def _helped_service(client: TestClient, session: Session, w: Any) -> tuple[SignedIn, dict[str, Any], dict[str, Any]]:
    ensure_service_kinds(session)
    child = make_child(session, w.town.grids[0][0])
    helper, assignment = case_sync._helped(client, session, w, child)
    coordinator = SignedIn(w.coordinator.user, headers_for(session, w.coordinator.user), "")
    return helper, assignment, plan(client, coordinator, assignment["case_id"])


def test_a_step_placed_after_a_slow_phone_clock_is_a_duplicate_when_resent(client: TestClient,
                                                                           session: Session) -> None:
    """Found by the convergence test: the step was stored at the service's creation, later than the time
    the phone sent, and the phone's resend (its answer lost) was taken for other content."""
    w = make_world(client, session)
    helper, _, service = _helped_service(client, session, w)
    item = _step_item(service["id"], "in_progress", at=_iso(-timedelta(minutes=3)), note="已联系")
    first = push(client, helper, [item])
    assert statuses(first) == ["created"], first
    assert first["results"][0]["record"]["at"][:19] == service["created_at"][:19]  # placed at it, to the second
    again = push(client, helper, [item])
    assert statuses(again) == ["duplicate"], again
    assert again["results"][0]["record"]["id"] == first["results"][0]["record"]["id"]
    other = {**item, "data": {**item["data"], "note": "改过"}}
    assert statuses(push(client, helper, [other])) == ["conflict"]


# ---------------------------------------------------------------- 3. referred only by a referral


def test_referred_is_reached_only_by_referring_the_service_to_a_unit(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    case = case_of_new_child(client, session, w.coordinator, w.town.grids[0][0])
    service = plan(client, w.coordinator, case["id"])
    assert "referred" not in service["allowed"] and "in_progress" in service["allowed"]
    refused = step(client, w.coordinator, service["id"], "referred")
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["code"] == "service-transition-invalid" and problem["status"] == 409
    assert problem["current_status"] == "planned" and "referred" not in problem["allowed"], problem
    assert step(client, w.coordinator, service["id"], "in_progress").json()["allowed"] == ["done", "declined"]
    helper, _, other = _helped_service(client, session, w)
    body = push(client, helper, [_step_item(other["id"], "referred")])
    assert statuses(body) == ["rejected"] and body["results"][0]["problem"]["code"] == "service-transition-invalid"
    pulled = [i for i in case_sync.pull_all(client, helper)[0] if i["kind"] == "service"]
    assert pulled and all("referred" not in i["record"]["allowed"] for i in pulled)
    # Referring the service to a unit still refers it.
    sent = client.post(f"{API}/cases/{case['id']}/referrals",
                       json={"to_unit_id": w.town.town.id, "to_agency": "civil_affairs", "service_id": service["id"]},
                       headers=w.coordinator.headers)
    assert sent.status_code == 201, sent.text
    referred = client.get(f"{API}/services/{service['id']}", headers=w.coordinator.headers).json()
    assert referred["status"] == "referred" and referred["provider_agency"] == "civil_affairs"
    assert "referred" not in referred["allowed"]


# ---------------------------------------------------------------- 4. kinds


def test_only_county_or_higher_coordinators_add_kinds_and_names_are_not_formulas(client: TestClient,
                                                                                 session: Session) -> None:
    w = make_world(client, session)
    body = {"code": "after_school_care", "name_zh": "课后托管", "name_en": "After-school care"}
    for unit in (w.town.town, w.town.villages[0]):
        coordinator = make_user(session, unit, Role.coordinator, agency=Agency.government)
        resp = client.post(f"{API}/service-kinds", json=body, headers=headers_for(session, coordinator))
        assert resp.status_code == 403 and resp.json()["code"] == "service-kind-not-allowed", resp.text
    county = headers_for(session, make_user(session, w.town.county, Role.coordinator, agency=Agency.government))
    for field in ("name_zh", "name_en"):
        for start in "=+-@":
            bad = client.post(f"{API}/service-kinds", json={**body, field: f"{start}HYPERLINK(1)"}, headers=county)
            assert bad.status_code == 422, bad.text
            assert (bad.json()["code"], bad.json()["field"]) == ("service-kind-name-invalid", field)
    added = client.post(f"{API}/service-kinds", json=body, headers=county)
    assert added.status_code == 201, added.text


# ---------------------------------------------------------------- 5. the overdue reminder


def test_the_worker_tells_of_a_service_due_yesterday(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    case = case_of_new_child(client, session, w.coordinator, w.town.grids[0][0])
    yesterday = (clock.now().astimezone(clock.SHANGHAI).date() - timedelta(days=1)).isoformat()
    late = plan(client, w.coordinator, case["id"], due_on=yesterday)
    assert late["overdue"] is True
    run_due_jobs()
    run_due_jobs()
    session.expire_all()
    told = list(session.execute(select(Notification).where(col(Notification.kind) == "service.overdue")).scalars())
    assert [(n.user_id, n.data) for n in told] == [
        (w.coordinator.user.id, {"service_id": str(late["id"]), "case_id": str(case["id"])})]
    row = session.get(CaseService, late["id"])
    assert row is not None and row.overdue_notified_at is not None


# ---------------------------------------------------------------- 6. the provider_agency filter


def test_an_unknown_provider_agency_filter_is_refused(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    case = case_of_new_child(client, session, w.coordinator, w.town.grids[0][0])
    made = plan(client, w.coordinator, case["id"])
    bogus = client.get(f"{API}/services", params={"provider_agency": "bogus"}, headers=w.coordinator.headers)
    assert bogus.status_code == 422, bogus.text
    found = client.get(f"{API}/services", params={"provider_agency": "judicial"}, headers=w.coordinator.headers)
    assert found.status_code == 200 and [s["id"] for s in found.json()] == [made["id"]], found.text


# ---------------------------------------------------------------- 7. unknown push members


def test_a_pushed_step_or_followup_with_an_unknown_member_is_rejected(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    helper, assignment, service = _helped_service(client, session, w)
    visited = (clock.now() - timedelta(hours=1)).replace(microsecond=0).isoformat()
    body = push(client, helper, [
        _step_item(service["id"], "in_progress", att=visited),
        {"kind": "followup", "client_uuid": str(uuid.uuid4()), "base_version": None,
         "data": {"assignment_id": assignment["id"], "visited_at": visited, "nte": "拼错了"}},
    ])
    assert statuses(body) == ["rejected", "rejected"]
    fields = [[e["field"] for e in r["problem"]["errors"]] for r in body["results"]]
    assert fields == [["att"], ["nte"]]
    assert all(e["type"] == "extra_forbidden" for r in body["results"] for e in r["problem"]["errors"])
    session.expire_all()
    row = session.get(CaseService, service["id"])
    assert row is not None and row.status == "planned"


def test_a_service_planned_already_overdue_is_told_at_the_jobs_next_hourly_run(client: TestClient,
                                                                               session: Session) -> None:
    """The job runs hourly (from the worker's first run): a service planned between two runs with a due
    date already past is told at the next run, not at a run within the hour."""
    w = make_world(client, session)
    case = case_of_new_child(client, session, w.coordinator, w.town.grids[0][0])
    assert "service_plans.notify_overdue" in run_due_jobs()
    yesterday = (clock.now().astimezone(clock.SHANGHAI).date() - timedelta(days=1)).isoformat()
    late = plan(client, w.coordinator, case["id"], due_on=yesterday)
    assert "service_plans.notify_overdue" not in run_due_jobs()
    clock.advance(timedelta(hours=1, seconds=1))
    assert "service_plans.notify_overdue" in run_due_jobs()
    session.expire_all()
    told = [n.data for n in session.execute(
        select(Notification).where(col(Notification.kind) == "service.overdue")).scalars()]
    assert told == [{"service_id": str(late["id"]), "case_id": str(case["id"])}]


def test_staff_of_the_providing_unit_are_told_too(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    case = case_of_new_child(client, session, w.coordinator, w.town.grids[0][0])
    judicial = staff(session, w.town.town, Agency.judicial)
    # A helper who comes from the same 司法所 does not act for it: it is not told.
    make_user(session, w.town.town, Role.helper, agency=Agency.judicial)
    yesterday = (clock.now().astimezone(clock.SHANGHAI).date() - timedelta(days=1)).isoformat()
    late = plan(client, w.coordinator, case["id"], due_on=yesterday)
    run_due_jobs()
    session.expire_all()
    told = sorted(n.user_id for n in session.execute(
        select(Notification).where(col(Notification.kind) == "service.overdue")).scalars()
        if n.data["service_id"] == str(late["id"]))
    assert told == sorted([judicial.user.id, w.coordinator.user.id])
