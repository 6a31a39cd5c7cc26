"""Where each notification got to, and how each push channel is doing (issue 19): what a coordinator
reads to know that a hand-off reached the officer's phone, or that a vendor channel has stopped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import PushChannel, User
from backend.accounts.permissions import Role
from backend.core import clock
from backend.notifications.delivery import deliver_once
from backend.notifications.models import PushOutbox, PushStatus, SmsOutbox, SmsStatus
from backend.notifications.providers import Outcome, PushMessage, PushResult, ReceiptEvent
from backend.notifications.receipts import record_receipts
from backend.notifications.status import error_code
from tests.factories import make_town, make_user
from tests.notifications.factories import add_device, headers_for, notify

API = "/api/v1"


class ScriptedProvider:
    """A push service (external) that accepts every push except those to the tokens it is told to fail."""

    name = "scripted"
    max_batch = 500

    def __init__(self, fail: Sequence[str] = ()) -> None:
        self.fail = set(fail)

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        return [PushResult(Outcome.failed, error="oppo: 10000 token 13800138000 rejected") if m.token in self.fail
                else PushResult(Outcome.sent, message_id=f"m{m.key}") for m in messages]


def _delivery(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    resp = client.get(f"{API}/notifications/delivery", params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["items"])


def _push_of(session: Session, user: User) -> PushOutbox:
    session.expire_all()
    return session.execute(select(PushOutbox).where(col(PushOutbox.user_id) == user.id)).scalars().one()


def test_each_notification_shows_where_it_got_to_without_its_text(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = make_user(session, town.villages[0], Role.coordinator)
    grid = town.grids[0][0]
    names = ("sent", "delivered", "read", "failed", "no_device", "sms_sent", "queued")
    users = {name: make_user(session, grid, Role.volunteer) for name in names}
    for name in ("sent", "read", "failed", "queued"):
        add_device(session, users[name], f"tok-{name}")
    add_device(session, users["delivered"], "tok-delivered", channel="huawei")
    rows = notify(session, *(users[n] for n in ("sent", "delivered", "read", "failed", "no_device")))
    [critical] = notify(session, users["sms_sent"], critical=True)
    deliver_once(session, provider=ScriptedProvider(fail=["tok-failed"]))
    receipt = ReceiptEvent(_push_of(session, users["delivered"]).id, "tok-delivered", "delivered")
    assert record_receipts(session, "huawei", [receipt]) == 1
    session.commit()
    read = next(n for n in rows if n.user_id == users["read"].id)
    assert client.post(f"{API}/notifications/{read.id}/read", headers=headers_for(session, users["read"])).is_success
    session.add(SmsOutbox(notification_id=critical.id or 0, user_id=users["sms_sent"].id or 0,
                          status=SmsStatus.sent.value, sent_at=clock.now()))
    session.commit()
    notify(session, users["queued"])  # after the worker ran: still waiting

    headers = headers_for(session, coordinator)
    items = _delivery(client, headers)
    by_user = {item["user_id"]: item for item in items}
    assert {name: by_user[u.id]["status"] for name, u in users.items()} == {name: name for name in names}
    for item in items:  # delivery, not content: no text, no data, no phone
        assert not {"title_zh", "title_en", "body_zh", "body_en", "data", "phone"} & set(item), item
    failed = by_user[users["failed"].id]
    assert failed["pushes"] == [{"channel": "fcm", "status": "failed", "attempts": 0, "sent_at": None,
                                 "delivered_at": None, "last_error_code": "10000"}]
    delivered = by_user[users["delivered"].id]
    assert delivered["pushes"][0]["channel"] == "huawei" and delivered["pushes"][0]["delivered_at"]
    assert delivered["delivered_at"] is not None
    assert by_user[users["sms_sent"].id]["critical"] is True
    assert by_user[users["sms_sent"].id]["sms"]["status"] == "sent"
    assert by_user[users["no_device"].id]["pushes"] == [] and by_user[users["no_device"].id]["sms"] is None
    assert "13800138000" not in str(items)
    only_failed = _delivery(client, headers, status="failed")
    assert [i["user_id"] for i in only_failed] == [users["failed"].id]
    assert [i["user_id"] for i in _delivery(client, headers, critical="true")] == [users["sms_sent"].id]


def test_a_village_coordinator_sees_only_its_own_users_notifications_page_by_page(
    client: TestClient, session: Session
) -> None:
    town = make_town(session)
    coordinator = make_user(session, town.villages[0], Role.coordinator)
    own = [make_user(session, town.grids[0][i], Role.volunteer) for i in range(3)]
    foreign = make_user(session, town.villages[1], Role.volunteer)
    mine = notify(session, *own) + notify(session, own[0], kind="test.other")
    notify(session, foreign)
    headers = headers_for(session, coordinator)

    walked: list[int] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = client.get(f"{API}/notifications/delivery", params=params, headers=headers).json()
        walked += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params = {"limit": 2, "cursor": page["next_cursor"]}
    assert walked == sorted((n.id for n in mine), reverse=True)
    assert [i["kind"] for i in _delivery(client, headers, kind="test.other")] == ["test.other"]
    assert {i["user_id"] for i in _delivery(client, headers, user_id=own[1].id)} == {own[1].id}
    outside = client.get(f"{API}/notifications/delivery", params={"user_id": foreign.id}, headers=headers)
    assert outside.status_code == 404 and outside.json()["code"] == "not-found"
    later = (clock.now() + timedelta(minutes=1)).isoformat()
    assert _delivery(client, headers, since=later) == []
    volunteer = headers_for(session, own[0])
    assert client.get(f"{API}/notifications/delivery", headers=volunteer).status_code == 403
    assert client.get(f"{API}/notifications/channels/health", headers=volunteer).status_code == 403
    other_village = client.get(f"{API}/notifications/channels/health", params={"unit_id": town.villages[1].id},
                               headers=headers)
    assert other_village.status_code == 404


def _push(session: Session, user: User, channel: str, status: PushStatus, *, age: timedelta,
          took: timedelta | None = None, delivered: bool = False) -> None:
    """A hand-built push: queued `age` ago, sent `took` after that."""
    [n] = notify(session, user)
    created = clock.now() - age
    sent_at = created + took if took is not None else None
    session.add(PushOutbox(notification_id=n.id or 0, user_id=user.id or 0, channel=channel, status=status.value,
                           created_at=created, next_attempt_at=created, sent_at=sent_at,
                           delivered_at=sent_at if delivered else None))
    session.commit()


def _sms(session: Session, user: User, status: SmsStatus) -> None:
    [n] = notify(session, user, critical=True)
    session.add(SmsOutbox(notification_id=n.id or 0, user_id=user.id or 0, status=status.value,
                          sent_at=clock.now() if status is SmsStatus.sent else None))
    session.commit()


def test_channel_health_counts_the_window_of_the_callers_area(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = make_user(session, town.villages[0], Role.coordinator)
    admin = make_user(session, town.province, Role.admin)
    user = make_user(session, town.grids[0][0], Role.volunteer)  # no device: notify() queues no push itself
    foreign = make_user(session, town.villages[1], Role.volunteer)
    hour = timedelta(hours=1)
    s = timedelta(seconds=1)
    for took in (2, 4, 10):
        _push(session, user, "fcm", PushStatus.sent, age=hour, took=took * s, delivered=took == 2)
    _push(session, user, "fcm", PushStatus.failed, age=hour)
    _push(session, user, "huawei", PushStatus.sent, age=hour, took=s)
    _push(session, user, "huawei", PushStatus.dropped, age=hour)
    _push(session, user, "xiaomi", PushStatus.pending, age=timedelta(minutes=20))
    _push(session, user, "oppo", PushStatus.sent, age=hour, took=s)
    for _ in range(3):
        _push(session, user, "oppo", PushStatus.failed, age=hour)
    _push(session, user, "vivo", PushStatus.sent, age=timedelta(hours=30), took=s)  # before the window
    _push(session, foreign, "honor", PushStatus.failed, age=hour)  # another village's
    for status in SmsStatus:  # coalesced too (短信合并): neither a success nor a failure of the gateway
        _sms(session, user, status)
    add_device(session, user, "health-fcm-1")
    add_device(session, user, "health-fcm-2", platform="ios")
    add_device(session, user, "health-huawei", platform="harmony", channel="huawei")
    add_device(session, foreign, "health-honor", channel="honor")

    resp = client.get(f"{API}/notifications/channels/health", headers=headers_for(session, coordinator))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["hours"] == 24
    channels = {c["channel"]: c for c in body["channels"]}
    # Every channel the server knows, in its order (others, e.g. HarmonyOS NEXT, may follow the first six).
    assert list(channels) == [c.value for c in PushChannel]
    assert list(channels)[:6] == ["fcm", "huawei", "xiaomi", "honor", "oppo", "vivo"]
    fcm = channels["fcm"]
    assert {k: fcm[k] for k in ("devices", "queued", "sent", "delivered", "failed", "dropped", "success_rate",
                                "health")} == {"devices": 2, "queued": 0, "sent": 3, "delivered": 1, "failed": 1,
                                               "dropped": 0, "success_rate": 0.75, "health": "degraded"}
    assert fcm["median_seconds_to_send"] == pytest.approx(4.0, abs=0.01)
    assert fcm["last_success_at"] is not None
    huawei = channels["huawei"]
    assert (huawei["devices"], huawei["sent"], huawei["dropped"], huawei["success_rate"], huawei["health"]) == (
        1, 1, 1, 1.0, "ok")
    assert huawei["median_seconds_to_send"] == pytest.approx(1.0, abs=0.01)
    assert (channels["xiaomi"]["queued"], channels["xiaomi"]["health"]) == (1, "failing")  # stuck 20 min
    assert (channels["oppo"]["success_rate"], channels["oppo"]["health"]) == (0.25, "failing")
    vivo = channels["vivo"]
    assert (vivo["sent"], vivo["health"], vivo["last_success_at"] is not None) == (0, "idle", True)
    honor = channels["honor"]  # the other village's device and push are not counted
    assert (honor["devices"], honor["failed"], honor["health"]) == (0, 0, "idle")
    sms = body["sms"]
    assert {k: sms[k] for k in ("channel", "scheduled", "sent", "failed", "capped", "cancelled", "success_rate")} == {
        "channel": "sms", "scheduled": 1, "sent": 1, "failed": 1, "capped": 1, "cancelled": 1, "success_rate": 0.5}
    assert (sms["coalesced"], sms["unconfirmed"]) == (1, 1)  # counted apart: neither success nor failure
    assert sms["health"] == "degraded"

    wide = client.get(f"{API}/notifications/channels/health", headers=headers_for(session, admin)).json()
    assert {c["channel"]: c["failed"] for c in wide["channels"]}["honor"] == 1  # the province sees both villages
    narrow = client.get(f"{API}/notifications/channels/health", params={"hours": 48},
                        headers=headers_for(session, coordinator)).json()
    assert {c["channel"]: c["sent"] for c in narrow["channels"]}["vivo"] == 1


@pytest.mark.parametrize(("text", "code"), [
    (None, None),
    ("oppo: 10000 token 13800138000 rejected", "10000"),
    ("UNREGISTERED: Requested entity was not found.", "UNREGISTERED"),
    ("oppo: HTTP 503", "http_503"),
    ("HTTP 200 80300007: Invalid token", "80300007"),  # Huawei and Honor answer codes with HTTP 200
    ("HTTP 500 Internal Server Error", "http_500"),
    ("HTTP 200 unreadable answer", "unreadable_answer"),  # a proxy's page, a cut-off reply
    ("HTTP 200 13800138000: rejected", "http_200"),
    ("payload refused: Data field 'x' must be an id", "payload_refused"),
    ("device removed", "device_removed"),
    ("手机号13800138000无效", "error"),
    ("13800138000 is not registered", "error"),
])
def test_a_push_error_is_shown_as_a_short_code_never_the_vendors_text(text: str | None, code: str | None) -> None:
    assert error_code(text) == code


def test_an_sms_gateway_that_stops_answering_shows_degraded_though_nothing_failed(
    client: TestClient, session: Session
) -> None:
    town = make_town(session)
    coordinator = make_user(session, town.villages[0], Role.coordinator)
    user = make_user(session, town.grids[0][0], Role.volunteer)
    for _ in range(3):
        _sms(session, user, SmsStatus.sent)
    _sms(session, user, SmsStatus.unconfirmed)
    sms = client.get(f"{API}/notifications/channels/health", headers=headers_for(session, coordinator)).json()["sms"]
    assert (sms["sent"], sms["failed"], sms["unconfirmed"], sms["success_rate"]) == (3, 0, 1, 1.0)
    assert sms["health"] == "degraded"
