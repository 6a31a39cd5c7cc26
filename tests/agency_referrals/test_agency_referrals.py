"""Referrals between units (转介, issue 16): a unit refers a case or a service to another, which accepts,
declines with a reason or completes with an outcome; the service follows; the receiving unit sees exactly
the fields shared and nothing else of the child; every read is audited; who sees which referral."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Agency, User
from backend.accounts.permissions import Role
from backend.audit import disclosure
from backend.audit.models import AuditEntry
from backend.cases import service as cases
from backend.cases.models import CaseSource
from backend.core import clock
from backend.helpers.models import Assignment, AssignmentStatus
from backend.notifications.models import Notification
from backend.registry.models import Household, Person
from tests.factories import SignedIn, user_client
from tests.helpers.factories import make_child, make_helper
from tests.notifications.factories import headers_for
from tests.registry.factories import World, make_world
from tests.service_plans.factories import API, ensure_service_kinds, open_case, plan, staff, step


def _refer(client: TestClient, who: SignedIn, case_id: int, to_unit: int, to_agency: str, **body: Any) -> Any:
    return client.post(f"{API}/cases/{case_id}/referrals", json={"to_unit_id": to_unit, "to_agency": to_agency, **body},
                       headers=who.headers)


def _answer(client: TestClient, who: SignedIn, referral_id: int, what: str, body: dict[str, Any] | None = None
            ) -> Any:
    return client.post(f"{API}/agency-referrals/{referral_id}/{what}", json=body, headers=who.headers)


def _told(session: Session, user: User) -> list[tuple[str, dict[str, str]]]:
    session.expire_all()
    return [(n.kind, n.data) for n in session.execute(
        select(Notification).where(col(Notification.user_id) == user.id).order_by(col(Notification.id))).scalars()]


def _child_case(client: TestClient, session: Session, w: World, grid: int = 0) -> tuple[Person, int]:
    ensure_service_kinds(session)
    child = make_child(session, w.town.grids[grid][0], name=f"转介儿童{grid}")
    child.birth_date = clock.now().date().replace(year=clock.now().year - 9, month=1, day=1)
    session.add(child)
    session.commit()
    return child, open_case(client, w.coordinator, child)["id"]


def test_a_referred_service_is_accepted_and_completed(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    child, case_id = _child_case(client, session, w)
    service = plan(client, w.coordinator, case_id, "legal_aid", provider_agency="government")
    judicial = staff(session, w.town.town, Agency.judicial)
    sent = _refer(client, w.coordinator, case_id, w.town.town.id or 0, "judicial", service_id=service["id"],
                  shared_fields=["child_name", "child_age"], message="请提供法律援助")
    assert sent.status_code == 201, sent.text
    referral = sent.json()
    assert (referral["status"], referral["shared_fields"], referral["from_user_id"]) == (
        "sent", ["child_name", "child_age"], w.coordinator.user.id)
    assert referral["shared"] == {"child_name": child.name, "child_age": 9}
    assert _told(session, judicial.user) == [("agency_referral.received", {"agency_referral_id": str(referral["id"])})]
    moved = client.get(f"{API}/services/{service['id']}", headers=judicial.headers).json()
    assert (moved["status"], moved["provider_unit_id"], moved["provider_agency"]) == (
        "referred", w.town.town.id, "judicial")
    seen = client.get(f"{API}/agency-referrals/{referral['id']}", headers=judicial.headers)
    assert seen.status_code == 200 and seen.json()["allowed"] == ["accept", "decline"], seen.text
    assert client.get(f"{API}/agency-referrals/{referral['id']}", headers=w.coordinator.headers).json()[
        "allowed"] == ["accept", "decline"]  # the coordinator of the receiving unit's area may answer for it
    refused = _answer(client, judicial, referral["id"], "complete", {"outcome": "x"})
    assert refused.status_code == 409 and refused.json()["allowed"] == ["accept", "decline"], refused.text
    accepted = _answer(client, judicial, referral["id"], "accept", {"note": "已受理"})
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted", accepted.text
    assert client.get(f"{API}/services/{service['id']}", headers=judicial.headers).json()["status"] == "in_progress"
    for what, body in (("accept", None), ("decline", {"reason": "x"})):
        again = _answer(client, judicial, referral["id"], what, body)
        assert again.status_code == 409 and again.json()["allowed"] == ["complete"], again.text
    assert _answer(client, judicial, referral["id"], "complete", {"outcome": ""}).status_code == 422
    done = _answer(client, judicial, referral["id"], "complete", {"outcome": "已指派律师代理"})
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["outcome"]) == ("completed", "已指派律师代理")
    final = client.get(f"{API}/services/{service['id']}", headers=w.coordinator.headers).json()
    assert (final["status"], final["outcome"]) == ("done", "已指派律师代理")
    assert [s["to_status"] for s in final["steps"]] == ["planned", "referred", "in_progress", "done"]
    for what, body in (("accept", None), ("decline", {"reason": "x"}), ("complete", {"outcome": "y"})):
        late = _answer(client, judicial, referral["id"], what, body)
        assert late.status_code == 409 and late.json()["allowed"] == [], late.text
    data = {"agency_referral_id": str(referral["id"])}
    assert _told(session, w.coordinator.user) == [("agency_referral.accepted", data),
                                                  ("agency_referral.completed", data)]


def test_a_declined_referral_puts_the_service_back_with_its_former_provider(client: TestClient,
                                                                           session: Session) -> None:
    w = make_world(client, session)
    _, case_id = _child_case(client, session, w)
    service = plan(client, w.coordinator, case_id, "living_aid")  # the town's 民政办
    committee = staff(session, w.town.villages[0], Agency.village_committee)
    referral = _refer(client, w.coordinator, case_id, w.town.villages[0].id or 0, "village_committee",
                      service_id=service["id"]).json()
    busy = _refer(client, w.coordinator, case_id, w.town.town.id or 0, "judicial", service_id=service["id"])
    assert busy.status_code == 409 and busy.json()["code"] == "agency-referral-service-busy", busy.text
    assert _answer(client, committee, referral["id"], "decline", {"reason": ""}).status_code == 422
    declined = _answer(client, committee, referral["id"], "decline", {"reason": "本村无救助资金"})
    assert declined.status_code == 200, declined.text
    assert (declined.json()["status"], declined.json()["decline_reason"]) == ("declined", "本村无救助资金")
    back = client.get(f"{API}/services/{service['id']}", headers=w.coordinator.headers).json()
    assert (back["status"], back["provider_unit_id"], back["provider_agency"]) == (
        "planned", w.town.town.id, "civil_affairs")
    assert ("agency_referral.declined", {"agency_referral_id": str(referral["id"])}) in _told(session,
                                                                                             w.coordinator.user)
    # The unit that declined sees its referral, no longer the service.
    assert client.get(f"{API}/services/{service['id']}", headers=committee.headers).status_code == 404
    assert client.get(f"{API}/agency-referrals/{referral['id']}", headers=committee.headers).status_code == 200
    assert _answer(client, committee, referral["id"], "accept").status_code == 409
    # Referred again elsewhere, it may go; a service done may not.
    again = _refer(client, w.coordinator, case_id, w.town.town.id or 0, "civil_affairs", service_id=service["id"])
    assert again.status_code == 201, again.text
    step(client, w.coordinator, service["id"], "in_progress")
    step(client, w.coordinator, service["id"], "done", outcome="已纳入低保")
    assert client.get(f"{API}/agency-referrals/{again.json()['id']}", headers=w.coordinator.headers).json()[
        "status"] == "completed"  # a step answers the service's open referral too
    closed = _refer(client, w.coordinator, case_id, w.town.town.id or 0, "judicial", service_id=service["id"])
    assert closed.status_code == 409 and closed.json()["code"] == "agency-referral-service-busy"


def test_the_receiving_unit_sees_exactly_the_shared_fields_and_every_read_is_audited(client: TestClient,
                                                                                     session: Session) -> None:
    w = make_world(client, session)
    child, case_id = _child_case(client, session, w)
    home = session.get(Household, child.household_id)
    assert home is not None
    home.head_name, home.contact = "监护人甲", "13900000001"
    session.add(home)
    session.commit()
    plan(client, w.coordinator, case_id, "psychological")
    health = staff(session, w.town.town, Agency.health)
    minimal = _refer(client, w.coordinator, case_id, w.town.town.id or 0, "health")
    assert minimal.status_code == 201, minimal.text
    view = client.get(f"{API}/agency-referrals/{minimal.json()['id']}", headers=health.headers)
    assert view.status_code == 200, view.text
    assert view.json()["shared_fields"] == ["child_age", "child_gender", "needs_summary"]
    assert view.json()["shared"] == {"child_age": 9, "child_gender": "female", "needs_summary": "心理干预"}
    for secret in (child.name, home.address, "监护人甲", "13900000001", str(child.uuid)):
        assert secret not in view.text
    everything = _refer(client, w.coordinator, case_id, w.town.town.id or 0, "health",
                        shared_fields=["address", "guardian_phone", "guardian_name", "child_name"]).json()
    shown = client.get(f"{API}/agency-referrals/{everything['id']}", headers=health.headers).json()["shared"]
    assert shown == {"child_name": child.name, "guardian_name": "监护人甲", "guardian_phone": "13900000001",
                     "address": home.address}
    # Read when asked, never stored: an edit of the registry shows at the next read.
    home.contact = "13900000002"
    session.add(home)
    session.commit()
    assert client.get(f"{API}/agency-referrals/{everything['id']}", headers=health.headers).json()["shared"][
        "guardian_phone"] == "13900000002"
    # Nothing else of the child or its case.
    for path in (f"/cases/{case_id}", f"/persons/{child.id}", f"/households/{child.household_id}", "/cases"):
        assert client.get(f"{API}{path}", headers=health.headers).status_code == 404, path
    bad = _refer(client, w.coordinator, case_id, w.town.town.id or 0, "health", shared_fields=["id_number"])
    assert bad.status_code == 422 and bad.json()["code"] == "agency-referral-invalid", bad.text
    session.expire_all()
    reads = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "agency_referral.read",
                                                     col(AuditEntry.actor_user_id) == health.user.id)
                            .order_by(col(AuditEntry.id))).scalars().all()
    assert [(e.object_id, e.details["shared_fields"]) for e in reads] == [
        (str(minimal.json()["id"]), ["child_age", "child_gender", "needs_summary"]),
        (str(everything["id"]), ["child_name", "guardian_name", "guardian_phone", "address"]),
        (str(everything["id"]), ["child_name", "guardian_name", "guardian_phone", "address"])]
    assert reads[0].details["read"]["person"] == str(child.id)
    listed = client.get(f"{API}/agency-referrals", params={"direction": "incoming"}, headers=health.headers)
    assert [r["id"] for r in listed.json()] == [everything["id"], minimal.json()["id"]]
    session.expire_all()
    entry = session.execute(select(AuditEntry).where(col(AuditEntry.actor_user_id) == health.user.id)
                            .order_by(col(AuditEntry.id).desc())).scalars().first()
    assert entry is not None
    assert disclosure.expand(entry.details["read"]["agency_referral"]) == {minimal.json()["id"], everything["id"]}


def test_who_sees_which_referral(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    child, case_id = _child_case(client, session, w)
    _, foreign_case = _child_case(client, session, w, grid=1)
    mine = _refer(client, w.coordinator, case_id, w.town.town.id or 0, "judicial").json()
    foreign = _refer(client, w.coordinator, foreign_case, w.town.town.id or 0, "education").json()
    judicial = staff(session, w.town.town, Agency.judicial)
    judicial_elsewhere = staff(session, w.town.villages[0], Agency.judicial)
    civil = staff(session, w.town.town, Agency.civil_affairs)
    village0 = user_client(client, session, w.town.villages[0], Role.coordinator)
    village1 = user_client(client, session, w.town.villages[1], Role.coordinator)
    profile = make_helper(session, w.town.town, sex="female")
    helper_user = session.get(User, profile.user_id)
    assert helper_user is not None
    helper = SignedIn(helper_user, headers_for(session, helper_user), "")

    def sees(who: SignedIn, referral_id: int) -> bool:
        one = client.get(f"{API}/agency-referrals/{referral_id}", headers=who.headers)
        listed = client.get(f"{API}/agency-referrals", headers=who.headers)
        assert one.status_code in (200, 404) and listed.status_code in (200, 404), (one.text, listed.text)
        in_list = listed.status_code == 200 and referral_id in {r["id"] for r in listed.json()}
        assert (one.status_code == 200) == in_list, (one.text, listed.text)
        return in_list

    assert sees(w.coordinator, mine["id"]) and sees(w.coordinator, foreign["id"])
    assert sees(village0, mine["id"]) and not sees(village0, foreign["id"])
    assert not sees(village1, mine["id"])
    assert sees(judicial, mine["id"]) and not sees(judicial, foreign["id"])
    assert not sees(judicial_elsewhere, mine["id"]) and not sees(civil, mine["id"])
    assert not sees(helper, mine["id"]) and not sees(w.police, mine["id"])
    session.add(Assignment(child_id=child.id or 0, helper_id=profile.id or 0, org_unit_id=child.org_unit_id,
                           mode="one_to_one", status=AssignmentStatus.accepted.value, case_id=case_id))
    session.commit()
    assert sees(helper, mine["id"]) and not sees(helper, foreign["id"])
    cases.open_case(session, child_id=child.id or 0, source=CaseSource.referral, source_id=None, actor=None)
    session.commit()
    assert sees(w.police, mine["id"]) and not sees(w.police, foreign["id"])
    for nobody in (w.volunteer_a, w.market):
        assert client.get(f"{API}/agency-referrals/{mine['id']}", headers=nobody.headers).status_code == 404
        assert client.get(f"{API}/agency-referrals", headers=nobody.headers).status_code == 404
    # Who answers: the receiving unit (and the coordinators over it); others who see it may not.
    for who in (helper, w.police):
        refused = _answer(client, who, mine["id"], "accept")
        assert refused.status_code == 403 and refused.json()["code"] == "agency-referral-not-receiver", refused.text
    assert _answer(client, village0, mine["id"], "accept").status_code == 403  # the town's unit is above it
    assert _answer(client, civil, mine["id"], "accept").status_code == 404
    assert _answer(client, judicial, mine["id"], "accept").status_code == 200
    # Directions.
    outgoing = client.get(f"{API}/agency-referrals", params={"direction": "outgoing"}, headers=w.coordinator.headers)
    assert sorted(r["id"] for r in outgoing.json()) == sorted([mine["id"], foreign["id"]])
    assert client.get(f"{API}/agency-referrals", params={"direction": "incoming"},
                      headers=w.coordinator.headers).json() == []
    assert [r["id"] for r in client.get(f"{API}/agency-referrals", params={"direction": "incoming"},
                                        headers=judicial.headers).json()] == [mine["id"]]


def test_only_coordinators_refer_a_case_and_a_provider_hands_on_only_what_it_was_given(client: TestClient,
                                                                                     session: Session) -> None:
    w = make_world(client, session)
    _, case_id = _child_case(client, session, w)
    service = plan(client, w.coordinator, case_id, "legal_aid")
    judicial = staff(session, w.town.town, Agency.judicial)
    whole = _refer(client, judicial, case_id, w.town.town.id or 0, "civil_affairs")
    assert whole.status_code == 404, whole.text  # referring a whole case is service.manage
    first = _refer(client, w.coordinator, case_id, w.town.town.id or 0, "judicial", service_id=service["id"],
                   shared_fields=["child_age", "needs_summary"]).json()
    assert _answer(client, judicial, first["id"], "accept").status_code == 200
    wider = _refer(client, judicial, case_id, w.town.villages[0].id or 0, "village_committee",
                   service_id=service["id"], shared_fields=["child_name"])
    assert wider.status_code == 422 and wider.json()["allowed"] == ["child_age", "needs_summary"], wider.text
    onward = _refer(client, judicial, case_id, w.town.villages[0].id or 0, "village_committee",
                    service_id=service["id"], shared_fields=["child_age"])
    assert onward.status_code == 201, onward.text
    handed = client.get(f"{API}/agency-referrals/{first['id']}", headers=judicial.headers).json()
    assert handed["status"] == "completed" and str(onward.json()["id"]) in handed["outcome"]
    now = client.get(f"{API}/services/{service['id']}", headers=w.coordinator.headers).json()
    assert (now["status"], now["provider_unit_id"], now["provider_agency"]) == (
        "referred", w.town.villages[0].id, "village_committee")
    # The former provider no longer provides it; it cannot refer it again.
    again = _refer(client, judicial, case_id, w.town.town.id or 0, "health", service_id=service["id"])
    assert again.status_code == 404, again.text
    helper = make_helper(session, w.town.town, sex="female")
    helper_user = session.get(User, helper.user_id)
    assert helper_user is not None
    assert _refer(client, SignedIn(helper_user, headers_for(session, helper_user), ""), case_id,
                  w.town.town.id or 0, "health", service_id=service["id"]).status_code == 404


def test_closing_the_case_ends_its_open_referrals(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    _, case_id = _child_case(client, session, w)
    service = plan(client, w.coordinator, case_id, "medical")
    of_service = _refer(client, w.coordinator, case_id, w.town.town.id or 0, "health",
                        service_id=service["id"]).json()
    of_case = _refer(client, w.coordinator, case_id, w.town.town.id or 0, "education").json()
    closed = client.post(f"{API}/cases/{case_id}/close", json={"reason": "risk_lowered"}, headers=w.coordinator.headers)
    assert closed.status_code == 200, closed.text
    for referral in (of_service, of_case):
        now = client.get(f"{API}/agency-referrals/{referral['id']}", headers=w.coordinator.headers).json()
        assert (now["status"], now["decline_reason"]) == ("declined", "case_closed"), now
    late = _refer(client, w.coordinator, case_id, w.town.town.id or 0, "judicial")
    assert late.status_code == 409 and late.json()["code"] == "service-case-closed", late.text
