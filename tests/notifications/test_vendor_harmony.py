"""HarmonyOS NEXT Push Kit (v3), what only it does: phones register as platform harmony with channel
harmony, the service-account key file as Huawei issues it signs the JWT we send, a key Huawei does
not know leaves the push waiting, the reasons Huawei gives for a failed token decide whether the
phone is removed, and delivery receipts. What every vendor channel promises (format and data, dead
tokens, retries, auth renewal, two workers) is in test_vendor_contract.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Device
from backend.accounts.permissions import Role
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.notifications.delivery import deliver_pending
from backend.notifications.models import Notification, PushOutbox, PushStatus
from backend.notifications.providers import Outcome, PushMessage, ReceiptEvent, provider_for
from backend.notifications.vendors import harmony
from tests.factories import make_town, make_user
from tests.notifications.factories import add_device, headers_for, notify
from tests.notifications.fake_harmony import (
    AUDIENCE,
    FakeHarmony,
    RunningFakeHarmony,
    new_key_pair,
    service_account_json,
    settings_env,
    start_fake_harmony,
)
from tests.notifications.fake_http import channel_pointed_at


@pytest.fixture(scope="module")
def harmony_server() -> Iterator[RunningFakeHarmony]:
    running = start_fake_harmony()
    yield running
    running.stop()


@pytest.fixture
def fake(database_url: str, harmony_server: RunningFakeHarmony,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHarmony]:
    """The harmony channel configured against the fake Push Kit v3, retry backoff from 30 s."""
    with channel_pointed_at(harmony_server, settings_env(harmony_server), monkeypatch) as fake:
        yield fake


def _outbox(session: Session) -> list[PushOutbox]:
    session.expire_all()
    return list(session.execute(select(PushOutbox).order_by(col(PushOutbox.id))).scalars())


def _device_tokens(session: Session) -> list[str]:
    session.expire_all()
    return [d.push_token for d in session.execute(select(Device).order_by(col(Device.id))).scalars()]


def _deliver() -> int:
    with Session(get_engine(), expire_on_commit=False) as worker:
        return deliver_pending(worker, time_budget_seconds=5).sent


@pytest.mark.parametrize(("platform", "channel", "allowed"), [
    ("harmony", "harmony", None),  # HarmonyOS NEXT: the Push Kit token from pushService.getToken()
    ("harmony", "huawei", None),  # HarmonyOS 2-4 keep HMS
    ("android", "harmony", ["fcm", "honor", "huawei", "oppo", "vivo", "xiaomi"]),
    ("ios", "harmony", ["fcm"]),
])
def test_a_harmonyos_next_phone_registers_its_push_kit_token_and_no_other_platform_may_use_that_channel(
    client: TestClient, session: Session, platform: str, channel: str, allowed: list[str] | None
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    resp = client.post("/api/v1/devices", headers=headers_for(session, helper),
                       json={"platform": platform, "push_token": "MAMzLgE4G98BAAAAst0001", "channel": channel})
    if allowed is None:
        assert resp.status_code == 201, resp.text
        assert (resp.json()["platform"], resp.json()["channel"]) == (platform, channel)
        assert _device_tokens(session) == ["MAMzLgE4G98BAAAAst0001"]
    else:
        assert resp.status_code == 422, resp.text
        assert resp.json()["code"] == "device-channel-invalid" and resp.json()["allowed"] == allowed
        assert _device_tokens(session) == []


def test_the_key_file_huawei_issues_signs_the_jwt_each_push_carries(
    session: Session, fake: FakeHarmony, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "agc-service-account.json"
    key_file.write_text(json.dumps(service_account_json(fake)), encoding="utf-8")
    for name in ("PROJECT_ID", "KEY_ID", "SUB_ACCOUNT", "PRIVATE_KEY"):
        monkeypatch.delenv(f"HULEI_HARMONY_{name}")
    monkeypatch.setenv("HULEI_HARMONY_SERVICE_ACCOUNT_FILE", str(key_file))
    get_settings.cache_clear()
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "next-keyfile", platform="harmony", channel="harmony")
    notify(session, helper)
    notify(session, helper)
    assert _deliver() == 2
    [signed] = fake.jwts_seen  # one JWT for both pushes: it is good for an hour
    assert signed["header"] == {"kid": fake.key_id, "typ": "JWT", "alg": "PS256"}
    claims = signed["claims"]
    assert (claims["iss"], claims["aud"], claims["exp"] - claims["iat"]) == (fake.sub_account, AUDIENCE, 3600)
    assert set(claims) == {"iss", "aud", "iat", "exp"}


def test_a_key_huawei_does_not_know_leaves_the_push_waiting_and_the_phone_registered(
    session: Session, fake: FakeHarmony, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_pem, _ = new_key_pair()
    monkeypatch.setenv("HULEI_HARMONY_PRIVATE_KEY", other_pem)
    get_settings.cache_clear()
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "next-wrongkey", platform="harmony", channel="harmony")
    notify(session, helper)
    assert _deliver() == 0
    [row] = _outbox(session)
    assert row.status == PushStatus.pending.value and row.attempts == 1
    assert "80200001" in (row.last_error or "")
    assert fake.requests == 2 and fake.attempts["next-wrongkey"] == 0  # re-signed once, then given up for now
    assert _device_tokens(session) == ["next-wrongkey"]


def test_a_token_from_before_the_upgrade_to_next_is_removed_with_the_inbox_kept(
    session: Session, fake: FakeHarmony
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "next-stale", platform="harmony", channel="harmony")
    add_device(session, helper, "next-fresh", platform="harmony", channel="harmony")
    fake.always_fail("next-stale", "STALE_TOKEN")  # Huawei's reason noRight
    notify(session, helper)
    assert _deliver() == 1
    assert _device_tokens(session) == ["next-fresh"]
    assert {r.status for r in _outbox(session)} == {PushStatus.sent.value, PushStatus.dropped.value}
    assert len(session.execute(select(Notification)).scalars().all()) == 1


def test_a_right_the_project_lacks_fails_the_push_but_keeps_the_phone(session: Session, fake: FakeHarmony) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "next-noright", platform="harmony", channel="harmony")
    fake.always_fail("next-noright", "NO_PUSH_TYPE_RIGHT")
    notify(session, helper)
    assert _deliver() == 0
    [row] = _outbox(session)
    assert row.status == PushStatus.failed.value and "80300007" in (row.last_error or "")
    assert _device_tokens(session) == ["next-noright"]


def test_huawei_failed_token_lists_are_read_with_their_reasons() -> None:
    msg = json.dumps({"success": 0, "failure": 3,
                      "illegalTokens": {"noRight": ["t1"], "tokenFormatError": ["t2"], "noPushTypeRight": ["t3"]}})
    assert harmony.illegal_tokens(msg) == {"t1": "noRight", "t2": "tokenFormatError", "t3": "noPushTypeRight"}
    assert harmony.illegal_tokens("Illegal payload") == {}


def test_no_service_account_means_no_harmony_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HULEI_HARMONY_SERVICE_ACCOUNT_FILE", str(tmp_path / "missing.json"))
    get_settings.cache_clear()
    try:
        assert harmony.from_settings(get_settings()) is None
    finally:
        get_settings.cache_clear()


def test_harmony_receipts_report_delivery_for_the_outbox_row_and_never_remove_a_phone() -> None:
    body = json.dumps({"statuses": [
        {"token": "tok-a", "pushType": 0, "appPackageName": "cn.hulei.app", "biTag": "51", "requestId": "r",
         "deliveryStatus": {"result": 0, "timestamp": 1}},
        {"token": "tok-b", "pushType": 0, "biTag": "52", "requestId": "r", "deliveryStatus": {"result": 2}},
        {"token": "tok-c", "pushType": 1, "biTag": "53", "requestId": "r", "formStatus": {"formId": 1, "result": 0}},
    ]}).encode()
    assert harmony.parse_receipts(body, "application/json") == [ReceiptEvent(51, "tok-a", "delivered")]
    assert harmony.parse_receipts(b"<html>", "text/html") == []


@pytest.mark.parametrize("answer", [b"<html>502 Bad Gateway</html>", b'{"code":', b"{}", b"[]"])
def test_an_answer_without_a_code_is_tried_again_not_failed(fake: FakeHarmony, answer: bytes) -> None:
    # A proxy's page or an answer cut off on a bad network says nothing about the push.
    message = PushMessage(1, "tok-unread", "harmony", {"notification_id": "1"}, "harmony")
    result = provider_for("harmony").read(httpx.Response(200, content=answer), message).result
    assert result.outcome is Outcome.retry and result.error == "HTTP 200 unreadable answer"
