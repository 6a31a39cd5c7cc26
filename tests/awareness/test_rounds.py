"""Survey rounds (知晓率调查轮次): who opens them where, what the answer carries, closing, listing."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.awareness import service
from backend.awareness.models import AwarenessRound
from backend.core import clock
from backend.institutions.models import InstitutionKind
from tests.awareness.factories import API, answer, open_round, right_answers, school, sheet
from tests.factories import make_town, sign_in, user_client
from tests.institutions.factories import make_institution


def test_coordinator_opens_a_round_and_only_the_code_digest_is_stored(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    pupils = school(session, town.villages[0], students=50)

    opened = open_round(client, coordinator.headers, pupils)

    assert opened["state"] == "open" and opened["responses"] == 0
    assert opened["response_cap"] == 55  # enrolment and a tenth (at least five) for the figure's lag
    code = opened["code"]
    assert len(code.replace("-", "")) == service.CODE_LENGTH
    stored = session.get(AwarenessRound, opened["id"])
    assert stored is not None and code.replace("-", "") not in stored.token_digest
    assert stored.token_digest == service.code_digest(code.replace("-", ""))
    again = client.get(f"{API}/rounds/{opened['id']}", headers=coordinator.headers).json()
    assert "code" not in again  # shown once, never again
    actions = session.execute(select(col(AuditEntry.action)).where(col(AuditEntry.object_type) == "awareness_round")
                              ).scalars().all()
    assert "awareness.round_opened" in actions


def test_codes_differ_between_rounds(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    codes = {open_round(client, coordinator.headers, school(session, town.villages[i]))["code"] for i in range(4)}
    assert len(codes) == 4


def test_only_education_staff_among_agency_staff_manage_rounds(client: TestClient, session: Session) -> None:
    town = make_town(session)
    pupils = school(session, town.villages[0])
    judicial = user_client(client, session, town.town, Role.agency_staff, agency=Agency.judicial)
    # The town's education office, above the school (its village's teachers are its own staff: test_own_figure).
    education = user_client(client, session, town.town, Role.agency_staff, agency=Agency.education)

    refused = client.post(f"{API}/rounds", json={"institution_id": pupils.id}, headers=judicial.headers)
    assert refused.status_code == 403 and refused.json()["code"] == "awareness-not-manager"
    assert client.post(f"{API}/rounds", json={"institution_id": pupils.id}, headers=education.headers
                       ).status_code == 201


def test_a_school_outside_the_jurisdiction_is_not_found(client: TestClient, session: Session) -> None:
    town = make_town(session)
    village_coordinator = user_client(client, session, town.villages[0], Role.coordinator)
    elsewhere = school(session, town.villages[1])
    resp = client.post(f"{API}/rounds", json={"institution_id": elsewhere.id}, headers=village_coordinator.headers)
    assert resp.status_code == 404 and resp.json()["code"] == "awareness-school-not-found"


def test_rounds_are_held_at_schools_with_a_student_count(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    hotel = make_institution(session, town.villages[0].id or 0, InstitutionKind.hotel)
    unknown = make_institution(session, town.villages[0].id or 0, InstitutionKind.kindergarten, student_count=0)

    assert client.post(f"{API}/rounds", json={"institution_id": hotel.id},
                       headers=coordinator.headers).json()["code"] == "awareness-not-a-school"
    assert client.post(f"{API}/rounds", json={"institution_id": unknown.id},
                       headers=coordinator.headers).json()["code"] == "awareness-school-without-students"


def test_one_open_round_per_school_and_a_lapsed_one_makes_room(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    pupils = school(session, town.villages[0])
    first = open_round(client, coordinator.headers, pupils, days=3)

    second = client.post(f"{API}/rounds", json={"institution_id": pupils.id}, headers=coordinator.headers)
    assert second.status_code == 409 and second.json()["code"] == "awareness-round-open"

    clock.advance(timedelta(days=3, seconds=1))
    try:
        coordinator = sign_in(client, coordinator.user)  # the access token did not outlive three days
        assert open_round(client, coordinator.headers, pupils)["id"] != first["id"]
        lapsed = client.get(f"{API}/rounds/{first['id']}", headers=coordinator.headers).json()
        assert lapsed["state"] == "closed" and lapsed["closed_at"] == lapsed["closes_at"]
    finally:
        clock.reset()


def test_closing_a_round_ends_answering(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    opened = open_round(client, coordinator.headers, school(session, town.villages[0]))
    kept = sheet()
    assert answer(client, opened["code"], kept).status_code == 201

    closed = client.post(f"{API}/rounds/{opened['id']}/close", headers=coordinator.headers)
    assert closed.status_code == 200 and closed.json()["state"] == "closed"

    late = answer(client, opened["code"], sheet())
    assert late.status_code == 409 and late.json()["code"] == "awareness-round-closed"
    assert late.headers["content-type"].startswith("application/problem+json")
    assert client.get(f"{API}/answer/{opened['code']}").json()["code"] == "awareness-round-closed"
    # A phone that lost the first answer and sends it again learns it was kept.
    assert answer(client, opened["code"], kept).status_code == 200
    assert client.get(f"{API}/rounds/{opened['id']}", headers=coordinator.headers).json()["responses"] == 1


def test_rounds_list_keeps_to_the_jurisdiction(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    own = open_round(client, coordinator.headers, school(session, town.villages[0]))
    other = open_round(client, coordinator.headers, school(session, town.villages[1]))
    village_reader = user_client(client, session, town.villages[0], Role.agency_staff, agency=Agency.civil_affairs)

    listed = client.get(f"{API}/rounds", headers=village_reader.headers).json()
    assert [r["id"] for r in listed] == [own["id"]]
    assert client.get(f"{API}/rounds/{other['id']}", headers=village_reader.headers).status_code == 404
    both = client.get(f"{API}/rounds", params={"paged": True, "limit": 1}, headers=coordinator.headers).json()
    assert [r["id"] for r in both["items"]] == [other["id"]] and both["next_cursor"]


def test_round_counts_knowing_and_rate(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    opened = open_round(client, coordinator.headers, school(session, town.villages[0]))
    wrong = {q: ["a"] if c != ["a"] else ["b"] for q, c in right_answers().items()}
    for answers in (right_answers(), right_answers(), right_answers(), wrong):
        assert answer(client, opened["code"], sheet(answers)).status_code == 201
    got = client.get(f"{API}/rounds/{opened['id']}", headers=coordinator.headers).json()
    assert (got["responses"], got["knowing"], got["rate"]) == (4, 3, 0.75)
