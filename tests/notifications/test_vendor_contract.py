"""What every phone maker's push channel (Huawei, HarmonyOS NEXT, Xiaomi, Honor, OPPO, vivo) promises the people who
rely on a push, run through the real outbox against each channel's local fake server: a phone on the
channel gets the exact data in the vendor's format and nothing personal, a dead token is pruned while
the inbox keeps the notification, overload and server errors are retried later with growing backoff
and end in one delivery, a refused auth token is renewed once in the same run, and two workers send
every push exactly once. What only one vendor does (receipts, batch splitting, its own error codes)
is tested in that vendor's test_vendor_<channel>.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Device, User
from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.notifications.delivery import DeliveryReport, dedupe_id, deliver_pending
from backend.notifications.models import Notification, PushOutbox, PushStatus
from backend.notifications.providers import PushMessage, provider_for, receipt_url
from tests.factories import make_town, make_user
from tests.notifications import fake_harmony, fake_honor, fake_huawei, fake_oppo, fake_vivo, fake_xiaomi
from tests.notifications.factories import add_device, headers_for, notify
from tests.notifications.fake_http import channel_pointed_at

TITLE, BODY = "新的帮扶任务", "请打开应用查看"  # the generic text notify() queues
RECEIPT_BASE = "https://hulei.example.cn"

# What the fake recorded for one push: {"token", "data" (the payload the app gets), "message" (what
# went over the wire), ...}; the outbox row it was sent for.
MessageCheck = Callable[[dict[str, Any], PushOutbox], None]


def _huawei_message(pushed: dict[str, Any], row: PushOutbox) -> None:
    android = pushed["message"]["android"]
    assert android["notification"]["title"] == TITLE and android["notification"]["body"] == BODY
    assert android["notification"]["click_action"] == {"type": 3}  # the system opens the app on a tap
    assert android["urgency"] == "HIGH" and android["ttl"] == "172800s"
    assert android["bi_tag"] == str(row.id)  # the receipt names the outbox row
    # A resend (its first attempt timed out but got through) replaces the first on the notification bar.
    assert android["notification"]["notify_id"] == row.notification_id
    assert android["notification"]["tag"] == f"hulei-{row.notification_id}"


def _honor_message(pushed: dict[str, Any], row: PushOutbox) -> None:
    android = pushed["message"]["android"]
    assert android["notification"]["title"] == TITLE and android["notification"]["body"] == BODY
    assert android["notification"]["clickAction"] == {"type": 3} and android["ttl"] == "172800s"
    assert android["biTag"] == str(row.id)
    assert android["notification"]["notifyId"] == row.notification_id  # a resend replaces the first


def _harmony_message(pushed: dict[str, Any], row: PushOutbox) -> None:
    assert pushed["push_type"] == "0" and pushed["path"] == f"/v3/{fake_harmony.PROJECT_ID}"
    notification = pushed["message"]["payload"]["notification"]
    assert (notification["title"], notification["body"], notification["category"]) == (TITLE, BODY, "WORK")
    assert notification["clickAction"]["actionType"] == 0  # the system opens the app on a tap
    assert notification["notifyId"] == row.notification_id  # a resend replaces the first
    assert pushed["message"]["pushOptions"] == {"testMessage": False, "ttl": 172800, "biTag": str(row.id)}


def _xiaomi_message(pushed: dict[str, Any], row: PushOutbox) -> None:
    form = pushed["message"]
    # A notification-bar message the system shows even when the app was killed; a tap opens the app.
    assert (form["pass_through"], form["title"], form["description"]) == ("0", TITLE, BODY)
    assert form["restricted_package_name"] == fake_xiaomi.PACKAGE_NAME
    assert form["extra.notify_effect"] == "1" and form["notify_type"] == "-1"
    assert form["time_to_live"] == str(2 * 24 * 3600 * 1000)
    assert form["notify_id"] == str(row.notification_id)  # a resend replaces the first
    assert form["extra.callback"] == receipt_url("xiaomi")
    assert form["extra.callback.param"] == str(row.id)
    assert int(form["extra.callback.type"]) & 1 and int(form["extra.callback.type"]) & 16
    # Nothing but the data payload and fixed protocol fields went out.
    assert set(form) == {"registration_id", "restricted_package_name", "title", "description", "payload",
                         "pass_through", "notify_type", "notify_id", "time_to_live", "extra.notify_effect",
                         "extra.callback", "extra.callback.param", "extra.callback.type"}
    assert row.provider_message_id == pushed["id"]


def _oppo_message(pushed: dict[str, Any], row: PushOutbox) -> None:
    message = pushed["message"]
    assert message["target_type"] == 2 and message["target_value"] == pushed["token"]
    notification = message["notification"]
    assert (notification["title"], notification["content"]) == (TITLE, BODY)
    assert notification["offLineTtl"] == 2 * 24 * 3600
    assert notification["callBackParameter"] == str(row.id)
    assert notification["appMessageId"] == dedupe_id(int(row.id or 0), row.created_at)  # OPPO drops its resends
    # OPPO's receipts are not read here: it is not asked to post them (receipt_url is None).
    assert "callBackUrl" not in notification and receipt_url("oppo") is None
    assert (row.provider_message_id or "").startswith("FAKEAPP-")


def _vivo_message(pushed: dict[str, Any], row: PushOutbox) -> None:
    message = pushed["message"]
    assert (message["title"], message["content"]) == (TITLE, BODY)
    assert message["timeToLive"] == 2 * 24 * 3600 and message["classification"] == 1 and message["skipType"] == 1
    assert message["requestId"] == dedupe_id(int(row.id or 0), row.created_at)  # vivo drops its resends
    assert "extra" not in message and receipt_url("vivo") is None  # no receipts read: none asked for


@dataclass(frozen=True)
class Channel:
    """One vendor channel as the contract drives it: its fake, and the words its fake and its
    answers use for the generic situations."""

    name: str
    start: Callable[[], Any]  # start_fake_<channel>: a running fake with .fake and .stop()
    settings_env: Callable[[Any], dict[str, str]]
    check_message: MessageCheck
    rate_limit_shown: str  # what the outbox row's last error shows after the fake's RATE_LIMIT
    server_errors: tuple[tuple[str, str], ...]  # (the fake's error, what the row's last error shows)
    dead_token: str = "INVALID_TOKEN"  # the fake's error for a token the vendor no longer knows
    platform: str = "android"
    token_revoked: str | None = None  # the fake's error that revokes the auth token; None: no auth token
    expire_tokens: str | None = None  # the fake's method that ends every token it issued


CHANNELS = (
    Channel("huawei", fake_huawei.start_fake_huawei, fake_huawei.settings_env, _huawei_message,
            rate_limit_shown="503", server_errors=(("SERVER_ERROR", "81000001"),),
            platform="harmony",  # HarmonyOS 2-4 phones push through HMS
            token_revoked="TOKEN_EXPIRED", expire_tokens="expire_access_tokens"),
    Channel("harmony", fake_harmony.start_fake_harmony, fake_harmony.settings_env, _harmony_message,
            rate_limit_shown="503", server_errors=(("SERVER_ERROR", "81000001"),),
            platform="harmony",  # HarmonyOS NEXT: Push Kit v3, a JWT we sign
            token_revoked="AUTH_REFUSED", expire_tokens="revoke_jwts"),
    Channel("xiaomi", fake_xiaomi.start_fake_xiaomi, fake_xiaomi.settings_env, _xiaomi_message,
            rate_limit_shown="10027", server_errors=(("SERVER_ERROR", "HTTP 503"), ("SYSTEM_BUSY", "10009")),
            dead_token="INVALID_REGID"),
    Channel("honor", fake_honor.start_fake_honor, fake_honor.settings_env, _honor_message,
            rate_limit_shown="503", server_errors=(("SERVER_ERROR", "81000001"),),
            token_revoked="TOKEN_EXPIRED", expire_tokens="expire_access_tokens"),
    Channel("oppo", fake_oppo.start_fake_oppo, fake_oppo.settings_env, _oppo_message,
            rate_limit_shown="code -2", server_errors=(("SERVER_ERROR", "HTTP 500"),),
            token_revoked="AUTH_EXPIRED", expire_tokens="expire_tokens"),
    Channel("vivo", fake_vivo.start_fake_vivo, fake_vivo.settings_env, _vivo_message,
            rate_limit_shown="10070", server_errors=(("SERVER_ERROR", "HTTP 500"),),
            token_revoked="AUTH_EXPIRED", expire_tokens="expire_tokens"),
)
WITH_AUTH_TOKEN = tuple(c for c in CHANNELS if c.token_revoked is not None)
SERVER_ERRORS = [pytest.param(c, error, shown, id=f"{c.name}-{error}") for c in CHANNELS
                 for error, shown in c.server_errors]


@dataclass
class Rig:
    """A channel configured against its running fake."""

    channel: Channel
    fake: Any

    @property
    def name(self) -> str:
        return self.channel.name

    def token(self, what: str) -> str:
        return f"{self.name}-{what}"


@pytest.fixture(scope="module")
def _running_fakes() -> Iterator[dict[str, Any]]:
    """Each channel's fake server, started the first time a test needs it, stopped after the module."""
    running: dict[str, Any] = {}
    yield running
    for server in running.values():
        server.stop()


