"""Only the unit itself sends its report up, and the level above decides it: a county can generate and
read a town's 月报 but never submit it and then approve what it sent (the second outside test's F2), for
every kind of report; the person who submitted a report never decides it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Agency, User
from backend.accounts.permissions import Role
from backend.core import clock
from backend.orgunits.models import OrgUnit
from backend.police_cases.models import PoliceWeeklySubmission
from backend.report_submissions.models import ReportSubmission, ReportSubmissionEvent
from tests.factories import SignedIn, make_town, sign_in, user_client
from tests.report_submissions.support import API, CST, media_root, ok, states

MONTH, WEEK, YEAR = "2026-11", "2026-W47", "2026"


@pytest.fixture(autouse=True)
def _media(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    media_root(tmp_path, monkeypatch)


def _rows(session: Session, kind: str, unit_id: int) -> list[ReportSubmission]:
    session.expire_all()
    return list(session.execute(select(ReportSubmission).where(
        col(ReportSubmission.kind) == kind, col(ReportSubmission.org_unit_id) == unit_id)).scalars())


def _refused(resp: object, code: str) -> None:
    assert resp.status_code == 403, resp.text  # type: ignore[attr-defined]
    assert resp.json()["code"] == code  # type: ignore[attr-defined]


def test_the_level_above_cannot_send_a_lower_units_report_up(client: TestClient, session: Session) -> None:
    clock.freeze(datetime(2026, 11, 23, 9, 0, tzinfo=CST))
    town = make_town(session)
    county = user_client(client, session, town.county, Role.coordinator)
    t = user_client(client, session, town.town, Role.coordinator)
    county_police = user_client(client, session, town.county, Role.police, agency=Agency.police)
    county_wf = user_client(client, session, town.county, Role.coordinator, agency=Agency.womens_federation)

    # 月报: the county may generate the town's (and read it), but not send it up nor approve it.
    report = ok(client.post(f"{API}/reports/monthly", json={"month": MONTH, "unit_id": town.town.id},
                            headers=county.headers), 201)
    _refused(client.post(f"{API}/reports/monthly/{report['id']}/submit", json={"progress": "x"},
                         headers=county.headers), "report-submission-not-submitter")
    [draft] = _rows(session, "monthly", town.town.id or 0)
    _refused(client.post(f"{API}/report-submissions/{draft.id}/submit", headers=county.headers),
             "report-submission-not-submitter")
    _refused(client.post(f"{API}/report-submissions", json={"kind": "monthly", "period": MONTH,
                                                            "unit_id": town.town.id, "progress": "县代报"},
                         headers=county.headers), "report-submission-not-submitter")
    assert client.post(f"{API}/reports/monthly/{report['id']}/approve", headers=county.headers).status_code == 409
    # The same from the town for a village.
    village = ok(client.post(f"{API}/reports/monthly", json={"month": MONTH, "unit_id": town.villages[0].id},
                             headers=t.headers), 201)
    _refused(client.post(f"{API}/reports/monthly/{village['id']}/submit", headers=t.headers),
             "report-submission-not-submitter")
    for unit in (town.town, town.villages[0]):
        [row] = _rows(session, "monthly", unit.id or 0)
        assert (row.status, row.submitted_at, row.progress) == ("draft", None, "")
        assert [e.action for e in session.execute(select(ReportSubmissionEvent).where(
            col(ReportSubmissionEvent.submission_id) == row.id)).scalars()] == ["create"]
    assert states(client, county.headers, "/reports/monthly/status", month=MONTH)[town.town.id or 0][
        "state"] == "late"  # the county reads it: nothing was sent

    # Police weekly: the county police cannot report for the station, by either endpoint; nothing is stored.
    _refused(client.post(f"{API}/report-submissions", json={"kind": "police_weekly", "period": WEEK,
                                                            "unit_id": town.town.id, "progress": "县局代报"},
                         headers=county_police.headers), "report-submission-not-submitter")
    _refused(client.post(f"{API}/police-cases/weekly/{WEEK}/submit", json={"unit_id": town.town.id},
                         headers=county_police.headers), "report-submission-not-submitter")
    assert _rows(session, "police_weekly", town.town.id or 0) == []
    assert session.execute(select(PoliceWeeklySubmission)).first() is None

    # Year-end summary: the county's women's federation cannot write the town's.
    _refused(client.post(f"{API}/report-submissions", json={"kind": "year_end_summary", "period": YEAR,
                                                            "unit_id": town.town.id, "progress": "代写"},
                         headers=county_wf.headers), "report-submission-not-submitter")
    assert _rows(session, "year_end_summary", town.town.id or 0) == []


def test_who_submitted_a_report_never_decides_it(client: TestClient, session: Session) -> None:
    """Belt and braces: a coordinator who submits at the town and is then moved to the county still
    cannot approve what it sent; a colleague at the county can."""
    clock.freeze(datetime(2026, 11, 10, 9, 0, tzinfo=CST))
    town = make_town(session)
    t = user_client(client, session, town.town, Role.coordinator)
    colleague = user_client(client, session, town.county, Role.coordinator)
    report = ok(client.post(f"{API}/reports/monthly", json={"month": MONTH}, headers=t.headers), 201)
    ok(client.post(f"{API}/reports/monthly/{report['id']}/submit", headers=t.headers))

    moved = session.get(User, t.user.id)
    assert moved is not None
    moved.org_unit_id = town.county.id or 0
    session.add(moved)
    session.commit()
    t = sign_in(client, moved)
    _refused(client.post(f"{API}/reports/monthly/{report['id']}/approve", headers=t.headers),
             "report-submission-not-approver")
    assert ok(client.post(f"{API}/reports/monthly/{report['id']}/approve", headers=colleague.headers))[
        "status"] == "approved"


KINDS = {"monthly": MONTH, "police_weekly": WEEK, "year_end_summary": YEAR}


def test_walk_every_user_every_kind_every_unit(client: TestClient, session: Session) -> None:
    """Users of every level (coordinators, women's-federation coordinators, police) try to write, submit
    and decide every kind of report of every unit of the chain, the higher ones first. Whatever got
    approved was submitted at its own unit and decided at the parent unit, by two different people; and
    each unit that has a parent got its reports of every kind it makes approved."""
    clock.freeze(datetime(2026, 11, 23, 9, 0, tzinfo=CST))
    town = make_town(session)
    chain: list[OrgUnit] = [town.province, town.city, town.county, town.town, town.villages[0]]
    users: list[SignedIn] = []
    for unit in chain:  # the top first: the attackers try before the unit itself
        users.append(user_client(client, session, unit, Role.coordinator))
        users.append(user_client(client, session, unit, Role.coordinator, agency=Agency.womens_federation))
        users.append(user_client(client, session, unit, Role.police, agency=Agency.police))

    # 月报 figures: generated by the level above where there is one (it may), else by the unit.
    reports: dict[int, int] = {}
    for n, unit in enumerate(chain):
        maker = users[3 * (n - 1)] if n else users[0]
        reports[unit.id or 0] = ok(client.post(f"{API}/reports/monthly", json={"month": MONTH, "unit_id": unit.id},
                                               headers=maker.headers), 201)["id"]

    for kind, period in KINDS.items():
        for unit in chain:
            ids: set[int] = set()
            for u in users:
                resp = client.post(f"{API}/report-submissions", json={"kind": kind, "period": period,
                                                                       "unit_id": unit.id}, headers=u.headers)
                assert resp.status_code in (201, 403, 404, 422), resp.text
                if resp.status_code == 201:
                    assert u.user.org_unit_id == unit.id
                    ids.add(resp.json()["id"])
            ids |= {r.id or 0 for r in _rows(session, kind, unit.id or 0)}
            for submission_id in ids:
                for u in users:
                    paths = [f"{API}/report-submissions/{submission_id}/submit"]
                    if kind == "monthly":
                        paths.append(f"{API}/reports/monthly/{reports[unit.id or 0]}/submit")
                    for path in paths:
                        resp = client.post(path, headers=u.headers)
                        assert resp.status_code in (200, 403, 404, 409), resp.text
                for u in users:
                    resp = client.post(f"{API}/report-submissions/{submission_id}/approve", headers=u.headers)
                    assert resp.status_code in (200, 403, 404, 409), resp.text

    session.expire_all()
    units = {u.id: u for u in chain}
    people = {u.user.id: u.user for u in users}
    approved = list(session.execute(select(ReportSubmission).where(col(ReportSubmission.status) == "approved")
                                    ).scalars())
    for row in approved:
        unit = units[row.org_unit_id]
        submitter, decider = people[row.submitted_by], people[row.decided_by]
        assert submitter.org_unit_id == row.org_unit_id, (row.kind, unit.level)
        assert decider.org_unit_id == unit.parent_id, (row.kind, unit.level)
        assert submitter.id != decider.id
        events = list(session.execute(select(ReportSubmissionEvent).where(
            col(ReportSubmissionEvent.submission_id) == row.id)).scalars())
        assert {e.actor_id for e in events if e.action == "submit"} == {submitter.id}
    made = {(r.kind, units[r.org_unit_id].level) for r in approved}
    levels = ["city", "county", "town", "village"]
    assert made == ({("monthly", lv) for lv in levels} | {("year_end_summary", lv) for lv in levels}
                    | {("police_weekly", "town")})
