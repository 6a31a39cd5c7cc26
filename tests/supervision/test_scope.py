"""Who reads which problem and notice: every role at a village, against a village-0 (own) and a
village-1 (foreign) record; member-unit staff only what is addressed to their unit."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.models import Agency
from backend.accounts.permissions import PERMISSIONS, Action, Role
from backend.institutions.models import InstitutionKind
from tests.factories import make_user
from tests.institutions.factories import make_institution
from tests.notifications.factories import headers_for
from tests.supervision.factories import API, make_world, raise_problem

# The agency a user of each role works for in the walk (agency_staff: the village committee).
AGENCY = {Role.police: Agency.police, Role.market_officer: Agency.market_supervision,
          Role.agency_staff: Agency.village_committee, Role.coordinator: Agency.government,
          Role.admin: Agency.government, Role.volunteer: Agency.womens_federation,
          Role.grid_worker: Agency.village_committee, Role.helper: Agency.womens_federation}


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
def test_every_role_reads_the_problems_and_notices_of_its_own_area_only(
        role: Role, client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    v0, v1 = w.town.villages[0], w.town.villages[1]
    own = raise_problem(client, w.coordinator, {"kind": "unit", "org_unit_id": v0.id, "agency": "village_committee"})
    foreign = raise_problem(client, w.coordinator, {"kind": "unit", "org_unit_id": v1.id,
                                                    "agency": "village_committee"})
    school = make_institution(session, v0.id or 0, InstitutionKind.kindergarten)
    schools = raise_problem(client, w.coordinator, {"kind": "institution", "institution_id": school.id})
    notice = client.post(f"{API}/notices", headers=w.coordinator.headers, json={
        "title": "通报", "body": "某校未落实入职查询，已责令整改。", "recipients": [{"unit_id": v0.id}]}).json()
    other = client.post(f"{API}/notices", headers=w.coordinator.headers, json={
        "title": "通报", "body": "某村未落实强制报告，已通报批评。", "recipients": [{"unit_id": v1.id}]}).json()
    caller = make_user(session, v0, role, agency=AGENCY[role])
    h = headers_for(session, caller)

    reads = Action.supervision_read in PERMISSIONS[role]
    listed = client.get(f"{API}/supervision/problems", headers=h)
    one = client.get(f"{API}/supervision/problems/{own['id']}", headers=h)
    theirs = client.get(f"{API}/supervision/problems/{foreign['id']}", headers=h)
    by_unit = client.get(f"{API}/supervision/problems", params={"unit_id": v1.id}, headers=h)
    if not reads:
        assert {listed.status_code, one.status_code, theirs.status_code} == {403}
    else:
        assert one.status_code == 200 and theirs.status_code == 404 and by_unit.status_code == 404
        ids = {p["id"] for p in listed.json()}
        assert own["id"] in ids and foreign["id"] not in ids
        # A kindergarten's problem is its supervising agency's (education), not the village committee's.
        assert (schools["id"] in ids) is (role is not Role.agency_staff)

    notices = client.get(f"{API}/notices", headers=h)
    if Action.notice_read not in PERMISSIONS[role]:
        assert notices.status_code == 403
        assert client.get(f"{API}/notices/{notice['id']}", headers=h).status_code == 403
    else:
        assert [n["id"] for n in notices.json()] == [notice["id"]]
        assert client.get(f"{API}/notices/{notice['id']}", headers=h).status_code == 200
        assert client.get(f"{API}/notices/{other['id']}", headers=h).status_code == 404
