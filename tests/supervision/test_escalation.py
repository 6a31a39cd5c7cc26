"""挂牌督办: a unit above marks a problem supervised; an overdue supervised problem is told to the
supervising unit, then to each unit above it a week apart, each unit once, however often the job runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.db import get_engine
from backend.notifications.models import Notification
from backend.supervision.service import ESCALATION_INTERVAL_DAYS, escalate_overdue, escalation_steps
from tests.factories import make_user
from tests.notifications.factories import headers_for
from tests.supervision.factories import API, make_world, raise_problem


def _run_job() -> list[tuple[int, int]]:
    with Session(get_engine(), expire_on_commit=False) as s:
        told = escalate_overdue(s)
        s.commit()
    return told


def _overdue_notes(session: Session, user_id: int) -> list[dict[str, str]]:
    session.expire_all()
    return [n.data for n in session.execute(select(Notification).where(
        col(Notification.user_id) == user_id, col(Notification.kind) == "supervision.overdue")).scalars()]


def test_only_a_unit_above_the_problems_unit_supervises_it_and_a_higher_one_may_take_it_over(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    pid = raise_problem(client, w.coordinator, {"kind": "unit", "org_unit_id": w.town.villages[0].id})["id"]
    url = f"{API}/supervision/problems/{pid}/supervise"
    own = client.post(url, json={}, headers=w.village.headers)
    assert own.status_code == 409 and own.json()["code"] == "supervision-not-above"
    marked = client.post(url, json={}, headers=w.coordinator.headers)
    assert marked.status_code == 200, marked.text
    assert marked.json()["supervised"] and marked.json()["supervised_level"] == "town"
    assert client.post(url, json={}, headers=w.coordinator.headers).status_code == 409  # already, same level
    assert client.post(url, json={"unit_id": w.town.town.id}, headers=w.county.headers).status_code == 409
    assert client.post(url, json={"unit_id": w.town.city.id}, headers=w.county.headers).status_code == 404
    upgraded = client.post(url, json={}, headers=w.county.headers)
    assert upgraded.status_code == 200 and upgraded.json()["supervised_level"] == "county"
    listed = client.get(f"{API}/supervision/problems", params={"supervised": "true"}, headers=w.county.headers).json()
    assert [p["id"] for p in listed] == [pid]
    # The problem's own unit is told (ids only) that it is supervised.
    session.expire_all()
    told = session.execute(select(Notification).where(col(Notification.user_id) == w.village.user.id,
                                                       col(Notification.kind) == "supervision.supervised")).scalars()
    assert [n.data["problem_id"] for n in told] == [str(pid), str(pid)]


def test_an_overdue_supervised_problem_climbs_one_unit_a_week_each_told_once(
        client: TestClient, session: Session) -> None:
    clock.freeze(datetime(2026, 3, 2, 2, 0, tzinfo=UTC))  # 10:00 in Shanghai
    w = make_world(client, session)
    city = make_user(session, w.town.city, Role.coordinator)
    pid = raise_problem(client, w.coordinator, {"kind": "unit", "org_unit_id": w.town.villages[0].id}, days=1)["id"]
    assert client.post(f"{API}/supervision/problems/{pid}/supervise", json={},
                       headers=w.coordinator.headers).status_code == 200
    other = raise_problem(client, w.coordinator, {"kind": "unit", "org_unit_id": w.town.villages[0].id}, days=1)
    assert _run_job() == []  # not overdue yet

    clock.advance(timedelta(days=2))  # one day past the deadline
    assert _run_job() == [(pid, w.town.town.id)]  # the unsupervised one is not escalated
    assert _run_job() == []
    assert _overdue_notes(session, w.coordinator.user.id or 0) == [{"problem_id": str(pid), "step": "1"}]
    assert _overdue_notes(session, w.county.user.id or 0) == []

    clock.advance(timedelta(days=ESCALATION_INTERVAL_DAYS - 1))  # day 7: still the town's week
    assert _run_job() == []
    clock.advance(timedelta(days=1))  # day 8: the county
    assert _run_job() == [(pid, w.town.county.id)]
    assert _run_job() == []
    assert _overdue_notes(session, w.county.user.id or 0) == [{"problem_id": str(pid), "step": "2"}]
    assert _overdue_notes(session, city.id or 0) == []
    assert len(_overdue_notes(session, w.coordinator.user.id or 0)) == 1

    clock.advance(timedelta(days=ESCALATION_INTERVAL_DAYS * 3))  # far later: city and province once each
    assert _run_job() == [(pid, w.town.city.id), (pid, w.town.province.id)]
    assert _run_job() == []
    assert len(_overdue_notes(session, city.id or 0)) == 1
    county = headers_for(session, w.county.user)  # the sign-in of a month ago has expired
    shown = client.get(f"{API}/supervision/problems/{pid}", headers=county).json()
    assert [(e["step"], e["notified_unit_id"]) for e in shown["escalations"]] == [
        (1, w.town.town.id), (2, w.town.county.id), (3, w.town.city.id), (4, w.town.province.id)]
    assert client.get(f"{API}/supervision/problems/{other['id']}", headers=county).json()["escalations"] == []


def test_a_rectification_reported_in_time_stops_the_escalation(client: TestClient, session: Session) -> None:
    clock.freeze(datetime(2026, 3, 2, 2, 0, tzinfo=UTC))
    w = make_world(client, session)
    pid = raise_problem(client, w.coordinator, {"kind": "unit", "org_unit_id": w.town.villages[0].id}, days=1)["id"]
    client.post(f"{API}/supervision/problems/{pid}/supervise", json={}, headers=w.coordinator.headers)
    client.post(f"{API}/supervision/problems/{pid}/rectification", json={"report": "已整改"},
                headers=w.village.headers)
    clock.advance(timedelta(days=30))
    assert _run_job() == []


@given(days=st.integers(min_value=-30, max_value=400), chain=st.integers(min_value=1, max_value=6))
def test_escalation_steps_grow_by_one_unit_a_week_and_never_past_the_root(days: int, chain: int) -> None:
    steps = escalation_steps(days, chain)
    assert 0 <= steps <= chain
    assert (steps == 0) == (days < 1)
    assert escalation_steps(days + 1, chain) - steps in (0, 1)  # never skips a unit
    if days >= 1 and steps < chain:
        assert steps == 1 + (days - 1) // ESCALATION_INTERVAL_DAYS
