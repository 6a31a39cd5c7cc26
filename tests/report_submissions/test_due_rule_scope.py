"""A change of the due rule never moves the due date a submitted report was judged against (the second
outside test's F4), and a county's rule is its county's only: it sets it on its own copy of the year's
campaign, and cannot touch a campaign run above it, by another county or by no unit."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.campaigns.models import Campaign
from backend.core import clock
from backend.orgunits.models import OrgUnit
from tests.factories import make_town, sign_in, user_client
from tests.report_submissions.support import API, CST, media_root, ok, states

NOVEMBER = "2026-11"
FOLLOWING = {"year": 2026, "report_due_rule": "following_month", "report_due_day": 17}


@pytest.fixture(autouse=True)
def _media(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    media_root(tmp_path, monkeypatch)


def _unit(session: Session, parent: OrgUnit, code: str, level: str) -> OrgUnit:
    unit = OrgUnit(code=code, name=f"另一{level}", level=level, parent_id=parent.id, path="")
    session.add(unit)
    session.flush()
    unit.path = f"{parent.path}{unit.id}/"
    session.add(unit)
    session.commit()
    return unit


def test_a_rule_change_keeps_the_due_date_of_a_judged_report(client: TestClient, session: Session) -> None:
    clock.freeze(datetime(2026, 12, 1, 1, 5, tzinfo=CST))  # 1 December in China: November's 月报 is late
    town = make_town(session)
    t = user_client(client, session, town.town, Role.coordinator)
    county = user_client(client, session, town.county, Role.coordinator)
    v = user_client(client, session, town.villages[0], Role.coordinator)
    report = ok(client.post(f"{API}/reports/monthly", json={"month": NOVEMBER}, headers=t.headers), 201)
    ok(client.post(f"{API}/reports/monthly/{report['id']}/submit", headers=t.headers))
    village = ok(client.post(f"{API}/reports/monthly", json={"month": NOVEMBER}, headers=v.headers), 201)
    before = states(client, county.headers, "/reports/monthly/status", month=NOVEMBER)[town.town.id or 0]
    assert (before["state"], before["due_date"], before["on_time"]) == ("submitted_late", "2026-11-17", False)
    ok(client.post(f"{API}/reports/monthly/{report['id']}/approve", headers=county.headers))

    ok(client.put(f"{API}/campaigns/report-due-rule", json=FOLLOWING, headers=county.headers))
    after = states(client, county.headers, "/reports/monthly/status", month=NOVEMBER)[town.town.id or 0]
    assert (after["state"], after["due_date"], after["on_time"]) == ("approved", "2026-11-17", False)
    generic = states(client, county.headers, "/report-submissions/status", kind="monthly",
                     period=NOVEMBER)[town.town.id or 0]
    assert (generic["due_date"], generic["on_time"]) == ("2026-11-17", False)
    way_up = ok(client.get(f"{API}/report-submissions/{after['submission_id']}", headers=county.headers))
    listed = {r["id"]: r for r in ok(client.get(f"{API}/reports/monthly", params={"month": NOVEMBER},
                                                headers=county.headers))}
    assert way_up["due_date"] == listed[report["id"]]["due_date"] == "2026-11-17"  # all three agree

    # A report not yet sent follows the rule in force: the village's is now due on 17 December, not late,
    # and keeps that date once sent.
    seen = states(client, t.headers, "/reports/monthly/status", month=NOVEMBER)[town.villages[0].id or 0]
    assert (seen["state"], seen["due_date"]) == ("generated", "2026-12-17")
    v = sign_in(client, v.user)
    ok(client.post(f"{API}/reports/monthly/{village['id']}/submit", headers=v.headers))
    seen = states(client, t.headers, "/reports/monthly/status", month=NOVEMBER)[town.villages[0].id or 0]
    assert (seen["state"], seen["due_date"], seen["on_time"]) == ("submitted", "2026-12-17", True)
    ok(client.put(f"{API}/campaigns/report-due-rule", json={**FOLLOWING, "report_due_rule": "same_month"},
                  headers=county.headers))
    seen = states(client, t.headers, "/reports/monthly/status", month=NOVEMBER)[town.villages[0].id or 0]
    assert (seen["state"], seen["due_date"], seen["on_time"]) == ("submitted", "2026-12-17", True)


def test_a_countys_rule_is_its_countys_only(client: TestClient, session: Session) -> None:
    clock.freeze(datetime(2026, 11, 20, 10, 0, tzinfo=CST))
    town = make_town(session)
    other_county = _unit(session, town.city, "T-OTHER-COUNTY", "county")
    other_town = _unit(session, other_county, "T-OTHER-TOWN", "town")
    county = user_client(client, session, town.county, Role.coordinator)
    other = user_client(client, session, other_county, Role.coordinator)
    province = user_client(client, session, town.province, Role.coordinator)
    t = user_client(client, session, town.town, Role.coordinator)

    own = ok(client.put(f"{API}/campaigns/report-due-rule", json=FOLLOWING, headers=county.headers))
    again = ok(client.put(f"{API}/campaigns/report-due-rule", json={**FOLLOWING, "report_due_day": 20},
                          headers=county.headers))
    assert again["id"] == own["id"] and again["report_due_day"] == 20  # its one own campaign of the year
    assert states(client, county.headers, "/reports/monthly/status", month=NOVEMBER)[town.town.id or 0][
        "due_date"] == "2026-12-20"
    # The other county still has the default: its town is due on 17 November, and late.
    seen = states(client, other.headers, "/reports/monthly/status", month=NOVEMBER)[other_town.id or 0]
    assert (seen["state"], seen["due_date"]) == ("late", "2026-11-17")

    # Nobody changes the rule of a campaign run by another county, run above it, or run by no unit.
    refused = client.put(f"{API}/campaigns/report-due-rule", json={**FOLLOWING, "campaign_id": own["id"]},
                         headers=other.headers)
    assert refused.status_code == 403 and refused.json()["code"] == "report-due-rule-jurisdiction"
    top = ok(client.put(f"{API}/campaigns/report-due-rule", json={**FOLLOWING, "report_due_rule": "same_month",
                                                                    "report_due_day": 10}, headers=province.headers))
    assert top["code"] == "lijian-hulei-2026"  # the province's is the year's default itself
    nobodys = Campaign(code="T-NOBODY", name="无单位", start_date=date(2026, 1, 1), end_date=date(2026, 1, 31))
    session.add(nobodys)
    session.commit()
    for campaign_id in (top["id"], nobodys.id):
        refused = client.put(f"{API}/campaigns/report-due-rule", json={**FOLLOWING, "campaign_id": campaign_id},
                             headers=county.headers)
        assert refused.status_code == 403 and refused.json()["code"] == "report-due-rule-jurisdiction"
    town_refused = client.put(f"{API}/campaigns/report-due-rule", json=FOLLOWING, headers=t.headers)
    assert town_refused.json()["code"] == "report-due-rule-county-only"
    # The province's rule reaches the other county; the county's own rule still wins for its units.
    seen = states(client, other.headers, "/reports/monthly/status", month=NOVEMBER)[other_town.id or 0]
    assert seen["due_date"] == "2026-11-10"
    assert states(client, county.headers, "/reports/monthly/status", month=NOVEMBER)[town.town.id or 0][
        "due_date"] == "2026-12-20"
    # The province may change the county's (it is inside it).
    ok(client.put(f"{API}/campaigns/report-due-rule", json={**FOLLOWING, "campaign_id": own["id"],
                                                            "report_due_day": 25}, headers=province.headers))
    assert states(client, county.headers, "/reports/monthly/status", month=NOVEMBER)[town.town.id or 0][
        "due_date"] == "2026-12-25"


def test_a_countys_own_rule_does_not_become_everyones_campaign(client: TestClient, session: Session) -> None:
    """The county's copy carries its due rule only: the periods, keys and labels every map and report
    follow stay the year's campaign's."""
    from backend.campaigns import service as campaigns

    clock.freeze(datetime(2026, 11, 20, 10, 0, tzinfo=CST))
    town = make_town(session)
    before = campaigns.resolve_period(session)
    county = user_client(client, session, town.county, Role.coordinator)
    own = ok(client.put(f"{API}/campaigns/report-due-rule", json=FOLLOWING, headers=county.headers))
    assert own["code"] != before.key
    session.expire_all()
    after = campaigns.resolve_period(session)
    assert (after.key, after.label_zh) == (before.key, before.label_zh)
