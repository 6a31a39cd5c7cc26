"""Anonymous answering (匿名答卷): the public endpoints are an attack surface. No sign-in, no personal
data, an unguessable code, a cap, idempotent resends, bounded bodies, throttled guessing."""

from __future__ import annotations

import hashlib
import threading
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session, col

from backend.accounts.permissions import Role
from backend.awareness import service
from backend.awareness.models import AwarenessResponse, AwarenessThrottle
from backend.main import create_app
from tests.awareness.factories import API, answer, open_round, right_answers, school, sheet, wrong_answers
from tests.factories import make_town, user_client


@pytest.fixture
def opened(client: TestClient, session: Session) -> dict[str, Any]:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    return open_round(client, coordinator.headers, school(session, town.villages[0], students=40))


def _stored(session: Session) -> int:
    session.expire_all()
    return int(session.execute(select(func.count()).select_from(AwarenessResponse)).scalar_one())


def test_the_form_needs_no_sign_in_and_hides_the_correct_options(client: TestClient, opened: dict[str, Any]) -> None:
    form = client.get(f"{API}/answer/{opened['code']}")
    assert form.status_code == 200
    body = form.json()
    assert body["questions"] and all("correct" not in q for q in body["questions"])
    assert "correct" not in form.text


def test_the_code_may_be_typed_in_any_case_with_or_without_dashes(client: TestClient, opened: dict[str, Any]) -> None:
    typed = opened["code"].replace("-", " ").lower()
    assert client.get(f"{API}/answer/{typed}").status_code == 200


@pytest.mark.parametrize("field", ["name", "class_name", "age", "phone", "device_id"])
def test_any_field_beyond_the_sheet_is_refused(client: TestClient, session: Session, opened: dict[str, Any],
                                               field: str) -> None:
    resp = answer(client, opened["code"], {**sheet(), field: "张三"})
    assert resp.status_code == 422 and resp.headers["content-type"].startswith("application/problem+json")
    assert _stored(session) == 0


def test_answers_stored_hold_nothing_but_the_choices(client: TestClient, session: Session,
                                                     opened: dict[str, Any]) -> None:
    answer(client, opened["code"], sheet(), headers={"X-Device-Id": "tablet-7", "User-Agent": "pupil phone"})
    row = session.execute(select(AwarenessResponse)).scalar_one()
    assert set(row.model_dump()) == {"id", "round_id", "response_uuid", "body_digest", "answers", "score", "knows",
                                     "received_at"}
    assert "tablet-7" not in str(row.model_dump()) and "testclient" not in str(row.model_dump())


def test_a_resend_is_stored_once_and_the_same_id_with_other_answers_conflicts(
        client: TestClient, session: Session, opened: dict[str, Any]) -> None:
    first = sheet()
    assert answer(client, opened["code"], first).status_code == 201
    again = answer(client, opened["code"], first)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    # The same choices written in another order are the same sheet.
    reordered = {"response_uuid": first["response_uuid"], "answers": dict(reversed(list(first["answers"].items())))}
    assert answer(client, opened["code"], reordered).status_code == 200
    changed = answer(client, opened["code"], {**first, "answers": wrong_answers(3)})
    assert changed.status_code == 409 and changed.json()["code"] == "awareness-response-conflict"
    assert _stored(session) == 1


def test_the_same_id_at_another_round_conflicts(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    one, other = (open_round(client, coordinator.headers, school(session, town.villages[i])) for i in (0, 2))
    first = sheet()
    assert answer(client, one["code"], first).status_code == 201
    assert answer(client, other["code"], first).status_code == 409


@pytest.mark.parametrize("answers", [
    {"q99": ["a"]},  # no such question
    {"q1": ["z"]},  # no such option
    {"q1": ["a", "b"]},  # two options on a single-choice question
    {"q4": ["a", "a"]},  # one option twice
])
def test_answers_outside_the_questionnaire_are_refused(client: TestClient, session: Session,
                                                       opened: dict[str, Any], answers: dict[str, list[str]]) -> None:
    resp = answer(client, opened["code"], sheet(answers))
    assert resp.status_code == 422 and resp.json()["code"] == "awareness-answers-invalid"
    assert _stored(session) == 0


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b'{"response_uuid": "x", "answers": {}}',
                                 b'{"response_uuid": "7b0c6a4e-0f7a-4c1e-9a51-1c1f3f0e2b11", "answers": []}'])
def test_malformed_bodies_get_problem_json(client: TestClient, opened: dict[str, Any], raw: bytes) -> None:
    resp = client.post(f"{API}/answer/{opened['code']}", content=raw, headers={"Content-Type": "application/json"})
    assert resp.status_code == 422 and resp.headers["content-type"].startswith("application/problem+json")


def test_an_oversized_body_is_refused_before_it_is_read(client: TestClient, session: Session,
                                                         opened: dict[str, Any]) -> None:
    padded = {**sheet(), "answers": {**right_answers(), **{f"x{i}": ["a"] for i in range(1000)}}}
    resp = answer(client, opened["code"], padded)
    assert resp.status_code == 413 and resp.headers["content-type"].startswith("application/problem+json")
    assert _stored(session) == 0


