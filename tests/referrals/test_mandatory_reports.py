"""Mandatory reports (强制报告) from any source: a school, a health centre, a venue, a village, a
volunteer ... files a clue directly; it reaches the police of the place's town in the one queue with
the visits' clues (deadlines, escalation, notification); the police acknowledge, a case (个案) opens
for the child; the reporter follows its own reports only, never the case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Agency, User
from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.cases.models import Case
from backend.core import clock
from backend.core.config import get_settings
from backend.core.jobs import run_due_jobs
from backend.demo.town import DemoTown
from backend.notifications.models import Notification
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.referrals.models import Referral
from backend.registry.models import Person
from tests.factories import make_town, make_user
from tests.helpers.factories import make_child
from tests.notifications.factories import headers_for
from tests.venues import factories as venue_factories

API = "/api/v1"


def _seen(hours_ago: float = 2) -> str:
    return (clock.now() - timedelta(hours=hours_ago)).astimezone(clock.SHANGHAI).isoformat()


def _body(**extra: Any) -> dict[str, Any]:
    return {"description": "孩子手臂多处淤青，说是家里人打的", "seen_at": _seen(), "place": "学校门口", **extra}


class People:
    """The town's police and coordinator, and reporters made on demand (headers without a password)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.town: DemoTown = make_town(session)
        self.police = make_user(session, self.town.town, Role.police, agency=Agency.police)
        self.coordinator = make_user(session, self.town.town, Role.coordinator, agency=Agency.government)

    def other_town(self) -> tuple[OrgUnit, OrgUnit]:
        """A second town of the county, with one village (made on first use)."""
        found = self.session.execute(select(OrgUnit).where(col(OrgUnit.code) == "990101200000")).scalar_one_or_none()
        if found is None:
            found = orgunits.create_unit(self.session, code="990101200000", name="二镇", level=OrgLevel.town,
                                         parent=self.town.county)
            orgunits.create_unit(self.session, code="990101200001", name="二镇一村", level=OrgLevel.village,
                                 parent=found)
            self.session.commit()
        village = self.session.execute(select(OrgUnit).where(col(OrgUnit.code) == "990101200001")).scalar_one()
        return found, village

    def user(self, role: Role, agency: Agency | None = None, unit: OrgUnit | None = None) -> User:
        return make_user(self.session, unit or self.town.villages[0], role, agency=agency)

    def h(self, user: User) -> dict[str, str]:
        return headers_for(self.session, user)


def _file(client: TestClient, p: People, who: User, status: int = 201, **extra: Any) -> dict[str, Any]:
    resp = client.post(f"{API}/mandatory-reports", json=_body(**extra), headers=p.h(who))
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _told(session: Session, referral_id: int, kind: str = "referral.created") -> list[Notification]:
    session.expire_all()
    return [n for n in session.execute(select(Notification).where(col(Notification.kind) == kind)).scalars()
            if n.data.get("referral_id") == str(referral_id)]


# ---------------------------------------------------------------- filing from every source


def test_a_school_teacher_files_a_clue_that_reaches_the_town_police(client: TestClient, session: Session) -> None:
    p = People(session)
    teacher = p.user(Role.agency_staff, Agency.education)
    filed = _file(client, p, teacher, org_unit_id=p.town.grids[0][1].id, reporter_contact="13900000001",
                  child={"name": "小明", "age": "约10岁", "sex": "male", "note": "四年级"})
    assert filed["status"] == "filed" and filed["source_kind"] == "school"
    assert filed["org_unit_id"] == p.town.grids[0][1].id and filed["received_at"] is None
    assert filed["child"] == {"name": "小明", "age": "约10岁", "sex": "male", "note": "四年级"}
    assert "case" not in filed and "outcome_note" not in filed and "child_ids" not in filed

    # A v1 app (reading visit_id and household_id as numbers) lists the visits' clues only; an app that
    # asks sees the reports filed directly too.
    v1 = client.get(f"{API}/referrals", headers=p.h(p.police)).json()
    assert filed["id"] not in [r["id"] for r in v1] and all(isinstance(r["visit_id"], int) for r in v1)
    listed = client.get(f"{API}/referrals", params={"include_direct_reports": "true"}, headers=p.h(p.police)).json()
    [report] = [r for r in listed if r["id"] == filed["id"]]
    assert report["police_unit_id"] == p.town.town.id and report["status"] == "new"
    assert (report["source_kind"], report["reporter_user_id"], report["reporter_agency"]) == (
        "school", teacher.id, "education")
    assert report["visit_id"] is None and report["household_id"] is None and report["child_ids"] == []
    assert report["description"].startswith("孩子手臂") and report["child_description"]["name"] == "小明"
    assert report["receive_due_at"] < report["handle_due_at"]
    assert [n.user_id for n in _told(session, filed["id"])] == [p.police.id]
    assert "小明" not in str(_told(session, filed["id"])[0].data)
    only_school = client.get(f"{API}/referrals", params={"source_kind": "school"}, headers=p.h(p.police)).json()
    assert [r["id"] for r in only_school] == [filed["id"]]
    assert client.get(f"{API}/referrals", params={"source_kind": "visit"}, headers=p.h(p.police)).json() == []


