"""Who sees a staff member, its ID number and its checks: police of the jurisdiction and member-unit
staff of the institution's supervising agency in their jurisdiction, nobody else (404, exactly as an
id that does not exist). Every answer carrying a member leaves an audit entry naming it and the
fields shown."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlmodel import Session, col

from backend.accounts.models import Agency, User
from backend.accounts.permissions import Role
from backend.audit import disclosure
from backend.audit.models import AuditEntry
from backend.demo.town import DemoTown
from backend.institutions.models import Institution, InstitutionKind
from backend.staff_checks import service
from backend.staff_checks.models import StaffMember
from tests.factories import make_town, make_user
from tests.institutions.factories import make_institution
from tests.notifications.factories import headers_for
from tests.staff_checks.factories import make_member

API = "/api/v1"


@dataclass
class Place:
    town: DemoTown
    own_school: Institution
    own_hotel: Institution
    foreign_school: Institution
    members: dict[str, StaffMember]


def _place(session: Session) -> Place:
    town = make_town(session)
    own_school = make_institution(session, town.villages[0].id or 0, name="本村小学")
    own_hotel = make_institution(session, town.villages[0].id or 0, InstitutionKind.hotel, name="本村宾馆")
    foreign_school = make_institution(session, town.villages[1].id or 0, name="外村小学")
    today = service.today()
    members = {
        "own_school": make_member(session, own_school, name="甲老师", last_check=today - timedelta(days=400)),
        "own_hotel": make_member(session, own_hotel, name="乙前台", last_check=today - timedelta(days=400)),
        "foreign_school": make_member(session, foreign_school, name="丙老师", last_check=today - timedelta(days=400)),
    }
    return Place(town, own_school, own_hotel, foreign_school, members)


# (who, roles, agency, where) -> the members it sees. The caller sits in village 1; the foreign
# school is in village 2; "town" callers see both villages.
CALLERS: dict[str, tuple[tuple[Role, ...], Agency | None, str, set[str]]] = {
    "police": ((Role.police,), Agency.police, "village", {"own_school", "own_hotel"}),
    "police_of_town": ((Role.police,), Agency.police, "town", {"own_school", "own_hotel", "foreign_school"}),
    # A teacher: education staff of the school's own village is the school's staff, not its supervisor.
    "education_staff": ((Role.agency_staff,), Agency.education, "village", set()),
    "education_staff_of_town": ((Role.agency_staff,), Agency.education, "town", {"own_school", "foreign_school"}),
    "education_staff_of_county": ((Role.agency_staff,), Agency.education, "county",
                                  {"own_school", "foreign_school"}),
    "health_staff": ((Role.agency_staff,), Agency.health, "village", set()),
    "staff_without_agency": ((Role.agency_staff,), None, "village", set()),
    "coordinator": ((Role.coordinator,), Agency.government, "village", set()),
    "admin": ((Role.admin,), Agency.government, "town", set()),
    "volunteer": ((Role.volunteer,), Agency.womens_federation, "village", set()),
    "grid_worker": ((Role.grid_worker,), Agency.village_committee, "village", set()),
    "helper": ((Role.helper,), Agency.education, "village", set()),
    "market_officer": ((Role.market_officer,), Agency.market_supervision, "village", set()),
}


def _caller(session: Session, place: Place, who: str) -> User:
    roles, agency, where, _ = CALLERS[who]
    unit = {"village": place.town.villages[0], "town": place.town.town, "county": place.town.county}[where]
    return make_user(session, unit, *roles, agency=agency)


def _last_entry(session: Session) -> AuditEntry:
    return session.execute(select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(1)).scalar_one()


def _entries(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(AuditEntry)).scalar_one())


def _text(resp: Response) -> str:
    if resp.content[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(resp.content)) as z:
            return "".join(z.read(n).decode() for n in z.namelist() if n.endswith(".xml"))
    return resp.text


@pytest.mark.parametrize("who", sorted(CALLERS))
def test_each_role_sees_exactly_the_members_of_its_scope_and_each_read_is_audited(
        client: TestClient, session: Session, who: str) -> None:
    place = _place(session)
    h = headers_for(session, _caller(session, place, who))
    sees = CALLERS[who][3]
    institutions = {"own_school": place.own_school, "own_hotel": place.own_hotel,
                    "foreign_school": place.foreign_school}
    for key, member in place.members.items():
        visible = key in sees
        before = _entries(session)
        one = client.get(f"{API}/staff/{member.id}", headers=h)
        listed = client.get(f"{API}/institutions/{institutions[key].id}/staff", headers=h)
        exported = client.get(f"{API}/institutions/{institutions[key].id}/staff/export.xlsx", headers=h)
        for resp in (one, listed, exported):
            assert resp.status_code == (200 if visible else 404), (who, key, resp.request.url, resp.text[:200])
            assert (member.name in _text(resp)) is visible, (who, key)
        if visible:
            assert one.json()["id_number_masked"].endswith("*" * 12)
            # Three answers carried the member: three entries, each naming it and the fields shown.
            entries = session.execute(select(AuditEntry).where(col(AuditEntry.id) > before)
                                      .order_by(col(AuditEntry.id))).scalars().all()
            named = [e for e in entries if (service.KIND, member.id) in disclosure.named_records(e)]
            assert len(named) == 3, [(e.action, e.details) for e in entries]
            assert all("name" in e.details["fields"] and "id_number_masked" in e.details["fields"] for e in named)
            assert {e.actor_user_id for e in named} == {_last_entry(session).actor_user_id}
    due = client.get(f"{API}/staff-checks/due", headers=h)
    if CALLERS[who][0][0] in (Role.police, Role.agency_staff):
        assert due.status_code == 200
        names = {m["name"] for m in due.json()["items"]}
        assert names == {place.members[k].name for k in sees}
        if sees:
            entry = _last_entry(session)
            assert entry.action == "staff.due"
            assert disclosure.expand(entry.details["read"][service.KIND]) == {place.members[k].id for k in sees}
    else:
        assert due.status_code == 404


@pytest.mark.parametrize("who", ["education_staff", "education_staff_of_town", "health_staff", "coordinator",
                                 "volunteer", "police"])
def test_only_the_supervising_agency_and_police_change_a_member_and_only_police_record_checks(
        client: TestClient, session: Session, who: str) -> None:
    place = _place(session)
    h = headers_for(session, _caller(session, place, who))
    member = place.members["own_school"]
    patched = client.patch(f"{API}/staff/{member.id}", headers=h, json={"position": "班主任"})
    checked = client.post(f"{API}/staff/{member.id}/checks", headers=h, json={
        "check_date": service.today().isoformat(), "kind": "periodic", "result": "clear"})
    revealed = client.post(f"{API}/staff/{member.id}/reveal-id", headers=h, json={"reason": "入职查询比对"})
    may_manage = who in ("education_staff_of_town", "police")
    assert patched.status_code == (200 if may_manage else 404), patched.text
    assert checked.status_code == (201 if who == "police" else 404), checked.text
    assert revealed.status_code == (200 if who == "police" else 404), revealed.text
    foreign = place.members["foreign_school"]
    if who != "education_staff_of_town":  # the town's clerk supervises the other village's school too
        assert client.patch(f"{API}/staff/{foreign.id}", headers=h, json={"position": "x"}).status_code == 404
    if who == "police":
        number = revealed.json()["id_number"]
        assert len(number) == 18 and number[:6] == "990101" and "*" not in number
        entry = _last_entry(session)
        assert entry.action == "staff.reveal_id" and entry.details["reason"] == "入职查询比对"


@pytest.mark.parametrize("who", ["coordinator", "admin", "police", "education_staff", "volunteer"])
def test_the_overview_is_counts_only_and_open_to_the_roles_holding_staff_overview(
        client: TestClient, session: Session, who: str) -> None:
    place = _place(session)
    h = headers_for(session, _caller(session, place, who))
    resp = client.get(f"{API}/staff-checks/overview", headers=h)
    unchecked = client.get(f"{API}/staff-checks/unchecked", headers=h)
    if who == "volunteer":
        assert resp.status_code == 403 and unchecked.status_code == 403
        return
    assert resp.status_code == 200 and unchecked.status_code == 200
    for member in place.members.values():
        assert member.name not in resp.text and member.name not in unchecked.text
    assert "record_found" not in resp.text and "flagged" not in resp.text
