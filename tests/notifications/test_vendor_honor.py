"""Honor Push: pushes to Honor phones go out through the outbox as notification messages the phone
shows itself, dead tokens are pruned, trouble is retried, an expired access token is replaced."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Device
from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.notifications.delivery import deliver_pending
from backend.notifications.models import Notification, PushOutbox, PushStatus
from backend.notifications.providers import PushMessage
from backend.notifications.vendors import honor
from tests.factories import make_town, make_user, user_client
from tests.notifications.factories import add_device, notify
from tests.notifications.fake_honor import FakeHonor, RunningFakeHonor, settings_env, start_fake_honor

API = "/api/v1"


@pytest.fixture(scope="module")
def honor_server() -> Iterator[RunningFakeHonor]:
    running = start_fake_honor()
    yield running
    running.stop()


@pytest.fixture
def fake(database_url: str, honor_server: RunningFakeHonor, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHonor]:
    """The Honor channel configured against the fake Honor Push, retry backoff from 30 s."""
    honor_server.fake.reset()
    for name, value in settings_env(honor_server).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HULEI_PUSH_RETRY_BASE_SECONDS", "30")
    get_settings.cache_clear()
    yield honor_server.fake
    get_settings.cache_clear()


def _outbox(session: Session) -> list[PushOutbox]:
    session.expire_all()
    return list(session.execute(select(PushOutbox).order_by(col(PushOutbox.id))).scalars())


def _worker() -> Session:
    return Session(get_engine(), expire_on_commit=False)


def _deliver() -> int:
    with _worker() as worker:
        return deliver_pending(worker, time_budget_seconds=5).sent


def test_an_honor_phone_gets_a_notification_the_system_shows_with_only_ids_and_generic_text(
    client: TestClient, session: Session, fake: FakeHonor
) -> None:
    town = make_town(session)
    user = user_client(client, session, town.town, Role.helper)
    resp = client.post(f"{API}/devices", headers=user.headers,
                       json={"platform": "android", "push_token": "honor-token-0001", "channel": "honor"})
    assert resp.status_code == 201, resp.text
    [n] = notify(session, user.user, data={"visit_id": "5"})
    assert _deliver() == 1
    [got] = fake.delivered_to("honor-token-0001")
    assert got["data"] == {"notification_id": str(n.id), "kind": "test.ping", "title_zh": "新的帮扶任务",
                           "title_en": "New assignment", "body_zh": "请打开应用查看",
                           "body_en": "Open the app to see it", "visit_id": "5"}
    android = got["message"]["android"]
    assert android["notification"]["title"] == "新的帮扶任务" and android["notification"]["body"] == "请打开应用查看"
    assert android["notification"]["clickAction"] == {"type": 3} and android["ttl"] == "172800s"
    [row] = _outbox(session)
    assert android["biTag"] == str(row.id)
    assert row.status == PushStatus.sent.value and row.channel == "honor" and row.provider_message_id
    raw = json.dumps(got["message"], ensure_ascii=False)
    assert user.user.phone not in raw and user.user.display_name not in raw


def test_a_token_honor_calls_invalid_is_removed_and_the_inbox_keeps_the_notification(
    session: Session, fake: FakeHonor
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "hn-dead", channel="honor")
    add_device(session, helper, "hn-alive", channel="honor")
    fake.always_fail("hn-dead", "INVALID_TOKEN")
    notify(session, helper)
    with _worker() as worker:
        report = deliver_pending(worker, time_budget_seconds=5)
    assert report.tokens_removed == 1 and report.sent == 1
    session.expire_all()
    assert [d.push_token for d in session.execute(select(Device)).scalars()] == ["hn-alive"]
    assert len(session.execute(select(Notification)).scalars().all()) == 1


def test_flow_control_is_retried_with_growing_backoff_and_then_delivered_once(
    session: Session, fake: FakeHonor
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "hn-busy", channel="honor")
    fake.fail_next("hn-busy", "RATE_LIMIT", "RATE_LIMIT")
    notify(session, helper)
    assert _deliver() == 0
    first = _outbox(session)[0]
    first_wait = clock.as_utc(first.next_attempt_at) - clock.now()
    assert first.attempts == 1 and "503" in (first.last_error or "")
    clock.advance(first_wait + timedelta(seconds=1))
    assert _deliver() == 0
    second = _outbox(session)[0]
    second_wait = clock.as_utc(second.next_attempt_at) - clock.now()
    assert second.attempts == 2 and second_wait > first_wait
    clock.advance(second_wait + timedelta(seconds=1))
    assert _deliver() == 1
    assert fake.attempts["hn-busy"] == 3 and len(fake.delivered_to("hn-busy")) == 1


def test_an_internal_error_is_retried_later_and_delivered_once(session: Session, fake: FakeHonor) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "hn-500", channel="honor")
    fake.fail_next("hn-500", "SERVER_ERROR")
    notify(session, helper)
    assert _deliver() == 0
    assert "81000001" in (_outbox(session)[0].last_error or "")
    clock.advance(timedelta(hours=1))
    assert _deliver() == 1
    clock.advance(timedelta(hours=2))
    assert _deliver() == 0
    assert len(fake.delivered_to("hn-500")) == 1


def test_an_expired_access_token_is_refreshed_and_the_push_resent_in_the_same_run(
    session: Session, fake: FakeHonor
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "hn-oauth", channel="honor")
    notify(session, helper)
    assert _deliver() == 1
    fake.fail_next("hn-oauth", "TOKEN_EXPIRED")
    notify(session, helper)
    assert _deliver() == 1
    assert fake.tokens_issued == 2 and fake.attempts["hn-oauth"] == 3
    assert len(fake.delivered_to("hn-oauth")) == 2


def test_two_workers_at_once_send_every_honor_push_exactly_once(session: Session, fake: FakeHonor) -> None:
    town = make_town(session)
    users = [make_user(session, town.town, Role.helper) for _ in range(4)]
    for i, user in enumerate(users):
        add_device(session, user, f"hn-par-{i}", channel="honor")
    for _ in range(10):
        notify(session, *users)
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            with _worker() as s:
                deliver_pending(s, worker=name, limit=7, time_budget_seconds=20)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and not any(t.is_alive() for t in threads)
    keys = [m["data"]["notification_id"] + m["token"] for m in fake.delivered]
    assert len(keys) == 40 and len(set(keys)) == 40
    assert {r.status for r in _outbox(session)} == {PushStatus.sent.value}


def test_a_partial_success_marks_only_the_failed_token_dead(fake: FakeHonor) -> None:
    provider = honor.from_settings(get_settings())
    assert provider is not None
    try:
        fake.always_fail("hn-part-dead", "INVALID_TOKEN")
        # One request naming two tokens, as Honor answers it (80100000 with data.failTokens).
        content = provider.build(PushMessage(1, "hn-part-ok", "android", {"notification_id": "1", "title_zh": "提醒",
                                                                         "body_zh": "请查看"}, "honor"))
        content["token"] = ["hn-part-ok", "hn-part-dead"]
        resp = httpx.post(provider.send_url, json=content, headers=provider.headers(provider.tokens.get()))
        for token, outcome in (("hn-part-ok", "sent"), ("hn-part-dead", "invalid_token")):
            answer = provider.read(resp, PushMessage(1, token, "android", {}, "honor"))
            assert answer.result.outcome.value == outcome
    finally:
        provider.close()
    assert [m["token"] for m in fake.delivered] == ["hn-part-ok"]
