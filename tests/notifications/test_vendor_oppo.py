"""OPPO Push: a phone registered on the oppo channel gets its notifications through OPPO's server API
(the fake in fake_oppo.py), exactly once, and a dead registration id is forgotten."""

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
from backend.notifications.delivery import deliver_once, deliver_pending
from backend.notifications.models import Notification, PushOutbox, PushStatus
from backend.notifications.providers import provider_for
from backend.notifications.vendors.oppo import OppoProvider
from tests.factories import make_town, make_user
from tests.notifications.factories import add_device, headers_for, notify
from tests.notifications.fake_oppo import FakeOppo, RunningFakeOppo, settings_env, start_fake_oppo


@pytest.fixture(scope="module")
def fake_oppo_server() -> Iterator[RunningFakeOppo]:
    running = start_fake_oppo()
    yield running
    running.stop()


@pytest.fixture
def oppo(database_url: str, fake_oppo_server: RunningFakeOppo, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOppo]:
    """The oppo channel pointed at the fake server."""
    fake_oppo_server.fake.reset()
    for name, value in settings_env(fake_oppo_server).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HULEI_PUSH_RETRY_BASE_SECONDS", "30")
    get_settings.cache_clear()
    yield fake_oppo_server.fake
    get_settings.cache_clear()


def _outbox(session: Session) -> list[PushOutbox]:
    session.expire_all()
    return list(session.execute(select(PushOutbox).order_by(col(PushOutbox.id))).scalars())


def _worker() -> Session:
    return Session(get_engine(), expire_on_commit=False)


def test_a_phone_registered_on_oppo_shows_the_generic_text_and_gets_the_exact_data_and_nothing_personal(
    client: TestClient, session: Session, oppo: FakeOppo
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    resp = client.post("/api/v1/devices", headers=headers_for(session, helper),
                       json={"platform": "android", "push_token": "CN_oppo0001aaaa", "channel": "oppo"})
    assert resp.status_code == 201, resp.text
    [n] = notify(session, helper, data={"assignment_id": "17", "child_ref": "c-42"})
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).sent == 1
    [pushed] = oppo.delivered_to("CN_oppo0001aaaa")
    assert pushed["data"] == {
        "notification_id": str(n.id), "kind": "test.ping", "title_zh": "新的帮扶任务", "title_en": "New assignment",
        "body_zh": "请打开应用查看", "body_en": "Open the app to see it", "assignment_id": "17", "child_ref": "c-42",
    }
    row = _outbox(session)[0]
    message = pushed["message"]
    assert message["target_type"] == 2 and message["target_value"] == "CN_oppo0001aaaa"
    notification = message["notification"]
    assert (notification["title"], notification["content"]) == ("新的帮扶任务", "请打开应用查看")
    assert notification["offLineTtl"] == 2 * 24 * 3600
    assert notification["appMessageId"] == notification["callBackParameter"] == str(row.id)
    raw = json.dumps(message, ensure_ascii=False)
    assert helper.display_name not in raw and helper.phone not in raw
    assert row.status == PushStatus.sent.value and (row.provider_message_id or "").startswith("FAKEAPP-")


def test_a_registration_id_oppo_calls_invalid_is_removed_and_the_inbox_keeps_the_notification(
    session: Session, oppo: FakeOppo
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "CN_oppo_dead", channel="oppo")
    add_device(session, helper, "CN_oppo_alive", channel="oppo")
    oppo.always_fail("CN_oppo_dead", "INVALID_TOKEN")
    notify(session, helper)
    with _worker() as worker:
        report = deliver_pending(worker, time_budget_seconds=5)
    assert report.tokens_removed == 1 and report.sent == 1
    session.expire_all()
    assert [d.push_token for d in session.execute(select(Device)).scalars()] == ["CN_oppo_alive"]
    assert {r.status for r in _outbox(session)} == {PushStatus.sent.value, PushStatus.dropped.value}
    assert len(session.execute(select(Notification)).scalars().all()) == 1


def test_oppo_flow_control_is_retried_later_with_backoff_and_then_delivered_once(
    session: Session, oppo: FakeOppo
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "CN_oppo_busy", channel="oppo")
    oppo.fail_next("CN_oppo_busy", "RATE_LIMIT")
    notify(session, helper)
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).retried == 1
    row = _outbox(session)[0]
    assert row.attempts == 1 and "-2" in (row.last_error or "")
    wait = clock.as_utc(row.next_attempt_at) - clock.now()
    assert wait >= timedelta(seconds=29)
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).claimed == 0  # not due yet: no hammering
    clock.advance(wait + timedelta(seconds=1))
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).sent == 1
    assert oppo.attempts["CN_oppo_busy"] == 2 and len(oppo.delivered_to("CN_oppo_busy")) == 1


