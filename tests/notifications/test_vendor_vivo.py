"""vivo Push: a phone registered on the vivo channel gets its notifications through vivo's server API
(the fake in fake_vivo.py), exactly once, and a dead regId is forgotten."""

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
from backend.notifications.providers import PushMessage, provider_for
from backend.notifications.vendors.vivo import VivoProvider, clip
from tests.factories import make_town, make_user
from tests.notifications.factories import add_device, headers_for, notify
from tests.notifications.fake_vivo import FakeVivo, RunningFakeVivo, settings_env, start_fake_vivo


@pytest.fixture(scope="module")
def fake_vivo_server() -> Iterator[RunningFakeVivo]:
    running = start_fake_vivo()
    yield running
    running.stop()


@pytest.fixture
def vivo(database_url: str, fake_vivo_server: RunningFakeVivo, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVivo]:
    """The vivo channel pointed at the fake server."""
    fake_vivo_server.fake.reset()
    for name, value in settings_env(fake_vivo_server).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HULEI_PUSH_RETRY_BASE_SECONDS", "30")
    get_settings.cache_clear()
    yield fake_vivo_server.fake
    get_settings.cache_clear()


def _outbox(session: Session) -> list[PushOutbox]:
    session.expire_all()
    return list(session.execute(select(PushOutbox).order_by(col(PushOutbox.id))).scalars())


def _worker() -> Session:
    return Session(get_engine(), expire_on_commit=False)


def test_a_phone_registered_on_vivo_shows_the_generic_text_and_gets_the_exact_data_and_nothing_personal(
    client: TestClient, session: Session, vivo: FakeVivo
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    resp = client.post("/api/v1/devices", headers=headers_for(session, helper),
                       json={"platform": "android", "push_token": "v2-vivo0001aaaa", "channel": "vivo"})
    assert resp.status_code == 201, resp.text
    [n] = notify(session, helper, data={"assignment_id": "17", "child_ref": "c-42"})
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).sent == 1
    [pushed] = vivo.delivered_to("v2-vivo0001aaaa")
    assert pushed["data"] == {
        "notification_id": str(n.id), "kind": "test.ping", "title_zh": "新的帮扶任务", "title_en": "New assignment",
        "body_zh": "请打开应用查看", "body_en": "Open the app to see it", "assignment_id": "17", "child_ref": "c-42",
    }
    row = _outbox(session)[0]
    message = pushed["message"]
    assert (message["title"], message["content"]) == ("新的帮扶任务", "请打开应用查看")
    assert message["timeToLive"] == 2 * 24 * 3600 and message["classification"] == 1 and message["skipType"] == 1
    assert message["requestId"] == str(row.id)
    raw = json.dumps(message, ensure_ascii=False)
    assert helper.display_name not in raw and helper.phone not in raw
    assert row.status == PushStatus.sent.value and row.provider_message_id


def test_long_text_is_cut_to_what_vivo_shows_rather_than_refused(vivo: FakeVivo) -> None:
    assert clip("帮" * 30, 40) == "帮" * 20 and clip("a" * 50, 40) == "a" * 40 and clip("短", 40) == "短"


def test_a_regid_vivo_calls_invalid_is_removed_and_the_inbox_keeps_the_notification(
    session: Session, vivo: FakeVivo
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "v2-vivo_dead", channel="vivo")
    add_device(session, helper, "v2-vivo_alive", channel="vivo")
    vivo.always_fail("v2-vivo_dead", "INVALID_TOKEN")
    notify(session, helper)
    with _worker() as worker:
        report = deliver_pending(worker, time_budget_seconds=5)
    assert report.tokens_removed == 1 and report.sent == 1
    session.expire_all()
    assert [d.push_token for d in session.execute(select(Device)).scalars()] == ["v2-vivo_alive"]
    assert {r.status for r in _outbox(session)} == {PushStatus.sent.value, PushStatus.dropped.value}
    assert len(session.execute(select(Notification)).scalars().all()) == 1


def test_a_vivo_quota_refusal_is_retried_later_with_backoff_and_then_delivered_once(
    session: Session, vivo: FakeVivo
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "v2-vivo_busy", channel="vivo")
    vivo.fail_next("v2-vivo_busy", "RATE_LIMIT")
    notify(session, helper)
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).retried == 1
    row = _outbox(session)[0]
    assert row.attempts == 1 and "10070" in (row.last_error or "")
    wait = clock.as_utc(row.next_attempt_at) - clock.now()
    assert wait >= timedelta(seconds=29)
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).claimed == 0  # not due yet: no hammering
    clock.advance(wait + timedelta(seconds=1))
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).sent == 1
    assert vivo.attempts["v2-vivo_busy"] == 2 and len(vivo.delivered_to("v2-vivo_busy")) == 1


