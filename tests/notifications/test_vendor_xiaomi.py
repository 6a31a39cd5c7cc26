"""Xiaomi MiPush: a phone registered on the xiaomi channel gets its notifications through MiPush's
server API (the fake in fake_xiaomi.py), exactly once, a dead registration id is forgotten, and
MiPush's delivery receipts are read."""

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
from backend.notifications.providers import LoggingProvider, ReceiptEvent, provider_for, receipt_url
from backend.notifications.vendors.xiaomi import XiaomiProvider, parse_receipts
from tests.factories import make_town, make_user
from tests.notifications.factories import add_device, headers_for, notify
from tests.notifications.fake_xiaomi import (
    FakeXiaomi,
    RunningFakeXiaomi,
    receipt_form,
    settings_env,
    start_fake_xiaomi,
)


@pytest.fixture(scope="module")
def fake_xiaomi_server() -> Iterator[RunningFakeXiaomi]:
    running = start_fake_xiaomi()
    yield running
    running.stop()


@pytest.fixture
def xiaomi(database_url: str, fake_xiaomi_server: RunningFakeXiaomi,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeXiaomi]:
    """The xiaomi channel pointed at the fake server."""
    fake_xiaomi_server.fake.reset()
    for name, value in settings_env(fake_xiaomi_server).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HULEI_PUSH_RETRY_BASE_SECONDS", "30")
    get_settings.cache_clear()
    yield fake_xiaomi_server.fake
    get_settings.cache_clear()


def _outbox(session: Session) -> list[PushOutbox]:
    session.expire_all()
    return list(session.execute(select(PushOutbox).order_by(col(PushOutbox.id))).scalars())


def _worker() -> Session:
    return Session(get_engine(), expire_on_commit=False)


def test_a_phone_registered_on_xiaomi_gets_a_notification_message_with_the_exact_data_and_nothing_personal(
    client: TestClient, session: Session, xiaomi: FakeXiaomi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HULEI_PUSH_RECEIPT_BASE_URL", "https://hulei.example.cn")
    get_settings.cache_clear()
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    resp = client.post("/api/v1/devices", headers=headers_for(session, helper),
                       json={"platform": "android", "push_token": "mi-regid-0001aaaa", "channel": "xiaomi"})
    assert resp.status_code == 201, resp.text
    [n] = notify(session, helper, data={"assignment_id": "17", "child_ref": "c-42"})
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).sent == 1
    [pushed] = xiaomi.delivered_to("mi-regid-0001aaaa")
    assert pushed["data"] == {
        "notification_id": str(n.id), "kind": "test.ping", "title_zh": "新的帮扶任务", "title_en": "New assignment",
        "body_zh": "请打开应用查看", "body_en": "Open the app to see it", "assignment_id": "17", "child_ref": "c-42",
    }
    row = _outbox(session)[0]
    form = pushed["message"]
    # A notification-bar message the system shows even when the app was killed; a tap opens the app.
    assert (form["pass_through"], form["title"], form["description"]) == ("0", "新的帮扶任务", "请打开应用查看")
    assert form["restricted_package_name"] == xiaomi.package_name
    assert form["extra.notify_effect"] == "1" and form["notify_type"] == "-1"
    assert form["time_to_live"] == str(2 * 24 * 3600 * 1000)
    assert form["extra.callback"] == receipt_url("xiaomi")
    assert form["extra.callback.param"] == str(row.id)
    assert int(form["extra.callback.type"]) & 1 and int(form["extra.callback.type"]) & 16
    # Nothing but the data payload and fixed protocol fields went out.
    assert set(form) == {"registration_id", "restricted_package_name", "title", "description", "payload",
                         "pass_through", "notify_type", "notify_id", "time_to_live", "extra.notify_effect",
                         "extra.callback", "extra.callback.param", "extra.callback.type"}
    sent_text = json.dumps(form, ensure_ascii=False)
    assert helper.display_name not in sent_text and helper.phone not in sent_text
    assert row.status == PushStatus.sent.value and row.provider_message_id == pushed["id"]


def test_without_a_receipt_base_url_no_callback_is_asked_of_mipush(session: Session, xiaomi: FakeXiaomi) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "mi-regid-nocallback", channel="xiaomi")
    notify(session, helper)
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).sent == 1
    [pushed] = xiaomi.delivered_to("mi-regid-nocallback")
    assert not [k for k in pushed["message"] if k.startswith("extra.callback")]


def test_a_registration_id_mipush_does_not_know_is_removed_and_the_inbox_keeps_the_notification(
    session: Session, xiaomi: FakeXiaomi
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "mi-regid-dead", channel="xiaomi")
    add_device(session, helper, "mi-regid-alive", channel="xiaomi")
    xiaomi.always_fail("mi-regid-dead", "INVALID_REGID")
    notify(session, helper)
    with _worker() as worker:
        report = deliver_pending(worker, time_budget_seconds=5)
    assert report.tokens_removed == 1 and report.sent == 1
    session.expire_all()
    assert [d.push_token for d in session.execute(select(Device)).scalars()] == ["mi-regid-alive"]
    assert {r.status for r in _outbox(session)} == {PushStatus.sent.value, PushStatus.dropped.value}
    assert len(session.execute(select(Notification)).scalars().all()) == 1