def test_the_source_comes_from_the_reporters_unit_and_role_unless_it_says(client: TestClient,
                                                                           session: Session) -> None:
    p = People(session)
    venue = venue_factories.make_venue(session, p.town, village=0)
    cases: list[tuple[User, dict[str, Any], str]] = [
        (p.user(Role.agency_staff, Agency.health), {}, "health_centre"),
        (p.user(Role.agency_staff, Agency.village_committee), {}, "village"),
        (p.user(Role.agency_staff, Agency.education), {"source_kind": "kindergarten"}, "kindergarten"),
        (p.user(Role.agency_staff, Agency.judicial), {}, "other"),
        (p.user(Role.volunteer, Agency.womens_federation), {}, "volunteer"),
        (p.user(Role.grid_worker), {}, "grid"),
        (p.user(Role.helper), {}, "other"),
        (p.user(Role.market_officer, Agency.market_supervision, p.town.town), {"venue_id": venue.id}, "venue"),
        (p.user(Role.police, Agency.police, p.town.town), {"venue_id": venue.id}, "venue"),
        (p.user(Role.police, Agency.police, p.town.town), {}, "other"),
        (p.user(Role.coordinator, Agency.government, p.town.town), {}, "other"),
    ]
    for who, extra, source in cases:
        filed = _file(client, p, who, **extra)
        assert filed["source_kind"] == source, (who.id, extra)
        if "venue_id" in extra:
            assert filed["org_unit_id"] == venue.org_unit_id and filed["venue_id"] == venue.id
    rows = session.execute(select(col(Referral.source_kind))).scalars().all()
    assert sorted(rows) == sorted(source for _, _, source in cases)
    admin = make_user(session, p.town.province, Role.admin)
    refused = client.post(f"{API}/mandatory-reports", json=_body(), headers=p.h(admin))
    assert refused.status_code == 403, refused.text


# ---------------------------------------------------------------- validation


def test_a_report_from_the_future_or_without_a_description_is_refused(client: TestClient, session: Session) -> None:
    p = People(session)
    teacher = p.h(p.user(Role.agency_staff, Agency.education))
    ahead = (clock.now() + timedelta(hours=3)).isoformat()
    future = client.post(f"{API}/mandatory-reports", json=_body(seen_at=ahead), headers=teacher)
    assert future.status_code == 422 and future.json()["code"] == "mandatory-report-seen-in-future", future.text
    assert future.json()["field"] == "seen_at"
    for bad in ({"description": ""}, {"description": None}, {"seen_at": "2026-11-20T09:00:00"},
                {"lon": 108.3}, {"child": {"name": "小红", "eyes": "blue"}}):
        body = {k: v for k, v in {**_body(), **bad}.items() if v is not None}
        resp = client.post(f"{API}/mandatory-reports", json=body, headers=teacher)
        assert resp.status_code == 422, (bad, resp.text)
    missing = client.post(f"{API}/mandatory-reports", json={"seen_at": _seen()}, headers=teacher)
    assert missing.status_code == 422 and "description" in missing.text
    assert session.execute(select(col(Referral.id))).first() is None


