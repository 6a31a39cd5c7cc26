"""Concurrent changes of the register and of reviews answer what the same changes answer one after
the other: a case number taken by a concurrent edit is 409 police-case-number-taken (not a 500), a
unit's task marked done by several requests at once is done once (one 200, the others 409
case-review-task-done), and a status move racing another is refused, not applied twice.

The "held" tests hold one change open in a transaction of its own, send the other through the API
meanwhile and commit the first half a second later (PostgreSQL: the request reads before the held
change is committed and must still lose; SQLite: its writers queue from their first statement, so
the request simply waits and sees the change). The "at once" tests send the requests through
independent HTTP clients released together."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts import service as accounts
from backend.accounts.principal import Principal
from backend.audit.models import AuditEntry
from backend.core.db import get_engine
from backend.main import create_app
from backend.police_cases import reviews, service
from backend.police_cases.models import CaseReviewTask, PoliceCase, PoliceCaseEvent, PoliceCaseStatus
from backend.police_cases.schemas import PoliceCaseUpdate
from tests.police_cases.factories import API, Station, china_today, register

# Long enough for the request to reach the point where it waits for the held change, on a slow machine too.
HELD_S = 0.5
# No request of these tests may take longer.
JOIN_S = 60


def _while_held(st: Station, who: str, change: Callable[[Session, Principal], None],
                send: Callable[[], httpx.Response]) -> httpx.Response:
    """Make `change` in a transaction of its own as `who`, run `send()` in a thread while it is held
    open, commit it, then return what the request answered."""
    with Session(get_engine(), expire_on_commit=False) as holder:
        principal = accounts.principal_for(holder, st.users[who].id or 0, device_id=None, ip=None)
        assert principal is not None
        change(holder, principal)
        holder.flush()
        answer: dict[str, httpx.Response] = {}
        failures: list[BaseException] = []

        def run() -> None:
            try:
                answer["resp"] = send()
            except BaseException as exc:  # reported below, in the test's thread
                failures.append(exc)

        request = threading.Thread(target=run, daemon=True)
        request.start()
        time.sleep(HELD_S)
        holder.commit()
    request.join(JOIN_S)
    assert not request.is_alive(), "the request did not finish"
    assert not failures, failures
    return answer["resp"]


def _at_once(headers: dict[str, str], calls: list[tuple[str, str, dict[str, Any]]]) -> list[httpx.Response]:
    """The calls (method, path, body) sent by independent HTTP clients released together."""
    barrier = threading.Barrier(len(calls), timeout=JOIN_S)
    answers: list[httpx.Response] = []
    failures: list[BaseException] = []

    def send(method: str, path: str, body: dict[str, Any]) -> None:
        try:
            with TestClient(create_app()) as own:
                barrier.wait()
                answers.append(own.request(method, path, json=body, headers=headers))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=send, args=call, daemon=True) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_S)
    assert not any(t.is_alive() for t in threads), "a request did not finish"
    assert not failures, failures
    return answers


def _codes(answers: list[httpx.Response]) -> list[tuple[int, str | None]]:
    return sorted((a.status_code, a.json().get("code") if a.status_code >= 400 else None) for a in answers)


def _entries(session: Session, action: str) -> int:
    return len(session.execute(select(col(AuditEntry.id)).where(col(AuditEntry.action) == action)).all())


# ---------------------------------------------------------------- case numbers


def test_a_number_taken_by_an_edit_held_open_is_409_and_the_loser_keeps_its_number(
    client: TestClient, session: Session
) -> None:
    st = Station(client, session)
    h = st.headers("police")
    first, second = register(st, number="R-1"), register(st, number="R-2")

    def take(s: Session, p: Principal) -> None:
        service.update(s, p, first["id"], PoliceCaseUpdate(case_number="R-9"))

    resp = _while_held(st, "police", take, lambda: client.patch(
        f"{API}/police-cases/{second['id']}", json={"case_number": "R-9", "victims": 5}, headers=h))
    assert resp.status_code == 409 and resp.json()["code"] == "police-case-number-taken", resp.text
    assert resp.json()["field"] == "case_number"
    # Nothing of the refused edit was kept: neither the number, nor the other field, nor an event.
    session.expire_all()
    loser = session.get(PoliceCase, second["id"])
    assert loser is not None and (loser.case_number, loser.victims) == ("R-2", 1)
    events = session.execute(select(col(PoliceCaseEvent.action)).where(
        col(PoliceCaseEvent.police_case_id) == second["id"])).scalars().all()
    assert events == ["register"]
    assert session.get(PoliceCase, first["id"]).case_number == "R-9"  # type: ignore[union-attr]


def test_a_number_taken_by_an_edit_held_open_with_links_is_409(client: TestClient, session: Session) -> None:
    """The links of the edit are written before the number: the number's clash is still the 409."""
    st = Station(client, session)
    h = st.headers("police")
    venue = st.venue()
    first, second = register(st, number="L-1"), register(st, number="L-2")

    def take(s: Session, p: Principal) -> None:
        service.update(s, p, first["id"], PoliceCaseUpdate(case_number="L-9"))

    resp = _while_held(st, "police", take, lambda: client.patch(
        f"{API}/police-cases/{second['id']}", json={"case_number": "L-9", "venue_ids": [venue.id]}, headers=h))
    assert resp.status_code == 409 and resp.json()["code"] == "police-case-number-taken", resp.text
    again = client.get(f"{API}/police-cases/{second['id']}", headers=h).json()
    assert (again["case_number"], again["venue_ids"]) == ("L-2", [])


