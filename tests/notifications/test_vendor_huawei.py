"""Huawei Push Kit: pushes to Huawei and HarmonyOS phones go out through the outbox as notification
messages the phone shows itself, dead tokens are pruned, trouble is retried, receipts are read."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta

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
from backend.notifications.providers import PushMessage, ReceiptEvent
from backend.notifications.vendors import huawei
from tests.factories import make_town, make_user, user_client
from tests.notifications.factories import add_device, notify
from tests.notifications.fake_huawei import FakeHuawei, RunningFakeHuawei, settings_env, start_fake_huawei

API = "/api/v1"


@pytest.fixture(scope="module")
def huawei_server() -> Iterator[RunningFakeHuawei]:
    running = start_fake_huawei()
    yield running
    running.stop()


@pytest.fixture
def fake(database_url: str, huawei_server: RunningFakeHuawei, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHuawei]:
    """The Huawei channel configured against the fake Push Kit, retry backoff from 30 s."""
    huawei_server.fake.reset()
    for name, value in settings_env(huawei_server).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HULEI_PUSH_RETRY_BASE_SECONDS", "30")
    get_settings.cache_clear()
    yield huawei_server.fake
    get_settings.cache_clear()


def _outbox(session: Session) -> list[PushOutbox]:
    session.expire_all()
    return list(session.execute(select(PushOutbox).order_by(col(PushOutbox.id))).scalars())


def _worker() -> Session:
    return Session(get_engine(), expire_on_commit=False)


def _deliver() -> int:
    with _worker() as worker:
        return deliver_pending(worker, time_budget_seconds=5).sent


def test_a_harmonyos_phone_registered_on_huawei_gets_a_notification_the_system_shows_with_only_ids_and_generic_text(
    client: TestClient, session: Session, fake: FakeHuawei
) -> None:
    town = make_town(session)
    user = user_client(client, session, town.town, Role.helper)
    resp = client.post(f"{API}/devices", headers=user.headers,
                       json={"platform": "harmony", "push_token": "hw-token-harmony-0001", "channel": "huawei"})
    assert resp.status_code == 201, resp.text
    [n] = notify(session, user.user, data={"assignment_id": "17"})
    assert _deliver() == 1
    [got] = fake.delivered_to("hw-token-harmony-0001")
    assert got["data"] == {"notification_id": str(n.id), "kind": "test.ping", "title_zh": "新的帮扶任务",
                           "title_en": "New assignment", "body_zh": "请打开应用查看",
                           "body_en": "Open the app to see it", "assignment_id": "17"}
    message = got["message"]
    android = message["android"]
    assert android["notification"]["title"] == "新的帮扶任务" and android["notification"]["body"] == "请打开应用查看"
    assert android["notification"]["click_action"] == {"type": 3}
    assert android["urgency"] == "HIGH" and android["ttl"] == "172800s"
    [row] = _outbox(session)
    assert android["bi_tag"] == str(row.id)  # the receipt names the outbox row
    assert row.status == PushStatus.sent.value and row.channel == "huawei" and row.provider_message_id
    raw = json.dumps(message, ensure_ascii=False)
    assert user.user.phone not in raw and user.user.display_name not in raw


def test_a_token_huawei_calls_invalid_is_removed_and_the_inbox_keeps_the_notification(
    session: Session, fake: FakeHuawei
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "hw-dead", channel="huawei")
    add_device(session, helper, "hw-alive", channel="huawei")
    fake.always_fail("hw-dead", "INVALID_TOKEN")
    notify(session, helper)
    with _worker() as worker:
        report = deliver_pending(worker, time_budget_seconds=5)
    assert report.tokens_removed == 1 and report.sent == 1
    session.expire_all()
    assert [d.push_token for d in session.execute(select(Device)).scalars()] == ["hw-alive"]
    assert {r.status for r in _outbox(session)} == {PushStatus.sent.value, PushStatus.dropped.value}
    assert len(session.execute(select(Notification)).scalars().all()) == 1


def test_flow_control_is_retried_with_growing_backoff_and_then_delivered_once(
    session: Session, fake: FakeHuawei
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "hw-busy", channel="huawei")
    fake.fail_next("hw-busy", "RATE_LIMIT", "RATE_LIMIT")
    notify(session, helper)
    assert _deliver() == 0
    first = _outbox(session)[0]
    assert first.attempts == 1 and "503" in (first.last_error or "")
    first_wait = clock.as_utc(first.next_attempt_at) - clock.now()
    assert _deliver() == 0 and fake.attempts["hw-busy"] == 1  # not due yet: no hammering
    clock.advance(first_wait + timedelta(seconds=1))
    assert _deliver() == 0
    second = _outbox(session)[0]
    second_wait = clock.as_utc(second.next_attempt_at) - clock.now()
    assert second.attempts == 2 and second_wait > first_wait
    clock.advance(second_wait + timedelta(seconds=1))
    assert _deliver() == 1
    assert fake.attempts["hw-busy"] == 3 and len(fake.delivered_to("hw-busy")) == 1


def test_an_internal_error_is_retried_later_and_delivered_once(session: Session, fake: FakeHuawei) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "hw-500", channel="huawei")
    fake.fail_next("hw-500", "SERVER_ERROR")
    notify(session, helper)
    assert _deliver() == 0
    row = _outbox(session)[0]
    assert row.status == PushStatus.pending.value and "81000001" in (row.last_error or "")
    clock.advance(timedelta(hours=1))
    assert _deliver() == 1
    clock.advance(timedelta(hours=2))
    assert _deliver() == 0
    assert len(fake.delivered_to("hw-500")) == 1


def test_an_expired_access_token_is_refreshed_and_the_push_resent_in_the_same_run(
    session: Session, fake: FakeHuawei
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "hw-oauth", channel="huawei")
    notify(session, helper)
    notify(session, helper)
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5, limit=1).sent == 2
    assert fake.tokens_issued == 1  # cached across batches
    fake.fail_next("hw-oauth", "TOKEN_EXPIRED")  # the server revokes every token it gave out
    notify(session, helper)
    assert _deliver() == 1
    assert fake.tokens_issued == 2 and len(fake.delivered_to("hw-oauth")) == 3
    fake.expire_access_tokens()  # the hour is up without the provider noticing
    notify(session, helper)
    assert _deliver() == 1
    assert fake.tokens_issued == 3
    assert {r.status for r in _outbox(session)} == {PushStatus.sent.value}


def test_credentials_huawei_refuses_leave_every_push_pending_with_the_reason(
    session: Session, fake: FakeHuawei, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HULEI_HUAWEI_CLIENT_SECRET", "wrong-secret")
    get_settings.cache_clear()
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "hw-nocreds", channel="huawei")
    notify(session, helper)
    assert _deliver() == 0
    row = _outbox(session)[0]
    assert row.status == PushStatus.pending.value and row.attempts == 1
    assert "invalid client" in (row.last_error or "") and "wrong-secret" not in (row.last_error or "")
    assert fake.requests == 0


def test_a_push_huawei_will_not_accept_fails_without_retrying(session: Session, fake: FakeHuawei) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "hw-noright", channel="huawei")
    fake.always_fail("hw-noright", "NO_PERMISSION")
    notify(session, helper)
    assert _deliver() == 0
    row = _outbox(session)[0]
    assert row.status == PushStatus.failed.value and "80300002" in (row.last_error or "")
    session.expire_all()
    assert session.execute(select(Device)).scalars().one().push_token == "hw-noright"  # not a dead token


def test_two_workers_at_once_send_every_huawei_push_exactly_once(session: Session, fake: FakeHuawei) -> None:
    town = make_town(session)
    users = [make_user(session, town.town, Role.helper) for _ in range(4)]
    for i, user in enumerate(users):
        add_device(session, user, f"hw-par-{i}", channel="huawei")
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


def test_one_batch_goes_out_concurrently_and_each_result_lands_on_its_own_row(fake: FakeHuawei) -> None:
    provider = huawei.from_settings(get_settings())
    assert provider is not None
    try:
        fake.always_fail("hw-batch-dead", "INVALID_TOKEN")
        fake.always_fail("hw-batch-bad", "NO_PERMISSION")
        tokens = [f"hw-batch-{i}" for i in range(40)] + ["hw-batch-dead", "hw-batch-bad"]
        messages = [PushMessage(i + 1, t, "android", {"notification_id": str(i), "kind": "k", "title_zh": "提醒",
                                                      "body_zh": "请查看"}, "huawei") for i, t in enumerate(tokens)]
        results = provider.send(messages)
    finally:
        provider.close()
    assert [r.outcome.value for r in results] == ["sent"] * 40 + ["invalid_token", "failed"]
    assert len({r.message_id for r in results[:40]}) == 40
    assert sorted(m["data"]["notification_id"] for m in fake.delivered) == sorted(str(i) for i in range(40))
    assert fake.tokens_issued == 1


def test_a_partial_success_names_only_the_illegal_tokens_as_dead() -> None:
    assert huawei.failed_tokens(json.dumps({"success": 1, "failure": 1, "illegal_tokens": ["t1"]})) == {"t1"}
    assert huawei.failed_tokens(json.dumps({"illegalTokens": {"noRight": ["t2"], "tokenFormatError": ["t3"]}})) == {
        "t2", "t3"}
    assert huawei.failed_tokens("not json") == set()


def test_huawei_receipts_report_delivery_and_dead_tokens_for_the_outbox_row() -> None:
    v1 = json.dumps({"statuses": [
        {"biTag": "41", "appid": "104400001", "token": "tok-a", "status": 0, "timestamp": 1, "requestId": "r"},
        {"biTag": "42", "token": "tok-b", "status": 2, "timestamp": 1, "requestId": "r"},
        {"biTag": "43", "token": "tok-c", "status": 5, "timestamp": 1, "requestId": "r"},
        {"biTag": "44", "token": "tok-d", "status": 6, "timestamp": 1, "requestId": "r"},  # notifications off
        {"biTag": "", "token": "tok-e", "status": 0, "timestamp": 1, "requestId": "r"},
    ]}).encode()
    assert huawei.parse_receipts(v1, "application/json") == [
        ReceiptEvent(41, "tok-a", "delivered"), ReceiptEvent(42, "tok-b", "invalid_token"),
        ReceiptEvent(43, "tok-c", "invalid_token"), ReceiptEvent(None, "tok-e", "delivered"),
    ]
    v2 = json.dumps({"statuses": [{"token": "tok-f", "biTag": "45", "pushType": 0, "requestId": "r",
                                   "deliveryStatus": {"result": 0, "timestamp": 1}}]}).encode()
    assert huawei.parse_receipts(v2, "application/json") == [ReceiptEvent(45, "tok-f", "delivered")]
    assert huawei.parse_receipts(b"<html>", "text/html") == []
    assert huawei.parse_receipts(b'{"statuses": [{"biTag": "1", "status": true}]}', "application/json") == []
