"""Activity types: the national list, extended by a county (checklist.manage) for its own area only."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel
from backend.prevention.catalogue import NATIONAL
from tests.factories import make_town, make_user
from tests.notifications.factories import headers_for
from tests.prevention.factories import item, village_data

API = "/api/v1"
SUMMER = {"code": "summer_safety", "name_zh": "暑期安全课", "name_en": "Summer safety class"}


def codes(client: TestClient, headers: dict[str, str]) -> list[str]:
    resp = client.get(f"{API}/activity-types", headers=headers)
    assert resp.status_code == 200, resp.text
    return [t["code"] for t in resp.json()]


def test_everyone_who_reads_activities_gets_the_national_list(client: TestClient, session: Session) -> None:
    town = make_town(session)
    volunteer = make_user(session, town.grids[0][0], Role.grid_worker)
    assert codes(client, headers_for(session, volunteer)) == [t.code for t in NATIONAL]


def test_a_county_adds_a_type_its_area_uses_and_no_other_county_sees(client: TestClient, session: Session) -> None:
    town = make_town(session)
    neighbour = orgunits.create_unit(session, code="990102000000", name="邻县", level=OrgLevel.county, parent=town.city)
    far_town = orgunits.create_unit(session, code="990102100000", name="邻镇", level=OrgLevel.town, parent=neighbour)
    far_village = orgunits.create_unit(session, code="990102100001", name="邻村", level=OrgLevel.village,
                                       parent=far_town)
    session.commit()
    county = make_user(session, town.county, Role.coordinator)
    resp = client.post(f"{API}/activity-types", json=SUMMER, headers=headers_for(session, county))
    assert resp.status_code == 201, resp.text
    assert resp.json() == {**SUMMER, "national": False, "owner_unit_id": town.county.id}
    assert session.execute(select(AuditEntry).where(col(AuditEntry.action) == "activity_type.create")).first()

    volunteer = make_user(session, town.villages[0], Role.volunteer)
    stranger = make_user(session, far_village, Role.volunteer)
    assert "summer_safety" in codes(client, headers_for(session, volunteer))
    assert "summer_safety" not in codes(client, headers_for(session, stranger))

    here = client.post(f"{API}/sync/push", headers=headers_for(session, volunteer), json={"items": [
        item(village_data(town.villages[0].id, type_code="summer_safety"))]}).json()["results"][0]
    there = client.post(f"{API}/sync/push", headers=headers_for(session, stranger), json={"items": [
        item(village_data(far_village.id, type_code="summer_safety"))]}).json()["results"][0]
    assert here["status"] == "created" and here["record"]["type_zh"] == "暑期安全课"
    assert there["status"] == "rejected" and there["problem"]["code"] == "activity-type-unknown"


def test_codes_are_unique_and_only_counties_and_above_add_types(client: TestClient, session: Session) -> None:
    town = make_town(session)
    county = headers_for(session, make_user(session, town.county, Role.coordinator))
    town_coordinator = headers_for(session, make_user(session, town.town, Role.coordinator))
    volunteer = headers_for(session, make_user(session, town.county, Role.volunteer))

    def add(headers: dict[str, str], **body: Any) -> Any:
        return client.post(f"{API}/activity-types", json={**SUMMER, **body}, headers=headers)

    assert add(county).status_code == 201
    assert add(county).json()["code"] == "activity-type-exists"
    assert add(county, code="campus").json()["code"] == "activity-type-exists"
    assert add(town_coordinator, code="town_own").json()["code"] == "activity-type-level"
    assert add(county, code="for_town", unit_id=town.town.id).json()["code"] == "activity-type-level"
    assert add(volunteer, code="mine").status_code == 403
    assert add(county, code="Bad Code").status_code == 422
    assert add(county, code="blank_name", name_zh="\u3000").json()["code"] == "activity-text-invalid"
