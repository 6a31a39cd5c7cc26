"""Changes of the register that remove oversight are the county's (outside test, round 3, finding 2):
deactivating an institution or changing its kind takes it off the school lists and the counts, as
redirecting its supervising agency or moving it would; a town coordinator is refused (403, or a row
error on import) and every update's audit entry keeps the old and the new value of each field."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.institutions.models import Institution
from tests.factories import make_town, make_user
from tests.institutions.factories import make_institution
from tests.institutions.test_institutions_xlsx import book
from tests.notifications.factories import headers_for

API = "/api/v1"
# Each change that removes oversight: (PATCH body, import row cells after 编号 and name, the column refused,
# the problem code, the field and its new value).
REMOVALS: dict[str, tuple[dict[str, Any], list[Any], str, str, str, Any]] = {
    "deactivate": ({"is_active": False}, ["小学", None, "教育", None, None, "否"], "是否在用",
                   "institution-deactivate-county-only", "is_active", False),
    "change kind": ({"kind": "internet_cafe"}, ["网吧", None, None, None, None, "是"], "单位类型",
                    "institution-kind-county-only", "kind", "internet_cafe"),
    # The enrolment an awareness round is read against: a town lowering it before its own round made its
    # school's participation 1.0 (outside tester, re-attack).
    "change enrolment": ({"student_count": 1}, ["小学", None, "教育", None, 1, "是"], "在校学生数",
                         "institution-enrolment-county-only", "student_count", 1),
}


def _last_update(session: Session) -> AuditEntry:
    session.expire_all()
    return session.execute(select(AuditEntry).where(col(AuditEntry.action) == "institution.update")
                           .order_by(col(AuditEntry.id).desc()).limit(1)).scalar_one()


@pytest.mark.parametrize("removal", list(REMOVALS))
def test_only_a_county_coordinator_removes_oversight_and_the_audit_keeps_old_and_new(
        client: TestClient, session: Session, removal: str) -> None:
    body, cells, column, code, name, value = REMOVALS[removal]
    town = make_town(session)
    school = make_institution(session, town.villages[0].id or 0, name="青山小学")
    town_h = headers_for(session, make_user(session, town.town, Role.coordinator))
    county_h = headers_for(session, make_user(session, town.county, Role.coordinator))
    refused = client.patch(f"{API}/institutions/{school.id}", headers=town_h, json=body)
    assert refused.status_code == 403 and refused.json()["code"] == code, refused.text
    row = [school.id, "青山小学", cells[0], town.villages[0].code, *cells[2:]]
    imported = client.post(f"{API}/institutions/import", headers=town_h, files={"file": ("i.xlsx", book([row]))})
    assert imported.status_code == 422, imported.text
    assert [e["column"] for e in imported.json()["errors"]] == [column]
    session.expire_all()
    kept = session.get(Institution, school.id)
    assert kept is not None and kept.is_active and kept.kind == "primary_school"
    before = getattr(kept, name)
    done = client.patch(f"{API}/institutions/{school.id}", headers=county_h, json=body)
    assert done.status_code == 200 and done.json()[name] == value
    assert _last_update(session).details[name] == {"old": before, "new": value}


def test_every_changed_field_is_audited_with_its_old_and_new_value_and_a_town_may_reactivate(
        client: TestClient, session: Session) -> None:
    town = make_town(session)
    school = make_institution(session, town.villages[0].id or 0, name="青山小学", student_count=342)
    town_h = headers_for(session, make_user(session, town.town, Role.coordinator))
    county_h = headers_for(session, make_user(session, town.county, Role.coordinator))
    changed = client.patch(f"{API}/institutions/{school.id}", headers=county_h,
                           json={"student_count": 100, "address": "山路1号"})
    assert changed.status_code == 200
    entry = _last_update(session)
    assert entry.details["student_count"] == {"old": 342, "new": 100}
    assert entry.details["address"] == {"old": "", "new": "山路1号"}
    off = client.patch(f"{API}/institutions/{school.id}", headers=county_h, json={"is_active": False})
    assert off.status_code == 200
    # Restoring oversight is no removal of it.
    again = client.patch(f"{API}/institutions/{school.id}", headers=town_h, json={"is_active": True})
    assert again.status_code == 200 and again.json()["is_active"]
    row = [school.id, "青山小学", "小学", town.villages[0].code, "教育", "山路2号", 120, "是"]
    assert client.post(f"{API}/institutions/import", headers=county_h,
                       files={"file": ("i.xlsx", book([row]))}).status_code == 200
    session.expire_all()
    imported = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "institution.import")
                               .order_by(col(AuditEntry.id).desc()).limit(1)).scalar_one()
    assert imported.details["changed"] == [{"id": school.id, "address": {"old": "山路1号", "new": "山路2号"},
                                            "student_count": {"old": 100, "new": 120}}]
