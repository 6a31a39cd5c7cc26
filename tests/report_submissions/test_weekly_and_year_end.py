"""The police station's weekly new-case report and the women's federation's year-end summary take the
same way up and back as the monthly report: the station's (a town's) to the county police, the year-end
summary to the women's federation of the unit above."""

from __future__ import annotations

from datetime import datetime

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.core import clock
from backend.police_cases.models import PoliceWeeklySubmission
from tests.factories import make_town, sign_in, user_client
from tests.report_submissions.support import API, CST, audited, ok, states, told

WEEK = "2026-W47"  # 16 to 22 November 2026, due Monday 23 November at 12:00 China time


def test_a_stations_weekly_report_goes_to_the_county_police_and_comes_back(
    client: TestClient, session: Session
) -> None:
    clock.freeze(datetime(2026, 11, 23, 9, 0, tzinfo=CST))
    town = make_town(session)
    station = user_client(client, session, town.town, Role.police, agency=Agency.police)
    county_police = user_client(client, session, town.county, Role.police, agency=Agency.police)
    town_coordinator = user_client(client, session, town.town, Role.coordinator)
    county_coordinator = user_client(client, session, town.county, Role.coordinator)

    # Only a station (a town) reports weekly.
    village = client.post(f"{API}/report-submissions", json={"kind": "police_weekly", "period": WEEK,
                                                             "unit_id": town.villages[0].id}, headers=station.headers)
    assert village.status_code == 422
    draft = ok(client.post(f"{API}/report-submissions", json={"kind": "police_weekly", "period": WEEK,
                                                              "progress": "本周立案0起"}, headers=station.headers), 201)
    assert (draft["status"], draft["period"], draft["unit_id"]) == ("draft", WEEK, town.town.id)
    assert draft["due_at"] == "2026-11-23T04:00:00Z"
    assert states(client, county_police.headers, "/report-submissions/status", kind="police_weekly",
                  period=WEEK)[town.town.id or 0]["state"] == "generated"

    sent = ok(client.post(f"{API}/report-submissions/{draft['id']}/submit", headers=station.headers))
    assert (sent["status"], sent["on_time"]) == ("submitted", True)
    frozen = session.get(PoliceWeeklySubmission, sent["police_weekly_submission_id"])
    assert frozen is not None and frozen.week == WEEK  # the figures as they stood, frozen
    assert told(session, county_police.user.id or 0, "report_submission.submitted")

    # The town's coordinator and the county's coordinator do not hold the police register.
    for other in (town_coordinator, county_coordinator):
        assert client.post(f"{API}/report-submissions/{draft['id']}/approve", headers=other.headers).status_code == 404
    assert client.post(f"{API}/report-submissions/{draft['id']}/approve", headers=station.headers).status_code == 403

    back = ok(client.post(f"{API}/report-submissions/{draft['id']}/return", json={"comment": "请核对案件类别"},
                          headers=county_police.headers))
    assert (back["status"], back["returns"]) == ("returned", 1)
    assert told(session, station.user.id or 0, "report_submission.returned")

    clock.advance(datetime(2026, 11, 23, 15, 0, tzinfo=CST) - clock.now())  # after noon: past the due time
    station, county_police = sign_in(client, station.user), sign_in(client, county_police.user)
    again = ok(client.post(f"{API}/report-submissions/{draft['id']}/submit", headers=station.headers))
    assert again["on_time"] is True  # the first submission came in time; the return is counted beside it
    assert again["police_weekly_submission_id"] != sent["police_weekly_submission_id"]
    row = states(client, county_police.headers, "/report-submissions/status", kind="police_weekly",
                 period=WEEK)[town.town.id or 0]
    assert (row["state"], row["returns"]) == ("submitted", 1)
    done = ok(client.post(f"{API}/report-submissions/{draft['id']}/approve", headers=county_police.headers))
    assert done["status"] == "approved"
    row = states(client, county_police.headers, "/report-submissions/status", kind="police_weekly",
                 period=WEEK)[town.town.id or 0]
    assert (row["state"], row["on_time"], row["submitted_at"]) == ("approved", True, done["submitted_at"])
    assert [e["action"] for e in done["events"]] == ["create", "submit", "return", "submit", "approve"]
    assert audited(session, "report_submission.approve", draft["id"]) == 1


