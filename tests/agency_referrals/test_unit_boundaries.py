"""What is addressed to a unit (成员单位) reaches those who act for it (its staff, a police station, a
coordinator), never a helper who happens to come from the same body: a helper sees the services and
referrals of the children it helps only. And a unit that reads a child only through a referral stops
reading it once the referral is declined or completed (minimum necessary)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.notifications.models import Notification
from backend.service_plans.models import CaseService
from tests.agency_referrals.test_agency_referrals import _answer, _child_case, _refer
from tests.factories import make_user
from tests.notifications.factories import headers_for
from tests.registry.factories import make_world
from tests.service_plans.factories import API, plan, staff


def test_a_helper_from_the_receiving_body_sees_and_handles_nothing_addressed_to_that_unit(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    _, case_id = _child_case(client, session, w)
    service = plan(client, w.coordinator, case_id, "family_education", provider_agency="government",
                   note="监护人酗酒")
    helper = make_user(session, w.town.town, Role.helper, agency=Agency.womens_federation)
    member = staff(session, w.town.town, Agency.womens_federation)
    sent = _refer(client, w.coordinator, case_id, w.town.town.id or 0, "womens_federation", service_id=service["id"],
                  shared_fields=["child_name", "guardian_phone"])
    assert sent.status_code == 201, sent.text
    referral = sent.json()
    h = headers_for(session, helper)
    for path in (f"/agency-referrals/{referral['id']}", f"/services/{service['id']}"):
        assert client.get(f"{API}{path}", headers=h).status_code == 404
        assert client.get(f"{API}{path}", headers=member.headers).status_code == 200
    assert client.get(f"{API}/agency-referrals", headers=h).json() == []
    assert client.get(f"{API}/services", headers=h).json() == []
    assert client.post(f"{API}/agency-referrals/{referral['id']}/accept", headers=h).status_code == 404
    step = client.post(f"{API}/services/{service['id']}/steps", json={"to_status": "declined", "reason": "x"},
                       headers=h)
    assert step.status_code == 404
    pulled = client.get(f"{API}/sync/pull", headers=h).json()
    assert not [i for i in pulled["items"] if i["kind"] in ("service", "case")]
    told = set(session.execute(select(col(Notification.user_id)).where(
        col(Notification.kind) == "agency_referral.received")).scalars())
    assert member.user.id in told and helper.id not in told
    stored = session.get(CaseService, service["id"])
    assert stored is not None and stored.status == "referred"


def test_a_unit_reads_the_shared_fields_while_the_referral_is_open_only(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    child, case_id = _child_case(client, session, w)
    judicial = staff(session, w.town.town, Agency.judicial)
    civil = staff(session, w.town.town, Agency.civil_affairs)
    declined_service = plan(client, w.coordinator, case_id, "legal_aid", provider_agency="government")
    done_service = plan(client, w.coordinator, case_id, "living_aid", provider_agency="government")
    to_judicial = _refer(client, w.coordinator, case_id, w.town.town.id or 0, "judicial",
                         service_id=declined_service["id"], shared_fields=["child_name", "guardian_phone"]).json()
    to_civil = _refer(client, w.coordinator, case_id, w.town.town.id or 0, "civil_affairs",
                      service_id=done_service["id"], shared_fields=["child_name"]).json()
    assert to_judicial["shared"]["child_name"] == child.name

    assert _answer(client, judicial, to_judicial["id"], "decline", {"reason": "不属本所职责"}).status_code == 200
    assert _answer(client, civil, to_civil["id"], "accept").status_code == 200
    while_open = client.get(f"{API}/agency-referrals/{to_civil['id']}", headers=civil.headers).json()
    assert while_open["shared"] == {"child_name": child.name}
    assert _answer(client, civil, to_civil["id"], "complete", {"outcome": "已发放临时救助"}).status_code == 200

    for who, referral_id in ((judicial, to_judicial["id"]), (civil, to_civil["id"])):
        after = client.get(f"{API}/agency-referrals/{referral_id}", headers=who.headers)
        assert after.status_code == 200, after.text
        body = after.json()
        assert body["shared"] == {} and body["status"] in ("declined", "completed")
        assert child.name not in after.text
    # The coordinator, who reads the case itself, still sees what was shared.
    kept = client.get(f"{API}/agency-referrals/{to_judicial['id']}", headers=w.coordinator.headers).json()
    assert kept["shared"]["child_name"] == child.name


def test_referrals_of_one_service_sent_at_once_make_one_referral_and_409s(client: TestClient, session: Session) -> None:
    """Found by the outside test: three of four such requests answered 503 after a database deadlock."""
    from tests.cases.test_case_races import _together

    w = make_world(client, session)
    _, case_id = _child_case(client, session, w)
    service = plan(client, w.coordinator, case_id, "legal_aid", provider_agency="government")
    agencies = ["judicial", "civil_affairs", "health", "education"]
    answers = _together(*[
        (lambda c, a=a: c.post(f"{API}/cases/{case_id}/referrals", headers=w.coordinator.headers,
                               json={"service_id": service["id"], "to_unit_id": w.town.town.id, "to_agency": a}))
        for a in agencies])
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409], [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"agency-referral-service-busy"}


def test_a_unit_that_handed_a_service_on_reads_nothing_of_the_child_through_its_onward_referral(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    child, case_id = _child_case(client, session, w)
    judicial = staff(session, w.town.town, Agency.judicial)
    civil = staff(session, w.town.town, Agency.civil_affairs)
    service = plan(client, w.coordinator, case_id, "legal_aid", provider_agency="government")
    fields = ["child_name", "guardian_phone"]
    first = _refer(client, w.coordinator, case_id, w.town.town.id or 0, "judicial", service_id=service["id"],
                   shared_fields=fields).json()
    assert _answer(client, judicial, first["id"], "accept").status_code == 200
    onward = _refer(client, judicial, case_id, w.town.town.id or 0, "civil_affairs", service_id=service["id"],
                    shared_fields=fields)
    assert onward.status_code == 201, onward.text
    sent = client.get(f"{API}/agency-referrals/{onward.json()['id']}", headers=judicial.headers)
    assert sent.status_code == 200 and sent.json()["shared"] == {} and child.name not in sent.text
    received = client.get(f"{API}/agency-referrals/{onward.json()['id']}", headers=civil.headers).json()
    assert received["shared"]["child_name"] == child.name


def test_a_helper_of_the_child_does_not_answer_a_referral_by_recording_a_step(
    client: TestClient, session: Session
) -> None:
    from tests.sync.test_case_sync import _helped

    w = make_world(client, session)
    child, _ = _child_case(client, session, w, grid=1)
    helper, assignment = _helped(client, session, w, child)
    service = plan(client, w.coordinator, assignment["case_id"], "family_education", provider_agency="government")
    sent = _refer(client, w.coordinator, assignment["case_id"], w.town.town.id or 0, "womens_federation",
                  service_id=service["id"])
    assert sent.status_code == 201, sent.text
    step = client.post(f"{API}/services/{service['id']}/steps", json={"to_status": "in_progress"},
                       headers=helper.headers)
    assert step.status_code == 403 and step.json()["code"] == "service-not-handler", step.text
    still = client.get(f"{API}/agency-referrals/{sent.json()['id']}", headers=w.coordinator.headers).json()
    assert still["status"] == "sent"