def test_a_vivo_server_error_is_retried_and_the_push_then_delivered_once(session: Session, vivo: FakeVivo) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "v2-vivo_5xx", channel="vivo")
    vivo.fail_next("v2-vivo_5xx", "SERVER_ERROR", "SERVER_ERROR")
    notify(session, helper)
    for expected_attempts in (1, 2):
        with _worker() as worker:
            assert deliver_pending(worker, time_budget_seconds=5).retried == 1
        row = _outbox(session)[0]
        assert row.attempts == expected_attempts
        clock.advance(clock.as_utc(row.next_attempt_at) - clock.now() + timedelta(seconds=1))
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).sent == 1
    assert len(vivo.delivered_to("v2-vivo_5xx")) == 1 and vivo.attempts["v2-vivo_5xx"] == 3


def test_an_expired_vivo_auth_token_is_renewed_once_and_the_push_goes_out_in_the_same_round(
    session: Session, vivo: FakeVivo
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "v2-vivo_auth", channel="vivo")
    notify(session, helper)
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).sent == 1
    assert vivo.tokens_issued == 1
    vivo.expire_tokens()  # a day later
    notify(session, helper)
    with _worker() as worker:
        report = deliver_pending(worker, time_budget_seconds=5)
    assert report.sent == 1 and report.retried == 0 and vivo.tokens_issued == 2
    vivo.fail_next("v2-vivo_auth", "AUTH_EXPIRED")  # revoked early by vivo
    notify(session, helper)
    with _worker() as worker:
        report = deliver_pending(worker, time_budget_seconds=5)
    assert report.sent == 1 and report.retried == 0 and vivo.tokens_issued == 3
    assert len(vivo.delivered_to("v2-vivo_auth")) == 3


def test_many_vivo_pushes_refused_for_one_expired_token_renew_it_once_between_them(vivo: FakeVivo) -> None:
    provider = provider_for("vivo")
    assert isinstance(provider, VivoProvider)
    data = {"notification_id": "1", "kind": "test.ping", "title_zh": "提醒", "title_en": "Reminder",
            "body_zh": "请查看", "body_en": "Please check"}
    first = [PushMessage(i, f"v2-vivo_many_{i}", "android", data, "vivo") for i in range(1, 41)]
    assert {r.outcome.value for r in provider.send(first)} == {"sent"}
    vivo.expire_tokens()
    second = [PushMessage(i, f"v2-vivo_many_{i}", "android", data, "vivo") for i in range(41, 81)]
    assert {r.outcome.value for r in provider.send(second)} == {"sent"}
    assert vivo.tokens_issued == 2 and len(vivo.delivered) == 80


def test_a_vivo_push_resent_after_a_lost_answer_is_shown_once(vivo: FakeVivo) -> None:
    provider = provider_for("vivo")
    data = {"notification_id": "7", "kind": "test.ping", "title_zh": "提醒", "title_en": "Reminder",
            "body_zh": "请查看", "body_en": "Please check"}
    message = PushMessage(99, "v2-vivo_twice", "android", data, "vivo")
    [a] = provider.send([message])
    [b] = provider.send([message])  # the outbox resends when the first answer never reached it
    assert a.outcome.value == b.outcome.value == "sent" and a.message_id == b.message_id
    assert len(vivo.delivered_to("v2-vivo_twice")) == 1


def test_two_workers_at_once_send_every_vivo_push_exactly_once(session: Session, vivo: FakeVivo) -> None:
    town = make_town(session)
    users = [make_user(session, town.town, Role.helper) for _ in range(4)]
    for i, user in enumerate(users):
        add_device(session, user, f"v2-vivo_par_{i}", channel="vivo")
    for _ in range(10):
        notify(session, *users)
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            with _worker() as s:
                deliver_pending(s, worker=name, limit=5, time_budget_seconds=20)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and not any(t.is_alive() for t in threads)
    keys = [p["data"]["notification_id"] + p["token"] for p in vivo.delivered]
    assert len(keys) == 40 and len(set(keys)) == 40
    assert {r.status for r in _outbox(session)} == {PushStatus.sent.value}


def test_the_vivo_channel_is_built_from_its_settings_and_absent_without_them(
    vivo: FakeVivo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.notifications.vendors import vivo as module

    assert isinstance(provider_for("vivo"), VivoProvider)
    monkeypatch.delenv("HULEI_VIVO_APP_SECRET")
    get_settings.cache_clear()
    assert module.from_settings(get_settings()) is None
