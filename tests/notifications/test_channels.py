"""Push channels (issue 19): a phone registers the channel its token is from, each push goes out
through that channel, and no channel is ever handed anything but ids and generic text."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlmodel import Session, col

from backend.accounts.models import Device, PushChannel
from backend.accounts.permissions import Role
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.notifications.delivery import deliver_pending
from backend.notifications.models import Notification, PushOutbox, PushStatus
from tests.factories import make_town, make_user, user_client
from tests.notifications.factories import add_device, notify
from tests.notifications.fake_fcm import FakeFcm
from tests.races import together

API = "/api/v1"


def _outbox(session: Session) -> list[PushOutbox]:
    session.expire_all()
    return list(session.execute(select(PushOutbox).order_by(col(PushOutbox.id))).scalars())


@pytest.mark.parametrize(("platform", "channel", "status"), [
    ("android", "fcm", 201), ("android", "huawei", 201), ("android", "xiaomi", 201), ("android", "honor", 201),
    ("android", "oppo", 201), ("android", "vivo", 201), ("harmony", "huawei", 201), ("ios", "fcm", 201),
    ("ios", "xiaomi", 422), ("ios", "huawei", 422), ("harmony", "fcm", 422),
    ("harmony", "oppo", 422),
    ("android", "apns", 422), ("android", "", 422),
])
def test_a_phone_registers_the_channel_its_token_is_from_and_impossible_pairs_are_refused(
    client: TestClient, session: Session, platform: str, channel: str, status: int
) -> None:
    town = make_town(session)
    user = user_client(client, session, town.town, Role.volunteer)
    body = {"platform": platform, "push_token": f"token-{platform}-{channel}-0001", "channel": channel}
    resp = client.post(f"{API}/devices", headers=user.headers, json=body)
    assert resp.status_code == status, resp.text
    if status == 201:
        assert resp.json()["channel"] == channel
    elif channel in {c.value for c in PushChannel}:
        assert resp.json()["type"].endswith("device-channel-invalid")
    session.expire_all()
    stored = session.execute(select(Device)).scalars().all()
    assert len(stored) == (1 if status == 201 else 0)


def test_a_phone_registered_without_a_channel_is_an_fcm_phone_as_before(client: TestClient, session: Session) -> None:
    town = make_town(session)
    user = user_client(client, session, town.town, Role.volunteer)
    resp = client.post(f"{API}/devices", headers=user.headers,
                       json={"platform": "android", "push_token": "token-old-app-0001"})
    assert resp.status_code == 201 and resp.json()["channel"] == "fcm"


def test_a_registration_sent_with_a_null_channel_is_an_fcm_phone(client: TestClient, session: Session) -> None:
    town = make_town(session)
    user = user_client(client, session, town.town, Role.volunteer)
    resp = client.post(f"{API}/devices", headers=user.headers,
                       json={"platform": "android", "push_token": "token-gson-null-01", "channel": None})
    assert resp.status_code == 201 and resp.json()["channel"] == "fcm"


def test_a_registration_resent_at_the_same_moment_answers_one_device_and_never_an_error(
    client: TestClient, session: Session
) -> None:
    town = make_town(session)
    user = user_client(client, session, town.town, Role.volunteer)
    for n in range(4):
        body = {"platform": "android", "push_token": f"token-resent-{n:04d}", "channel": "xiaomi"}
        answers = together(*[lambda c: c.post(f"{API}/devices", headers=user.headers, json=body)] * 3)
        assert [a.status_code for a in answers] == [201, 201, 201], [a.text for a in answers]
        assert len({a.json()["id"] for a in answers}) == 1
    session.expire_all()
    assert len(session.execute(select(Device)).scalars().all()) == 4


def test_registering_the_same_token_on_another_channel_moves_the_phone_and_its_pending_pushes(
    client: TestClient, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    town = make_town(session)
    user = user_client(client, session, town.town, Role.volunteer)
    body = {"platform": "android", "push_token": "token-moving-0001"}
    first = client.post(f"{API}/devices", headers=user.headers, json=body | {"channel": "fcm"}).json()
    notify(session, user.user)  # queued while the phone was an FCM phone
    again = client.post(f"{API}/devices", headers=user.headers, json=body | {"channel": "huawei"}).json()
    assert again["id"] == first["id"] and again["channel"] == "huawei"
    with caplog.at_level(logging.INFO, logger="backend.notifications.providers"), \
            Session(get_engine(), expire_on_commit=False) as worker:
        assert deliver_pending(worker, time_budget_seconds=5).sent == 1
    assert any(" via huawei " in r.getMessage() for r in caplog.records)


def test_every_push_goes_out_through_its_own_devices_channel(
    session: Session, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    town = make_town(session)
    users = []
    for channel in PushChannel:
        user = make_user(session, town.town, Role.volunteer)
        add_device(session, user, f"token-route-{channel.value:>6}", channel=channel.value)
        users.append((user, channel.value))
    notify(session, *[u for u, _ in users])
    with caplog.at_level(logging.INFO, logger="backend.notifications.providers"), \
            Session(get_engine(), expire_on_commit=False) as worker:
        report = deliver_pending(worker, time_budget_seconds=5)
    assert report.sent == len(users)
    routed = {r.getMessage().split(" via ")[1].split(" ")[0]: r.getMessage() for r in caplog.records
              if " via " in r.getMessage()}
    for _, channel in users:
        # In development FCM is the logging provider itself ("log"); each vendor channel logs under its name.
        # The logging provider shows a token's last six characters only.
        assert f"…{f'token-route-{channel:>6}'[-6:]}" in routed["log" if channel == "fcm" else channel]
    assert {row.channel for row in _outbox(session)} == {c.value for c in PushChannel}


@pytest.mark.parametrize("smuggled", [
    {"phone": "13812345678"}, {"id_number": "110101201202290014"}, {"name": "张小明"},
    {"note": "家住幸福村3组"},
])
def test_no_channel_is_handed_a_payload_that_gained_personal_data_after_it_was_queued(
    session: Session, database_url: str, caplog: pytest.LogCaptureFixture, smuggled: dict[str, str]
) -> None:
    town = make_town(session)
    user = make_user(session, town.town, Role.volunteer)
    for channel in PushChannel:
        add_device(session, user, f"token-{channel.value}-guard-01", channel=channel.value)
    [n] = notify(session, user)
    # Whatever wrote it (a bug, a hand edit in the database), the channel's door checks again.
    session.execute(update(Notification).where(col(Notification.id) == n.id).values(data={"assignment_id": "17",
                                                                                          **smuggled}))
    session.commit()
    with caplog.at_level(logging.INFO, logger="backend.notifications.providers"), \
            Session(get_engine(), expire_on_commit=False) as worker:
        report = deliver_pending(worker, time_budget_seconds=5)
    assert report.sent == 0
    rows = _outbox(session)
    assert len(rows) == len(PushChannel)
    assert all(r.status == PushStatus.failed.value and (r.last_error or "").startswith("payload refused")
               for r in rows)
    assert not [r for r in caplog.records if " via " in r.getMessage()]


def test_a_vendor_channel_without_credentials_fails_its_pushes_at_once_outside_development(
    session: Session, fcm: FakeFcm
) -> None:
    assert get_settings().push_provider == "fcm" and not get_settings().xiaomi_app_secret
    town = make_town(session)
    user = make_user(session, town.town, Role.volunteer)
    add_device(session, user, "token-xiaomi-unconfigured", channel="xiaomi")
    add_device(session, user, "token-fcm-configured-01", channel="fcm")
    notify(session, user)
    with Session(get_engine(), expire_on_commit=False) as worker:
        report = deliver_pending(worker, time_budget_seconds=5)
    assert report.sent == 1 and report.failed == 1
    by_channel = {r.channel: r for r in _outbox(session)}
    assert by_channel["xiaomi"].status == PushStatus.failed.value
    assert by_channel["xiaomi"].last_error == "channel xiaomi not configured"
    assert by_channel["fcm"].status == PushStatus.sent.value
    assert [m["token"] for m in fcm.delivered] == ["token-fcm-configured-01"]
