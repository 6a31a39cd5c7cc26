"""A child's case file lives where the child lives: a household's move takes the children's cases, their
services and referrals, and the help given to them to the new unit; the unit left reads them no more."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.agency_referrals.models import AgencyReferral
from backend.cases.models import Case
from backend.helpers.models import Assignment
from backend.registry.models import Household
from backend.service_plans.models import CaseService
from tests.factories import make_town, make_user
from tests.helpers.factories import make_child
from tests.notifications.factories import headers_for
from tests.service_plans.factories import ensure_service_kinds

API = "/api/v1"


def _ok(resp: Any, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json()


def test_a_moved_household_takes_its_childs_case_services_referrals_and_help_to_the_new_village(
    client: TestClient, session: Session
) -> None:
    town = make_town(session)
    ensure_service_kinds(session)
    lead = headers_for(session, make_user(session, town.town, Role.coordinator, agency=Agency.government))
    left = headers_for(session, make_user(session, town.villages[0], Role.coordinator, agency=Agency.government))
    joined = headers_for(session, make_user(session, town.villages[1], Role.coordinator, agency=Agency.government))
    child = make_child(session, town.grids[0][0])
    case = _ok(client.post(f"{API}/cases", json={"child_id": child.id, "reason": "专班研判"}, headers=lead), 201)
    service = _ok(client.post(f"{API}/cases/{case['id']}/services", json={"kind": "legal_aid"}, headers=lead), 201)
    _ok(client.post(f"{API}/cases/{case['id']}/referrals", json={
        "service_id": service["id"], "to_unit_id": town.town.id, "to_agency": "judicial"}, headers=lead), 201)
    from tests.helpers.factories import make_helper  # the help given to the child, accepted

    helper = make_helper(session, town.town, sex="female")
    help_ = Assignment(child_id=child.id or 0, helper_id=helper.id or 0, org_unit_id=town.grids[0][0].id or 0,
                       mode="one_to_one", status="accepted", case_id=case["id"])
    session.add(help_)
    session.commit()
    assert _ok(client.get(f"{API}/cases/{case['id']}", headers=left))["id"] == case["id"]
    assert client.get(f"{API}/cases/{case['id']}", headers=joined).status_code == 404

    household = session.get(Household, child.household_id)
    assert household is not None
    _ok(client.put(f"{API}/households/{household.id}", json={"version": household.version,
                                                             "grid_id": town.grids[1][2].id}, headers=lead))

    new_unit = town.grids[1][2].id
    session.expire_all()
    stored_case = session.get(Case, case["id"])
    stored_service = session.get(CaseService, service["id"])
    stored_help = session.get(Assignment, help_.id)
    assert stored_case is not None and stored_service is not None and stored_help is not None
    assert (stored_case.org_unit_id, stored_service.org_unit_id, stored_help.org_unit_id) == (new_unit,) * 3
    referrals = session.query(AgencyReferral).filter(AgencyReferral.case_id == case["id"]).all()  # type: ignore[arg-type]
    assert referrals and {r.org_unit_id for r in referrals} == {new_unit}
    # The new village's coordinator takes the case over; the village left reads it no more.
    assert _ok(client.get(f"{API}/cases/{case['id']}", headers=joined))["org_unit_id"] == new_unit
    assert client.get(f"{API}/cases/{case['id']}", headers=left).status_code == 404
    assert client.get(f"{API}/services/{service['id']}", headers=left).status_code == 404
    assert _ok(client.get(f"{API}/services/{service['id']}", headers=joined))["id"] == service["id"]