@pytest.fixture
def rig(request: pytest.FixtureRequest, database_url: str, _running_fakes: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    """The channel in request.param pointed at its fake (reset), retry backoff from 30 s."""
    channel: Channel = request.param
    running = _running_fakes.get(channel.name)
    if running is None:
        running = _running_fakes[channel.name] = channel.start()
    with channel_pointed_at(running, channel.settings_env(running), monkeypatch) as fake:
        yield Rig(channel, fake)


every_channel = pytest.mark.parametrize("rig", CHANNELS, indirect=True, ids=lambda c: c.name)
every_channel_with_an_auth_token = pytest.mark.parametrize("rig", WITH_AUTH_TOKEN, indirect=True,
                                                           ids=lambda c: c.name)


def _outbox(session: Session) -> list[PushOutbox]:
    session.expire_all()
    return list(session.execute(select(PushOutbox).order_by(col(PushOutbox.id))).scalars())


def _deliver(**kwargs: Any) -> DeliveryReport:
    with Session(get_engine(), expire_on_commit=False) as worker:
        return deliver_pending(worker, time_budget_seconds=5, **kwargs)


def _helper_with_phones(session: Session, rig: Rig, *phones: str) -> User:
    """A helper whose phones (the rig's tokens for `phones`) are registered on the rig's channel."""
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    for phone in phones:
        add_device(session, helper, rig.token(phone), channel=rig.name)
    return helper


def _device_tokens(session: Session) -> list[str]:
    session.expire_all()
    return [d.push_token for d in session.execute(select(Device).order_by(col(Device.id))).scalars()]


@every_channel
def test_a_registered_phone_gets_the_exact_data_in_its_vendors_format_and_nothing_personal(
    client: TestClient, session: Session, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HULEI_PUSH_RECEIPT_BASE_URL", RECEIPT_BASE)
    get_settings.cache_clear()
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    resp = client.post("/api/v1/devices", headers=headers_for(session, helper),
                       json={"platform": rig.channel.platform, "push_token": rig.token("0001aaaa"),
                             "channel": rig.name})
    assert resp.status_code == 201, resp.text
    [n] = notify(session, helper, data={"assignment_id": "17", "child_ref": "c-42"})
    assert _deliver().sent == 1
    [pushed] = rig.fake.delivered_to(rig.token("0001aaaa"))
    assert pushed["data"] == {
        "notification_id": str(n.id), "kind": "test.ping", "title_zh": TITLE, "title_en": "New assignment",
        "body_zh": BODY, "body_en": "Open the app to see it", "assignment_id": "17", "child_ref": "c-42",
    }
    [row] = _outbox(session)
    assert row.status == PushStatus.sent.value and row.channel == rig.name and row.provider_message_id
    rig.channel.check_message(pushed, row)
    sent_text = json.dumps(pushed["message"], ensure_ascii=False)
    assert helper.display_name not in sent_text and helper.phone not in sent_text


@every_channel
def test_a_token_the_vendor_calls_dead_is_removed_and_the_inbox_keeps_the_notification(
    session: Session, rig: Rig
) -> None:
    helper = _helper_with_phones(session, rig, "dead", "alive")
    rig.fake.always_fail(rig.token("dead"), rig.channel.dead_token)
    notify(session, helper)
    report = _deliver()
    assert report.tokens_removed == 1 and report.sent == 1
    assert _device_tokens(session) == [rig.token("alive")]
    assert {r.status for r in _outbox(session)} == {PushStatus.sent.value, PushStatus.dropped.value}
    assert len(session.execute(select(Notification)).scalars().all()) == 1


@every_channel
def test_vendor_overload_is_retried_later_with_growing_backoff_and_then_delivered_once(
    session: Session, rig: Rig
) -> None:
    helper = _helper_with_phones(session, rig, "busy")
    busy = rig.token("busy")
    rig.fake.fail_next(busy, "RATE_LIMIT", "RATE_LIMIT")
    notify(session, helper)
    assert _deliver().retried == 1
    first = _outbox(session)[0]
    assert first.attempts == 1 and rig.channel.rate_limit_shown in (first.last_error or "")
    first_wait = clock.as_utc(first.next_attempt_at) - clock.now()
    assert first_wait >= timedelta(seconds=29)
    assert _deliver().claimed == 0 and rig.fake.attempts[busy] == 1  # not due yet: no hammering
    clock.advance(first_wait + timedelta(seconds=1))
    assert _deliver().retried == 1
    second = _outbox(session)[0]
    second_wait = clock.as_utc(second.next_attempt_at) - clock.now()
    assert second.attempts == 2 and second_wait > first_wait
    clock.advance(second_wait + timedelta(seconds=1))
    assert _deliver().sent == 1
    assert rig.fake.attempts[busy] == 3 and len(rig.fake.delivered_to(busy)) == 1
    assert _device_tokens(session) == [busy]  # overload says nothing against the phone


@pytest.mark.parametrize(("rig", "error", "shown"), SERVER_ERRORS, indirect=["rig"])
def test_a_vendor_server_error_is_retried_and_the_push_then_delivered_once(
    session: Session, rig: Rig, error: str, shown: str
) -> None:
    helper = _helper_with_phones(session, rig, "flaky")
    flaky = rig.token("flaky")
    rig.fake.fail_next(flaky, error, error)
    notify(session, helper)
    for expected_attempts in (1, 2):
        assert _deliver().retried == 1
        row = _outbox(session)[0]
        assert row.status == PushStatus.pending.value and row.attempts == expected_attempts
        assert shown in (row.last_error or "")
        clock.advance(clock.as_utc(row.next_attempt_at) - clock.now() + timedelta(seconds=1))
    assert _deliver().sent == 1
    clock.advance(timedelta(hours=2))
    assert _deliver().claimed == 0
    assert len(rig.fake.delivered_to(flaky)) == 1 and rig.fake.attempts[flaky] == 3
    assert _outbox(session)[0].status == PushStatus.sent.value


@every_channel_with_an_auth_token
def test_an_expired_or_revoked_auth_token_is_renewed_once_and_the_push_goes_out_in_the_same_run(
    session: Session, rig: Rig
) -> None:
    helper = _helper_with_phones(session, rig, "auth")
    phone = rig.token("auth")
    notify(session, helper)
    notify(session, helper)
    assert _deliver(limit=1).sent == 2
    assert rig.fake.tokens_issued == 1  # cached across batches
    assert rig.channel.expire_tokens is not None
    getattr(rig.fake, rig.channel.expire_tokens)()  # the token's time is up without the provider noticing
    notify(session, helper)
    report = _deliver()
    assert report.sent == 1 and report.retried == 0 and rig.fake.tokens_issued == 2
    assert rig.channel.token_revoked is not None
    rig.fake.fail_next(phone, rig.channel.token_revoked)  # revoked early by the vendor
    notify(session, helper)
    report = _deliver()
    assert report.sent == 1 and report.retried == 0 and rig.fake.tokens_issued == 3
    # The push refused for its token was sent once more, not again and again.
    assert rig.fake.attempts[phone] == 5 and len(rig.fake.delivered_to(phone)) == 4
    assert {r.status for r in _outbox(session)} == {PushStatus.sent.value}


@every_channel_with_an_auth_token
def test_many_pushes_refused_for_one_expired_token_renew_it_once_between_them(rig: Rig) -> None:
    provider = provider_for(rig.name)
    data = {"notification_id": "1", "kind": "test.ping", "title_zh": "提醒", "title_en": "Reminder",
            "body_zh": "请查看", "body_en": "Please check"}
    first = [PushMessage(i, rig.token(f"many-{i}"), "android", data, rig.name) for i in range(1, 41)]
    assert {r.outcome.value for r in provider.send(first)} == {"sent"}
    assert rig.channel.expire_tokens is not None
    getattr(rig.fake, rig.channel.expire_tokens)()
    second = [PushMessage(i, rig.token(f"many-{i}"), "android", data, rig.name) for i in range(41, 81)]
    assert {r.outcome.value for r in provider.send(second)} == {"sent"}
    assert rig.fake.tokens_issued == 2 and len(rig.fake.delivered) == 80


@every_channel
def test_two_workers_at_once_send_every_push_exactly_once(session: Session, rig: Rig) -> None:
    town = make_town(session)
    users = [make_user(session, town.town, Role.helper) for _ in range(4)]
    for i, user in enumerate(users):
        add_device(session, user, rig.token(f"par-{i}"), channel=rig.name)
    for _ in range(10):
        notify(session, *users)
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            with Session(get_engine(), expire_on_commit=False) as s:
                deliver_pending(s, worker=name, limit=7, time_budget_seconds=20)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and not any(t.is_alive() for t in threads)
    keys = [m["data"]["notification_id"] + m["token"] for m in rig.fake.delivered]
    assert len(keys) == 40 and len(set(keys)) == 40
    assert {r.status for r in _outbox(session)} == {PushStatus.sent.value}


def test_each_vendor_sends_the_message_class_the_app_was_granted_only_when_configured() -> None:
    # Xiaomi, OPPO and vivo cap "public" messages per phone and day (vivo shows none at night): a
    # deployment that was granted a private channel or system category names it in the settings.
    from backend.notifications.vendors.oppo import OppoProvider
    from backend.notifications.vendors.vivo import VivoProvider
    from backend.notifications.vendors.xiaomi import XiaomiProvider

    message = PushMessage(5, "tok", "android", {"notification_id": "9", "kind": "test.ping", "title_zh": TITLE,
                                                 "title_en": "T", "body_zh": BODY, "body_en": "B"}, "xiaomi", "5-1")
    plain = (XiaomiProvider(app_secret="s", package_name="p"), OppoProvider(app_key="k", master_secret="m"),
             VivoProvider(app_id="1", app_key="k", app_secret="s"))
    granted = (XiaomiProvider(app_secret="s", package_name="p", channel_id="hulei_cases"),
               OppoProvider(app_key="k", master_secret="m", channel_id="hulei_private"),
               VivoProvider(app_id="1", app_key="k", app_secret="s", category="TODO"))
    try:
        assert "extra.channel_id" not in plain[0].build(message)
        assert "channel_id" not in plain[1].build(message)["notification"]
        assert "category" not in plain[2].build(message)
        assert granted[0].build(message)["extra.channel_id"] == "hulei_cases"
        assert granted[1].build(message)["notification"]["channel_id"] == "hulei_private"
        assert granted[2].build(message)["category"] == "TODO"
        assert granted[1].build(message)["notification"]["appMessageId"] == "5-1"
    finally:
        for provider in (*plain, *granted):
            provider.close()