def test_an_unknown_code_is_404_and_guessing_is_throttled(client: TestClient, session: Session,
                                                           opened: dict[str, Any]) -> None:
    for _ in range(service.BAD_CODES_PER_WINDOW):
        guess = service.new_code()
        resp = client.get(f"{API}/answer/{guess}")
        assert resp.status_code == 404 and resp.json()["code"] == "awareness-link-not-found"
    blocked = client.get(f"{API}/answer/{opened['code']}")  # even the right code waits now
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
    assert answer(client, opened["code"], sheet()).status_code == 429
    assert _stored(session) == 0


def test_garbage_codes_count_as_guesses_too(client: TestClient, opened: dict[str, Any]) -> None:
    for garbage in ["x", "../../etc", "A" * 64]:
        assert client.get(f"{API}/answer/{garbage}").status_code == 404
    assert client.get(f"{API}/answer/{'A' * 65}").status_code == 422  # longer than any code: not even looked up


def test_one_address_answering_too_fast_is_slowed(client: TestClient, session: Session, opened: dict[str, Any],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "ANSWERS_PER_ADDRESS_PER_WINDOW", 5)
    for _ in range(5):
        assert answer(client, opened["code"], sheet()).status_code == 201
    slowed = answer(client, opened["code"], sheet())
    assert slowed.status_code == 429 and slowed.headers.get("Retry-After")
    assert _stored(session) == 5


def test_the_cap_derived_from_the_enrolment_holds(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    opened = open_round(client, coordinator.headers, school(session, town.villages[0], students=2))
    assert opened["response_cap"] == 7
    for _ in range(7):
        assert answer(client, opened["code"], sheet()).status_code == 201
    full = answer(client, opened["code"], sheet())
    assert full.status_code == 409 and full.json()["code"] == "awareness-round-full"
    assert _stored(session) == 7


def test_racing_answers_never_pass_the_cap(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    opened = open_round(client, coordinator.headers, school(session, town.villages[0], students=3))  # cap 8
    statuses: list[int] = []
    lock = threading.Lock()
    app = create_app()

    def pupil(n: int) -> None:
        with TestClient(app) as own:
            for _ in range(3):
                code = own.post(f"{API}/answer/{opened['code']}", json=sheet()).status_code
                with lock:
                    statuses.append(code)

    threads = [threading.Thread(target=pupil, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert statuses.count(201) == 8 and set(statuses) <= {201, 409, 503}, statuses
    assert _stored(session) == 8


def test_a_resend_racing_itself_is_stored_once(client: TestClient, session: Session, opened: dict[str, Any]) -> None:
    body = sheet()
    statuses: list[int] = []
    app = create_app()

    def send() -> None:
        with TestClient(app) as own:
            statuses.append(own.post(f"{API}/answer/{opened['code']}", json=body).status_code)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(statuses) == [200, 200, 200, 201], statuses
    assert session.execute(select(func.count()).where(
        col(AwarenessResponse.response_uuid) == body["response_uuid"])).scalar_one() == 1


def test_answering_writes_an_audit_entry_without_an_actor(client: TestClient, session: Session,
                                                           opened: dict[str, Any]) -> None:
    from backend.audit.models import AuditEntry

    receipt = answer(client, opened["code"], sheet())
    assert receipt.status_code == 201
    entry = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "awareness.response_received")
                            ).scalar_one()
    assert entry.actor_user_id is None and str(uuid.UUID(receipt.json()["response_uuid"])) in str(entry.details)


def test_spent_throttle_counters_are_purged_and_fresh_ones_kept(client: TestClient, session: Session,
                                                                  opened: dict[str, Any]) -> None:
    from datetime import timedelta

    from backend.awareness.models import AwarenessThrottle
    from backend.core import clock

    assert client.get(f"{API}/answer/{service.new_code()}").status_code == 404
    answer(client, opened["code"], sheet())
    session.expire_all()
    assert service.purge_throttle(session) == 0
    clock.advance(timedelta(days=1, minutes=11))
    try:
        assert service.purge_throttle(session) == 2
        session.commit()
    finally:
        clock.reset()
    assert session.execute(select(func.count()).select_from(AwarenessThrottle)).scalar_one() == 0


def test_racing_answers_from_one_address_never_pass_its_limit(client: TestClient, session: Session,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers sent at once from one address are counted one after another: the per-address limit holds
    as the cap does (it used to be read before anyone counted, so a burst passed it)."""
    monkeypatch.setattr(service, "ANSWERS_PER_ADDRESS_PER_WINDOW", 4)
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    opened = open_round(client, coordinator.headers, school(session, town.villages[0], students=100))
    statuses: list[int] = []
    lock = threading.Lock()
    app = create_app()

    def pupil() -> None:
        with TestClient(app) as own:
            for _ in range(3):
                code = own.post(f"{API}/answer/{opened['code']}", json=sheet()).status_code
                with lock:
                    statuses.append(code)

    threads = [threading.Thread(target=pupil) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert statuses.count(201) == 4 and set(statuses) <= {201, 429, 503}, statuses
    assert _stored(session) == 4


def test_the_throttle_keeps_no_digest_anyone_can_undo(client: TestClient, session: Session,
                                                       opened: dict[str, Any]) -> None:
    """The address is kept as a keyed digest: a plain SHA-256 of an IPv4 address is undone by trying
    all of them."""
    assert answer(client, opened["code"], sheet()).status_code == 201
    session.expire_all()
    keys = list(session.execute(select(col(AwarenessThrottle.key))).scalars())
    assert keys
    for ip in ("testclient", "127.0.0.1", "-"):
        plain = hashlib.sha256(ip.encode()).hexdigest()[:40]
        assert not any(plain in k for k in keys), keys
