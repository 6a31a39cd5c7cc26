"""The rules of staff checks: ID numbers sealed and checked as the registry's, a record found forces
refusal or dismissal, hiring needs a clear pre-hire check, checks fit the member's status, and the
periodic check falls due one interval after the latest check."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import Session, col
from typer.testing import CliRunner

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.cli import app as cli
from backend.core import clock, crypto
from backend.core.config import get_settings
from backend.institutions.models import Institution
from backend.orgunits.models import OrgUnit
from backend.registry import idnumber
from backend.staff_checks import service
from backend.staff_checks.models import StaffMember, StaffStatus
from tests.factories import make_town, make_user
from tests.institutions.factories import make_institution
from tests.notifications.factories import headers_for
from tests.races import together
from tests.staff_checks.factories import make_member, staff_number

API = "/api/v1"


def _setup(session: Session) -> tuple[dict[str, str], dict[str, str], int]:
    town = make_town(session)
    school = make_institution(session, town.villages[0].id or 0)
    police = headers_for(session, make_user(session, town.town, Role.police, agency=Agency.police))
    # The town's education clerk (above the school: its supervising agency), not a teacher of its village.
    teacher = headers_for(session, make_user(session, town.town, Role.agency_staff, agency=Agency.education))
    return police, teacher, school.id or 0


def _check(client: TestClient, h: dict[str, str], member_id: int, kind: str, result: str,
           on: date | None = None) -> Any:
    return client.post(f"{API}/staff/{member_id}/checks", headers=h, json={
        "check_date": (on or service.today()).isoformat(), "kind": kind, "result": result})


def test_a_candidate_is_hired_only_after_a_clear_pre_hire_check(client: TestClient, session: Session) -> None:
    police, teacher, school = _setup(session)
    made = client.post(f"{API}/institutions/{school}/staff", headers=teacher,
                       json={"name": "新老师", "id_number": staff_number(), "position": "语文教师"})
    assert made.status_code == 201, made.text
    member = made.json()
    assert member["status"] == "candidate" and member["next_check_due"] is None
    early = client.patch(f"{API}/staff/{member['id']}", headers=teacher, json={"status": "employed"})
    assert early.status_code == 409 and early.json()["code"] == "staff-pre-hire-check-missing"
    wrong_kind = _check(client, police, member["id"], "periodic", "clear")
    assert wrong_kind.status_code == 422 and wrong_kind.json()["code"] == "staff-check-invalid"
    assert _check(client, police, member["id"], "pre_hire", "clear").status_code == 201
    hired = client.patch(f"{API}/staff/{member['id']}", headers=teacher, json={"status": "employed"})
    assert hired.status_code == 200 and hired.json()["status"] == "employed"
    due = date.fromisoformat(hired.json()["next_check_due"])
    assert due == service.today() + timedelta(days=get_settings().staff_check_interval_days)


def test_a_record_found_allows_only_refusal_or_dismissal_and_they_clear_the_flag(client: TestClient,
                                                                                 session: Session) -> None:
    police, teacher, school = _setup(session)
    candidate = client.post(f"{API}/institutions/{school}/staff", headers=teacher,
                            json={"name": "应聘者", "id_number": staff_number()}).json()
    assert _check(client, police, candidate["id"], "pre_hire", "record_found").status_code == 201
    flagged = client.get(f"{API}/staff/{candidate['id']}", headers=teacher).json()
    assert flagged["flagged"] and [c["result"] for c in flagged["checks"]] == ["record_found"]
    # A later clear check does not wash the record away.
    assert _check(client, police, candidate["id"], "pre_hire", "clear").status_code == 201
    refused = client.patch(f"{API}/staff/{candidate['id']}", headers=teacher, json={"status": "employed"})
    assert refused.status_code == 409 and refused.json()["code"] == "staff-record-found"
    assert client.patch(f"{API}/staff/{candidate['id']}", headers=teacher,
                        json={"status": "not_hired"}).json()["flagged"] is False

    employed = client.post(f"{API}/institutions/{school}/staff", headers=teacher,
                           json={"name": "在职者", "id_number": staff_number(), "status": "employed",
                                 "hire_date": "2020-09-01"}).json()
    assert _check(client, police, employed["id"], "periodic", "record_found").status_code == 201
    leaving = client.patch(f"{API}/staff/{employed['id']}", headers=teacher, json={"status": "left"})
    assert leaving.status_code == 409 and leaving.json()["code"] == "staff-record-found"
    dismissed = client.patch(f"{API}/staff/{employed['id']}", headers=teacher, json={"status": "dismissed"})
    assert dismissed.status_code == 200 and not dismissed.json()["flagged"]
    back = client.patch(f"{API}/staff/{employed['id']}", headers=teacher, json={"status": "employed"})
    assert back.status_code == 409 and back.json()["code"] == "staff-transition-invalid"
    assert _check(client, police, employed["id"], "periodic", "clear").status_code == 422  # no longer employed


def test_id_numbers_are_checked_sealed_and_unique_per_institution(client: TestClient, session: Session) -> None:
    police, teacher, school = _setup(session)
    number = staff_number()
    for bad in (number[:-1] + ("0" if number[-1] != "0" else "1"), "99010119851314001X", "990101********1234"):
        resp = client.post(f"{API}/institutions/{school}/staff", headers=teacher, json={"name": "某", "id_number": bad})
        assert resp.status_code == 422 and resp.json()["code"] == "invalid-id-number", bad
    first = client.post(f"{API}/institutions/{school}/staff", headers=teacher,
                        json={"name": "某", "id_number": number.lower()})
    assert first.status_code == 201 and first.json()["id_number_masked"] == idnumber.mask(number)
    # Typed another way (full-width digits): the same number.
    wide = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in number)
    again = client.post(f"{API}/institutions/{school}/staff", headers=teacher, json={"name": "某", "id_number": wide})
    assert again.status_code == 409 and again.json()["code"] == "staff-exists"
    stored = session.execute(select(StaffMember).where(col(StaffMember.id) == first.json()["id"])).scalar_one()
    assert number not in stored.id_cipher and number[6:] not in stored.id_masked
    assert crypto.decrypt(stored.id_cipher) == number
    # The same person may work at a second institution.
    other = make_institution(session, _unit_of(session, school).id or 0, name="第二小学")
    assert client.post(f"{API}/institutions/{other.id}/staff", headers=police,
                       json={"name": "某", "id_number": number}).status_code == 201


def _unit_of(session: Session, institution_id: int) -> OrgUnit:
    institution = session.get(Institution, institution_id)
    assert institution is not None
    unit = session.get(OrgUnit, institution.org_unit_id)
    assert unit is not None
    return unit


def test_two_clerks_adding_the_same_number_at_once_make_one_member(client: TestClient, session: Session) -> None:
    _, teacher, school = _setup(session)
    number = staff_number()

    def add(c: TestClient) -> Any:
        return c.post(f"{API}/institutions/{school}/staff", headers=teacher,
                      json={"name": "同一人", "id_number": number})

    answers = together(add, add)
    assert sorted(a.status_code for a in answers) == [201, 409]
    stored = session.execute(select(StaffMember).where(col(StaffMember.institution_id) == school)).scalars().all()
    assert len(stored) == 1


def test_a_check_in_the_future_or_on_a_member_of_another_status_is_refused(client: TestClient,
                                                                          session: Session) -> None:
    police, teacher, school = _setup(session)
    member = client.post(f"{API}/institutions/{school}/staff", headers=teacher,
                         json={"name": "某", "id_number": staff_number(), "status": "employed",
                                 "hire_date": "2020-09-01"}).json()
    tomorrow = service.today() + timedelta(days=1)
    assert _check(client, police, member["id"], "periodic", "clear", tomorrow).status_code == 422
    assert _check(client, police, member["id"], "pre_hire", "clear").status_code == 422
    # China's date, not the server's: at 23:30 UTC it is already tomorrow in Shanghai.
    clock.freeze(clock.now().replace(hour=23, minute=30))
    h = headers_for(session, make_user(session, _unit_of(session, school), Role.police, agency=Agency.police))
    shanghai_today = (clock.now() + timedelta(hours=8)).date()
    assert _check(client, h, member["id"], "periodic", "clear", shanghai_today).status_code == 201


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(checks=st.lists(st.integers(min_value=0, max_value=3000), max_size=6),
       interval=st.integers(min_value=1, max_value=800), hired=st.one_of(st.none(), st.integers(0, 3000)))
def test_the_periodic_check_falls_due_one_interval_after_the_latest_check(
        checks: list[int], interval: int, hired: int | None) -> None:
    base = date(2020, 1, 1)
    member = StaffMember(institution_id=1, name="x", id_cipher="", id_key_id="", id_index="", id_masked="",
                         status=StaffStatus.employed.value, created_at=clock.now(),
                         hire_date=base + timedelta(days=hired) if hired is not None else None)
    for day in checks:  # recorded in any order, as record_check keeps the latest
        when = base + timedelta(days=day)
        if member.last_check_date is None or when > member.last_check_date:
            member.last_check_date = when
    due = service.due_date(member, interval)
    if checks:
        assert due == base + timedelta(days=max(checks) + interval)
    else:
        registered = clock.now().astimezone(clock.SHANGHAI).date()
        assert due == (min(member.hire_date, registered) if member.hire_date else registered)
    for status in (StaffStatus.candidate, StaffStatus.left, StaffStatus.dismissed, StaffStatus.not_hired):
        member.status = status.value
        assert service.due_date(member, interval) is None


NEW_KEY = "k2027:" + "B" * 43 + "="


def test_key_rotation_reseals_staff_numbers_too(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    town = make_town(session)
    school = make_institution(session, town.villages[0].id or 0)
    numbers = [staff_number() for _ in range(3)]
    members = [make_member(session, school, number=n) for n in numbers]
    old_keys = get_settings().id_number_keys
    monkeypatch.setenv("HULEI_ID_NUMBER_KEYS", old_keys + "," + NEW_KEY)
    monkeypatch.setenv("HULEI_ID_NUMBER_ACTIVE_KEY", "k2027")
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["reseal-id-numbers"])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("HULEI_ID_NUMBER_KEYS", NEW_KEY)
    get_settings.cache_clear()
    for member, number in zip(members, numbers, strict=True):
        session.refresh(member)
        assert member.id_key_id == "k2027" and crypto.decrypt(member.id_cipher) == number
    get_settings.cache_clear()
