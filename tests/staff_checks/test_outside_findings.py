"""The outside tester's findings against staff checks (issue 18), each pinned: the school's own staff
do not supervise it (H2), a dry run is no oracle of listed numbers (H1), the flag follows the person
(H4), status changes and checks of one member queue (M1), flagged members stay in sight (M5), racing
imports are 409 not 500 (M6), and the low ones (age at hire, future hire dates, the `allowed` list)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session, col

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.demo.town import DemoTown
from backend.institutions.models import Institution
from backend.notifications.models import Notification
from backend.registry import idnumber
from backend.staff_checks import service
from backend.staff_checks.models import StaffMember, StaffStatus
from tests.factories import make_town, make_user
from tests.institutions.factories import make_institution
from tests.notifications.factories import headers_for
from tests.races import together
from tests.staff_checks.factories import make_member, staff_number
from tests.xlsx_support import xlsx_bytes

API = "/api/v1"
HEADER = ["编号", "姓名", "身份证号码", "岗位", "入职日期", "状态"]
OLD_HIRE = "2019-09-01"


def book(rows: list[list[Any]]) -> bytes:
    return xlsx_bytes([HEADER, *rows])


def _import(client: TestClient, h: dict[str, str], institution_id: int, content: bytes, **params: Any) -> Any:
    return client.post(f"{API}/institutions/{institution_id}/staff/import", headers=h, params=params,
                       files={"file": ("staff.xlsx", content)})


def _town(session: Session) -> tuple[DemoTown, Institution, dict[str, str], dict[str, str]]:
    town = make_town(session)
    school = make_institution(session, town.villages[0].id or 0, name="青山小学")
    police = headers_for(session, make_user(session, town.town, Role.police, agency=Agency.police))
    clerk = headers_for(session, make_user(session, town.town, Role.agency_staff, agency=Agency.education))
    return town, school, police, clerk


def _entries(session: Session, action: str) -> list[AuditEntry]:
    session.expire_all()
    return list(session.execute(select(AuditEntry).where(col(AuditEntry.action) == action)
                                .order_by(col(AuditEntry.id))).scalars())


def _check(client: TestClient, h: dict[str, str], member_id: int, kind: str, result: str) -> Any:
    return client.post(f"{API}/staff/{member_id}/checks", headers=h, json={
        "check_date": service.today().isoformat(), "kind": kind, "result": result})


# ---------------------------------------------------------------- H2


def test_a_teacher_of_the_schools_own_village_is_404_everywhere_and_the_clerks_above_manage(
        client: TestClient, session: Session) -> None:
    town, school, _, _ = _town(session)
    member = make_member(session, school, name="甲老师")
    teacher_user = make_user(session, town.villages[0], Role.agency_staff, agency=Agency.education)
    teacher = headers_for(session, teacher_user)
    base = f"{API}/institutions/{school.id}/staff"
    answers = [
        client.get(base, headers=teacher), client.get(f"{base}/export.xlsx", headers=teacher),
        client.post(base, headers=teacher, json={"name": "新人", "id_number": staff_number()}),
        _import(client, teacher, school.id or 0, book([[None, "新人", staff_number(), None, None, "拟聘用"]])),
        client.get(f"{API}/staff/{member.id}", headers=teacher),
        client.patch(f"{API}/staff/{member.id}", headers=teacher, json={"position": "校长"}),
        _check(client, teacher, member.id or 0, "periodic", "clear"),
    ]
    assert [a.status_code for a in answers] == [404] * len(answers), [a.text[:80] for a in answers]
    due = client.get(f"{API}/staff-checks/due", headers=teacher)
    assert due.status_code == 200 and due.json()["items"] == []
    for unit in (town.town, town.county):
        clerk = headers_for(session, make_user(session, unit, Role.agency_staff, agency=Agency.education))
        assert client.get(base, headers=clerk).json()["items"][0]["name"] == "甲老师"
        assert client.patch(f"{API}/staff/{member.id}", headers=clerk, json={"position": "教师"}).status_code == 200
        assert member.id in {m["id"] for m in client.get(f"{API}/staff-checks/due", headers=clerk).json()["items"]}
    # The reminder goes to the agency above the school (the town's clerk), never to the teacher.
    told = service.supervising_staff(session, school)
    assert told and teacher_user.id not in told


# ---------------------------------------------------------------- H1


def test_a_dry_run_answers_the_same_for_a_listed_and_a_new_number_and_the_real_import_audits_matches(
        client: TestClient, session: Session) -> None:
    _, school, _, clerk = _town(session)
    listed = staff_number()
    member = make_member(session, school, name="乙老师", number=listed, hire_date=date(2019, 9, 1))
    answers = []
    for number in (listed, staff_number()):
        dry = _import(client, clerk, school.id or 0, book([[None, "乙老师", number, "数学", OLD_HIRE, "在职"]]),
                      dry_run="true")
        assert dry.status_code == 200, dry.text
        answers.append(dry.json())
    assert answers[0] == answers[1] == {"dry_run": True, "rows": 1, "created": 0, "updated": 0, "unchanged": 0}
    # A row naming the member by 编号 with a typed number: refused alike whether or not it is the stored one.
    guesses = [_import(client, clerk, school.id or 0, book([[member.id, "乙老师", typed, None, None, None]]),
                       dry_run="true") for typed in (staff_number(), listed)]
    assert [g.status_code for g in guesses] == [422, 422] and guesses[0].json() == guesses[1].json()
    done = _import(client, clerk, school.id or 0, book([[None, "乙老师", listed, "数学", OLD_HIRE, "在职"]]))
    assert done.json()["updated"] == 1
    entry = _entries(session, "staff.import")[-1]
    assert entry.details["matched_member_ids"] == [member.id]
    again = client.post(f"{API}/institutions/{school.id}/staff", headers=clerk,
                        json={"name": "乙", "id_number": listed})
    assert again.status_code == 409
    refused = _entries(session, "staff.create")[-1]
    assert refused.details["matched_member_ids"] == [member.id] and refused.details["refused"] == "staff-exists"


# ---------------------------------------------------------------- H4


def test_the_flag_follows_the_person_to_another_list_and_new_hires_cannot_skip_the_check(
        client: TestClient, session: Session) -> None:
    town, school, police, clerk = _town(session)
    number = staff_number()
    first = client.post(f"{API}/institutions/{school.id}/staff", headers=clerk,
                        json={"name": "丙", "id_number": number, "hire_date": OLD_HIRE, "status": "employed"}).json()
    assert _check(client, police, first["id"], "periodic", "record_found").status_code == 201
    assert client.patch(f"{API}/staff/{first['id']}", headers=clerk, json={"status": "dismissed"}).status_code == 200
    # Dismissed after a record found, then registered again (another school, or the same one re-registered).
    other = make_institution(session, town.villages[1].id or 0, name="新青山小学")
    again = client.post(f"{API}/institutions/{other.id}/staff", headers=clerk,
                        json={"name": "丙", "id_number": number, "hire_date": OLD_HIRE, "status": "employed"})
    assert again.status_code == 201 and again.json()["flagged"] is True
    created = _entries(session, "staff.create")[-1]
    assert first["id"] in created.details["matched_member_ids"] and created.details["flag_inherited"]
    third = make_institution(session, town.villages[2].id or 0, name="第三小学")
    imported = _import(client, clerk, third.id or 0, book([[None, "丙", number, None, OLD_HIRE, "在职"]]))
    assert imported.status_code == 200, imported.text
    assert session.execute(select(StaffMember).where(col(StaffMember.institution_id) == third.id)).scalar_one().flagged
    # Straight to employed only for staff at work before the list: 30 days or more ago.
    recent = (service.today() - timedelta(days=5)).isoformat()
    for body in ({"hire_date": recent}, {}):
        fresh = client.post(f"{API}/institutions/{school.id}/staff", headers=clerk,
                            json={"name": "丁", "id_number": staff_number(), "status": "employed", **body})
        assert fresh.status_code == 409 and fresh.json()["code"] == "staff-employed-needs-pre-hire-check"
    row = _import(client, clerk, school.id or 0, book([[None, "丁", staff_number(), None, recent, "在职"]]))
    assert row.status_code == 422 and row.json()["errors"][0]["column"] == "入职日期"
    candidate = client.post(f"{API}/institutions/{school.id}/staff", headers=clerk,
                            json={"name": "丁", "id_number": staff_number(), "hire_date": recent})
    assert candidate.status_code == 201 and candidate.json()["status"] == "candidate"


# ---------------------------------------------------------------- M1


def test_a_status_change_racing_a_record_found_check_never_leaves_a_hired_or_gone_flagged_member(
        client: TestClient, session: Session) -> None:
    _, school, police, clerk = _town(session)
    for _ in range(3):
        candidate = make_member(session, school, status=StaffStatus.candidate)
        assert _check(client, police, candidate.id or 0, "pre_hire", "clear").status_code == 201
        hire, check = together(
            lambda c, m=candidate.id: c.patch(f"{API}/staff/{m}", headers=clerk, json={"status": "employed"}),
            lambda c, m=candidate.id: _check(c, police, m or 0, "pre_hire", "record_found"))
        session.refresh(candidate)
        assert not (candidate.status == "employed" and candidate.flagged), (hire.text, check.text)
        assert sorted([hire.status_code < 300, check.status_code < 300]) == [False, True]

        employed = make_member(session, school, status=StaffStatus.employed)
        leave, found = together(
            lambda c, m=employed.id: c.patch(f"{API}/staff/{m}", headers=clerk, json={"status": "left"}),
            lambda c, m=employed.id: _check(c, police, m or 0, "periodic", "record_found"))
        session.refresh(employed)
        assert not (employed.status == "left" and employed.flagged), (leave.text, found.text)
    # One flagged and gone before the rule is not stuck: it may still be dismissed, and nothing else.
    stuck = make_member(session, school, status=StaffStatus.left)
    stuck.flagged = True
    session.add(stuck)
    session.commit()
    back = client.patch(f"{API}/staff/{stuck.id}", headers=clerk, json={"status": "employed"})
    assert back.status_code == 409 and back.json()["allowed"] == ["dismissed"]
    done = client.patch(f"{API}/staff/{stuck.id}", headers=clerk, json={"status": "dismissed"})
    assert done.status_code == 200 and done.json()["flagged"] is False


def test_the_refusal_of_a_flagged_member_offers_only_what_is_allowed(client: TestClient, session: Session) -> None:
    _, school, _, clerk = _town(session)
    member = make_member(session, school, status=StaffStatus.employed)
    member.flagged = True
    session.add(member)
    session.commit()
    for target in ("left", "candidate"):
        resp = client.patch(f"{API}/staff/{member.id}", headers=clerk, json={"status": target})
        assert resp.status_code == 409 and resp.json()["allowed"] == ["dismissed"], resp.text


# ---------------------------------------------------------------- M5


def test_flagged_members_pending_dismissal_are_counted_listed_and_reminded_once(
        client: TestClient, session: Session) -> None:
    town, school, police, clerk = _town(session)
    today = service.today()
    flagged = make_member(session, school, name="戊", last_check=today)  # checked today: not due
    flagged.flagged = True
    session.add(flagged)
    make_member(session, school, name="己", last_check=today)
    session.commit()
    overview = client.get(f"{API}/staff-checks/overview", headers=police).json()
    by_unit = {u["unit_id"]: u for u in overview["units"]}
    assert overview["total"]["members_pending_dismissal"] == 1
    assert by_unit[town.villages[0].id]["members_pending_dismissal"] == 1
    # A count of pending dismissals tells a check's result: a coordinator (no right to read results) gets null.
    coordinator = headers_for(session, make_user(session, town.town, Role.coordinator, agency=Agency.government))
    assert client.get(f"{API}/staff-checks/overview", headers=coordinator).json()["total"][
        "members_pending_dismissal"] is None
    due = client.get(f"{API}/staff-checks/due", headers=clerk).json()["items"]
    assert [(m["name"], m["due_reason"]) for m in due] == [("戊", "pending_dismissal")]
    assert service.notify_due(session) == 1
    session.commit()
    assert service.notify_due(session) == 0  # once per member and flag
    session.commit()
    told = session.execute(select(Notification).where(
        col(Notification.kind) == "staff_check.pending_dismissal")).scalars().all()
    assert {n.data["institution_id"] for n in told} == {str(school.id)} and len(told) >= 2  # police and clerk
    # A later clear check does not lift it.
    assert _check(client, police, flagged.id or 0, "periodic", "clear").status_code == 201
    session.refresh(flagged)
    assert flagged.flagged


# ---------------------------------------------------------------- M6


def test_two_imports_and_a_post_adding_the_same_number_at_once_are_409_never_500(
        client: TestClient, session: Session) -> None:
    _, school, _, clerk = _town(session)
    number = staff_number()
    content = book([[None, "庚", number, None, None, "拟聘用"]])

    def imported(c: TestClient) -> Any:
        return _import(c, clerk, school.id or 0, content)

    def posted(c: TestClient) -> Any:
        return c.post(f"{API}/institutions/{school.id}/staff", headers=clerk, json={"name": "庚", "id_number": number})

    answers = together(imported, imported, posted)
    assert all(a.status_code in (200, 201, 409) for a in answers), [a.text[:120] for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 409} <= {"staff-exists", "staff-import-conflict"}
    stored = session.execute(select(func.count()).select_from(StaffMember).where(
        col(StaffMember.institution_id) == school.id)).scalar_one()
    assert stored == 1


# ---------------------------------------------------------------- low


def test_a_hire_date_in_the_future_or_before_sixteen_is_refused_with_a_clear_reason(
        client: TestClient, session: Session) -> None:
    _, school, _, clerk = _town(session)
    child = idnumber.make("990101", date(2020, 3, 14), 123)
    young = client.post(f"{API}/institutions/{school.id}/staff", headers=clerk,
                        json={"name": "小孩", "id_number": child, "hire_date": "2024-09-01"})
    assert young.status_code == 422 and young.json()["code"] == "staff-hire-date-invalid"
    future = (service.today() + timedelta(days=10)).isoformat()
    ahead = client.post(f"{API}/institutions/{school.id}/staff", headers=clerk,
                        json={"name": "未来", "id_number": staff_number(), "hire_date": future})
    assert ahead.status_code == 422 and ahead.json()["code"] == "staff-hire-date-invalid"
    rows = _import(client, clerk, school.id or 0, book([[None, "小孩", child, None, "2024-09-01", "拟聘用"],
                                                          [None, "未来", staff_number(), None, future, "拟聘用"]]))
    reasons = [(e["row"], e["column"], e["reason"]) for e in rows.json()["errors"]]
    assert [(r, c) for r, c, _ in reasons] == [(2, "入职日期"), (3, "入职日期")]
    assert all("无法识别" not in why for _, _, why in reasons)
    member = make_member(session, school)
    patched = client.patch(f"{API}/staff/{member.id}", headers=clerk, json={"hire_date": future})
    assert patched.status_code == 422 and patched.json()["code"] == "staff-hire-date-invalid"


# ---------------------------------------------------------------- a record found is the person's


def test_a_record_found_on_one_list_flags_the_same_person_on_every_list(
        client: TestClient, session: Session) -> None:
    town, school, police, clerk = _town(session)
    other = make_institution(session, town.villages[1].id or 0, name="B校")
    number = idnumber.make("990101", date(1986, 6, 6), 123)
    employed = make_member(session, school, name="辛", number=number, hire_date=date(2019, 9, 1),
                           last_check=service.today())  # checked today: due only as pending dismissal
    candidate = make_member(session, other, name="辛", number=number, status=StaffStatus.candidate)
    unrelated = make_member(session, school, name="壬", last_check=service.today())
    assert not employed.flagged and not candidate.flagged
    found = _check(client, police, candidate.id or 0, "pre_hire", "record_found")
    assert found.status_code == 201, found.text
    shown = client.get(f"{API}/staff/{employed.id}", headers=clerk).json()
    assert shown["flagged"] is True and shown["due_reason"] == "pending_dismissal"
    assert client.get(f"{API}/staff/{unrelated.id}", headers=clerk).json()["flagged"] is False
    entry = _entries(session, "staff.check")[-1]
    assert entry.details["flagged_member_ids"] == [employed.id]
    due = client.get(f"{API}/staff-checks/due", headers=clerk).json()["items"]
    assert {(m["id"], m["due_reason"]) for m in due} == {(employed.id, "pending_dismissal"),
                                                          (candidate.id, "pending_dismissal")}
    gone = client.patch(f"{API}/staff/{employed.id}", headers=clerk, json={"status": "left"})
    assert gone.status_code == 409 and gone.json()["code"] == "staff-record-found", gone.text
    assert service.notify_due(session) == 2  # both reminded as pending dismissal
    session.commit()
    told = session.execute(select(Notification).where(
        col(Notification.kind) == "staff_check.pending_dismissal")).scalars().all()
    assert {n.data["institution_id"] for n in told} == {str(school.id), str(other.id)}