def test_a_child_the_reporter_may_not_see_is_refused_without_saying_whether_it_exists(
    client: TestClient, session: Session
) -> None:
    p = People(session)
    mine = make_child(session, p.town.grids[0][0])
    theirs = make_child(session, p.town.grids[1][0])  # village 1: outside village 0's volunteer's view
    volunteer = p.user(Role.volunteer, Agency.womens_federation)
    teacher = p.user(Role.agency_staff, Agency.education)  # may not read the registry at all
    answers = []
    for who, child in ((volunteer, theirs.id), (volunteer, 987654), (teacher, mine.id), (teacher, 987654)):
        resp = client.post(f"{API}/mandatory-reports", json=_body(child_id=child), headers=p.h(who))
        assert resp.status_code == 422, resp.text
        answers.append({k: v for k, v in resp.json().items() if k != "instance"})
    assert all(a == answers[0] for a in answers) and answers[0]["code"] == "mandatory-report-child-invalid"
    assert theirs.name not in str(answers)
    by_uuid = client.post(f"{API}/mandatory-reports", json=_body(child_uuid=str(theirs.uuid)), headers=p.h(volunteer))
    assert by_uuid.status_code == 422 and by_uuid.json()["code"] == "mandatory-report-child-invalid"
    named = _file(client, p, volunteer, child_id=mine.id)
    assert named["child_id"] == mine.id and mine.name not in str(named)
    # A place outside the jurisdiction is as absent as a unit that does not exist.
    foreign = client.post(f"{API}/mandatory-reports", json=_body(org_unit_id=p.town.villages[1].id),
                          headers=p.h(volunteer))
    assert foreign.status_code == 404, foreign.text


# ---------------------------------------------------------------- routing


def test_a_report_reaches_the_station_of_the_town_of_its_place(client: TestClient, session: Session) -> None:
    p = People(session)
    other_town, other_village = p.other_town()
    other_police = make_user(session, other_town, Role.police, agency=Agency.police)
    county = make_user(session, p.town.county, Role.coordinator, agency=Agency.government)

    there = _file(client, p, county, org_unit_id=other_village.id)
    here = _file(client, p, county, org_unit_id=p.town.grids[2][0].id)
    # Without a place the report is the reporter's unit's: a county has no town, so the place is asked for.
    unrouted = client.post(f"{API}/mandatory-reports", json=_body(), headers=p.h(county))
    assert unrouted.status_code == 422 and unrouted.json()["code"] == "mandatory-report-place-required"
    village_staff = p.user(Role.agency_staff, Agency.village_committee, p.town.villages[3])
    own_unit = _file(client, p, village_staff)
    assert own_unit["org_unit_id"] == p.town.villages[3].id

    def queue(officer: User) -> set[int]:
        return {r["id"] for r in client.get(f"{API}/referrals", params={"include_direct_reports": "true"},
                                            headers=p.h(officer)).json()}

    assert queue(other_police) == {there["id"]}
    assert queue(p.police) == {here["id"], own_unit["id"]}
    assert [n.user_id for n in _told(session, there["id"])] == [other_police.id]
    assert client.get(f"{API}/referrals/{there['id']}", headers=p.h(p.police)).status_code == 404


# ---------------------------------------------------------------- the police's part


def test_police_acknowledge_and_a_case_opens_for_the_named_child(client: TestClient, session: Session) -> None:
    p = People(session)
    child = make_child(session, p.town.grids[0][0])
    volunteer = p.user(Role.volunteer, Agency.womens_federation)
    filed = _file(client, p, volunteer, child_id=child.id)
    assert session.execute(select(Case)).first() is None  # a direct report opens its case on receipt
    row = session.get(Referral, filed["id"])
    assert row is not None and row.household_id == child.household_id and row.child_ids == [child.id]

    received = client.post(f"{API}/referrals/{filed['id']}/receive", headers=p.h(p.police))
    assert received.status_code == 200 and received.json()["status"] == "received", received.text
    session.expire_all()
    [case] = session.execute(select(Case)).scalars().all()
    assert (case.child_id, case.opened_from, case.source_id, case.referred) == (
        child.id, "mandatory_report", filed["id"], True)
    assert client.get(f"{API}/cases/{case.id}", headers=p.h(p.police)).status_code == 200
    done = client.post(f"{API}/referrals/{filed['id']}/handle", json={"note": "已立案侦查"}, headers=p.h(p.police))
    assert done.status_code == 200 and done.json()["outcome_note"] == "已立案侦查"

    mine = client.get(f"{API}/mandatory-reports/{filed['id']}", headers=p.h(volunteer)).json()
    assert mine["status"] == "handled" and mine["received_at"] and mine["handled_at"]
    assert "已立案" not in str(mine) and "case" not in str(mine).lower()
    actions = set(session.execute(select(col(AuditEntry.action))).scalars())
    assert {"mandatory_report.file", "referral.received", "referral.handled", "case.open",
            "mandatory_report.read"} <= actions