def test_mipush_rate_limiting_is_retried_later_with_growing_backoff_and_then_delivered_once(
    session: Session, xiaomi: FakeXiaomi
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "mi-regid-busy", channel="xiaomi")
    xiaomi.fail_next("mi-regid-busy", "RATE_LIMIT", "RATE_LIMIT")
    notify(session, helper)
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).retried == 1
    first = _outbox(session)[0]
    assert first.attempts == 1 and "10027" in (first.last_error or "")
    first_wait = clock.as_utc(first.next_attempt_at) - clock.now()
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).claimed == 0  # not due yet: no hammering
    clock.advance(first_wait + timedelta(seconds=1))
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).retried == 1
    second = _outbox(session)[0]
    second_wait = clock.as_utc(second.next_attempt_at) - clock.now()
    assert second.attempts == 2 and second_wait > first_wait
    clock.advance(second_wait + timedelta(seconds=1))
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).sent == 1
    assert xiaomi.attempts["mi-regid-busy"] == 3
    assert len(xiaomi.delivered_to("mi-regid-busy")) == 1
    session.expire_all()
    assert session.execute(select(Device)).scalars().one().push_token == "mi-regid-busy"


@pytest.mark.parametrize("error", ["SERVER_ERROR", "SYSTEM_BUSY"])
def test_a_mipush_server_error_is_retried_and_the_push_then_delivered_once(
    session: Session, xiaomi: FakeXiaomi, error: str
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "mi-regid-flaky", channel="xiaomi")
    xiaomi.fail_next("mi-regid-flaky", error)
    notify(session, helper)
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).retried == 1
    clock.advance(timedelta(hours=1))
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).sent == 1
    assert len(xiaomi.delivered_to("mi-regid-flaky")) == 1
    assert _outbox(session)[0].status == PushStatus.sent.value


def test_a_wrong_app_secret_fails_the_push_and_keeps_the_device(
    session: Session, xiaomi: FakeXiaomi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HULEI_XIAOMI_APP_SECRET", "not-the-secret")
    get_settings.cache_clear()
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "mi-regid-misconfigured", channel="xiaomi")
    notify(session, helper)
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).failed == 1
    row = _outbox(session)[0]
    assert row.status == PushStatus.failed.value and "21301" in (row.last_error or "")
    session.expire_all()
    assert len(session.execute(select(Device)).scalars().all()) == 1
    assert xiaomi.delivered == []


def test_two_workers_at_once_send_every_xiaomi_push_exactly_once(session: Session, xiaomi: FakeXiaomi) -> None:
    town = make_town(session)
    users = [make_user(session, town.town, Role.helper) for _ in range(4)]
    for i, user in enumerate(users):
        add_device(session, user, f"mi-regid-par-{i}", channel="xiaomi")
    for _ in range(10):
        notify(session, *users)
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            with _worker() as s:
                deliver_pending(s, worker=name, limit=5, time_budget_seconds=4)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == [] and not any(t.is_alive() for t in threads)
    assert len(xiaomi.delivered) == 40
    assert len({m["data"]["notification_id"] + m["token"] for m in xiaomi.delivered}) == 40
    assert {r.status for r in _outbox(session)} == {PushStatus.sent.value}


def test_mipush_receipts_say_which_push_was_delivered_and_which_target_is_invalid() -> None:
    body = receipt_form({
        "scm0000000000000000001": {"param": "41", "type": 1, "targets": "mi-regid-a", "jobkey": "",
                                   "barStatus": "Enable", "timestamp": 1764547200000},
        "scm0000000000000000002": {"param": "42", "type": 16, "targets": "mi-regid-b,mi-regid-c",
                                   "timestamp": 1764547200000},
        "scm0000000000000000003": {"param": "43", "type": 2, "targets": "mi-regid-d"},  # a click: nothing kept
    })
    events = parse_receipts(body, "application/x-www-form-urlencoded")
    assert sorted(events, key=lambda e: e.token or "") == [
        ReceiptEvent(41, "mi-regid-a", "delivered"),
        ReceiptEvent(42, "mi-regid-b", "invalid_token"),
        ReceiptEvent(42, "mi-regid-c", "invalid_token"),
    ]


def test_a_receipt_without_our_param_still_names_the_invalid_target() -> None:
    body = receipt_form({"scm1": {"type": 16, "targets": "mi-regid-e"}})
    assert parse_receipts(body, "application/x-www-form-urlencoded; charset=UTF-8") == [
        ReceiptEvent(None, "mi-regid-e", "invalid_token")]


def test_a_receipt_that_is_not_mipush_json_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_receipts(b"data=not-json", "application/x-www-form-urlencoded")


def test_the_xiaomi_channel_is_built_from_its_settings_and_absent_without_them(
    xiaomi: FakeXiaomi, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(provider_for("xiaomi"), XiaomiProvider)
    monkeypatch.delenv("HULEI_XIAOMI_APP_SECRET")
    get_settings.cache_clear()
    assert isinstance(provider_for("xiaomi"), LoggingProvider)  # development: logged, not sent
