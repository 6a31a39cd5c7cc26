"""The dashboard's supervision counts (backend.supervision.service.summary): problems of every subject
of a unit's subtree by state, and the acknowledgements notices still wait for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.core import clock
from backend.institutions.models import InstitutionKind
from tests.institutions.factories import make_institution
from tests.notifications.factories import headers_for
from tests.supervision.factories import API, make_world, raise_problem
from tests.venues.factories import make_venue


def test_the_summary_counts_open_overdue_supervised_and_unacknowledged(client: TestClient, session: Session) -> None:
    clock.freeze(datetime(2026, 3, 2, 2, 0, tzinfo=UTC))
    w = make_world(client, session)
    v0, v1 = w.town.villages[0], w.town.villages[1]
    school = make_institution(session, v0.id or 0, InstitutionKind.primary_school)
    late = raise_problem(client, w.coordinator, {"kind": "unit", "org_unit_id": v0.id}, days=1)
    client.post(f"{API}/supervision/problems/{late['id']}/supervise", json={}, headers=w.coordinator.headers)
    raise_problem(client, w.coordinator, {"kind": "institution", "institution_id": school.id}, days=30)
    raise_problem(client, w.coordinator, {"kind": "venue", "venue_id": make_venue(session, w.town).id}, days=30)
    done = raise_problem(client, w.coordinator, {"kind": "unit", "org_unit_id": v1.id}, days=30)
    client.post(f"{API}/supervision/problems/{done['id']}/rectification", json={"report": "已整改"},
                headers=w.coordinator.headers)
    notice = client.post(f"{API}/notices", headers=w.coordinator.headers, json={
        "title": "通报", "body": "某校未落实入职查询，已责令整改。", "recipients": [{"unit_id": v0.id}]}).json()
    assert client.post(f"{API}/notices/{notice['id']}/acknowledge", headers=w.teacher.headers).status_code == 200
    clock.advance(timedelta(days=3))

    town = client.get(f"{API}/supervision/summary", params={"unit_id": w.town.town.id},
                      headers=headers_for(session, w.coordinator.user)).json()
    assert (town["open"], town["overdue"], town["awaiting_verification"]) == (4, 1, 1)
    assert (town["supervised_open"], town["supervised_overdue"]) == (1, 1)
    assert town["by_subject"] == {"venue": {"open": 1, "overdue": 0, "awaiting_verification": 0},
                                  "institution": {"open": 1, "overdue": 0, "awaiting_verification": 0},
                                  "unit": {"open": 2, "overdue": 1, "awaiting_verification": 1}}
    # Village 0's readers: village, committee, teacher; one of them acknowledged.
    assert town["notices_published"] == 1 and town["notices_unacknowledged"] == 2
    village = client.get(f"{API}/supervision/summary", params={"unit_id": v1.id},
                         headers=headers_for(session, w.county.user)).json()
    assert (village["open"], village["awaiting_verification"], village["notices_published"]) == (1, 1, 0)
