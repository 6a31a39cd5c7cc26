"""SMS fallback (短信兜底): a critical notification nobody has read in time reaches the phone by SMS,
once, within the daily allowance; and the events that must not wait are the critical ones."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from sqlmodel import Session, col

from backend.accounts.models import Agency, User
from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.notifications import sms
from backend.notifications.delivery import dedupe_id
from backend.notifications.fallback import SmsReport, deliver_sms, schedule_sms_fallbacks
from backend.notifications.models import Notification, SmsOutbox, SmsQuota, SmsStatus
from backend.registry.models import RiskLevel
from tests.factories import make_town, make_user
from tests.notifications.factories import headers_for, notify
from tests.notifications.fake_sms_gateway import (
    FakeSmsGateway,
    RunningFakeSmsGateway,
    settings_env,
    start_fake_sms_gateway,
)


@pytest.fixture(scope="module")
def sms_server() -> Iterator[RunningFakeSmsGateway]:
    running = start_fake_sms_gateway()
    yield running
    running.stop()


@pytest.fixture
def gateway(database_url: str, sms_server: RunningFakeSmsGateway,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSmsGateway]:
    """The http SMS provider pointed at the fake platform, retries a minute apart and doubling."""
    sms_server.fake.reset()
    for name, value in settings_env(sms_server).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HULEI_SMS_RETRY_BASE_SECONDS", "60")
    get_settings.cache_clear()
    sms.clear_sms_providers()
    yield sms_server.fake
    sms.clear_sms_providers()
    get_settings.cache_clear()


def _worker() -> Session:
    return Session(get_engine(), expire_on_commit=False)


def _run() -> SmsReport:
    """One pass of the worker's two SMS jobs."""
    with _worker() as s:
        schedule_sms_fallbacks(s)
        return deliver_sms(s, time_budget_seconds=5)


def _rows(session: Session) -> list[SmsOutbox]:
    session.expire_all()
    return list(session.execute(select(SmsOutbox).order_by(col(SmsOutbox.id))).scalars())


def _read(session: Session, notification: Notification) -> None:
    session.execute(update(Notification).where(col(Notification.id) == notification.id)
                    .values(read_at=clock.now()))
    session.commit()


def _past_due() -> None:
    clock.advance(timedelta(minutes=get_settings().sms_fallback_minutes, seconds=1))


# ---------------------------------------------------------------- when an SMS goes out