def test_two_edits_at_once_to_the_same_number_one_wins_one_is_409(client: TestClient, session: Session) -> None:
    st = Station(client, session)
    h = st.headers("police")
    a, b = register(st, number="C-1"), register(st, number="C-2")
    answers = _at_once(h, [("PATCH", f"{API}/police-cases/{a['id']}", {"case_number": "C-9"}),
                           ("PATCH", f"{API}/police-cases/{b['id']}", {"case_number": "C-9"})])
    assert _codes(answers) == [(200, None), (409, "police-case-number-taken")], [r.text for r in answers]
    numbers = sorted(session.execute(select(col(PoliceCase.case_number))).scalars())
    assert numbers in (["C-1", "C-9"], ["C-2", "C-9"])


# ---------------------------------------------------------------- status moves


def test_a_status_move_racing_the_same_move_is_refused(client: TestClient, session: Session) -> None:
    st = Station(client, session)
    h = st.headers("police")
    made = register(st)

    def move(s: Session, p: Principal) -> None:
        service.transition(s, p, made["id"], to=PoliceCaseStatus.investigating, reason=None, note=None)

    resp = _while_held(st, "police", move, lambda: client.post(
        f"{API}/police-cases/{made['id']}/status", json={"to": "investigating"}, headers=h))
    assert resp.status_code == 409 and resp.json()["code"] == "police-case-transition-invalid", resp.text
    assert resp.json()["current_status"] == "investigating"
    history = client.get(f"{API}/police-cases/{made['id']}", headers=h).json()["history"]
    assert [(e["from_status"], e["to_status"]) for e in history] == [(None, "filed"), ("filed", "investigating")]


def test_an_edit_racing_the_closing_of_its_case_is_refused(client: TestClient, session: Session) -> None:
    st = Station(client, session)
    h = st.headers("police")
    made = register(st)

    def close(s: Session, p: Principal) -> None:
        service.transition(s, p, made["id"], to=PoliceCaseStatus.closed, reason="withdrawn", note=None)

    resp = _while_held(st, "police", close, lambda: client.patch(
        f"{API}/police-cases/{made['id']}", json={"victims": 7}, headers=h))
    assert resp.status_code == 409 and resp.json()["code"] == "police-case-transition-invalid", resp.text
    assert client.get(f"{API}/police-cases/{made['id']}", headers=h).json()["victims"] == 1


# ---------------------------------------------------------------- review tasks


def _unit_task(st: Station) -> tuple[int, int]:
    case = register(st)
    deadline = (china_today() + timedelta(days=10)).isoformat()
    resp = st.client.post(f"{API}/case-reviews", headers=st.headers("coordinator"), json={
        "police_case_id": case["id"], "analysis": "学校未开展防性侵教育",
        "tasks": [{"subject": "unit", "org_unit_id": st.town.villages[0].id, "agency": "education",
                   "description": "开展防性侵专题教育", "deadline_date": deadline}]})
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"]), int(resp.json()["tasks"][0]["id"])


def test_a_task_marked_done_while_another_marks_it_done_is_409(client: TestClient, session: Session) -> None:
    st = Station(client, session)
    review_id, task_id = _unit_task(st)
    h = st.headers("coordinator")

    def done(s: Session, p: Principal) -> None:
        reviews.task_done(s, p, review_id, task_id, note="先完成")

    resp = _while_held(st, "coordinator", done, lambda: client.post(
        f"{API}/case-reviews/{review_id}/tasks/{task_id}/done", json={"note": "后完成"}, headers=h))
    assert resp.status_code == 409 and resp.json()["code"] == "case-review-task-done", resp.text
    session.expire_all()
    task = session.get(CaseReviewTask, task_id)
    assert task is not None and (task.status, task.done_note) == ("done", "先完成")
    assert _entries(session, "case_review.task_done") == 1


def test_four_requests_at_once_mark_a_task_done_once(client: TestClient, session: Session) -> None:
    st = Station(client, session)
    review_id, task_id = _unit_task(st)
    h = st.headers("coordinator")
    url = f"{API}/case-reviews/{review_id}/tasks/{task_id}/done"
    answers = _at_once(h, [("POST", url, {"note": f"完成{n}"}) for n in range(4)])
    assert _codes(answers) == [(200, None)] + [(409, "case-review-task-done")] * 3, [r.text for r in answers]
    [winner] = [a for a in answers if a.status_code == 200]
    session.expire_all()
    task = session.get(CaseReviewTask, task_id)
    assert task is not None and task.done_note == winner.json()["tasks"][0]["done_note"]
    assert _entries(session, "case_review.task_done") == 1
