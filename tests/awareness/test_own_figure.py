"""A school's awareness figure is made by those above the school and is not rewritten after the fact
(outside tester, issue 18 round 3, finding 3): its own staff neither open nor close its rounds, a round
asks the questionnaire in force, participation is read against the enrolment when the round opened, and
a lower unit's quick round does not replace a higher unit's figure."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.institutions.models import InstitutionKind
from tests.awareness.factories import API, SURVEY_VERSION, answer, open_round, school, sheet, wrong_answers
from tests.factories import make_town, user_client
from tests.institutions.factories import make_institution


def _rates(client: TestClient, headers: dict[str, str], unit_id: int) -> dict[str, Any]:
    resp = client.get(f"{API}/rates", params={"unit_id": unit_id}, headers=headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _school_row(got: dict[str, Any], institution_id: int | None) -> dict[str, Any]:
    row: dict[str, Any] = next(s for s in got["schools"] if s["institution_id"] == institution_id)
    return row


def _close(client: TestClient, headers: dict[str, str], round_id: int) -> None:
    resp = client.post(f"{API}/rounds/{round_id}/close", headers=headers)
    assert resp.status_code == 200, resp.text


def test_the_schools_own_education_staff_neither_open_nor_close_its_rounds(client: TestClient,
                                                                           session: Session) -> None:
    town = make_town(session)
    village, grid = town.villages[0], town.grids[0][0]
    pupils = school(session, village)
    # An education institution registered at a grid is of the grid's village: the village's teachers are its staff.
    nursery = make_institution(session, grid.id or 0, InstitutionKind.kindergarten, student_count=60)
    teacher = user_client(client, session, village, Role.agency_staff, agency=Agency.education)
    grid_teacher = user_client(client, session, grid, Role.agency_staff, agency=Agency.education)
    town_clerk = user_client(client, session, town.town, Role.agency_staff, agency=Agency.education)

    for who, where in ((teacher, pupils), (teacher, nursery), (grid_teacher, nursery)):
        refused = client.post(f"{API}/rounds", json={"institution_id": where.id, "days": 1}, headers=who.headers)
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "awareness-own-school"

    # The town's education office, above the school, runs it; the school's teacher cannot end it early.
    opened = open_round(client, town_clerk.headers, pupils)
    early = client.post(f"{API}/rounds/{opened['id']}/close", headers=teacher.headers)
    assert early.status_code == 403 and early.json()["code"] == "awareness-own-school"
    assert open_round(client, town_clerk.headers, nursery)["state"] == "open"


def test_a_village_coordinator_surveys_its_villages_school(client: TestClient, session: Session) -> None:
    town = make_town(session)
    pupils = school(session, town.villages[0])
    coordinator = user_client(client, session, town.villages[0], Role.coordinator)  # 专班, not the school's staff
    assert open_round(client, coordinator.headers, pupils)["state"] == "open"


def test_a_round_asks_the_questionnaire_in_force_and_no_other(client: TestClient, session: Session) -> None:
    town = make_town(session)
    county = user_client(client, session, town.county, Role.coordinator)
    pupils = school(session, town.villages[0])
    national = client.get(f"{API}/questionnaires", headers=county.headers).json()
    national_id = next(q["id"] for q in (national["items"] if isinstance(national, dict) else national)
                       if q["national"])
    published = client.post(f"{API}/questionnaires", json=SURVEY_VERSION, headers=county.headers)
    assert published.status_code == 201, published.text

    older = client.post(f"{API}/rounds", json={"institution_id": pupils.id, "questionnaire_id": national_id},
                        headers=county.headers)
    assert older.status_code == 422, older.text
    assert older.json()["code"] == "awareness-questionnaire-not-in-force"

    named = open_round(client, county.headers, pupils, questionnaire_id=published.json()["id"])
    assert named["questionnaire_id"] == published.json()["id"]


def test_participation_of_a_closed_round_keeps_the_enrolment_it_opened_with(client: TestClient,
                                                                            session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    pupils = school(session, town.villages[0], students=20)
    opened = open_round(client, coordinator.headers, pupils)
    for _ in range(15):
        assert answer(client, opened["code"], sheet()).status_code == 201
    _close(client, coordinator.headers, opened["id"])
    before = _rates(client, coordinator.headers, town.town.id or 0)
    assert _school_row(before, pupils.id)["participation"] == 0.75

    county = user_client(client, session, town.county, Role.coordinator)  # enrolment is the county's to change
    patched = client.patch(f"/api/v1/institutions/{pupils.id}", json={"student_count": 15},
                           headers=county.headers)
    assert patched.status_code == 200, patched.text

    after = _rates(client, coordinator.headers, town.town.id or 0)
    row = _school_row(after, pupils.id)
    assert (row["students"], row["participation"]) == (20, 0.75)
    assert after["totals"]["participation"] == before["totals"]["participation"]
    assert after["totals"]["meets_target"] is False
    shown = client.get(f"{API}/rounds/{opened['id']}", headers=coordinator.headers).json()
    assert shown["students"] == 20


def test_a_lower_units_quick_round_does_not_replace_a_higher_units_figure(client: TestClient,
                                                                         session: Session) -> None:
    town = make_town(session)
    county = user_client(client, session, town.county, Role.coordinator)
    village = user_client(client, session, town.villages[0], Role.coordinator)
    pupils = school(session, town.villages[0], students=10)
    careful = open_round(client, county.headers, pupils)
    for n in range(10):
        assert answer(client, careful["code"], sheet(wrong_answers(3) if n < 4 else None)).status_code == 201
    _close(client, county.headers, careful["id"])

    quick = open_round(client, village.headers, pupils, days=1)
    for _ in range(10):
        assert answer(client, quick["code"], sheet()).status_code == 201
    _close(client, village.headers, quick["id"])

    row = _school_row(_rates(client, county.headers, town.town.id or 0), pupils.id)
    assert (row["round_id"], row["knowing"], row["rate"]) == (careful["id"], 6, 0.6)


def test_a_re_survey_replaces_the_figure_only_once_it_is_closed(client: TestClient, session: Session) -> None:
    town = make_town(session)
    county = user_client(client, session, town.county, Role.coordinator)
    pupils = school(session, town.villages[0], students=10)
    first = open_round(client, county.headers, pupils)
    for n in range(10):
        assert answer(client, first["code"], sheet(wrong_answers(3) if n < 4 else None)).status_code == 201
    _close(client, county.headers, first["id"])

    again = open_round(client, county.headers, pupils)
    assert answer(client, again["code"], sheet()).status_code == 201
    running = _school_row(_rates(client, county.headers, town.town.id or 0), pupils.id)
    assert running["round_id"] == first["id"]  # one answer so far does not stand for the school

    _close(client, county.headers, again["id"])
    done = _school_row(_rates(client, county.headers, town.town.id or 0), pupils.id)
    assert (done["round_id"], done["responses"], done["rate"]) == (again["id"], 1, 1.0)


def test_a_round_is_ended_early_only_by_the_unit_that_opened_it_or_one_above(client: TestClient,
                                                                              session: Session) -> None:
    # Which round counts goes by the opener's level, and a round counts once closed: a town must not cut
    # the county's survey short (outside tester, issue 18 round 3).
    town = make_town(session)
    pupils = school(session, town.villages[0])
    county = user_client(client, session, town.county, Role.coordinator)
    town_coordinator = user_client(client, session, town.town, Role.coordinator)
    opened = open_round(client, county.headers, pupils)
    cut = client.post(f"{API}/rounds/{opened['id']}/close", headers=town_coordinator.headers)
    assert cut.status_code == 403, cut.text
    assert cut.json()["code"] == "awareness-close-by-opener"
    assert client.get(f"{API}/rounds/{opened['id']}", headers=county.headers).json()["state"] == "open"
    _close(client, county.headers, opened["id"])
    # A town's own round the town ends, and so may the county above it.
    own = open_round(client, town_coordinator.headers, school(session, town.villages[1]))
    _close(client, town_coordinator.headers, own["id"])
    again = open_round(client, town_coordinator.headers, school(session, town.villages[2]))
    _close(client, county.headers, again["id"])