def test_an_oppo_server_error_is_retried_and_the_push_then_delivered_once(session: Session, oppo: FakeOppo) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "CN_oppo_5xx", channel="oppo")
    oppo.fail_next("CN_oppo_5xx", "SERVER_ERROR", "SERVER_ERROR")
    notify(session, helper)
    for expected_attempts in (1, 2):
        with _worker() as worker:
            assert deliver_pending(worker, time_budget_seconds=5).retried == 1
        row = _outbox(session)[0]
        assert row.attempts == expected_attempts
        clock.advance(clock.as_utc(row.next_attempt_at) - clock.now() + timedelta(seconds=1))
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).sent == 1
    assert len(oppo.delivered_to("CN_oppo_5xx")) == 1 and oppo.attempts["CN_oppo_5xx"] == 3


def test_an_expired_oppo_auth_token_is_renewed_once_and_the_push_goes_out_in_the_same_round(
    session: Session, oppo: FakeOppo
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "CN_oppo_auth", channel="oppo")
    notify(session, helper)
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).sent == 1
    assert oppo.tokens_issued == 1
    oppo.expire_tokens()  # a day later
    notify(session, helper)
    with _worker() as worker:
        report = deliver_pending(worker, time_budget_seconds=5)
    assert report.sent == 1 and report.retried == 0 and oppo.tokens_issued == 2
    oppo.fail_next("CN_oppo_auth", "AUTH_EXPIRED")  # revoked early by OPPO
    notify(session, helper)
    with _worker() as worker:
        report = deliver_pending(worker, time_budget_seconds=5)
    assert report.sent == 1 and report.retried == 0 and oppo.tokens_issued == 3
    assert len(oppo.delivered_to("CN_oppo_auth")) == 3


def test_an_oppo_token_refused_twice_in_a_row_is_retried_later_not_dropped(session: Session, oppo: FakeOppo) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "CN_oppo_refused", channel="oppo")
    oppo.fail_next("CN_oppo_refused", "AUTH_EXPIRED", "AUTH_EXPIRED")
    notify(session, helper)
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).retried == 1
    assert oppo.tokens_issued == 2  # one renewal per call, no loop
    session.expire_all()
    assert len(session.execute(select(Device)).scalars().all()) == 1


def test_a_batch_goes_to_oppo_in_one_call_even_with_two_pushes_for_the_same_phone(
    session: Session, oppo: FakeOppo
) -> None:
    town = make_town(session)
    users = [make_user(session, town.town, Role.helper) for _ in range(5)]
    for i, user in enumerate(users):
        add_device(session, user, f"CN_oppo_many_{i}", channel="oppo")
    notify(session, *users)
    notify(session, users[0])  # a second push to the same phone in the same batch
    with _worker() as worker:
        assert deliver_once(worker).sent == 6
    assert oppo.calls == 2  # one call for five phones, one for the repeat (results are keyed by phone)
    assert len(oppo.delivered_to("CN_oppo_many_0")) == 2
    assert len({p["data"]["notification_id"] for p in oppo.delivered_to("CN_oppo_many_0")}) == 2


def test_two_workers_at_once_send_every_oppo_push_exactly_once(session: Session, oppo: FakeOppo) -> None:
    town = make_town(session)
    users = [make_user(session, town.town, Role.helper) for _ in range(4)]
    for i, user in enumerate(users):
        add_device(session, user, f"CN_oppo_par_{i}", channel="oppo")
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
    keys = [p["data"]["notification_id"] + p["token"] for p in oppo.delivered]
    assert len(keys) == 40 and len(set(keys)) == 40
    assert {r.status for r in _outbox(session)} == {PushStatus.sent.value}


def test_the_oppo_channel_is_built_from_its_settings_and_absent_without_them(
    oppo: FakeOppo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.notifications.vendors import oppo as module

    assert isinstance(provider_for("oppo"), OppoProvider)
    monkeypatch.delenv("HULEI_OPPO_MASTER_SECRET")
    get_settings.cache_clear()
    assert module.from_settings(get_settings()) is None