def test_police_link_a_child_on_receipt_and_its_case_opens(client: TestClient, session: Session) -> None:
    p = People(session)
    child = make_child(session, p.town.grids[0][2])
    teacher = p.user(Role.agency_staff, Agency.education)
    filed = _file(client, p, teacher, child={"name": "小芳", "age": "9"})
    elsewhere = make_child(session, p.other_town()[1])  # another town: not the station's

    refused = client.post(f"{API}/referrals/{filed['id']}/receive", json={"child_id": elsewhere.id},
                          headers=p.h(p.police))
    assert refused.status_code == 422 and refused.json()["code"] == "mandatory-report-child-invalid"
    received = client.post(f"{API}/referrals/{filed['id']}/receive", json={"child_id": child.id},
                           headers=p.h(p.police))
    assert received.status_code == 200, received.text
    assert received.json()["child_ids"] == [child.id] and received.json()["household_id"] == child.household_id
    session.expire_all()
    [case] = session.execute(select(Case)).scalars().all()
    assert (case.child_id, case.opened_from, case.source_id) == (child.id, "mandatory_report", filed["id"])
    # The reporter is not told which child the police linked.
    mine = client.get(f"{API}/mandatory-reports/{filed['id']}", headers=p.h(teacher)).json()
    assert mine["status"] == "received" and mine["child_id"] is None and mine["child"]["name"] == "小芳"
    assert str(child.id) not in str({k: v for k, v in mine.items() if k in ("child_id", "child")})


def test_a_direct_report_not_acknowledged_in_time_is_escalated_like_any_referral(
    client: TestClient, session: Session
) -> None:
    clock.freeze(datetime.now(UTC) - timedelta(days=10))  # tokens must not be issued "in the future" (iat)
    p = People(session)
    filed = _file(client, p, p.user(Role.agency_staff, Agency.health))
    settings = get_settings()
    clock.advance(timedelta(hours=settings.referral_receive_hours) + timedelta(minutes=1))
    run_due_jobs()
    [note] = _told(session, filed["id"], "referral.overdue")
    assert note.user_id == p.coordinator.id and note.data["stage"] == "receive"
    late = client.get(f"{API}/escalations/referrals", headers=p.h(p.coordinator)).json()
    assert [(o["referral_id"], o["stage"]) for o in late] == [(filed["id"], "receive")]
    run_due_jobs()
    assert len(_told(session, filed["id"], "referral.overdue")) == 1


# ---------------------------------------------------------------- the reporter's view


def test_the_reporter_sees_its_own_reports_only(client: TestClient, session: Session) -> None:
    p = People(session)
    teacher, nurse = p.user(Role.agency_staff, Agency.education), p.user(Role.agency_staff, Agency.health)
    first = _file(client, p, teacher)
    second = _file(client, p, teacher, place="操场")
    theirs = _file(client, p, nurse)
    page = client.get(f"{API}/mandatory-reports/mine", params={"limit": 1}, headers=p.h(teacher)).json()
    assert [r["id"] for r in page["items"]] == [second["id"]] and page["next_cursor"]
    rest = client.get(f"{API}/mandatory-reports/mine", params={"cursor": page["next_cursor"]},
                      headers=p.h(teacher)).json()
    assert [r["id"] for r in rest["items"]] == [first["id"]] and rest["next_cursor"] is None
    assert client.get(f"{API}/mandatory-reports/{theirs['id']}", headers=p.h(teacher)).status_code == 404
    assert client.get(f"{API}/mandatory-reports/999999", headers=p.h(teacher)).status_code == 404
    # Police read reports at /referrals; the reporter's view is the reporter's alone.
    assert client.get(f"{API}/mandatory-reports/{theirs['id']}", headers=p.h(p.police)).status_code == 404
    assert client.get(f"{API}/referrals/{theirs['id']}", headers=p.h(teacher)).status_code == 404
    # An officer who files a report follows it at /mine like anyone else.
    officer = _file(client, p, p.police)
    assert [r["id"] for r in client.get(f"{API}/mandatory-reports/mine", headers=p.h(p.police)).json()["items"]] == [
        officer["id"]]


