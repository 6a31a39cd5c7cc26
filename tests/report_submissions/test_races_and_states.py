"""The class of fault: a report's state moved by two people at once, or by a step its state does not
allow. Two coordinators deciding at the same moment get one result and one 409, never both; and any
sequence of steps by anyone leaves the report where a single-threaded model of the rules says it is."""

from __future__ import annotations

import itertools
from datetime import datetime

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.core import clock
from backend.report_submissions.models import ReportSubmissionEvent
from tests.factories import make_town, user_client
from tests.races import together as _together
from tests.report_submissions.support import API, CST, ok

ROUNDS = 3


def test_two_coordinators_deciding_at_once_one_wins_the_other_gets_409(client: TestClient, session: Session) -> None:
    clock.freeze(datetime(2026, 11, 20, 10, 0, tzinfo=CST))
    town = make_town(session)
    submitter = user_client(client, session, town.town, Role.coordinator, agency=Agency.womens_federation)
    first = user_client(client, session, town.county, Role.coordinator, agency=Agency.womens_federation)
    second = user_client(client, session, town.county, Role.coordinator, agency=Agency.womens_federation)
    for n in range(ROUNDS):
        draft = ok(client.post(f"{API}/report-submissions", json={"kind": "year_end_summary", "period": str(2026 + n),
                                                                  "progress": "总结"}, headers=submitter.headers), 201)
        ok(client.post(f"{API}/report-submissions/{draft['id']}/submit", headers=submitter.headers))
        approve, back = _together(
            lambda c, i=draft["id"]: c.post(f"{API}/report-submissions/{i}/approve", headers=first.headers),
            lambda c, i=draft["id"]: c.post(f"{API}/report-submissions/{i}/return", json={"comment": "请补充"},
                                            headers=second.headers),
        )
        codes = sorted([approve.status_code, back.status_code])
        assert codes == [200, 409], (approve.text, back.text)
        loser = approve if approve.status_code == 409 else back
        assert loser.json()["code"] == "report-submission-state"
        stored = ok(client.get(f"{API}/report-submissions/{draft['id']}", headers=first.headers))
        decisions = [e["action"] for e in stored["events"] if e["action"] in ("approve", "return")]
        assert len(decisions) == 1  # one decision recorded, the one the state shows
        assert stored["status"] == ("approved" if decisions == ["approve"] else "returned")
        assert stored["returns"] == (1 if decisions == ["return"] else 0)


STEP = st.sampled_from(["submit", "approve", "return", "edit", "sibling_approve", "own_approve"])


def test_any_sequence_of_steps_follows_the_rules(client: TestClient, session: Session) -> None:
    clock.freeze(datetime(2026, 11, 20, 10, 0, tzinfo=CST))
    town = make_town(session)
    wf = Agency.womens_federation
    own = user_client(client, session, town.villages[0], Role.coordinator, agency=wf)
    parent = user_client(client, session, town.town, Role.coordinator, agency=wf)
    sibling = user_client(client, session, town.villages[1], Role.coordinator, agency=wf)
    periods = itertools.count(2030)  # one report per example

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=st.lists(STEP, min_size=1, max_size=8))
    def run(steps: list[str]) -> None:
        period = str(next(periods))
        draft = ok(client.post(f"{API}/report-submissions", json={"kind": "year_end_summary", "period": period},
                               headers=own.headers), 201)
        url = f"{API}/report-submissions/{draft['id']}"
        status, returns, transitions = "draft", 0, 0
        for step in steps:
            if step == "submit":
                resp = client.post(f"{url}/submit", headers=own.headers)
                expected, after = (200, "submitted") if status in ("draft", "returned") else (409, status)
            elif step == "approve":
                resp = client.post(f"{url}/approve", headers=parent.headers)
                expected, after = (200, "approved") if status == "submitted" else (409, status)
            elif step == "return":
                resp = client.post(f"{url}/return", json={"comment": "请修改"}, headers=parent.headers)
                expected, after = (200, "returned") if status == "submitted" else (409, status)
                returns += expected == 200
            elif step == "edit":
                resp = client.post(f"{API}/report-submissions", json={"kind": "year_end_summary", "period": period,
                                                                       "progress": "修改"}, headers=own.headers)
                expected, after = (201, status) if status in ("draft", "returned") else (409, status)
            elif step == "sibling_approve":
                resp = client.post(f"{url}/approve", headers=sibling.headers)
                expected, after = 404, status
            else:
                resp = client.post(f"{url}/approve", headers=own.headers)
                expected, after = 403, status
            assert resp.status_code == expected, (steps, step, resp.text)
            transitions += expected == 200 and step in ("submit", "approve", "return")
            status = after
        stored = ok(client.get(url, headers=parent.headers))
        assert (stored["status"], stored["returns"]) == (status, returns)
        session.expire_all()
        events = session.execute(select(ReportSubmissionEvent).where(
            col(ReportSubmissionEvent.submission_id) == draft["id"])).scalars().all()
        assert len(events) == 1 + transitions  # the creation and one row per step taken

    run()
