"""The monthly due rule is a campaign setting: by default seed 002's reading (每月17日前报送当月: the 17th of
the month itself); a county coordinator may switch to the following month. Every monthly due date and the
dashboard's report month follow it, whatever the hour in China."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.core import clock
from tests.factories import make_town, sign_in, user_client
from tests.report_submissions.support import API, audited, media_root, ok, states


@pytest.fixture(autouse=True)
def _media(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    media_root(tmp_path, monkeypatch)


def _report_month(client: TestClient, unit_id: int | None = None) -> str:
    params = {"unit_id": unit_id} if unit_id is not None else {}
    month: str = ok(client.get(f"{API}/dashboard/config", params=params))["report_month"]
    return month


def test_the_due_rule_both_ways_with_the_clock_moved(client: TestClient, session: Session) -> None:
    # 07:30 China time on 1 May is still 30 April in UTC.
    clock.freeze(datetime(2026, 4, 30, 23, 30, tzinfo=UTC))
    town = make_town(session)
    village = town.villages[0]
    t = user_client(client, session, town.town, Role.coordinator)
    county = user_client(client, session, town.county, Role.coordinator)

    [current] = [c for c in ok(client.get(f"{API}/campaigns", headers=t.headers)) if c["id"] is None]
    assert (current["report_due_rule"], current["report_due_day"]) == ("same_month", 17)
    assert _report_month(client) == "2026-05"  # the month being reported is the current China month
    april = states(client, t.headers, "/reports/monthly/status", month="2026-04")[village.id or 0]
    assert (april["state"], april["due_date"]) == ("late", "2026-04-17")

    # A town cannot change the rule; the county can.
    body = {"year": 2026, "report_due_rule": "following_month", "report_due_day": 17}
    refused = client.put(f"{API}/campaigns/report-due-rule", json=body, headers=t.headers)
    assert refused.status_code == 403 and refused.json()["code"] == "report-due-rule-county-only"
    changed = ok(client.put(f"{API}/campaigns/report-due-rule", json=body, headers=county.headers))
    assert (changed["report_due_rule"], changed["id"] is not None) == ("following_month", True)
    assert audited(session, "campaign.report_due_rule", changed["id"]) == 1

    # The county's rule is its own: the month its units report is the previous China month; elsewhere
    # (the page before it knows the unit) the year's campaign's rule still holds.
    assert _report_month(client, village.id) == "2026-04"
    assert _report_month(client) == "2026-05"
    april = states(client, t.headers, "/reports/monthly/status", month="2026-04")[village.id or 0]
    assert (april["state"], april["due_date"]) == ("pending", "2026-05-17")
    report = ok(client.post(f"{API}/reports/monthly", json={"month": "2026-04", "unit_id": village.id},
                            headers=t.headers), 201)
    assert report["due_date"] == "2026-05-17"

    # 23:30 China time on 17 May: still in time under following_month; the next day it is late.
    clock.advance(datetime(2026, 5, 17, 15, 30, tzinfo=UTC) - clock.now())
    t, county = sign_in(client, t.user), sign_in(client, county.user)
    assert states(client, t.headers, "/reports/monthly/status", month="2026-04")[village.id or 0]["state"] == \
        "generated"
    clock.advance(datetime(2026, 5, 17, 16, 0, tzinfo=UTC) - clock.now())  # 00:00 on 18 May in China
    t, county = sign_in(client, t.user), sign_in(client, county.user)
    assert states(client, t.headers, "/reports/monthly/status", month="2026-04")[village.id or 0]["state"] == "late"

    # Back to the seed's reading, with another day: the month itself, the 10th.
    back = ok(client.put(f"{API}/campaigns/report-due-rule", json={**body, "report_due_rule": "same_month",
                                                                    "report_due_day": 10}, headers=county.headers))
    assert (back["report_due_rule"], back["report_due_day"]) == ("same_month", 10)
    assert _report_month(client) == "2026-05"
    may = states(client, t.headers, "/reports/monthly/status", month="2026-05")[village.id or 0]
    assert (may["state"], may["due_date"]) == ("late", "2026-05-10")
    wrong = client.put(f"{API}/campaigns/report-due-rule", json={**body, "report_due_rule": "weekly"},
                       headers=county.headers)
    assert wrong.status_code == 422