def test_a_volunteers_visit_clue_is_among_its_own_reports(client: TestClient, session: Session) -> None:
    from tests.registry.factories import fine_answers, visit_item

    p = People(session)
    child = make_child(session, p.town.grids[0][0])
    person = session.get(Person, child.id)
    assert person is not None
    home = str(session.execute(select(col(Person.household_id)).where(col(Person.id) == child.id)).scalar_one())
    from backend.registry.models import Household

    household = session.get(Household, int(home))
    assert household is not None
    volunteer = p.user(Role.volunteer, Agency.womens_federation)
    answers = {**fine_answers(), "look1": {"value": "yes"}}
    pushed = client.post(f"{API}/sync/push", json={"items": [visit_item(str(household.uuid), answers=answers)]},
                         headers=p.h(volunteer)).json()
    assert pushed["results"][0]["status"] == "created", pushed
    [mine] = client.get(f"{API}/mandatory-reports/mine", headers=p.h(volunteer)).json()["items"]
    assert (mine["source_kind"], mine["status"], mine["visit_id"]) == ("visit", "filed", pushed["results"][0][
        "record"]["id"])
    assert mine["child_id"] is None and person.name not in str(mine)


# ---------------------------------------------------------------- retention


def test_retention_holds_a_named_child_and_scrubs_what_a_report_said_about_it(client: TestClient,
                                                                               session: Session) -> None:
    from backend.registry import retention

    p = People(session)
    child = make_child(session, p.town.grids[0][0])
    volunteer = p.user(Role.volunteer, Agency.womens_federation)
    named = _file(client, p, volunteer, child_id=child.id, child={"name": "小红"})
    anonymous = _file(client, p, p.user(Role.agency_staff, Agency.education))  # no child, no household
    held = retention.open_cases(session)
    assert child.id in held.children and held.households == {child.household_id}
    retention._scrub_cases(session, [child.id or 0], {child.household_id or 0})
    session.commit()
    session.expire_all()
    scrubbed, untouched = session.get(Referral, named["id"]), session.get(Referral, anonymous["id"])
    assert scrubbed is not None and untouched is not None
    assert (scrubbed.child_ids, scrubbed.reported_child_id, scrubbed.description, scrubbed.child_description) == (
        [], None, None, None)
    assert (scrubbed.source_kind, scrubbed.status) == ("volunteer", "new")
    assert untouched.description is not None


def test_a_report_seen_before_1970_is_refused_but_an_old_one_is_not(client: TestClient, session: Session) -> None:
    """Old abuse disclosed late is a clue; a time before 1970 is a phone's clock or a typo."""
    p = People(session)
    teacher = p.h(p.user(Role.agency_staff, Agency.education))
    for early in ("0001-01-01T00:00:00+00:00", "1900-01-01T00:00:00+14:00", "1969-12-31T23:59:59+00:00",
                  "1970-01-01T07:59:59+08:00"):
        resp = client.post(f"{API}/mandatory-reports", json=_body(seen_at=early), headers=teacher)
        assert resp.status_code == 422, (early, resp.text)
        assert [e["field"] for e in resp.json()["errors"]] == ["seen_at"], resp.text
    assert session.execute(select(col(Referral.id))).first() is None
    for old in ("1970-01-01T08:00:00+08:00", "1998-06-01T10:00:00+08:00"):
        assert client.post(f"{API}/mandatory-reports", json=_body(seen_at=old), headers=teacher).status_code == 201
