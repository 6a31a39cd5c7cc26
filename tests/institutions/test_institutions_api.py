"""The institution register over HTTP: jurisdiction, filters, paging, the venue link, and the
service functions other parts of issue 18 rely on (get_visible, schools_in)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.accounts.principal import Principal
from backend.audit.models import AuditEntry
from backend.core.errors import NotFound
from backend.institutions import service
from backend.institutions.models import Institution, InstitutionKind
from tests.factories import make_town, make_user
from tests.institutions.factories import make_institution
from tests.institutions.test_institutions_xlsx import book
from tests.notifications.factories import headers_for
from tests.venues.factories import make_venue

API = "/api/v1"


def _principal(session: Session, unit_id: int, path: str) -> Principal:
    return Principal(user_id=0, roles=frozenset({Role.coordinator}), org_unit_id=unit_id, org_path=path)


def test_a_coordinator_registers_reads_and_changes_an_institution_of_its_town(client: TestClient,
                                                                              session: Session) -> None:
    town = make_town(session)
    h = headers_for(session, make_user(session, town.town, Role.coordinator))
    made = client.post(f"{API}/institutions", headers=h, json={
        "name": "青山小学", "kind": "primary_school", "org_unit_id": town.villages[0].id, "student_count": 240})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["supervising_agency"] == "education" and body["kind_zh"] == "小学" and body["is_active"]
    changed = client.patch(f"{API}/institutions/{body['id']}", headers=h, json={"address": "青山路1号"})
    assert changed.status_code == 200 and changed.json()["address"] == "青山路1号"
    assert client.get(f"{API}/institutions/{body['id']}", headers=h).json()["name"] == "青山小学"
    actions = set(session.execute(select(col(AuditEntry.action)).where(
        col(AuditEntry.object_type) == "institution", col(AuditEntry.object_id) == str(body["id"]))).scalars())
    assert {"institution.create", "institution.update"} <= actions


def test_an_institution_outside_the_jurisdiction_is_404_and_cannot_be_created_or_moved_there(
        client: TestClient, session: Session) -> None:
    town = make_town(session)
    # A village coordinator: the next village is outside its jurisdiction.
    h = headers_for(session, make_user(session, town.villages[0], Role.coordinator))
    foreign = make_institution(session, town.villages[1].id or 0)
    mine = make_institution(session, town.villages[0].id or 0)
    assert client.get(f"{API}/institutions/{foreign.id}", headers=h).status_code == 404
    missing = client.get(f"{API}/institutions/{foreign.id + 1000}", headers=h).json()
    hidden = client.get(f"{API}/institutions/{foreign.id}", headers=h).json()
    assert {**missing, "instance": ""} == {**hidden, "instance": ""}  # the same 404: ids cannot be probed
    assert client.patch(f"{API}/institutions/{foreign.id}", headers=h, json={"name": "x"}).status_code == 404
    assert client.post(f"{API}/institutions", headers=h, json={
        "name": "外村小学", "kind": "primary_school", "org_unit_id": town.villages[1].id}).status_code == 404
    assert client.patch(f"{API}/institutions/{mine.id}", headers=h,
                        json={"org_unit_id": town.villages[1].id}).status_code == 404
    listed = client.get(f"{API}/institutions", headers=h).json()["items"]
    assert [i["id"] for i in listed] == [mine.id]


@pytest.mark.parametrize("role", [Role.volunteer, Role.police, Role.agency_staff, Role.admin, Role.market_officer])
def test_every_reader_lists_but_only_coordinators_write(client: TestClient, session: Session, role: Role) -> None:
    town = make_town(session)
    school = make_institution(session, town.villages[0].id or 0)
    user = make_user(session, town.town if role is not Role.volunteer else town.villages[0], role,
                     agency=Agency.education if role is Role.agency_staff else None)
    h = headers_for(session, user)
    assert [i["id"] for i in client.get(f"{API}/institutions", headers=h).json()["items"]] == [school.id]
    assert client.patch(f"{API}/institutions/{school.id}", headers=h, json={"name": "改名"}).status_code == 403


def test_filters_and_pages_walk_every_institution_once(client: TestClient, session: Session) -> None:
    town = make_town(session)
    h = headers_for(session, make_user(session, town.town, Role.coordinator))
    made = [make_institution(session, town.villages[i % 3].id or 0,
                             InstitutionKind.hotel if i % 2 else InstitutionKind.primary_school, name=f"单位{i}")
            for i in range(7)]
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{API}/institutions", headers=h, params=params)
        assert page.status_code == 200
        seen += [i["id"] for i in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert seen == [m.id for m in made]
    hotels = client.get(f"{API}/institutions", headers=h, params={"kind": "hotel"}).json()["items"]
    assert {i["id"] for i in hotels} == {m.id for m in made if m.kind == "hotel"}
    in_village = client.get(f"{API}/institutions", headers=h, params={"unit_id": town.villages[1].id}).json()["items"]
    assert {i["id"] for i in in_village} == {m.id for m in made if m.org_unit_id == town.villages[1].id}
    named = client.get(f"{API}/institutions", headers=h, params={"q": "单位3"}).json()["items"]
    assert [i["id"] for i in named] == [made[3].id]


def test_a_venue_links_to_one_institution_only_and_a_blank_name_is_refused(client: TestClient,
                                                                          session: Session) -> None:
    town = make_town(session)
    h = headers_for(session, make_user(session, town.town, Role.coordinator))
    venue = make_venue(session, town)
    first = client.post(f"{API}/institutions", headers=h, json={
        "name": "青山宾馆", "kind": "hotel", "org_unit_id": town.villages[0].id, "venue_id": venue.id})
    assert first.status_code == 201 and first.json()["supervising_agency"] == "police"
    second = client.post(f"{API}/institutions", headers=h, json={
        "name": "另一家", "kind": "hotel", "org_unit_id": town.villages[0].id, "venue_id": venue.id})
    assert second.status_code == 409 and second.json()["code"] == "institution-venue-taken"
    blank = client.post(f"{API}/institutions", headers=h, json={
        "name": "\u3000\u200b", "kind": "hotel", "org_unit_id": town.villages[0].id})
    assert blank.status_code == 422 and blank.json()["code"] == "institution-name-empty"


def test_get_visible_and_schools_in_are_what_other_parts_rely_on(session: Session) -> None:
    own = make_town(session)
    school = make_institution(session, own.villages[0].id or 0)
    kindergarten = make_institution(session, own.town.id or 0, InstitutionKind.kindergarten)
    make_institution(session, own.villages[0].id or 0, InstitutionKind.hotel)
    closed = make_institution(session, own.villages[1].id or 0)
    closed.is_active = False
    session.add(closed)
    session.commit()
    make_institution(session, own.villages[2].id or 0, name="另一村小学")
    principal = _principal(session, own.town.id or 0, own.town.path)
    assert service.get_visible(session, principal, school.id or 0).id == school.id
    with pytest.raises(NotFound):
        service.get_visible(session, _principal(session, own.villages[1].id or 0, own.villages[1].path),
                            school.id or 0)
    in_town = session.execute(service.schools_in(session, own.town.id or 0)).scalars().all()
    assert [i.id for i in in_town][:2] == [school.id, kindergarten.id] and len(in_town) == 3
    in_village = session.execute(service.schools_in(session, own.villages[0].id or 0)).scalars().all()
    assert [i.id for i in in_village] == [school.id]
    assert session.execute(service.schools_in(session, 10**9)).scalars().all() == []
    assert all(isinstance(i, Institution) for i in in_town)


def test_only_a_county_coordinator_redirects_the_supervising_agency_and_the_audit_keeps_old_and_new(
        client: TestClient, session: Session) -> None:
    """The supervising agency decides who sees the staff and their check results: a town coordinator
    may not redirect it (403, by PATCH or by import), a county one may, and the entry says from what."""
    town = make_town(session)
    school = make_institution(session, town.villages[0].id or 0, name="青山小学")
    town_h = headers_for(session, make_user(session, town.town, Role.coordinator))
    county_h = headers_for(session, make_user(session, town.county, Role.coordinator))
    refused = client.patch(f"{API}/institutions/{school.id}", headers=town_h,
                           json={"supervising_agency": "civil_affairs"})
    assert refused.status_code == 403 and refused.json()["code"] == "institution-supervisor-county-only"
    same = client.patch(f"{API}/institutions/{school.id}", headers=town_h, json={"supervising_agency": "education"})
    assert same.status_code == 200  # naming the agency it already has is no change
    row = [[school.id, "青山小学", "小学", town.villages[0].code, "民政办", None, None, "是"]]
    imported = client.post(f"{API}/institutions/import", headers=town_h, files={"file": ("i.xlsx", book(row))})
    assert imported.status_code == 422 and imported.json()["errors"][0]["column"] == "主管部门"
    session.refresh(school)
    assert school.supervising_agency == "education"
    done = client.patch(f"{API}/institutions/{school.id}", headers=county_h,
                        json={"supervising_agency": "civil_affairs"})
    assert done.status_code == 200 and done.json()["supervising_agency"] == "civil_affairs"
    entry = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "institution.update")
                            .order_by(col(AuditEntry.id).desc()).limit(1)).scalar_one()
    assert entry.details["supervising_agency"] == {"old": "education", "new": "civil_affairs"}


def test_only_a_county_coordinator_moves_an_institution_or_registers_it_under_another_agency(
        client: TestClient, session: Session) -> None:
    """Where a school lies decides who is above it and so who reads its staff checks: a town moving its
    school into the village's grid handed the list to the school's own teachers. Moving (by PATCH or by
    import) and registering under another agency than the kind's are a county's decisions."""
    town = make_town(session)
    school = make_institution(session, town.villages[0].id or 0, name="青山小学")
    town_h = headers_for(session, make_user(session, town.town, Role.coordinator))
    county_h = headers_for(session, make_user(session, town.county, Role.coordinator))
    grid = town.grids[0][0]
    moved = client.patch(f"{API}/institutions/{school.id}", headers=town_h, json={"org_unit_id": grid.id})
    assert moved.status_code == 403 and moved.json()["code"] == "institution-move-county-only"
    row = [[school.id, "青山小学", "小学", grid.code, "教育", None, None, "是"]]
    imported = client.post(f"{API}/institutions/import", headers=town_h, files={"file": ("i.xlsx", book(row))})
    assert imported.status_code == 422, imported.text
    assert [e["column"] for e in imported.json()["errors"]] == ["所属单位编码"]
    session.refresh(school)
    assert school.org_unit_id == town.villages[0].id
    other = client.post(f"{API}/institutions", headers=town_h, json={
        "name": "新小学", "kind": "primary_school", "org_unit_id": town.villages[1].id,
        "supervising_agency": "culture_tourism"})
    assert other.status_code == 403 and other.json()["code"] == "institution-supervisor-county-only"
    plain = client.post(f"{API}/institutions", headers=town_h, json={
        "name": "新小学", "kind": "primary_school", "org_unit_id": town.villages[1].id,
        "supervising_agency": "education"})
    assert plain.status_code == 201, plain.text
    done = client.patch(f"{API}/institutions/{school.id}", headers=county_h, json={"org_unit_id": grid.id})
    assert done.status_code == 200 and done.json()["org_unit_id"] == grid.id
    entry = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "institution.update")
                            .order_by(col(AuditEntry.id).desc()).limit(1)).scalar_one()
    assert entry.details["org_unit_id"] == {"old": town.villages[0].id, "new": grid.id}
