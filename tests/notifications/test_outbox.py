"""The outbox: written with the event, delivered by the worker through firebase-admin, never lost,
never sent twice."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Device
from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.core.jobs import run_due_jobs
from backend.notifications import service as notifications
from backend.notifications.delivery import claim_batch, deliver_pending
from backend.notifications.models import Notification, PushOutbox, PushStatus
from backend.notifications.providers import LoggingProvider
from tests.factories import make_town, make_user
from tests.notifications.factories import add_device, notify
from tests.notifications.fake_fcm import FakeFcm


def _outbox(session: Session) -> list[PushOutbox]:
    session.expire_all()
    return list(session.execute(select(PushOutbox).order_by(col(PushOutbox.id))).scalars())


def _worker_session() -> Session:
    return Session(get_engine(), expire_on_commit=False)


def test_a_notification_is_written_with_the_event_and_vanishes_with_its_rollback(session: Session) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "tok-a")
    add_device(session, helper, "tok-b", platform="ios")
    with _worker_session() as tx:
        notifications.enqueue(tx, user_ids=[helper.id or 0], kind="test.ping", title_zh="提醒", title_en="Reminder",
                              body_zh="请查看", body_en="Please check", data={"visit_id": "3"})
        tx.rollback()
    assert _outbox(session) == []
    notify(session, helper)
    rows = _outbox(session)
    assert len(rows) == 2  # one push per registered device
    assert {r.status for r in rows} == {PushStatus.pending.value}
    assert session.execute(select(Notification)).scalars().one().user_id == helper.id


@pytest.mark.parametrize("data", [
    {"child_name": "张小花"},
    {"child_id": "110101201001011234"},
    {"guardian_phone": "13800138000"},
    {"address": "青山村3组 12号"},
    {"kind": "override"},
])
def test_a_payload_with_personal_data_is_refused(session: Session, data: dict[str, str]) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    with pytest.raises(notifications.PayloadNotAllowed):
        notifications.enqueue(session, user_ids=[helper.id or 0], kind="test.ping", title_zh="提醒",
                              title_en="Reminder", body_zh="请查看", body_en="Please check", data=data)


def test_text_carrying_an_id_number_or_phone_is_refused(session: Session) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    for body in ("身份证110101201001011234", "请联系13800138000"):
        with pytest.raises(notifications.PayloadNotAllowed):
            notifications.enqueue(session, user_ids=[helper.id or 0], kind="test.ping", title_zh="提醒",
                                  title_en="Reminder", body_zh=body, body_en="Please check", data={})


def test_push_through_firebase_admin_is_a_data_message_with_android_and_apns_settings(
    session: Session, fcm: FakeFcm
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "tok-android")
    [n] = notify(session, helper, data={"assignment_id": "17", "child_ref": "c-42"})
    with _worker_session() as worker:
        report = deliver_pending(worker)
    assert report.sent == 1
    [message] = fcm.delivered_to("tok-android")
    assert message["data"] == {
        "notification_id": str(n.id), "kind": "test.ping", "title_zh": "新的帮扶任务", "title_en": "New assignment",
        "body_zh": "请打开应用查看", "body_en": "Open the app to see it", "assignment_id": "17", "child_ref": "c-42",
    }
    assert "notification" not in message  # data message: the app decides what to show
    assert message["android"]["priority"] == "high"
    assert message["apns"]["headers"]["apns-push-type"] == "alert"
    assert message["apns"]["payload"]["aps"]["mutable-content"] == 1
    row = _outbox(session)[0]
    assert row.status == PushStatus.sent.value and row.provider_message_id and row.attempts == 0


def test_a_worker_killed_between_claiming_and_sending_loses_nothing_and_a_second_worker_finishes(
    session: Session, fcm: FakeFcm
) -> None:
    town = make_town(session)
    users = [make_user(session, town.town, Role.helper) for _ in range(3)]
    for i, user in enumerate(users):
        add_device(session, user, f"tok-{i}")
        notify(session, user)
    with _worker_session() as doomed:
        batch = claim_batch(doomed, worker="doomed", limit=10)
    assert len(batch.items) == 3  # claimed and committed; the process "dies" here without sending
    with _worker_session() as second:
        assert deliver_pending(second, worker="second").claimed == 0  # the lease still holds
    clock.advance(timedelta(seconds=get_settings().push_lease_seconds + 1))
    with _worker_session() as second:
        report = deliver_pending(second, worker="second")
    assert report.sent == 3
    assert sorted(m["token"] for m in fcm.delivered) == ["tok-0", "tok-1", "tok-2"]
    assert {r.status for r in _outbox(session)} == {PushStatus.sent.value}


def test_a_push_recorded_as_sent_is_never_sent_again(session: Session, fcm: FakeFcm) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "tok-once")
    notify(session, helper)
    with _worker_session() as worker:
        assert deliver_pending(worker).sent == 1
    clock.advance(timedelta(hours=2))  # every lease long gone
    with _worker_session() as worker:
        assert deliver_pending(worker).claimed == 0
    assert len(fcm.delivered_to("tok-once")) == 1


def test_two_workers_at_once_send_every_push_exactly_once(session: Session, fcm: FakeFcm) -> None:
    town = make_town(session)
    users = [make_user(session, town.town, Role.helper) for _ in range(4)]
    for i, user in enumerate(users):
        add_device(session, user, f"tok-par-{i}")
    for _ in range(10):
        notify(session, *users)
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            with _worker_session() as s:
                deliver_pending(s, worker=name, limit=5)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(fcm.delivered) == 40
    ids = [m["data"]["notification_id"] + m["token"] for m in fcm.delivered]
    assert len(set(ids)) == 40
    assert {r.status for r in _outbox(session)} == {PushStatus.sent.value}


def test_an_unregistered_token_is_removed_and_the_inbox_keeps_the_notification(
    session: Session, fcm: FakeFcm
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "tok-dead")
    add_device(session, helper, "tok-alive")
    fcm.always_fail("tok-dead", "UNREGISTERED")
    notify(session, helper)
    notify(session, helper)
    with _worker_session() as worker:
        report = deliver_pending(worker)
    assert report.tokens_removed == 1
    session.expire_all()
    assert [d.push_token for d in session.execute(select(Device)).scalars()] == ["tok-alive"]
    assert len(fcm.delivered_to("tok-alive")) == 2
    assert fcm.attempts["tok-dead"] >= 1
    assert {r.status for r in _outbox(session)} == {PushStatus.sent.value, PushStatus.dropped.value}
    assert len(session.execute(select(Notification)).scalars().all()) == 2  # the inbox has both


def test_a_token_fcm_calls_invalid_is_removed(session: Session, fcm: FakeFcm) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "tok-garbled")
    fcm.always_fail("tok-garbled", "INVALID_ARGUMENT")
    notify(session, helper)
    with _worker_session() as worker:
        deliver_pending(worker)
    session.expire_all()
    assert session.execute(select(Device)).scalars().all() == []


def test_a_503_is_retried_with_growing_backoff_and_then_delivered_once(session: Session, fcm: FakeFcm) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "tok-busy")
    fcm.fail_next("tok-busy", "UNAVAILABLE", "UNAVAILABLE")
    notify(session, helper)
    with _worker_session() as worker:
        assert deliver_pending(worker).retried == 1
    first = _outbox(session)[0]
    assert first.attempts == 1 and "UNAVAILABLE" in (first.last_error or "")
    first_wait = clock.as_utc(first.next_attempt_at) - clock.now()
    with _worker_session() as worker:
        assert deliver_pending(worker).claimed == 0  # not due yet: no hammering
    clock.advance(first_wait + timedelta(seconds=1))
    with _worker_session() as worker:
        assert deliver_pending(worker).retried == 1
    second = _outbox(session)[0]
    second_wait = clock.as_utc(second.next_attempt_at) - clock.now()
    assert second.attempts == 2 and second_wait > first_wait  # exponential
    clock.advance(second_wait + timedelta(seconds=1))
    with _worker_session() as worker:
        assert deliver_pending(worker).sent == 1
    assert fcm.attempts["tok-busy"] == 3
    assert len(fcm.delivered_to("tok-busy")) == 1
    assert _outbox(session)[0].status == PushStatus.sent.value


def test_retries_stop_after_the_configured_attempts(session: Session, fcm: FakeFcm,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HULEI_PUSH_MAX_ATTEMPTS", "2")
    get_settings.cache_clear()
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "tok-down")
    fcm.always_fail("tok-down", "INTERNAL")
    notify(session, helper)
    for _ in range(3):
        with _worker_session() as worker:
            deliver_pending(worker)
        clock.advance(timedelta(hours=2))
    row = _outbox(session)[0]
    assert row.status == PushStatus.failed.value and row.attempts == 2
    assert fcm.attempts["tok-down"] == 2


def test_a_phone_now_signed_in_by_someone_else_gets_no_pending_push(session: Session, fcm: FakeFcm) -> None:
    town = make_town(session)
    first, second = make_user(session, town.town, Role.helper), make_user(session, town.town, Role.helper)
    device = add_device(session, first, "tok-shared")
    notify(session, first)
    device.user_id = second.id or 0  # the same phone, now signed in by another user
    session.add(device)
    session.commit()
    with _worker_session() as worker:
        report = deliver_pending(worker)
    assert report.sent == 0 and report.dropped == 1
    assert fcm.delivered == []


def test_the_worker_command_delivers_with_the_logging_provider_by_default(session: Session) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "tok-dev")
    notify(session, helper)
    assert get_settings().push_provider == "log"
    assert "notifications.deliver" in run_due_jobs()
    row = _outbox(session)[0]
    assert row.status == PushStatus.sent.value and (row.provider_message_id or "").startswith("log:")


def test_the_logging_provider_logs_ids_and_kind_only(caplog: pytest.LogCaptureFixture) -> None:
    from backend.notifications.providers import PushMessage

    caplog.set_level("INFO")
    LoggingProvider().send([PushMessage(1, "abcdef123456", "android",
                                        {"kind": "test.ping", "notification_id": "9", "title_zh": "提醒"})])
    assert "kind=test.ping notification=9" in caplog.text and "提醒" not in caplog.text
