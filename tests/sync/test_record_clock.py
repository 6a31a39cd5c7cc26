"""Which clock places a record in a reporting period (sync.md "Which clock counts").

A phone's own clock places what it recorded offline, days later, in the right month; a phone clock
that cannot be right (ahead of the server, before the campaign, months back) is flagged
`clock_suspect` and the record is placed by the time the server received it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.core import clock
from backend.core.config import get_settings
from backend.venues.models import VenueType
from tests.factories import sign_in
from tests.registry.factories import (
    child_item,
    grid_centre,
    household_item,
    make_world,
    push,
    seed_household,
    statuses,
    visit_item,
)
from tests.venues.factories import inspection_body, make_venue
from tests.xlsx_support import read_workbook

CST = clock.SHANGHAI
# The server's "now" in these tests: 30 November 2026, 10:00 in China.
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=CST)


@pytest.fixture(autouse=True)
def _media_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HULEI_MEDIA_ROOT", str(tmp_path / "media"))
    get_settings.cache_clear()


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _village(client: TestClient, headers: dict[str, str], month: str, name: str = "青山村") -> dict[str, Any]:
    resp = client.get("/api/v1/coverage", params={"month": month, "zoom": 13}, headers=headers)
    assert resp.status_code == 200, resp.text
    units = {f["properties"]["name"]: f["properties"] for f in resp.json()["features"]
             if f["properties"]["kind"] == "unit"}
    return units[name]


def _report(client: TestClient, headers: dict[str, str], month: str) -> tuple[dict[str, Any], Any]:
    resp = client.post("/api/v1/reports/monthly", json={"month": month}, headers=headers)
    assert resp.status_code == 201, resp.text
    report = resp.json()
    book = read_workbook(client.get(report["xlsx_url"], headers=headers).content)
    return report, book


def test_a_household_and_visit_recorded_offline_on_31_october_count_in_october_when_pushed_on_30_november(
    client: TestClient, session: Session
) -> None:
    clock.freeze(NOW)
    w = make_world(client, session)
    registered = datetime(2026, 10, 31, 23, 0, tzinfo=CST)
    visited = datetime(2026, 10, 31, 23, 30, tzinfo=CST)
    h = household_item(0, device_time=registered.isoformat())
    kid = child_item(h["client_uuid"], device_time=registered.isoformat())
    v = visit_item(h["client_uuid"], at=grid_centre(0), device_time=visited.isoformat())
    body = push(client, w.volunteer_a, [h, kid, v])
    assert statuses(body) == ["created"] * 3, body
    household, child, visit = (r["record"] for r in body["results"])
    assert (household["counted_at"], household["clock_suspect"]) == (_utc(registered), False)
    assert (child["counted_at"], child["clock_suspect"]) == (_utc(registered), False)
    assert (visit["counted_at"], visit["clock_suspect"]) == (_utc(visited), False)

    coordinator = w.coordinator
    october = _village(client, coordinator.headers, "2026-10")
    assert (october["households"], october["visited"], october["never_visited"]) == (1, 1, 0)
    november = _village(client, coordinator.headers, "2026-11")
    assert (november["households"], november["visited"]) == (1, 0)

    report, book = _report(client, coordinator.headers, "2026-10")
    assert (report["figures"]["households"], report["figures"]["visited"]) == (1, 1)
    visits = {r[1]: r for r in book["走访"].iter_rows(values_only=True)}
    assert visits["青山村"][2:4] == (1, 1)  # one visit, outcome visited
    report, _ = _report(client, coordinator.headers, "2026-11")
    assert (report["figures"]["households"], report["figures"]["visited"]) == (1, 0)


def test_a_phone_clock_in_1970_or_400_days_ahead_is_flagged_and_placed_by_receipt(
    client: TestClient, session: Session
) -> None:
    clock.freeze(NOW)
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    fine = visit_item(home["uuid"], at=grid_centre(0), device_time=(NOW - timedelta(hours=2)).isoformat())
    epoch = visit_item(home["uuid"], at=grid_centre(0), device_time="1970-01-01T08:00:00+08:00")
    ahead = visit_item(home["uuid"], at=grid_centre(0), device_time=(NOW + timedelta(days=400)).isoformat())
    body = push(client, w.volunteer_a, [fine, epoch, ahead])
    assert statuses(body) == ["created"] * 3
    records = [r["record"] for r in body["results"]]
    assert [r["clock_suspect"] for r in records] == [False, True, True]
    assert [r["counted_at"] for r in records] == [_utc(NOW - timedelta(hours=2)), _utc(NOW), _utc(NOW)]
    assert records[1]["received_at"] == _utc(NOW)

    # The stored visit keeps what the phone said, beside where it counts.
    read = client.get(f"/api/v1/visits/{records[2]['id']}", headers=w.volunteer_a.headers).json()
    assert read["device_time"] == _utc(NOW + timedelta(days=400))
    assert (read["counted_at"], read["clock_suspect"]) == (_utc(NOW), True)
    # A resend answers duplicate with the same placement (nothing is placed twice).
    again = push(client, w.volunteer_a, [epoch])
    assert statuses(again) == ["duplicate"]
    assert (again["results"][0]["record"]["counted_at"], again["results"][0]["record"]["clock_suspect"]) == (
        _utc(NOW), True)

    # Coordinators find them.
    suspect = client.get("/api/v1/visits", params={"clock_suspect": True}, headers=w.coordinator.headers)
    assert suspect.status_code == 200, suspect.text
    assert sorted(v["client_uuid"] for v in suspect.json()) == sorted([epoch["client_uuid"], ahead["client_uuid"]])
    assert len(client.get("/api/v1/visits", headers=w.coordinator.headers).json()) == 3


def test_a_visit_with_a_phone_clock_far_ahead_still_takes_the_household_off_this_months_to_do_list(
    client: TestClient, session: Session
) -> None:
    clock.freeze(NOW)
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    other, _ = seed_household(client, w.volunteer_a)
    ahead = visit_item(home["uuid"], at=grid_centre(0), device_time="2099-01-01T09:00:00+08:00")
    push(client, w.volunteer_a, [ahead])
    listed = client.get("/api/v1/coverage/not-visited", params={"month": "2026-11"}, headers=w.coordinator.headers)
    assert listed.status_code == 200, listed.text
    assert [i["household_id"] for i in listed.json()["items"]] == [other["id"]]
    assert _village(client, w.coordinator.headers, "2026-11")["visited"] == 1


def test_a_phone_offline_for_five_days_is_trusted(client: TestClient, session: Session) -> None:
    clock.freeze(datetime(2026, 12, 3, 10, 0, tzinfo=CST))
    w = make_world(client, session)
    seed_household(client, w.volunteer_a)  # registered online today
    recorded = datetime(2026, 11, 28, 16, 0, tzinfo=CST)
    h = household_item(0, device_time=recorded.isoformat())
    v = visit_item(h["client_uuid"], at=grid_centre(0), device_time=(recorded + timedelta(minutes=30)).isoformat())
    body = push(client, w.volunteer_a, [h, v])
    assert statuses(body) == ["created", "created"]
    assert [(r["record"]["counted_at"], r["record"]["clock_suspect"]) for r in body["results"]] == [
        (_utc(recorded), False), (_utc(recorded + timedelta(minutes=30)), False)]
    november = _village(client, w.coordinator.headers, "2026-11")
    # The household registered offline and its visit count in November; the one registered today, December.
    assert (november["households"], november["visited"]) == (1, 1)
    december = _village(client, w.coordinator.headers, "2026-12")
    assert (december["households"], december["visited"]) == (2, 0)
    pull = client.get("/api/v1/sync/pull", headers=w.volunteer_a.headers).json()
    pulled = {i["record"]["uuid"]: i["record"] for i in pull["items"] if i["kind"] == "household"}
    assert (pulled[h["client_uuid"]]["counted_at"], pulled[h["client_uuid"]]["clock_suspect"]) == (
        _utc(recorded), False)


def test_the_bounds_are_inclusive_and_configurable(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock.freeze(NOW)
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)

    def placed(at: datetime) -> tuple[str, bool]:
        body = push(client, w.volunteer_a, [visit_item(home["uuid"], at=grid_centre(0), device_time=at.isoformat())])
        record = body["results"][0]["record"]
        return record["counted_at"], record["clock_suspect"]

    second = timedelta(seconds=1)
    # Ten minutes ahead is a clock running fast, not a wrong one: trusted, but never counted after receipt.
    assert placed(NOW + timedelta(minutes=10)) == (_utc(NOW), False)
    assert placed(NOW + timedelta(minutes=10) + second) == (_utc(NOW), True)
    # 90 days back is an offline phone; a second more is a clock that was reset.
    assert placed(NOW - timedelta(days=90)) == (_utc(NOW - timedelta(days=90)), False)
    assert placed(NOW - timedelta(days=90) - second) == (_utc(NOW), True)

    monkeypatch.setenv("HULEI_DEVICE_CLOCK_EARLIEST_DATE", "2026-11-01")
    monkeypatch.setenv("HULEI_DEVICE_CLOCK_MAX_AHEAD_MINUTES", "60")
    get_settings.cache_clear()
    start = datetime(2026, 11, 1, tzinfo=CST)  # the earliest date begins at midnight in China
    assert placed(start) == (_utc(start), False)
    assert placed(start - second) == (_utc(NOW), True)
    assert placed(NOW + timedelta(minutes=59)) == (_utc(NOW), False)


def test_registry_records_created_with_a_wrong_phone_clock_are_flagged_and_edits_keep_their_placement(
    client: TestClient, session: Session
) -> None:
    clock.freeze(NOW)
    w = make_world(client, session)
    h = household_item(0, device_time="1970-01-01T08:00:00+08:00")
    kid = child_item(h["client_uuid"], device_time=(NOW + timedelta(days=400)).isoformat())
    plain = household_item(0)  # an app that sends no device time: placed by receipt, not suspect
    body = push(client, w.volunteer_a, [h, kid, plain])
    assert statuses(body) == ["created"] * 3
    assert [(r["record"]["counted_at"], r["record"]["clock_suspect"]) for r in body["results"]] == [
        (_utc(NOW), True), (_utc(NOW), True), (_utc(NOW), False)]

    clock.freeze(NOW + timedelta(days=3))
    volunteer = sign_in(client, w.volunteer_a.user)
    record = body["results"][2]["record"]
    edit = household_item(0, uid=uuid.UUID(record["uuid"]), base_version=1, address="改过的地址",
                          device_time=(NOW + timedelta(days=3)).isoformat())
    edited = push(client, volunteer, [edit])
    assert statuses(edited) == ["updated"]
    assert (edited["results"][0]["record"]["counted_at"], edited["results"][0]["record"]["clock_suspect"]) == (
        _utc(NOW), False)
    one = client.get(f"/api/v1/households/{record['id']}", headers=volunteer.headers).json()
    assert (one["counted_at"], one["clock_suspect"]) == (_utc(NOW), False)


def test_an_inspection_with_a_phone_clock_far_ahead_counts_in_the_month_it_arrived(
    client: TestClient, session: Session
) -> None:
    clock.freeze(NOW)
    w = make_world(client, session)
    hotel = make_venue(session, w.town, venue_type=VenueType.hotel)
    ahead = inspection_body(hotel, started_at=NOW + timedelta(days=400))
    offline = inspection_body(hotel, started_at=NOW - timedelta(days=3))

    def item(b: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "inspection", "client_uuid": b["client_uuid"],
                "data": {k: v for k, v in b.items() if k != "client_uuid"}}

    body = push(client, w.market, [item(ahead), item(offline)])
    assert statuses(body) == ["created", "created"]
    assert [(datetime.fromisoformat(r["record"]["counted_at"]), r["record"]["clock_suspect"])
            for r in body["results"]] == [(NOW, True), (NOW - timedelta(days=3), False)]
    _, book = _report(client, w.coordinator.headers, "2026-11")
    inspections = {r[1]: r for r in book["场所检查"].iter_rows(values_only=True)}
    assert inspections["青山村"][2] == 2


@pytest.mark.parametrize("absurd", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_a_time_with_no_utc_instant_rejects_only_its_record(client: TestClient, session: Session, absurd: str) -> None:
    """Year 10000 or year 0 in UTC: that record is refused naming the field; the batch is stored."""
    w = make_world(client, session)
    good = household_item(0)
    bad_home = household_item(0, device_time=absurd)
    bad_kid = child_item(good["client_uuid"], device_time=absurd)
    bad_visit = visit_item(good["client_uuid"], at=grid_centre(0), device_time=absurd)
    fine_visit = visit_item(good["client_uuid"], at=grid_centre(0))
    body = push(client, w.volunteer_a, [good, bad_home, bad_kid, bad_visit, fine_visit])
    assert statuses(body) == ["created", "rejected", "rejected", "rejected", "created"], body
    for result in body["results"][1:4]:
        assert [e["field"] for e in result["problem"]["errors"]] == ["device_time"]
