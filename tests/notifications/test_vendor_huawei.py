"""Huawei Push Kit, what only it does: credentials it refuses, a push it will not accept, one batch
sent concurrently, partial-success answers and delivery receipts. What every vendor channel
promises (format and data, dead tokens, retries, auth renewal, two workers) is in
test_vendor_contract.py."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Device
from backend.accounts.permissions import Role
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.notifications.delivery import deliver_pending
from backend.notifications.models import PushOutbox, PushStatus
from backend.notifications.providers import Outcome, PushMessage, ReceiptEvent
from backend.notifications.vendors import huawei
from backend.notifications.vendors.honor import HonorProvider
from backend.notifications.vendors.huawei import HmsStyleProvider, HuaweiProvider
from tests.factories import make_town, make_user
from tests.notifications.factories import add_device, notify
from tests.notifications.fake_http import channel_pointed_at
from tests.notifications.fake_huawei import FakeHuawei, RunningFakeHuawei, settings_env, start_fake_huawei


@pytest.fixture(scope="module")
def huawei_server() -> Iterator[RunningFakeHuawei]:
    running = start_fake_huawei()
    yield running
    running.stop()


@pytest.fixture
def fake(database_url: str, huawei_server: RunningFakeHuawei, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHuawei]:
    """The Huawei channel configured against the fake Push Kit, retry backoff from 30 s."""
    with channel_pointed_at(huawei_server, settings_env(huawei_server), monkeypatch) as fake:
        yield fake


def _outbox(session: Session) -> list[PushOutbox]:
    session.expire_all()
    return list(session.execute(select(PushOutbox).order_by(col(PushOutbox.id))).scalars())


def _worker() -> Session:
    return Session(get_engine(), expire_on_commit=False)


def _deliver() -> int:
    with _worker() as worker:
        return deliver_pending(worker, time_budget_seconds=5).sent


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


def test_huawei_receipts_report_delivery_and_dead_tokens_for_the_outbox_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HULEI_HUAWEI_APP_ID", "104400001")
    get_settings.cache_clear()
    ours = {"appid": "104400001", "timestamp": 1, "requestId": "r"}
    v1 = json.dumps({"statuses": [
        {"biTag": "41", "token": "tok-a", "status": 0, **ours},
        {"biTag": "42", "token": "tok-b", "status": 2, **ours},
        {"biTag": "43", "token": "tok-c", "status": 5, **ours},
        {"biTag": "44", "token": "tok-d", "status": 6, **ours},  # notifications off
        {"biTag": "", "token": "tok-e", "status": 0, **ours},
        {"biTag": "46", "token": "tok-g", "status": 5, **ours, "appid": "888888"},  # another app's
        {"biTag": "47", "token": "tok-h", "status": 0, "timestamp": 1},  # no app named
    ]}).encode()
    assert huawei.parse_receipts(v1, "application/json") == [
        ReceiptEvent(41, "tok-a", "delivered"), ReceiptEvent(42, "tok-b", "invalid_token"),
        ReceiptEvent(43, "tok-c", "invalid_token"), ReceiptEvent(None, "tok-e", "delivered"),
    ]
    v2 = json.dumps({"statuses": [{"token": "tok-f", "biTag": "45", "pushType": 0, **ours,
                                   "deliveryStatus": {"result": 0, "timestamp": 1}}]}).encode()
    assert huawei.parse_receipts(v2, "application/json") == [ReceiptEvent(45, "tok-f", "delivered")]
    assert huawei.parse_receipts(b"<html>", "text/html") == []
    assert huawei.parse_receipts(b'{"statuses": [{"biTag": "1", "status": true}]}', "application/json") == []


@pytest.mark.parametrize("answer", [b"<html>not json</html>", b'{"code":', b"{}", b"[]", b"[" * 5000])
@pytest.mark.parametrize("provider", [HuaweiProvider, HonorProvider])
def test_an_hms_style_answer_without_a_code_is_tried_again_not_failed(provider: type[HmsStyleProvider],
                                                                      answer: bytes) -> None:
    # Outside test: Huawei and Honor failed a push for good on a proxy's HTML page or a cut-off answer,
    # where every other channel tried again. Nothing in such an answer says what became of the push.
    hms = provider(app_id="1", client_id="1", client_secret="s", oauth_url="http://127.0.0.1:9/oauth",
                   send_url="http://127.0.0.1:9/send")
    try:
        message = PushMessage(1, "tok-unread", "android", {"notification_id": "1"}, provider.name)
        result = hms.read(httpx.Response(200, content=answer), message).result
    finally:
        hms.close()
    assert result.outcome is Outcome.retry and result.error == "HTTP 200 unreadable answer"


def test_a_vendor_that_stops_answering_holds_up_only_its_own_pushes(
    session: Session, fake: FakeHuawei, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Outside test: while Huawei hung, the other channels' pushes of the same batch waited for its
    # whole timeout. The channels of a batch now go out at once.
    from tests.notifications.fake_oppo import settings_env as oppo_env
    from tests.notifications.fake_oppo import start_fake_oppo

    oppo_server = start_fake_oppo()
    try:
        for name, value in oppo_env(oppo_server).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("HULEI_PUSH_HTTP_TIMEOUT_SECONDS", "1")
        get_settings.cache_clear()
        fake.hang_seconds = 2.5
        town = make_town(session)
        hung, quick = make_user(session, town.town, Role.police), make_user(session, town.town, Role.police)
        add_device(session, hung, "HW-hanging-0001", channel="huawei")
        add_device(session, quick, "CN_oppo_quick_0001", channel="oppo")
        fake.fail_next("HW-hanging-0001", "HANG")
        notify(session, hung)  # the hanging channel's push comes first in the batch
        notify(session, quick)
        seen_after: list[float] = []
        started = time.monotonic()
        worker = threading.Thread(target=_deliver)
        worker.start()
        while worker.is_alive() and not seen_after:
            if oppo_server.fake.delivered_to("CN_oppo_quick_0001"):
                seen_after.append(time.monotonic() - started)
            time.sleep(0.02)
        worker.join(10)
        assert seen_after and seen_after[0] < 0.9, seen_after  # before Huawei's one-second timeout
        rows = {r.device_id: r for r in _outbox(session)}
        assert len(rows) == 2
        assert sorted(r.status for r in rows.values()) == [PushStatus.pending.value, PushStatus.sent.value]
    finally:
        oppo_server.stop()
        get_settings.cache_clear()
