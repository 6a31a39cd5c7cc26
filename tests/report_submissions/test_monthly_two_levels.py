"""The monthly report (月报) goes up two levels and comes back: a village's is approved or returned by its
town's coordinators, a town's by its county's; a returned report is regenerated and submitted again; the
level above sees on time, late, approved and returned (with how many returns)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.core import clock
from tests.factories import make_town, sign_in, user_client
from tests.report_submissions.support import API, CST, audited, media_root, ok, states, told

MARCH = "2026-03"


@pytest.fixture(autouse=True)
def _media(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    media_root(tmp_path, monkeypatch)


def test_a_villages_report_goes_to_its_town_comes_back_and_goes_up_again(client: TestClient, session: Session) -> None:
    clock.freeze(datetime(2026, 3, 10, 10, 0, tzinfo=CST))
    town = make_town(session)
    village = town.villages[0]
    v = user_client(client, session, village, Role.coordinator)
    t = user_client(client, session, town.town, Role.coordinator)
    county = user_client(client, session, town.county, Role.coordinator)
    sibling = user_client(client, session, town.villages[1], Role.coordinator)

    report = ok(client.post(f"{API}/reports/monthly", json={"month": MARCH}, headers=v.headers), 201)
    assert report["due_date"] == "2026-03-17"  # seed 002: the 17th of the month itself
    narrative = {"progress": "走访120户\r\n完成", "problems": "人手不足", "next_steps": "四月完成复访"}
    sent = ok(client.post(f"{API}/reports/monthly/{report['id']}/submit", json=narrative, headers=v.headers))
    assert sent["status"] == "submitted"
    assert told(session, t.user.id or 0, "report_submission.submitted")  # the approvers are told

    # Nobody but the town decides: not the village itself, not a sibling village, not the county.
    own = client.post(f"{API}/reports/monthly/{report['id']}/approve", headers=v.headers)
    assert own.status_code == 403 and own.json()["code"] == "report-submission-not-approver"
    assert client.post(f"{API}/reports/monthly/{report['id']}/approve", headers=sibling.headers).status_code == 404
    assert client.post(f"{API}/reports/monthly/{report['id']}/approve", headers=county.headers).status_code == 403

    # A return says why; the village's coordinators are told.
    assert client.post(f"{API}/reports/monthly/{report['id']}/return", json={}, headers=t.headers).status_code == 422
    blank = client.post(f"{API}/reports/monthly/{report['id']}/return", json={"comment": "   "}, headers=t.headers)
    assert blank.status_code == 422
    back = ok(client.post(f"{API}/reports/monthly/{report['id']}/return", json={"comment": "缺少下旬走访数据"},
                          headers=t.headers))
    assert back["status"] == "returned"
    [note] = told(session, v.user.id or 0, "report_submission.returned")
    assert set(note.data) == {"submission_id", "report_kind", "period", "unit_id"}  # ids and codes only
    row = states(client, t.headers, "/reports/monthly/status", month=MARCH)[village.id or 0]
    assert (row["state"], row["returns"], row["on_time"]) == ("returned", 1, True)

    # A returned report is regenerated and submitted again; the town approves it and it is final.
    clock.advance(datetime(2026, 3, 12, 9, 0, tzinfo=CST) - clock.now())
    v, t = sign_in(client, v.user), sign_in(client, t.user)
    again = ok(client.post(f"{API}/reports/monthly", json={"month": MARCH}, headers=v.headers), 201)
    assert again["id"] == report["id"] and again["status"] == "returned"
    ok(client.post(f"{API}/reports/monthly/{report['id']}/submit", json={"problems": "已补充"}, headers=v.headers))
    assert states(client, t.headers, "/reports/monthly/status", month=MARCH)[village.id or 0]["state"] == "submitted"
    approved = ok(client.post(f"{API}/reports/monthly/{report['id']}/approve", json={"comment": "同意"},
                              headers=t.headers))
    assert approved["status"] == "approved"
    final = client.post(f"{API}/reports/monthly", json={"month": MARCH}, headers=v.headers)
    assert final.status_code == 409 and final.json()["code"] == "report-already-submitted"
    assert client.post(f"{API}/reports/monthly/{report['id']}/submit", headers=v.headers).status_code == 409
    assert client.post(f"{API}/reports/monthly/{report['id']}/return", json={"comment": "再看看"},
                       headers=t.headers).status_code == 409
    row = states(client, t.headers, "/reports/monthly/status", month=MARCH)[village.id or 0]
    assert (row["state"], row["returns"]) == ("approved", 1)

    # The history: who did what, when, with the comments; the narrative as cleaned.
    way_up = ok(client.get(f"{API}/report-submissions/{row['submission_id']}", headers=t.headers))
    assert [e["action"] for e in way_up["events"]] == ["create", "submit", "return", "submit", "approve"]
    assert way_up["events"][2]["comment"] == "缺少下旬走访数据" and way_up["events"][2]["actor_id"] == t.user.id
    assert (way_up["progress"], way_up["problems"], way_up["next_steps"]) == (
        "走访120户\n完成", "已补充", "四月完成复访")
    assert way_up["monthly_report_id"] == report["id"]
    for action in ("submit", "return", "approve"):
        assert audited(session, f"report_submission.{action}", row["submission_id"]) >= 1


def test_a_towns_report_goes_to_its_county(client: TestClient, session: Session) -> None:
    clock.freeze(datetime(2026, 3, 20, 10, 0, tzinfo=CST))  # past the 17th: this one comes late
    town = make_town(session)
    t = user_client(client, session, town.town, Role.coordinator)
    county = user_client(client, session, town.county, Role.coordinator)
    city = user_client(client, session, town.city, Role.coordinator)

    report = ok(client.post(f"{API}/reports/monthly", json={"month": MARCH}, headers=t.headers), 201)
    ok(client.post(f"{API}/reports/monthly/{report['id']}/submit", headers=t.headers))
    assert told(session, county.user.id or 0, "report_submission.submitted")
    assert client.post(f"{API}/reports/monthly/{report['id']}/approve", headers=t.headers).status_code == 403
    assert client.post(f"{API}/reports/monthly/{report['id']}/approve", headers=city.headers).status_code == 403
    row = states(client, county.headers, "/reports/monthly/status", month=MARCH)[town.town.id or 0]
    assert row["state"] == "submitted_late" and row["due_date"] == "2026-03-17"
    generic = states(client, county.headers, "/report-submissions/status", kind="monthly", period=MARCH)
    assert generic[town.town.id or 0]["state"] == "submitted_late"

    ok(client.post(f"{API}/reports/monthly/{report['id']}/return", json={"comment": "请补充问题清单"},
                   headers=county.headers))
    ok(client.post(f"{API}/reports/monthly/{report['id']}/submit", headers=t.headers))
    approved = ok(client.post(f"{API}/reports/monthly/{report['id']}/approve", headers=county.headers))
    assert approved["status"] == "approved"
    row = states(client, county.headers, "/reports/monthly/status", month=MARCH)[town.town.id or 0]
    assert (row["state"], row["returns"], row["on_time"]) == ("approved", 1, False)


def test_the_town_sees_on_time_late_returned_and_missing(client: TestClient, session: Session) -> None:
    clock.freeze(datetime(2026, 3, 16, 10, 0, tzinfo=CST))
    town = make_town(session)
    v = [user_client(client, session, town.villages[n], Role.coordinator) for n in range(4)]
    t = user_client(client, session, town.town, Role.coordinator)
    reports = [ok(client.post(f"{API}/reports/monthly", json={"month": MARCH}, headers=v[n].headers), 201)
               for n in range(4)]
    for n in (0, 1):
        ok(client.post(f"{API}/reports/monthly/{reports[n]['id']}/submit", headers=v[n].headers))
    ok(client.post(f"{API}/reports/monthly/{reports[1]['id']}/return", json={"comment": "数据有误"}, headers=t.headers))
    before = states(client, t.headers, "/reports/monthly/status", month=MARCH)
    ids = [u.id or 0 for u in town.villages]
    assert [before[i]["state"] for i in ids[:5]] == ["submitted", "returned", "generated", "generated", "pending"]

    clock.advance(datetime(2026, 3, 18, 9, 0, tzinfo=CST) - clock.now())  # past the due date
    v3, t = sign_in(client, v[3].user), sign_in(client, t.user)
    ok(client.post(f"{API}/reports/monthly/{reports[3]['id']}/submit", headers=v3.headers))
    after = states(client, t.headers, "/reports/monthly/status", month=MARCH)
    assert [after[i]["state"] for i in ids[:5]] == ["submitted", "returned", "late", "submitted_late", "late"]
    assert [after[i]["returns"] for i in ids[:4]] == [0, 1, 0, 0]
    assert {after[i]["due_date"] for i in ids} == {"2026-03-17"}
