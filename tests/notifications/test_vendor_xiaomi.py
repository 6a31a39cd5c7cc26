"""Xiaomi MiPush, what only it does: the receipt callback asked for only with a receipt URL, a wrong
AppSecret, MiPush's delivery receipts, building the channel from its settings. What every vendor
channel promises (format and data, dead tokens, retries, two workers) is in
test_vendor_contract.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Device
from backend.accounts.permissions import Role
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.notifications.delivery import deliver_pending
from backend.notifications.models import PushOutbox, PushStatus
from backend.notifications.providers import LoggingProvider, ReceiptEvent, provider_for
from backend.notifications.vendors.xiaomi import XiaomiProvider, parse_receipts
from tests.factories import make_town, make_user
from tests.notifications.factories import add_device, notify
from tests.notifications.fake_http import channel_pointed_at
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
    with channel_pointed_at(fake_xiaomi_server, settings_env(fake_xiaomi_server), monkeypatch) as fake:
        yield fake


def _outbox(session: Session) -> list[PushOutbox]:
    session.expire_all()
    return list(session.execute(select(PushOutbox).order_by(col(PushOutbox.id))).scalars())


def _worker() -> Session:
    return Session(get_engine(), expire_on_commit=False)


def test_without_a_receipt_base_url_no_callback_is_asked_of_mipush(session: Session, xiaomi: FakeXiaomi) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "mi-regid-nocallback", channel="xiaomi")
    notify(session, helper)
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).sent == 1
    [pushed] = xiaomi.delivered_to("mi-regid-nocallback")
    assert not [k for k in pushed["message"] if k.startswith("extra.callback")]


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
