"""Service plans of cases (服务计划, issue 16): kinds, planning, every step and its refusals, who sees and
who handles which service, overdue services told once, and what a case's closure does to its services."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts import service as accounts
from backend.accounts.models import Agency, User
from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.cases import service as cases
from backend.cases.models import CaseSource
from backend.core import clock
from backend.core.errors import Conflict, InvalidInput, NotFound
from backend.helpers.models import Assignment, AssignmentStatus
from backend.notifications.models import Notification
from backend.service_plans import service as service_plans
from backend.service_plans.models import CaseService, ServiceStep
from tests.factories import SignedIn, user_client
from tests.helpers.factories import make_child, make_helper
from tests.notifications.factories import headers_for
from tests.registry.factories import make_world
from tests.service_plans.factories import API, case_of_new_child, ensure_service_kinds, plan, staff, step


def _notified(session: Session, kind: str) -> list[tuple[int, dict[str, str]]]:
    session.expire_all()
    rows = session.execute(select(Notification).where(col(Notification.kind) == kind)
                           .order_by(col(Notification.user_id))).scalars()
    return [(n.user_id, n.data) for n in rows]


# ---------------------------------------------------------------- kinds


def test_the_seeds_kinds_are_listed_and_coordinators_add_more(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    ensure_service_kinds(session)
    kinds = client.get(f"{API}/service-kinds", headers=w.volunteer_a.headers)
    assert kinds.status_code == 200, kinds.text
    by_code = {k["code"]: k for k in kinds.json()}
    assert {c: k["default_agency"] for c, k in by_code.items()} == {
        "legal_aid": "judicial", "judicial_aid": "judicial", "living_aid": "civil_affairs", "medical": "health",
        "psychological": "health", "school_transfer": "education", "temporary_guardianship": "civil_affairs",
        "family_education": "womens_federation", "guardianship_order": "judicial"}
    assert by_code["legal_aid"]["name_zh"] == "法律援助"
    body = {"code": "after_school_care", "name_zh": "课后托管", "name_en": "After-school care",
            "default_agency": "education"}
    county = user_client(client, session, w.town.county, Role.coordinator)  # kinds are everyone's: county or above
    added = client.post(f"{API}/service-kinds", json=body, headers=county.headers)
    assert added.status_code == 201 and added.json()["code"] == "after_school_care", added.text
    again = client.post(f"{API}/service-kinds", json=body, headers=county.headers)
    assert again.status_code == 409 and again.json()["code"] == "service-kind-exists", again.text
    for bad in ({**body, "code": "Bad Code"}, {**body, "code": "new_one", "default_agency": "bank"}):
        assert client.post(f"{API}/service-kinds", json=bad, headers=county.headers).status_code == 422
    assert client.post(f"{API}/service-kinds", json={**body, "code": "x_y"},
                       headers=w.volunteer_a.headers).status_code == 404
    assert "after_school_care" in {k["code"] for k in client.get(f"{API}/service-kinds",
                                                                 headers=w.police.headers).json()}


# ---------------------------------------------------------------- planning


def test_a_coordinator_plans_a_service_provided_by_the_towns_unit_by_default(client: TestClient,
                                                                              session: Session) -> None:
    w = make_world(client, session)
    case = case_of_new_child(client, session, w.coordinator, w.town.grids[0][0])
    made = plan(client, w.coordinator, case["id"], "living_aid", due_on="2030-01-31", note="低保申请")
    assert (made["provider_unit_id"], made["provider_agency"]) == (w.town.town.id, "civil_affairs")
    assert (made["status"], made["due_on"], made["overdue"], made["org_unit_id"]) == (
        "planned", "2030-01-31", False, w.town.grids[0][0].id)
    assert made["allowed"] == ["in_progress", "declined"]  # referred: only by a referral
    assert [(s["from_status"], s["to_status"], s["actor_user_id"]) for s in made["steps"]] == [
        (None, "planned", w.coordinator.user.id)]
    chosen = plan(client, w.coordinator, case["id"], "psychological", provider_unit_id=w.town.villages[0].id,
                  provider_agency="village_committee")
    assert (chosen["provider_unit_id"], chosen["provider_agency"]) == (w.town.villages[0].id, "village_committee")
    listed = client.get(f"{API}/cases/{case['id']}/services", headers=w.coordinator.headers).json()
    assert [s["id"] for s in listed] == [made["id"], chosen["id"]]

    def refused(body: dict[str, Any], status: int, code: str, case_id: int = case["id"],
                who: SignedIn = w.coordinator) -> None:
        resp = client.post(f"{API}/cases/{case_id}/services", json=body, headers=who.headers)
        assert resp.status_code == status and resp.json()["code"] == code, resp.text

    refused({"kind": "astrology"}, 422, "service-kind-invalid")
    refused({"kind": "legal_aid", "provider_agency": "bank"}, 422, "service-provider-invalid")
    refused({"kind": "legal_aid", "provider_unit_id": 999999}, 422, "service-provider-invalid")
    village_coordinator = user_client(client, session, w.town.villages[0], Role.coordinator)
    refused({"kind": "legal_aid", "provider_unit_id": w.town.villages[1].id}, 422, "service-provider-invalid",
            who=village_coordinator)
    foreign = user_client(client, session, w.town.villages[1], Role.coordinator)
    refused({"kind": "legal_aid"}, 404, "case-not-found", who=foreign)
    client.post(f"{API}/cases/{case['id']}/close", json={"reason": "risk_lowered"}, headers=w.coordinator.headers)
    refused({"kind": "legal_aid"}, 409, "service-case-closed")


# ---------------------------------------------------------------- steps


# What a step may do (`referred` only by a referral of the service to a unit: POST /cases/{id}/referrals).
LEGAL: dict[str, list[str]] = {
    "planned": ["in_progress", "declined"],
    "referred": ["in_progress", "planned", "declined"],
    "in_progress": ["done", "declined"],
    "done": [],
    "declined": [],
}
# How to reach each status from planned (referred: by a referral to a unit).
PATHS: dict[str, list[str]] = {"planned": [], "referred": [], "in_progress": ["in_progress"],
                               "done": ["in_progress", "done"], "declined": ["declined"]}
BODIES: dict[str, dict[str, str]] = {"done": {"outcome": "已提供法律援助"}, "declined": {"reason": "家长拒绝"}}


def test_every_step_allowed_and_refused(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    case = case_of_new_child(client, session, w.coordinator, w.town.grids[0][0])
    for start, allowed in LEGAL.items():
        for target in ["planned", "referred", "in_progress", "done", "declined"]:
            service = plan(client, w.coordinator, case["id"])
            for move in PATHS[start]:
                assert step(client, w.coordinator, service["id"], move, **BODIES.get(move, {})).status_code == 200
            if start == "referred":
                sent = client.post(f"{API}/cases/{case['id']}/referrals", headers=w.coordinator.headers, json={
                    "to_unit_id": w.town.town.id, "to_agency": "judicial", "service_id": service["id"]})
                assert sent.status_code == 201, sent.text
            resp = step(client, w.coordinator, service["id"], target, **BODIES.get(target, {}))
            if target in allowed:
                assert resp.status_code == 200, (start, target, resp.text)
                body = resp.json()
                assert body["status"] == target and body["steps"][-1]["from_status"] == start
            else:
                assert resp.status_code == 409, (start, target, resp.text)
                problem = resp.json()
                assert problem["code"] == "service-transition-invalid" and problem["allowed"] == allowed, problem
    service = plan(client, w.coordinator, case["id"])
    unknown = step(client, w.coordinator, service["id"], "paused")
    assert unknown.status_code == 422 and unknown.json()["code"] == "service-step-invalid", unknown.text
    assert step(client, w.coordinator, service["id"], "declined").json()["field"] == "reason"
    step(client, w.coordinator, service["id"], "in_progress")
    no_outcome = step(client, w.coordinator, service["id"], "done", outcome="  ")
    assert no_outcome.status_code == 422 and no_outcome.json()["field"] == "outcome", no_outcome.text
    ahead = (clock.now() + timedelta(hours=1)).isoformat()
    future = step(client, w.coordinator, service["id"], "done", outcome="完成", at=ahead)
    assert future.status_code == 422 and future.json()["field"] == "at", future.text
    when = clock.now().replace(microsecond=0)
    done = step(client, w.coordinator, service["id"], "done", outcome="已获法律援助", at=when.isoformat())
    assert done.status_code == 200, done.text
    last = done.json()["steps"][-1]
    local = when.astimezone(clock.SHANGHAI).isoformat()[:16]
    assert (last["outcome"], last["at"][:16]) == ("已获法律援助", local)
    assert (done.json()["outcome"], done.json()["completed_at"][:16]) == ("已获法律援助", local)
    missing = step(client, w.coordinator, 999999, "done", outcome="x")
    assert missing.status_code == 404 and missing.json()["code"] == "service-not-found"


def test_record_step_is_the_contract_the_phones_sync_calls(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    case = case_of_new_child(client, session, w.coordinator, w.town.grids[0][0])
    service = plan(client, w.coordinator, case["id"])
    principal = accounts.principal_for(session, w.coordinator.user.id or 0, device_id=None, ip=None)
    assert principal is not None
    phone = uuid.uuid4()
    clock.advance(timedelta(hours=2))  # the phone syncs a step of an hour ago (after the service was planned)
    made = service_plans.record_step(session, principal, service["id"], to_status="in_progress", note="已联系家长",
                                     at=clock.now() - timedelta(hours=1), client_uuid=phone)
    session.commit()
    assert isinstance(made, ServiceStep) and made.client_uuid == phone and made.to_status == "in_progress"
    stored = session.execute(select(ServiceStep).where(col(ServiceStep.client_uuid) == phone)).scalar_one()
    assert stored.id == made.id and clock.as_utc(stored.recorded_at) > clock.as_utc(stored.at)
    for kwargs, error in ((dict(to_status="planned"), Conflict), (dict(to_status="done"), InvalidInput)):
        try:
            service_plans.record_step(session, principal, service["id"], **kwargs)  # type: ignore[arg-type]
        except error:
            session.rollback()
        else:
            raise AssertionError(kwargs)
    try:
        service_plans.record_step(session, principal, 999999, to_status="done", outcome="x")
    except NotFound as exc:
        assert exc.code == "service-not-found"
    row = session.get(CaseService, service["id"])
    assert row is not None and row.rev > 0


# ---------------------------------------------------------------- who sees, who handles


def test_who_sees_and_who_handles_which_service(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    ensure_service_kinds(session)
    child = make_child(session, w.town.grids[0][0])
    case_id = client.post(f"{API}/cases", json={"child_id": child.id, "reason": "x"},
                          headers=w.coordinator.headers).json()["id"]
    mine = plan(client, w.coordinator, case_id, "legal_aid")  # the town's 司法所
    foreign_case = case_of_new_child(client, session, w.coordinator, w.town.grids[1][0])["id"]
    foreign = plan(client, w.coordinator, foreign_case, "legal_aid")
    judicial = staff(session, w.town.town, Agency.judicial)
    judicial_elsewhere = staff(session, w.town.villages[0], Agency.judicial)
    civil = staff(session, w.town.town, Agency.civil_affairs)
    profile = make_helper(session, w.town.town, sex="female")
    helper_user = session.get(User, profile.user_id)
    assert helper_user is not None
    helper = SignedIn(helper_user, headers_for(session, helper_user), "")
    offer = Assignment(child_id=child.id or 0, helper_id=profile.id or 0, org_unit_id=child.org_unit_id,
                       mode="one_to_one", status=AssignmentStatus.offered.value, case_id=case_id)
    session.add(offer)
    session.commit()
    village0 = user_client(client, session, w.town.villages[0], Role.coordinator)
    village1 = user_client(client, session, w.town.villages[1], Role.coordinator)

    def sees(who: SignedIn, service_id: int) -> bool:
        one = client.get(f"{API}/services/{service_id}", headers=who.headers)
        listed = client.get(f"{API}/services", headers=who.headers)
        assert one.status_code in (200, 404) and listed.status_code in (200, 404), (one.text, listed.text)
        in_list = listed.status_code == 200 and service_id in {s["id"] for s in listed.json()}
        assert (one.status_code == 200) == in_list, (one.text, listed.text)
        return in_list

    assert sees(w.coordinator, mine["id"]) and sees(w.coordinator, foreign["id"])
    assert sees(village0, mine["id"]) and not sees(village0, foreign["id"])
    assert not sees(village1, mine["id"])
    assert sees(judicial, mine["id"]) and sees(judicial, foreign["id"])  # addressed to its unit, wherever
    assert not sees(judicial_elsewhere, mine["id"])  # same agency, another unit
    assert not sees(civil, mine["id"])  # same unit, another agency
    assert not sees(helper, mine["id"])  # an offer opens nothing
    assert client.post(f"{API}/helpers/assignments/{offer.id}/accept", headers=helper.headers).status_code == 200
    assert sees(helper, mine["id"]) and not sees(helper, foreign["id"])
    assert not sees(w.police, mine["id"])  # opened by hand: not the police's
    for nobody in (w.volunteer_a, w.market):
        assert client.get(f"{API}/services/{mine['id']}", headers=nobody.headers).status_code == 404
        assert client.get(f"{API}/services", headers=nobody.headers).status_code == 404
    cases.open_case(session, child_id=child.id or 0, source=CaseSource.referral, source_id=None, actor=None)
    session.commit()
    assert sees(w.police, mine["id"]) and not sees(w.police, foreign["id"])
    # The case's services: a providing unit gets only those it provides, never the case.
    other = plan(client, w.coordinator, case_id, "living_aid")
    listed = client.get(f"{API}/cases/{case_id}/services", headers=judicial.headers)
    assert [s["id"] for s in listed.json()] == [mine["id"]], listed.text
    assert [s["id"] for s in client.get(f"{API}/cases/{case_id}/services", headers=civil.headers).json()] == [
        other["id"]]
    assert client.get(f"{API}/cases/{case_id}", headers=judicial.headers).status_code == 404
    assert client.get(f"{API}/cases/{foreign_case}/services", headers=civil.headers).status_code == 404
    # Who records steps: the providing unit, the coordinators, the case's helper; police only see.
    assert step(client, judicial, mine["id"], "in_progress").status_code == 200
    refused = step(client, w.police, mine["id"], "declined", reason="x")
    assert refused.status_code == 403 and refused.json()["code"] == "service-not-handler", refused.text
    assert step(client, helper, mine["id"], "done", outcome="已咨询律师").status_code == 200
    assert step(client, village0, other["id"], "in_progress").status_code == 200
    assert step(client, civil, foreign["id"], "in_progress").status_code == 404
    assert step(client, w.volunteer_a, other["id"], "done", outcome="x").status_code == 404
    # Filters.
    only = client.get(f"{API}/services", params={"provider_agency": "civil_affairs", "paged": "true"},
                      headers=w.coordinator.headers).json()
    assert [s["id"] for s in only["items"]] == [other["id"]]
    assert [s["id"] for s in client.get(f"{API}/services", params={"status": "done"},
                                        headers=w.coordinator.headers).json()] == [mine["id"]]


def test_every_read_of_a_service_is_audited(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    case = case_of_new_child(client, session, w.coordinator, w.town.grids[0][0])
    service = plan(client, w.coordinator, case["id"])
    judicial = staff(session, w.town.town, Agency.judicial)
    assert client.get(f"{API}/services/{service['id']}", headers=judicial.headers).status_code == 200
    session.expire_all()
    [entry] = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "service.read")).scalars().all()
    assert (entry.actor_user_id, entry.object_type, entry.object_id) == (judicial.user.id, "case_service",
                                                                        str(service["id"]))
    assert client.get(f"{API}/services", headers=judicial.headers).status_code == 200
    session.expire_all()
    listed = session.execute(select(AuditEntry).where(col(AuditEntry.actor_user_id) == judicial.user.id)
                             .order_by(col(AuditEntry.id).desc())).scalars().first()
    assert listed is not None and listed.details["read"] == {"case_service": str(service["id"])}


# ---------------------------------------------------------------- overdue


def test_an_overdue_service_tells_the_providing_unit_and_the_coordinators_once(client: TestClient,
                                                                              session: Session) -> None:
    w = make_world(client, session)
    case = case_of_new_child(client, session, w.coordinator, w.town.grids[0][0])
    judicial = staff(session, w.town.town, Agency.judicial)
    staff(session, w.town.town, Agency.judicial, role=Role.volunteer)  # no service.handle: not told
    staff(session, w.town.town, Agency.civil_affairs)  # another unit: not told
    due = (clock.now().astimezone(clock.SHANGHAI).date() + timedelta(days=1)).isoformat()
    late = plan(client, w.coordinator, case["id"], "legal_aid", due_on=due)
    finished = plan(client, w.coordinator, case["id"], "medical", due_on=due)
    undated = plan(client, w.coordinator, case["id"], "psychological")
    step(client, w.coordinator, finished["id"], "in_progress")
    step(client, w.coordinator, finished["id"], "done", outcome="已就医")
    assert service_plans.notify_overdue(session) == 0  # due tomorrow (China date)
    clock.advance(timedelta(days=2))
    assert service_plans.notify_overdue(session) == 1
    session.commit()
    told = _notified(session, "service.overdue")
    assert told == sorted([(judicial.user.id, {"service_id": str(late["id"]), "case_id": str(case["id"])}),
                           (w.coordinator.user.id, {"service_id": str(late["id"]), "case_id": str(case["id"])})])
    assert service_plans.notify_overdue(session) == 0  # once
    session.commit()
    assert len(_notified(session, "service.overdue")) == 2
    now = headers_for(session, w.coordinator.user)  # the clock moved past the sign-in's token
    overdue = client.get(f"{API}/services", params={"overdue": "true"}, headers=now).json()
    assert [(s["id"], s["overdue"]) for s in overdue] == [(late["id"], True)]
    on_time = client.get(f"{API}/services", params={"overdue": "false"}, headers=now).json()
    assert sorted(s["id"] for s in on_time) == sorted([finished["id"], undated["id"]])


def test_the_overdue_job_is_registered() -> None:
    from backend.core.jobs import registered_jobs
    from backend.registries import load_all

    load_all()
    assert "service_plans.notify_overdue" in {j.name for j in registered_jobs()}


# ---------------------------------------------------------------- the case closes


def test_closing_a_case_declines_its_open_services_and_they_fall_overdue_no_more(client: TestClient,
                                                                                session: Session) -> None:
    w = make_world(client, session)
    case = case_of_new_child(client, session, w.coordinator, w.town.grids[0][0])
    due = (clock.now().astimezone(clock.SHANGHAI).date() + timedelta(days=1)).isoformat()
    planned = plan(client, w.coordinator, case["id"], "legal_aid", due_on=due)
    going = plan(client, w.coordinator, case["id"], "medical", due_on=due)
    finished = plan(client, w.coordinator, case["id"], "psychological", due_on=due)
    step(client, w.coordinator, going["id"], "in_progress")
    step(client, w.coordinator, finished["id"], "in_progress")
    step(client, w.coordinator, finished["id"], "done", outcome="已完成心理疏导")
    closed = client.post(f"{API}/cases/{case['id']}/close", json={"reason": "moved_away"},
                         headers=w.coordinator.headers)
    assert closed.status_code == 200, closed.text
    after = {s["id"]: s for s in client.get(f"{API}/cases/{case['id']}/services",
                                            headers=w.coordinator.headers).json()}
    assert {i: (s["status"], s["decline_reason"]) for i, s in after.items()} == {
        planned["id"]: ("declined", "case_closed"), going["id"]: ("declined", "case_closed"),
        finished["id"]: ("done", None)}
    last = client.get(f"{API}/services/{going['id']}", headers=w.coordinator.headers).json()["steps"][-1]
    assert (last["from_status"], last["to_status"], last["reason"], last["actor_user_id"]) == (
        "in_progress", "declined", "case_closed", w.coordinator.user.id)
    clock.advance(timedelta(days=5))
    assert service_plans.notify_overdue(session) == 0
    refused = client.post(f"{API}/services/{planned['id']}/steps", json={"to_status": "in_progress"},
                          headers=headers_for(session, w.coordinator.user))
    assert refused.status_code == 409 and refused.json()["allowed"] == []