def test_the_year_end_summary_goes_to_the_womens_federation_above(client: TestClient, session: Session) -> None:
    clock.freeze(datetime(2026, 11, 20, 10, 0, tzinfo=CST))
    town = make_town(session)
    wf_town = user_client(client, session, town.town, Role.coordinator, agency=Agency.womens_federation)
    gov_town = user_client(client, session, town.town, Role.coordinator, agency=Agency.government)
    wf_county = user_client(client, session, town.county, Role.coordinator, agency=Agency.womens_federation)
    gov_county = user_client(client, session, town.county, Role.coordinator, agency=Agency.government)
    wf_village = user_client(client, session, town.villages[0], Role.coordinator, agency=Agency.womens_federation)

    body = {"kind": "year_end_summary", "period": "2026", "progress": "全年走访", "problems": "", "next_steps": "明年"}
    assert client.post(f"{API}/report-submissions", json=body, headers=gov_town.headers).status_code == 403
    draft = ok(client.post(f"{API}/report-submissions", json=body, headers=wf_town.headers), 201)
    assert draft["due_date"] == "2026-11-30"  # before 1 December (seed 004)
    sent = ok(client.post(f"{API}/report-submissions/{draft['id']}/submit", headers=wf_town.headers))
    assert (sent["status"], sent["on_time"]) == ("submitted", True)
    # Only who may decide it is told: the women's federation above, not the county's other coordinators.
    assert told(session, wf_county.user.id or 0, "report_submission.submitted")
    assert not told(session, gov_county.user.id or 0, "report_submission.submitted")

    refused = client.post(f"{API}/report-submissions/{draft['id']}/approve", headers=gov_county.headers)
    assert refused.status_code == 403 and refused.json()["code"] == "report-submission-not-approver"
    ok(client.post(f"{API}/report-submissions/{draft['id']}/return", json={"comment": "请补充典型案例"},
                   headers=wf_county.headers))
    assert told(session, wf_town.user.id or 0, "report_submission.returned")
    ok(client.post(f"{API}/report-submissions/{draft['id']}/submit", json={"progress": "全年走访，典型案例3个"},
                   headers=wf_town.headers))
    done = ok(client.post(f"{API}/report-submissions/{draft['id']}/approve", headers=wf_county.headers))
    assert (done["status"], done["returns"], done["progress"]) == ("approved", 1, "全年走访，典型案例3个")

    # A village's summary sent on 1 December is late; the town's women's federation approves it.
    clock.advance(datetime(2026, 12, 1, 9, 0, tzinfo=CST) - clock.now())
    wf_village, wf_town = sign_in(client, wf_village.user), sign_in(client, wf_town.user)
    late = ok(client.post(f"{API}/report-submissions", json={**body, "unit_id": None}, headers=wf_village.headers),
              201)
    ok(client.post(f"{API}/report-submissions/{late['id']}/submit", headers=wf_village.headers))
    seen = states(client, wf_town.headers, "/report-submissions/status", kind="year_end_summary", period="2026")
    assert seen[town.villages[0].id or 0]["state"] == "submitted_late"
    assert seen[town.villages[1].id or 0]["state"] == "late"
    assert (seen[town.villages[1].id or 0]["on_time"], seen[town.villages[1].id or 0]["submitted_at"]) == (None, None)
    ok(client.post(f"{API}/report-submissions/{late['id']}/approve", headers=wf_town.headers))
    seen = states(client, wf_town.headers, "/report-submissions/status", kind="year_end_summary", period="2026")
    row = seen[town.villages[0].id or 0]
    assert (row["state"], row["on_time"], row["submitted_at"] is not None) == ("approved", False, True)
    listed = ok(client.get(f"{API}/report-submissions", params={"kind": "year_end_summary", "period": "2026"},
                           headers=wf_town.headers))
    assert {r["id"]: r["status"] for r in listed} == {draft["id"]: "approved", late["id"]: "approved"}
