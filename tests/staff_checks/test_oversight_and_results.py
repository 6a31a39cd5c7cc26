"""Who is above an institution, and what stays in the police's sight (outside test, round 3, findings
2, 4 and 8): an institution registered at a grid counts as of the grid's village, so that village's
staff are its staff and never its supervisor; an inactive institution's members still due or pending
dismissal stay on the due list and in the counts; a count of pending dismissals (a check's result)
reaches only the roles that may read results, within their scope."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.institutions.models import InstitutionKind
from backend.staff_checks import service
from backend.staff_checks.models import StaffStatus
from tests.factories import make_town, make_user
from tests.institutions.factories import make_institution
from tests.notifications.factories import headers_for
from tests.staff_checks.factories import make_member, staff_number
from tests.xlsx_support import xlsx_bytes

API = "/api/v1"
HEADER = ["编号", "姓名", "身份证号码", "岗位", "入职日期", "状态"]


def _import(client: TestClient, h: dict[str, str], institution_id: int, rows: list[list[Any]]) -> Any:
    return client.post(f"{API}/institutions/{institution_id}/staff/import", headers=h,
                       files={"file": ("staff.xlsx", xlsx_bytes([HEADER, *rows]))})


def test_a_kindergarten_at_a_grid_is_supervised_from_above_its_village_never_by_the_villages_teachers(
        client: TestClient, session: Session) -> None:
    town = make_town(session)
    grid = town.grids[0][0]
    kindergarten = make_institution(session, grid.id or 0, InstitutionKind.kindergarten, name="网格幼儿园")
    member = make_member(session, kindergarten, name="甲")
    member.flagged = True
    session.add(member)
    session.commit()
    base = f"{API}/institutions/{kindergarten.id}/staff"
    for unit in (town.villages[0], grid):  # the village's teachers, and education staff of the grid itself
        own_user = make_user(session, unit, Role.agency_staff, agency=Agency.education)
        own = headers_for(session, own_user)
        answers = [
            client.get(base, headers=own), client.get(f"{base}/export.xlsx", headers=own),
            client.post(base, headers=own, json={"name": "新人", "id_number": staff_number()}),
            _import(client, own, kindergarten.id or 0, [[None, "新人", staff_number(), None, None, "拟聘用"]]),
            client.get(f"{API}/staff/{member.id}", headers=own),
            client.patch(f"{API}/staff/{member.id}", headers=own, json={"position": "园长"}),
        ]
        assert [a.status_code for a in answers] == [404] * len(answers), (unit.level, [a.text[:80] for a in answers])
        assert client.get(f"{API}/staff-checks/due", headers=own).json()["items"] == []
        counts = client.get(f"{API}/staff-checks/overview", headers=own).json()["total"]
        assert counts["members_pending_dismissal"] == 0
        assert own_user.id not in service.supervising_staff(session, kindergarten)
    town_user = make_user(session, town.town, Role.agency_staff, agency=Agency.education)
    above = headers_for(session, town_user)
    assert client.get(base, headers=above).json()["items"][0]["name"] == "甲"
    assert client.get(f"{API}/staff/{member.id}", headers=above).status_code == 200
    assert [m["id"] for m in client.get(f"{API}/staff-checks/due", headers=above).json()["items"]] == [member.id]
    assert client.get(f"{API}/staff-checks/overview", headers=above).json()["total"]["members_pending_dismissal"] == 1
    assert service.supervising_staff(session, kindergarten) == [town_user.id]


def test_an_inactive_institutions_members_still_due_or_pending_dismissal_stay_in_the_polices_sight(
        client: TestClient, session: Session) -> None:
    town = make_town(session)
    school = make_institution(session, town.villages[0].id or 0, name="青山小学")
    flagged = make_member(session, school, name="乙", last_check=service.today())
    flagged.flagged = True
    session.add(flagged)
    due = make_member(session, school, name="丙")  # employed, never checked
    make_member(session, school, name="丁", status=StaffStatus.left)
    session.commit()
    police = headers_for(session, make_user(session, town.town, Role.police, agency=Agency.police))
    county = headers_for(session, make_user(session, town.county, Role.coordinator))
    assert client.patch(f"{API}/institutions/{school.id}", headers=county, json={"is_active": False}).status_code == 200
    listed = client.get(f"{API}/staff-checks/due", headers=police).json()["items"]
    assert {(m["id"], m["due_reason"]) for m in listed} == {(flagged.id, "pending_dismissal"), (due.id, "periodic")}
    total = client.get(f"{API}/staff-checks/overview", headers=police).json()["total"]
    assert (total["members_due"], total["members_pending_dismissal"], total["members_never_checked"]) == (1, 1, 1)
    assert total["institutions"] == 0  # the register's count is of active institutions
    unchecked = client.get(f"{API}/staff-checks/unchecked", headers=police).json()["items"]
    assert [u["institution_id"] for u in unchecked] == [school.id]


def test_pending_dismissal_counts_reach_only_the_roles_that_read_check_results_within_their_scope(
        client: TestClient, session: Session) -> None:
    town = make_town(session)
    hotel = make_institution(session, town.grids[0][1].id or 0, InstitutionKind.hotel, name="旅馆")
    flagged = make_member(session, hotel, name="戊", last_check=service.today())
    flagged.flagged = True
    session.add(flagged)
    session.commit()

    def pending(role: Role, agency: Agency) -> Any:
        h = headers_for(session, make_user(session, town.town, role, agency=agency))
        answer = client.get(f"{API}/staff-checks/overview", headers=h).json()
        return answer["total"]["members_pending_dismissal"], answer["total"]["members"]

    assert pending(Role.police, Agency.police) == (1, 1)
    # Other agencies' clerks and the coordinator still see how many members there are, not the results.
    assert pending(Role.agency_staff, Agency.judicial) == (0, 1)
    assert pending(Role.agency_staff, Agency.civil_affairs) == (0, 1)
    assert pending(Role.coordinator, Agency.government) == (None, 1)
