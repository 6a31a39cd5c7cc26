"""Delivery receipts (回执) posted by the vendor push channels: trusted only at the URL we gave the
channel, and only about that channel's own pushes to that phone."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Device, User
from backend.accounts.permissions import Role
from backend.core.config import get_settings
from backend.main import create_app
from backend.notifications.delivery import deliver_once
from backend.notifications.models import Notification, PushOutbox, PushStatus
from backend.notifications.providers import LoggingProvider, ReceiptEvent, receipt_key
from backend.notifications.receipts import MAX_RECEIPT_BYTES, record_receipts
from backend.notifications.router import receipt_router
from tests.factories import make_town, make_user
from tests.notifications.factories import add_device, notify

PATH = "/api/v1/push-receipts/{channel}/{key}"


def _served(app: FastAPI) -> bool:
    return any(getattr(route, "path", None) == PATH for route in app.routes)


@pytest.fixture
def receipts_client(database_url: str) -> Iterator[TestClient]:
    """The app, with the receipt route mounted as a public route when the build does not mount it yet."""
    app = create_app()
    if not _served(app):
        app.include_router(receipt_router, prefix="/api/v1")
    with TestClient(app) as c:
        yield c


def _pushes(session: Session) -> dict[int, PushOutbox]:
    session.expire_all()
    return {p.user_id: p for p in session.execute(select(PushOutbox)).scalars()}


def _sent_to(session: Session, *devices: tuple[User, str, str]) -> dict[int, PushOutbox]:
    """One notification to each (user, token, channel), pushed through the logging provider."""
    for user, token, channel in devices:
        add_device(session, user, token, channel=channel)
    notify(session, *(u for u, _, _ in devices))
    deliver_once(session, provider=LoggingProvider())
    return _pushes(session)


def _record(session: Session, channel: str, events: Sequence[ReceiptEvent]) -> int:
    accepted = record_receipts(session, channel, events)
    session.commit()
    return accepted


def test_a_delivered_receipt_marks_the_push_and_the_notification_once(session: Session) -> None:
    town = make_town(session)
    officer = make_user(session, town.town, Role.police)
    push = _sent_to(session, (officer, "hw-officer", "huawei"))[officer.id or 0]
    event = ReceiptEvent(push.id, "hw-officer", "delivered")
    assert _record(session, "huawei", [event]) == 1
    first = _pushes(session)[officer.id or 0].delivered_at
    notification = session.get(Notification, push.notification_id)
    assert first is not None and notification is not None and notification.delivered_at == first
    assert _record(session, "huawei", [event, ReceiptEvent(push.id, None, "delivered")]) == 2  # repeats
    assert _pushes(session)[officer.id or 0].delivered_at == first
    session.expire_all()
    assert session.get(Notification, push.notification_id).delivered_at == first  # type: ignore[union-attr]


def test_a_receipt_never_touches_another_channels_push_or_another_phones(session: Session) -> None:
    town = make_town(session)
    on_huawei, on_xiaomi, other = (make_user(session, town.villages[0], Role.volunteer) for _ in range(3))
    pushes = _sent_to(session, (on_huawei, "hw-1", "huawei"), (on_xiaomi, "mi-1", "xiaomi"), (other, "hw-2", "huawei"))
    notify(session, on_huawei)  # a second push to the same phone, not sent yet
    pending = session.execute(select(PushOutbox).where(col(PushOutbox.status) == PushStatus.pending.value)
                              ).scalars().one()
    refused = [
        ReceiptEvent(pushes[on_xiaomi.id or 0].id, "mi-1", "delivered"),  # xiaomi's push, posted at huawei's URL
        ReceiptEvent(pushes[on_huawei.id or 0].id, "hw-2", "delivered"),  # another phone's token
        ReceiptEvent(pending.id, "hw-1", "delivered"),  # not accepted by the channel yet
        ReceiptEvent(None, "hw-1", "delivered"),  # names no push
        ReceiptEvent(10**30, "hw-1", "delivered"),  # no such row (nor any row id)
        ReceiptEvent(None, "mi-1", "invalid_token"),  # xiaomi's device, posted at huawei's URL
    ]
    assert _record(session, "huawei", refused) == 0
    assert all(p.delivered_at is None for p in _pushes(session).values())
    assert session.execute(select(Notification).where(col(Notification.delivered_at).is_not(None))).first() is None
    assert len(session.execute(select(Device)).all()) == 3


def test_an_invalid_token_receipt_removes_that_phone_and_drops_its_waiting_pushes(session: Session) -> None:
    town = make_town(session)
    user, keeper = make_user(session, town.villages[0], Role.volunteer), make_user(session, town.villages[0],
                                                                                  Role.volunteer)
    add_device(session, user, "hw-dead", channel="huawei")
    add_device(session, keeper, "hw-alive", channel="huawei")
    notify(session, user, keeper)
    assert _record(session, "huawei", [ReceiptEvent(None, "hw-dead", "invalid_token")]) == 1
    session.expire_all()
    assert [d.push_token for d in session.execute(select(Device)).scalars()] == ["hw-alive"]
    statuses = {p.user_id: p.status for p in _pushes(session).values()}
    assert statuses == {user.id: PushStatus.dropped.value, keeper.id: PushStatus.pending.value}
    assert _record(session, "huawei", [ReceiptEvent(None, "hw-dead", "invalid_token")]) == 0  # again: nothing left


def test_receipts_are_taken_only_at_the_channels_own_url_and_only_for_our_app(
    receipts_client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HULEI_HUAWEI_APP_ID", "104400001")
    get_settings.cache_clear()
    town = make_town(session)
    user = make_user(session, town.villages[0], Role.volunteer)
    push = _sent_to(session, (user, "hw-endpoint", "huawei"))[user.id or 0]
    body = json.dumps({"statuses": [{"biTag": str(push.id), "appid": "104400001", "token": "hw-endpoint",
                                     "status": 0}]})
    url = f"/api/v1/push-receipts/huawei/{receipt_key('huawei')}"
    # The same receipt URL entered in another app (a test app): its receipts, or one naming no app,
    # neither mark our push delivered nor remove our phone.
    for appid in ("888888", None):
        for status in (0, 5):
            other = json.dumps({"statuses": [{"biTag": str(push.id), "token": "hw-endpoint", "status": status,
                                              **({"appid": appid} if appid else {})}]})
            resp = receipts_client.post(url, content=other, headers={"Content-Type": "application/json"})
            assert resp.status_code == 200 and resp.json() == {"accepted": 0}, resp.text
    assert _pushes(session)[user.id or 0].delivered_at is None
    assert len(session.execute(select(Device)).scalars().all()) == 1
    # JSON nested beyond what the parser follows is an unreadable receipt (400), not a server error.
    deep = receipts_client.post(url, content=b"[" * 20000 + b"]" * 20000, headers={"Content-Type": "application/json"})
    assert deep.status_code == 400 and deep.json()["code"] == "bad-request"
    for wrong in (f"/api/v1/push-receipts/huawei/{receipt_key('xiaomi')}",  # another channel's key
                  f"/api/v1/push-receipts/huawei/{receipt_key('huawei')[:-1]}x",
                  f"/api/v1/push-receipts/nokia/{receipt_key('nokia')}",  # no such channel
                  f"/api/v1/push-receipts/fcm/{receipt_key('fcm')}"):  # a channel that posts no receipts
        resp = receipts_client.post(wrong, content=body, headers={"Content-Type": "application/json"})
        assert resp.status_code == 404, (wrong, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.json()["code"] == "not-found"
    assert _pushes(session)[user.id or 0].delivered_at is None
    too_big = receipts_client.post(url, content=b"{" + b" " * MAX_RECEIPT_BYTES + b"}",
                                   headers={"Content-Type": "application/json"})
    assert too_big.status_code == 413 and too_big.json()["code"] == "payload-too-large"
    resp = receipts_client.post(url, content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 200 and resp.json() == {"accepted": 1}, resp.text
    assert _pushes(session)[user.id or 0].delivered_at is not None
    assert receipts_client.post(url, content=body, headers={"Content-Type": "application/json"}).status_code == 200