def test_a_critical_notification_unread_past_the_fallback_time_is_texted_once_with_the_generic_text(
    session: Session, gateway: FakeSmsGateway
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    [n] = notify(session, helper, critical=True)
    clock.advance(timedelta(minutes=get_settings().sms_fallback_minutes - 1))
    _run()
    assert gateway.requests == [] and _rows(session) == []  # not yet due
    clock.advance(timedelta(minutes=1, seconds=1))
    report = _run()
    assert report.sent == 1
    [body] = gateway.delivered
    assert body["phone"] == helper.phone
    assert body["content"] == get_settings().sms_text_zh == "【护蕾】您有一条重要待办事项，请尽快登录护蕾App查看处理。"
    [row] = _rows(session)
    assert body["requestId"] == f"hulei-sms-{dedupe_id(int(row.id or 0), row.created_at)}"
    assert (row.notification_id, row.status, row.provider_message_id) == (n.id, SmsStatus.sent.value, "sms-1")
    clock.advance(timedelta(hours=3))
    _run()
    assert len(gateway.requests) == 1  # never again


def test_a_notification_read_in_time_is_never_texted(session: Session, gateway: FakeSmsGateway) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    [n] = notify(session, helper, critical=True)
    clock.advance(timedelta(minutes=5))
    _read(session, n)
    _past_due()
    _run()
    assert gateway.requests == [] and _rows(session) == []


def test_a_notification_read_after_its_sms_was_queued_but_before_it_went_out_is_cancelled(
    session: Session, gateway: FakeSmsGateway
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    [n] = notify(session, helper, critical=True)
    _past_due()
    with _worker() as s:
        assert schedule_sms_fallbacks(s) == 1
    _read(session, n)
    with _worker() as s:
        report = deliver_sms(s, time_budget_seconds=5)
    assert (report.sent, report.cancelled) == (0, 1)
    assert gateway.requests == []
    assert _rows(session)[0].status == SmsStatus.cancelled.value


def test_an_ordinary_notification_is_never_texted(session: Session, gateway: FakeSmsGateway) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    [n] = notify(session, helper)
    assert (n.critical, n.sms_due_at) == (False, None)
    clock.advance(timedelta(hours=2))
    _run()
    assert gateway.requests == [] and _rows(session) == []


def test_a_recipient_without_a_mainland_mobile_number_gets_no_sms(session: Session, gateway: FakeSmsGateway) -> None:
    town = make_town(session)
    landline = make_user(session, town.town, Role.helper, phone="01088886666")
    notify(session, landline, critical=True)
    _past_due()
    assert _run().cancelled == 1
    assert gateway.requests == []
    assert _rows(session)[0].last_error == "no mainland mobile number"


def test_scanning_again_and_again_queues_a_notification_once(session: Session, gateway: FakeSmsGateway) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    notify(session, helper, critical=True)
    _past_due()
    with _worker() as s:
        assert [schedule_sms_fallbacks(s) for _ in range(3)] == [1, 0, 0]
    assert len(_rows(session)) == 1


# ---------------------------------------------------------------- the daily allowance


def _quota(session: Session, user: User) -> dict[str, int]:
    session.expire_all()
    return {q.day.isoformat(): q.sent for q in session.execute(
        select(SmsQuota).where(col(SmsQuota.user_id) == user.id)).scalars()}


def test_no_more_than_the_daily_cap_is_texted_to_one_person_in_one_china_day_and_the_next_day_it_is_back(
    session: Session, gateway: FakeSmsGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HULEI_SMS_DAILY_CAP", "3")
    monkeypatch.setenv("HULEI_SMS_COALESCE_MINUTES", "0")  # one SMS per notification: the cap is what stops them
    get_settings.cache_clear()
    clock.freeze(datetime(2026, 6, 1, 14, 0, tzinfo=UTC))  # 22:00 in Beijing
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    for _ in range(5):
        notify(session, helper, critical=True)
    _past_due()
    report = _run()
    assert (report.sent, report.capped) == (3, 2)
    assert len(gateway.delivered_to(helper.phone)) == 3
    assert sorted(r.status for r in _rows(session)) == ["capped", "capped", "sent", "sent", "sent"]
    assert _quota(session, helper) == {"2026-06-01": 3}
    # 00:10 in Beijing: a new China day although UTC is still on June 1.
    clock.freeze(datetime(2026, 6, 1, 15, 40, tzinfo=UTC))
    notify(session, helper, critical=True)
    _past_due()
    assert _run().sent == 1
    assert len(gateway.delivered_to(helper.phone)) == 4
    assert _quota(session, helper) == {"2026-06-01": 3, "2026-06-02": 1}


def test_two_workers_at_once_text_each_notification_exactly_once_and_never_past_the_cap(
    session: Session, gateway: FakeSmsGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HULEI_SMS_DAILY_CAP", "5")
    monkeypatch.setenv("HULEI_SMS_COALESCE_MINUTES", "0")  # one SMS per notification (coalescing: further below)
    get_settings.cache_clear()
    town = make_town(session)
    users = [make_user(session, town.town, Role.helper) for _ in range(3)]
    for _ in range(8):
        notify(session, *users, critical=True)
    _past_due()
    errors: list[BaseException] = []
    deadline = time.monotonic() + 8

    def work(name: str) -> None:
        try:
            with _worker() as s:
                for _ in range(4):
                    schedule_sms_fallbacks(s)
                    deliver_sms(s, worker=name, limit=3, time_budget_seconds=2)
                    if time.monotonic() > deadline:
                        return
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    with _worker() as s:  # whatever the two left (none, normally) is finished here
        deliver_sms(s, time_budget_seconds=2)
    request_ids = Counter(r["body"]["requestId"] for r in gateway.requests)
    assert set(request_ids.values()) == {1}  # nothing arrived twice
    per_phone = Counter(str(body["phone"]) for body in gateway.delivered)
    assert per_phone == {u.phone: 5 for u in users}
    assert Counter(r.status for r in _rows(session)) == {"sent": 15, "capped": 9}
    assert {q.sent for q in session.execute(select(SmsQuota)).scalars()} == {5}


# ---------------------------------------------------------------- trouble at the gateway


def test_a_busy_gateway_is_retried_with_growing_backoff_and_the_sms_arrives_once(
    session: Session, gateway: FakeSmsGateway
) -> None:
    clock.freeze(datetime(2026, 6, 1, 2, 0, tzinfo=UTC))  # 10:00 in Beijing: the day does not turn
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    gateway.fail_next(helper.phone, "503", "429")
    notify(session, helper, critical=True)
    _past_due()
    assert _run().retried == 1
    [first] = _rows(session)
    first_wait = clock.as_utc(first.next_attempt_at) - clock.now()
    assert first.attempts == 1 and first.last_error == "HTTP 503" and first_wait == timedelta(seconds=60)
    assert _run().claimed == 0  # not due yet: no hammering
    clock.advance(first_wait + timedelta(seconds=1))
    assert _run().retried == 1
    [second] = _rows(session)
    assert second.attempts == 2 and clock.as_utc(second.next_attempt_at) - clock.now() == timedelta(seconds=120)
    # The 503 may have come after the platform sent it: its unit stays taken; the 429 gave its back.
    assert _quota(session, helper) == {clock.now().astimezone(clock.SHANGHAI).date().isoformat(): 1}
    clock.advance(timedelta(seconds=121))
    assert _run().sent == 1
    assert gateway.attempts[helper.phone] == 3 and len(gateway.delivered_to(helper.phone)) == 1
    assert _rows(session)[0].status == SmsStatus.sent.value
    assert list(_quota(session, helper).values()) == [2]


@pytest.mark.parametrize("error", ["400", "code1"])
def test_a_refused_sms_fails_for_good_and_gives_its_allowance_back(
    session: Session, gateway: FakeSmsGateway, error: str
) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    gateway.always_fail(helper.phone, error)
    notify(session, helper, critical=True)
    _past_due()
    assert _run().failed == 1
    [row] = _rows(session)
    assert row.status == SmsStatus.failed.value and row.attempts == 1
    assert helper.phone not in (row.last_error or "")
    assert list(_quota(session, helper).values()) == [0]
    clock.advance(timedelta(hours=2))
    _run()
    assert gateway.attempts[helper.phone] == 1


def test_retries_stop_after_the_configured_attempts(session: Session, gateway: FakeSmsGateway,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HULEI_SMS_MAX_ATTEMPTS", "2")
    get_settings.cache_clear()
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    gateway.always_fail(helper.phone, "500")
    notify(session, helper, critical=True)
    _past_due()
    for _ in range(3):
        _run()
        clock.advance(timedelta(hours=2))
    [row] = _rows(session)
    assert (row.status, row.attempts) == (SmsStatus.failed.value, 2)
    assert gateway.attempts[helper.phone] == 2


def test_a_worker_killed_after_claiming_loses_nothing_and_the_next_sends_once(
    session: Session, gateway: FakeSmsGateway
) -> None:
    from backend.notifications.fallback import claim_sms

    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    notify(session, helper, critical=True)
    _past_due()
    with _worker() as s:
        schedule_sms_fallbacks(s)
        assert len(claim_sms(s, worker="doomed", limit=5)[2]) == 1  # the process "dies" here
    assert _run().claimed == 0  # the lease still holds
    clock.advance(timedelta(seconds=get_settings().push_lease_seconds + 1))
    assert _run().sent == 1
    assert len(gateway.delivered_to(helper.phone)) == 1


def test_no_sms_is_sent_under_a_lease_too_short_to_cover_the_exchange(
    session: Session, gateway: FakeSmsGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another worker may take a row over once its lease ends: a send that could outlast it is not started.
    monkeypatch.setenv("HULEI_PUSH_LEASE_SECONDS", "20")
    monkeypatch.setenv("HULEI_SMS_HTTP_TIMEOUT_SECONDS", "30")
    get_settings.cache_clear()
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    notify(session, helper, critical=True)
    _past_due()
    report = _run()
    assert (report.claimed, report.released, report.sent) == (1, 1, 0)
    assert gateway.requests == []
    [row] = _rows(session)
    assert (row.status, row.claimed_by, row.attempts) == (SmsStatus.pending.value, None, 0)


def test_the_worker_jobs_text_through_the_logging_provider_by_default(session: Session) -> None:
    from backend.core.jobs import run_due_jobs

    sms.clear_sms_providers()
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    notify(session, helper, critical=True)
    _past_due()
    assert get_settings().sms_provider == "log"
    ran = run_due_jobs()
    assert {"notifications.sms_fallback", "notifications.sms_deliver"} <= set(ran)
    [row] = _rows(session)
    if row.status == SmsStatus.pending.value:  # the drain ran before the scan in this round
        clock.advance(timedelta(seconds=6))
        run_due_jobs()
        [row] = _rows(session)
    assert row.status == SmsStatus.sent.value and (row.provider_message_id or "").startswith("log:")


# ---------------------------------------------------------------- the critical events


def _critical(session: Session, kind: str) -> list[Notification]:
    session.expire_all()
    return list(session.execute(select(Notification).where(col(Notification.kind) == kind)
                                .order_by(col(Notification.id))).scalars())


def _assert_critical(rows: list[Notification]) -> None:
    assert rows
    for n in rows:
        assert n.critical is True and n.sms_due_at is not None
        due = clock.as_utc(n.sms_due_at) - clock.as_utc(n.created_at)
        assert due == timedelta(minutes=get_settings().sms_fallback_minutes)


def test_a_mandatory_report_to_the_police_is_critical(client: TestClient, session: Session) -> None:
    town = make_town(session)
    police = make_user(session, town.town, Role.police, agency=Agency.police)
    teacher = make_user(session, town.villages[0], Role.agency_staff, agency=Agency.education)
    seen = (clock.now() - timedelta(hours=2)).astimezone(clock.SHANGHAI).isoformat()
    resp = client.post("/api/v1/mandatory-reports", headers=headers_for(session, teacher),
                       json={"description": "孩子手臂多处淤青", "seen_at": seen, "place": "学校门口"})
    assert resp.status_code == 201, resp.text
    rows = _critical(session, "referral.created")
    _assert_critical(rows)
    assert [n.user_id for n in rows] == [police.id]


def test_a_referral_overdue_at_the_police_is_critical(client: TestClient, session: Session) -> None:
    from backend.escalations.service import check_referral_deadlines

    clock.freeze(datetime.now(UTC) - timedelta(days=10))  # tokens are never issued "in the future"
    town = make_town(session)
    make_user(session, town.town, Role.police, agency=Agency.police)
    coordinator = make_user(session, town.town, Role.coordinator)
    teacher = make_user(session, town.villages[0], Role.agency_staff, agency=Agency.education)
    seen = (clock.now() - timedelta(hours=2)).astimezone(clock.SHANGHAI).isoformat()
    filed = client.post("/api/v1/mandatory-reports", headers=headers_for(session, teacher),
                        json={"description": "孩子手臂多处淤青", "seen_at": seen, "place": "学校门口"})
    assert filed.status_code == 201, filed.text
    clock.advance(timedelta(hours=get_settings().referral_receive_hours, minutes=1))
    with _worker() as s:
        assert check_referral_deadlines(s)
        s.commit()
    rows = _critical(session, "referral.overdue")
    _assert_critical(rows)
    assert [n.user_id for n in rows] == [coordinator.id]


def test_an_overdue_service_is_critical(client: TestClient, session: Session) -> None:
    from backend.service_plans import service as service_plans
    from tests.registry.factories import make_world
    from tests.service_plans.factories import case_of_new_child, plan

    w = make_world(client, session)
    case = case_of_new_child(client, session, w.coordinator, w.town.grids[0][0])
    due = (clock.now().astimezone(clock.SHANGHAI).date() + timedelta(days=1)).isoformat()
    plan(client, w.coordinator, case["id"], "legal_aid", due_on=due)
    clock.advance(timedelta(days=2))
    assert service_plans.notify_overdue(session) == 1
    session.commit()
    _assert_critical(_critical(session, "service.overdue"))


def test_a_2112_incident_overdue_is_critical(client: TestClient, session: Session) -> None:
    from backend.incidents.service import check_deadlines

    town = make_town(session)
    province = make_user(session, town.province, Role.coordinator)
    resp = client.post("/api/v1/incidents", json={"title": "网络舆情线索", "summary": "待核实"},
                       headers=headers_for(session, province))
    assert resp.status_code == 201, resp.text
    clock.advance(timedelta(minutes=get_settings().incident_province_to_city_minutes + 1))
    assert check_deadlines(session)
    session.commit()
    rows = _critical(session, "incident.overdue")
    _assert_critical(rows)
    assert [n.user_id for n in rows] == [province.id]


def test_a_2112_handoff_tells_the_receiving_units_coordinators_critically(
    client: TestClient, session: Session
) -> None:
    town = make_town(session)
    province, city, county = (make_user(session, unit, Role.coordinator)
                              for unit in (town.province, town.city, town.county))
    village = make_user(session, town.villages[0], Role.coordinator)
    incident = client.post("/api/v1/incidents", json={"title": "网络舆情线索", "summary": "待核实"},
                           headers=headers_for(session, province)).json()
    iid = incident["id"]
    assert client.post(f"/api/v1/incidents/{iid}/handoffs", json={"to_unit_ids": [town.city.id]},
                       headers=headers_for(session, province)).status_code == 200
    [to_city] = _critical(session, "incident.handoff")
    _assert_critical([to_city])
    assert to_city.user_id == city.id
    assert to_city.data == {"incident_id": str(iid), "step": "province_to_city", "unit_id": str(town.city.id)}
    client.post(f"/api/v1/incidents/{iid}/handoffs", json={"to_unit_ids": [town.county.id]},
                headers=headers_for(session, city))
    # The town has no coordinator of its own: the nearest above (the county) is told for it.
    client.post(f"/api/v1/incidents/{iid}/handoffs", json={"to_unit_ids": [town.town.id, town.villages[0].id]},
                headers=headers_for(session, county))
    told = [(n.user_id, n.data["step"], n.data["unit_id"]) for n in _critical(session, "incident.handoff")]
    assert told == [(city.id, "province_to_city", str(town.city.id)),
                    (county.id, "city_to_county", str(town.county.id)),
                    (county.id, "county_to_local", str(town.town.id)),
                    (village.id, "county_to_local", str(town.villages[0].id))]
    _assert_critical(_critical(session, "incident.handoff"))


def test_help_offered_for_a_child_at_major_risk_is_critical_and_for_lower_risk_is_not(
    client: TestClient, session: Session
) -> None:
    from tests.helpers.factories import grid_point, make_child, make_helper, raise_risk

    town = make_town(session)
    coordinator = make_user(session, town.town, Role.coordinator)
    severe = make_child(session, town.grids[0][0], sex="male", at=grid_point(0, 0))
    lower = make_child(session, town.grids[1][0], sex="male", at=grid_point(1, 0))
    for at in (grid_point(0, 0, east=0.55), grid_point(0, 1), grid_point(1, 0, east=0.55)):
        make_helper(session, town.town, sex="male", at=at)
    raise_risk(session, severe, RiskLevel.severe)
    raise_risk(session, lower, RiskLevel.major)
    coord = headers_for(session, coordinator)
    proposals = client.post("/api/v1/helpers/proposals", headers=coord).json()
    assert {p["child_id"] for p in proposals} == {severe.id, lower.id}
    for p in proposals:
        assert client.post(f"/api/v1/helpers/assignments/{p['id']}/confirm", headers=coord).status_code == 200
    by_assignment = {p["id"]: p["child_id"] for p in proposals}
    offered = _critical(session, "assignment.offered")
    assert len(offered) == len(proposals)
    for n in offered:
        assert n.critical is (by_assignment[int(n.data["assignment_id"])] == severe.id)
    _assert_critical([n for n in offered if n.critical])


# ---------------------------------------------------------------- one SMS for a burst (短信合并)


def _file_reports(client: TestClient, session: Session, teacher: User, count: int, every: timedelta) -> None:
    """`count` mandatory reports filed through the app by one teacher, `every` apart."""
    for i in range(count):
        seen = (clock.now() - timedelta(hours=1)).astimezone(clock.SHANGHAI).isoformat()
        resp = client.post("/api/v1/mandatory-reports", headers=headers_for(session, teacher),
                           json={"description": f"孩子手臂多处淤青（第{'一二三四五六七八九十'[i % 10]}次看到）",
                                 "seen_at": seen, "place": "学校门口"})
        assert resp.status_code == 201, resp.text
        clock.advance(every)


def _unread_critical(session: Session, user: User) -> list[Notification]:
    session.expire_all()
    return list(session.execute(select(Notification).where(
        col(Notification.user_id) == user.id, col(Notification.critical).is_(True),
        col(Notification.read_at).is_(None))).scalars())


def test_a_burst_of_reports_texts_the_officer_once_and_spends_one_of_the_days_allowance(
    client: TestClient, session: Session, gateway: FakeSmsGateway
) -> None:
    clock.freeze(datetime(2026, 6, 1, 2, 0, tzinfo=UTC))  # 10:00 in Beijing: the day does not turn
    town = make_town(session)
    police = make_user(session, town.town, Role.police, agency=Agency.police)
    coordinator = make_user(session, town.town, Role.coordinator)
    teacher = make_user(session, town.villages[0], Role.agency_staff, agency=Agency.education)
    _file_reports(client, session, teacher, 11, every=timedelta(seconds=22))  # 11 reports in 4 minutes
    assert len(_unread_critical(session, police)) == 11
    # The worker runs every few seconds while the reports come due one after another, as in production.
    clock.advance(timedelta(minutes=get_settings().sms_fallback_minutes) - 11 * timedelta(seconds=22))
    for _ in range(30):
        _run()
        clock.advance(timedelta(seconds=10))
    assert len(gateway.delivered_to(police.phone)) == 1
    assert _quota(session, police) == {"2026-06-01": 1}
    assert Counter(r.status for r in _rows(session)) == {"sent": 1, "coalesced": 10}
    # What the coordinator sees: one SMS sent, the other ten covered by it.
    resp = client.get("/api/v1/notifications/delivery", params={"user_id": police.id},
                      headers=headers_for(session, coordinator))
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    assert Counter(i["sms"]["status"] for i in items) == {"sent": 1, "coalesced": 10}
    assert {i["status"] for i in items} == {"sms_sent"}
    assert all(i["sms"]["sent_at"] is None for i in items if i["sms"]["status"] == "coalesced")
    health = client.get("/api/v1/notifications/channels/health", headers=headers_for(session, coordinator))
    assert health.status_code == 200, health.text
    sms = health.json()["sms"]
    assert (sms["sent"], sms["coalesced"], sms["failed"]) == (1, 10, 0)  # folded SMS are no failures


def test_once_the_officer_has_read_something_after_the_sms_a_new_critical_notification_gets_its_own(
    client: TestClient, session: Session, gateway: FakeSmsGateway
) -> None:
    town = make_town(session)
    police = make_user(session, town.town, Role.police, agency=Agency.police)
    first = notify(session, police, critical=True) + notify(session, police, critical=True)
    clock.advance(timedelta(minutes=10))
    notify(session, police, critical=True)  # written before the SMS goes out, due after it
    clock.advance(timedelta(minutes=get_settings().sms_fallback_minutes - 10, seconds=1))
    _run()
    assert len(gateway.delivered_to(police.phone)) == 1
    # Still not opened: the one that existed when the SMS went out rides on it when it comes due.
    clock.advance(timedelta(minutes=10))
    assert _run().coalesced == 1
    assert len(gateway.delivered_to(police.phone)) == 1
    # The officer opens one of them in the app; the others stay unread.
    clock.advance(timedelta(minutes=1))
    resp = client.post(f"/api/v1/notifications/{first[0].id}/read", headers=headers_for(session, police))
    assert resp.status_code == 200, resp.text
    notify(session, police, critical=True)
    _past_due()
    assert _run().sent == 1
    assert len(gateway.delivered_to(police.phone)) == 2
    assert list(_quota(session, police).values()) == [2]


def test_when_the_window_has_passed_a_new_critical_notification_is_texted_again(
    session: Session, gateway: FakeSmsGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HULEI_SMS_COALESCE_MINUTES", "10")
    get_settings.cache_clear()
    clock.freeze(datetime(2026, 6, 1, 2, 0, tzinfo=UTC))
    town = make_town(session)
    police = make_user(session, town.town, Role.police, agency=Agency.police)
    notify(session, police, critical=True)
    clock.advance(timedelta(minutes=5))
    notify(session, police, critical=True)  # due 5 minutes after the first SMS
    clock.advance(timedelta(minutes=10))
    notify(session, police, critical=True)  # due 15 minutes after it; all three exist before it
    clock.advance(timedelta(minutes=get_settings().sms_fallback_minutes - 15, seconds=1))
    _run()
    texted_at = clock.now()
    clock.advance(timedelta(minutes=5))
    assert _run().coalesced == 1  # inside the window, nothing read: covered by the first SMS
    clock.advance(timedelta(minutes=10))
    assert clock.now() - texted_at > timedelta(minutes=10)  # never read in between
    assert _run().sent == 1
    assert len(gateway.delivered_to(police.phone)) == 2
    assert _quota(session, police) == {"2026-06-01": 2}


def test_with_coalescing_switched_off_each_critical_notification_has_its_own_sms(
    session: Session, gateway: FakeSmsGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HULEI_SMS_COALESCE_MINUTES", "0")
    get_settings.cache_clear()
    town = make_town(session)
    police = make_user(session, town.town, Role.police, agency=Agency.police)
    for _ in range(4):
        notify(session, police, critical=True)
    _past_due()
    assert _run().sent == 4
    notify(session, police, critical=True)
    _past_due()
    assert _run().sent == 1
    assert len(gateway.delivered_to(police.phone)) == 5
    assert {r.status for r in _rows(session)} == {"sent"}


def test_an_sms_that_fails_for_good_does_not_take_the_other_unread_notifications_down_with_it(
    session: Session, gateway: FakeSmsGateway
) -> None:
    town = make_town(session)
    police = make_user(session, town.town, Role.police, agency=Agency.police)
    gateway.fail_next(police.phone, "400")
    for _ in range(3):
        notify(session, police, critical=True)
    _past_due()
    report = _run()
    assert (report.failed, report.sent, report.coalesced) == (1, 1, 1)
    assert gateway.attempts[police.phone] == 2 and len(gateway.delivered_to(police.phone)) == 1
    assert list(_quota(session, police).values()) == [1]


def _two_workers_at_once() -> None:
    """Two workers scanning and sending at the same moment, then one more pass for what they set aside."""
    errors: list[BaseException] = []
    deadline = time.monotonic() + 8
    start = threading.Barrier(2)

    def work(name: str) -> None:
        try:
            start.wait(5)
            with _worker() as s:
                for _ in range(4):
                    schedule_sms_fallbacks(s)
                    deliver_sms(s, worker=name, limit=3, time_budget_seconds=2)
                    if time.monotonic() > deadline:
                        return
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    clock.advance(timedelta(minutes=1))  # rows set aside while another SMS was on the wire come due again
    with _worker() as s:
        deliver_sms(s, time_budget_seconds=2)


def test_two_workers_over_a_burst_text_each_person_once_and_never_past_the_cap(
    client: TestClient, session: Session, gateway: FakeSmsGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HULEI_SMS_DAILY_CAP", "2")
    get_settings.cache_clear()
    clock.freeze(datetime(2026, 6, 1, 2, 0, tzinfo=UTC))  # 10:00 in Beijing: one China day throughout
    town = make_town(session)
    users = [make_user(session, town.town, Role.helper) for _ in range(4)]

    def burst(size: int) -> None:
        for _ in range(size):
            notify(session, *users, critical=True)
        _past_due()
        _two_workers_at_once()

    def each_reads_one() -> None:
        clock.advance(timedelta(minutes=1))
        for u in users:
            resp = client.post(f"/api/v1/notifications/{_unread_critical(session, u)[0].id}/read",
                               headers=headers_for(session, u))
            assert resp.status_code == 200, resp.text

    burst(8)
    assert Counter(str(body["phone"]) for body in gateway.delivered) == {u.phone: 1 for u in users}
    assert Counter(r.status for r in _rows(session)) == {"sent": 4, "coalesced": 28}
    each_reads_one()
    burst(3)  # read since the SMS: one more each, the second of the day
    assert Counter(str(body["phone"]) for body in gateway.delivered) == {u.phone: 2 for u in users}
    each_reads_one()
    burst(3)  # the cap (2) is reached: no third SMS
    assert Counter(str(body["phone"]) for body in gateway.delivered) == {u.phone: 2 for u in users}
    assert set(Counter(r["body"]["requestId"] for r in gateway.requests).values()) == {1}  # nothing arrived twice
    assert Counter(r.status for r in _rows(session)) == {"sent": 8, "coalesced": 28 + 8, "capped": 12}
    assert {q.sent for q in session.execute(select(SmsQuota)).scalars()} == {2}


def test_a_report_filed_after_the_officers_sms_went_out_gets_its_own_sms(
    client: TestClient, session: Session, gateway: FakeSmsGateway
) -> None:
    # The tester's case: an SMS covers only what existed when it was sent. The officer may have
    # dealt with the first report's SMS already; the second report's push never reached the phone
    # (no device here), so without its own SMS nobody would tell them.
    clock.freeze(datetime(2026, 6, 1, 2, 0, tzinfo=UTC))
    town = make_town(session)
    police = make_user(session, town.town, Role.police, agency=Agency.police)
    coordinator = make_user(session, town.town, Role.coordinator)
    teacher = make_user(session, town.villages[0], Role.agency_staff, agency=Agency.education)
    _file_reports(client, session, teacher, 1, every=timedelta(0))
    _past_due()
    assert _run().sent == 1
    clock.advance(timedelta(minutes=5))
    _file_reports(client, session, teacher, 1, every=timedelta(0))  # inside the coalescing window, nothing read
    _past_due()
    report = _run()
    assert (report.sent, report.coalesced) == (1, 0)
    assert len(gateway.delivered_to(police.phone)) == 2
    assert [r.status for r in _rows(session)] == ["sent", "sent"]
    items = client.get("/api/v1/notifications/delivery", params={"user_id": police.id},
                       headers=headers_for(session, coordinator)).json()["items"]
    assert [(i["status"], i["sms"]["status"]) for i in items] == [("sms_sent", "sent")] * 2
    assert all(i["sms"]["sent_at"] is not None for i in items)


# ---------------------------------------------------------------- a gateway that leaves us in doubt


def test_a_gateway_that_sends_and_then_answers_5xx_never_texts_one_person_past_the_daily_cap(
    session: Session, gateway: FakeSmsGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HULEI_SMS_DAILY_CAP", "2")
    get_settings.cache_clear()
    clock.freeze(datetime(2026, 6, 1, 2, 0, tzinfo=UTC))  # 10:00 in Beijing: one China day throughout
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    gateway.always_fail(helper.phone, "sent503")  # every attempt reaches the phone, every answer is 503
    notify(session, helper, critical=True)
    _past_due()
    for _ in range(8):
        _run()
        clock.advance(timedelta(minutes=30))
    # Each attempt that may have arrived keeps its unit: the cap bounds what reached the phone.
    assert len(gateway.delivered_to(helper.phone)) == 2
    assert _quota(session, helper) == {"2026-06-01": 2}
    [row] = _rows(session)
    assert (row.status, row.attempts) == (SmsStatus.capped.value, 2)


def test_a_slow_gateway_texts_once_and_the_coordinator_sees_the_sms_unconfirmed(
    client: TestClient, session: Session, gateway: FakeSmsGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HULEI_SMS_HTTP_TIMEOUT_SECONDS", "0.3")
    get_settings.cache_clear()
    clock.freeze(datetime(2026, 6, 1, 2, 0, tzinfo=UTC))
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    coordinator = make_user(session, town.town, Role.coordinator)
    gateway.always_fail(helper.phone, "slow")  # accepts and sends, answers after a second
    notify(session, helper, critical=True)
    _past_due()
    assert _run().unconfirmed == 1
    for _ in range(3):
        clock.advance(timedelta(hours=1))
        assert _run().claimed == 0  # never resent: the SMS may well have arrived
    assert gateway.attempts[helper.phone] == 1 and len(gateway.delivered_to(helper.phone)) == 1
    assert _quota(session, helper) == {"2026-06-01": 1}
    [row] = _rows(session)
    assert (row.status, row.attempts, row.sent_at, row.last_error) == (
        SmsStatus.unconfirmed.value, 1, None, "ReadTimeout")
    coord = headers_for(session, coordinator)
    [item] = client.get("/api/v1/notifications/delivery", params={"user_id": helper.id}, headers=coord).json()["items"]
    assert item["sms"] == {"status": "unconfirmed", "sent_at": None}
    health = client.get("/api/v1/notifications/channels/health", headers=coord).json()["sms"]
    assert (health["unconfirmed"], health["sent"], health["failed"], health["health"]) == (1, 0, 0, "degraded")


def test_while_the_gateway_answers_5xx_a_pass_tries_one_sms_per_person(
    session: Session, gateway: FakeSmsGateway
) -> None:
    clock.freeze(datetime(2026, 6, 1, 2, 0, tzinfo=UTC))
    town = make_town(session)
    police = make_user(session, town.town, Role.police, agency=Agency.police)
    helper = make_user(session, town.town, Role.helper)
    gateway.always_fail(police.phone, "sent503")  # sends, then says it failed
    for _ in range(3):
        notify(session, police, helper, critical=True)
    _past_due()
    report = _run()
    assert (report.retried, report.set_aside, report.sent, report.coalesced) == (1, 2, 1, 2)
    assert gateway.attempts[police.phone] == 1 and len(gateway.delivered_to(police.phone)) == 1
    waiting = [r for r in _rows(session) if r.user_id == police.id]
    assert {r.status for r in waiting} == {SmsStatus.pending.value}
    assert len({r.next_attempt_at for r in waiting}) == 1  # all wait for the same retry
    clock.advance(timedelta(seconds=61))
    _run()
    assert gateway.attempts[police.phone] == 2
    gateway.permanent.clear()  # the gateway recovers
    clock.advance(timedelta(minutes=3))
    _run()
    assert gateway.attempts[police.phone] == 3
    assert Counter(r.status for r in _rows(session) if r.user_id == police.id) == {"sent": 1, "coalesced": 2}


def test_a_de_duplicating_gateway_never_drops_a_real_sms_after_the_database_was_reset(
    session: Session, gateway: FakeSmsGateway
) -> None:
    gateway.dedupe = True
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    [n] = notify(session, helper, critical=True)
    _past_due()
    assert _run().sent == 1
    [first] = _rows(session)
    # A reset database numbers its outbox from the start again: the next SMS row gets the same id.
    _read(session, n)
    session.execute(delete(SmsOutbox))
    session.commit()
    clock.advance(timedelta(hours=3))
    notify(session, helper, critical=True)
    _past_due()
    with _worker() as s:
        assert schedule_sms_fallbacks(s) == 1
    session.execute(update(SmsOutbox).values(id=first.id))
    session.commit()
    assert _run().sent == 1
    assert len(gateway.delivered_to(helper.phone)) == 2
    assert len({r["body"]["requestId"] for r in gateway.requests}) == 2
