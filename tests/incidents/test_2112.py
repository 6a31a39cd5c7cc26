"""The 2112 method: timed hand-offs down the chain, the level above told once when a limit is missed."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.db import get_engine
from backend.core.jobs import run_due_jobs
from backend.incidents.service import check_deadlines
from backend.notifications.models import Notification
from tests.factories import make_town, make_user
from tests.notifications.factories import headers_for


def _notifications(session: Session, kind: str = "incident.overdue") -> list[Notification]:
    session.expire_all()
    return list(session.execute(select(Notification).where(col(Notification.kind) == kind)
                                .order_by(col(Notification.id))).scalars())


def _open(client: TestClient, headers: dict[str, str], **body: object) -> dict[str, object]:
    resp = client.post("/api/v1/incidents", json={"title": "网络舆情线索", "summary": "待核实", **body},
                       headers=headers)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def test_an_incident_not_handed_down_in_20_minutes_notifies_the_province_once(
    client: TestClient, session: Session
) -> None:
    clock.freeze(datetime(2026, 11, 23, 6, 0, tzinfo=UTC))  # 14:00 in Shanghai
    town = make_town(session)
    province_coord = make_user(session, town.province, Role.coordinator)
    city_coord = make_user(session, town.city, Role.coordinator)
    incident = _open(client, headers_for(session, province_coord))
    [first] = incident["deadlines"]  # type: ignore[misc]
    assert first["step"] == "province_to_city" and first["due_at"] == "2026-11-23T14:20:00+08:00"

    clock.advance(timedelta(minutes=19))
    assert check_deadlines(session) == []
    session.commit()
    clock.advance(timedelta(minutes=2))
    assert "incidents.check_deadlines" in run_due_jobs()
    [note] = _notifications(session)
    assert note.user_id == province_coord.id
    assert note.data == {"incident_id": str(incident["id"]), "step": "province_to_city",
                         "unit_id": str(town.province.id)}
    assert "14:20" in note.body_zh and "北京时间" in note.body_zh
    assert city_coord.id not in {n.user_id for n in _notifications(session)}

    # The check runs again, and two more workers run it at once: nobody is told twice.
    clock.advance(timedelta(minutes=5))
    run_due_jobs()
    errors: list[BaseException] = []

    def again() -> None:
        try:
            with Session(get_engine(), expire_on_commit=False) as s:
                check_deadlines(s)
                s.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=again) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(_notifications(session)) == 1

    # It stays visible as overdue until it is closed, even after the hand-off finally happens.
    headers = headers_for(session, province_coord)
    late = client.post(f"/api/v1/incidents/{incident['id']}/handoffs", json={"to_unit_ids": [town.city.id]},
                       headers=headers).json()
    assert late["overdue"] is True and late["deadlines"][0]["state"] == "met_late"
    listed = client.get("/api/v1/incidents", params={"overdue": True}, headers=headers).json()
    assert [i["id"] for i in listed] == [incident["id"]]
    client.post(f"/api/v1/incidents/{incident['id']}/close", json={"note": "已处置"}, headers=headers)
    listed = client.get("/api/v1/incidents", params={"overdue": True, "status": "open"}, headers=headers).json()
    assert listed == []


def test_each_handoff_is_recorded_with_server_time_down_to_town_and_feedback_goes_up(
    client: TestClient, session: Session
) -> None:
    clock.freeze(datetime(2026, 11, 23, 1, 0, tzinfo=UTC))  # 09:00 in Shanghai
    town = make_town(session)
    province, city, county, local = (make_user(session, unit, Role.coordinator)
                                     for unit in (town.province, town.city, town.county, town.town))
    incident = _open(client, headers_for(session, province))
    iid = incident["id"]
    clock.advance(timedelta(minutes=12))
    assert client.post(f"/api/v1/incidents/{iid}/handoffs", json={"to_unit_ids": [town.county.id]},
                       headers=headers_for(session, province)).status_code == 422  # a city, not a county
    client.post(f"/api/v1/incidents/{iid}/handoffs", json={"to_unit_ids": [town.city.id]},
                headers=headers_for(session, province))
    clock.advance(timedelta(minutes=8))
    client.post(f"/api/v1/incidents/{iid}/handoffs", json={"to_unit_ids": [town.county.id]},
                headers=headers_for(session, city))
    clock.advance(timedelta(minutes=9))
    body = client.post(f"/api/v1/incidents/{iid}/handoffs", json={"to_unit_ids": [town.town.id, town.villages[0].id]},
                       headers=headers_for(session, county)).json()
    assert [h["handed_at"] for h in body["handoffs"]] == [
        "2026-11-23T09:12:00+08:00", "2026-11-23T09:20:00+08:00", "2026-11-23T09:29:00+08:00",
        "2026-11-23T09:29:00+08:00"]
    assert [d["state"] for d in body["deadlines"]] == ["met", "met", "met", "pending"]
    assert body["deadlines"][3]["due_at"] == "2026-11-23T11:29:00+08:00"
    clock.advance(timedelta(minutes=90))
    body = client.post(f"/api/v1/incidents/{iid}/feedback", json={"note": "已核实，已开展服务"},
                       headers=headers_for(session, local)).json()
    assert body["feedback_at"] == "2026-11-23T10:59:00+08:00" and body["overdue"] is False
    clock.advance(timedelta(hours=3))
    assert check_deadlines(session) == []
    assert _notifications(session) == []


def test_a_county_that_does_not_notify_towns_in_10_minutes_is_reported_to_the_city(
    client: TestClient, session: Session
) -> None:
    town = make_town(session)
    city_coord = make_user(session, town.city, Role.coordinator)
    county = headers_for(session, make_user(session, town.county, Role.coordinator))
    incident = _open(client, county)
    assert [d["step"] for d in incident["deadlines"]] == ["county_to_local"]  # type: ignore[union-attr]
    clock.advance(timedelta(minutes=11))
    [escalation] = check_deadlines(session)
    session.commit()
    assert escalation.notified_unit_id == town.city.id and escalation.user_ids == [city_coord.id]


def test_incidents_are_invisible_outside_the_chain_and_to_field_roles(client: TestClient, session: Session) -> None:
    town = make_town(session)
    county = headers_for(session, make_user(session, town.county, Role.coordinator))
    incident = _open(client, county)
    other_town_coord = headers_for(session, make_user(session, town.town, Role.coordinator))
    volunteer = headers_for(session, make_user(session, town.villages[0], Role.volunteer))
    assert client.get(f"/api/v1/incidents/{incident['id']}", headers=other_town_coord).status_code == 404
    assert client.get(f"/api/v1/incidents/{incident['id']}", headers=volunteer).status_code == 404
    assert client.get("/api/v1/incidents", headers=other_town_coord).json() == []
    client.post(f"/api/v1/incidents/{incident['id']}/handoffs", json={"to_unit_ids": [town.town.id]}, headers=county)
    assert client.get(f"/api/v1/incidents/{incident['id']}", headers=other_town_coord).status_code == 200


def test_an_incident_cannot_start_at_town_level(client: TestClient, session: Session) -> None:
    town = make_town(session)
    local = headers_for(session, make_user(session, town.town, Role.coordinator))
    resp = client.post("/api/v1/incidents", json={"title": "线索"}, headers=local)
    assert resp.status_code == 422 and resp.json()["code"] == "incident-level-invalid"
