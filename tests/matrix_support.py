"""What the two permission tables share: a town with an own and a foreign side, records made on
either side, and probes that exercise one action against them through HTTP.

tests/test_permission_matrix.py drives role x action x own/foreign through PROBES;
tests/test_endpoint_matrix.py drives role x endpoint x own/foreign and reuses the same makers.
Records of the own side sit in grid 0/2 (the own volunteer's grid) or grid 0/0, those of the
foreign side in village 1 (the foreign volunteer's); callers sit in village 0 unless a probe says
otherwise, so "own" is inside their jurisdiction and "foreign" is not.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts import service as accounts
from backend.accounts.models import Agency, User
from backend.accounts.permissions import Action, Role
from backend.agency_referrals.models import DEFAULT_SHARED, AgencyReferral, AgencyReferralStatus
from backend.awareness import service as awareness
from backend.awareness.models import NATIONAL, AwarenessQuestionnaire
from backend.cases.models import Case
from backend.core import clock
from backend.demo.town import DemoTown
from backend.helpers.models import Assignment, AssignmentStatus, HelperProfile
from backend.incidents import service as incidents
from backend.inspections.models import Inspection, Problem
from backend.institutions.models import Institution
from backend.ledgers.sheets import HEADERS, Annex
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.police_cases.models import CaseReview, CaseReviewTask, PoliceCase
from backend.referrals.models import Referral
from backend.registry.models import Household, Person, RiskPerson, RiskPersonCategory, RiskPersonHousehold
from backend.reviews.models import ReviewEvent
from backend.schedules import service as schedule_service
from backend.service_plans.models import CaseService
from backend.supervision.models import Notice, NoticeRecipient
from backend.venues.models import Venue
from tests.awareness import factories as awareness_factories
from tests.factories import make_user, next_phone
from tests.helpers.factories import make_child
from tests.institutions.factories import make_institution
from tests.media.conftest import camera_jpeg
from tests.notifications.factories import headers_for, notify
from tests.prevention import factories as prevention_factories
from tests.registry.factories import fine_answers, visit_item
from tests.service_plans.factories import ensure_service_kinds
from tests.staff_checks.factories import make_member
from tests.venues import factories as venue_factories
from tests.xlsx_support import xlsx_bytes

Call = Callable[[TestClient, dict[str, str], "World", bool], Response]

# Fresh values for records that must be unique when one world serves many calls.
_serial = itertools.count(1)


def serial() -> int:
    return next(_serial)


@dataclass
class World:
    town: DemoTown
    own_user_id: int
    foreign_user_id: int
    session: Session | None = None  # for probes that need records made first
    caller_id: int = 0  # the signed-in caller (for records that belong to a person, not a unit)
    # Records that are costly to make and that calls do not change, kept for the next call on this world.
    memo: dict[tuple[str, bool], int] = field(default_factory=dict)
    # The assigned / not-assigned axis (issue 13): every child a probe makes is taken on by the caller
    # (an accepted assignment to the caller's helper profile), so the caller's households, visits and
    # photos are those of a child assigned to it. A helper sees only those; other roles see their area.
    assigned: bool = False


def village_caller(town: DemoTown) -> OrgUnit:
    return town.villages[0]


def county_caller(town: DemoTown) -> OrgUnit:
    """2112 incidents open at province, city or county level: their callers sit at the county and the
    foreign side is a neighbouring county."""
    return town.county


@dataclass(frozen=True)
class Probe:
    """How to exercise an action against a record in the caller's or a foreign jurisdiction."""

    call: Call
    has_jurisdiction: bool = True
    # Where the caller sits; own/foreign records are chosen relative to it.
    caller: Callable[[DemoTown], OrgUnit] = village_caller
    # Hidden actions the endpoint checks before this one: a role lacking any of them learns nothing (404).
    hidden_behind: frozenset[Action] = field(default_factory=frozenset)


def s(w: World) -> Session:
    assert w.session is not None
    return w.session


def unit_id(w: World, own: bool) -> int:
    return (w.town.grids[0][0] if own else w.town.villages[1]).id or 0


def venue(w: World, own: bool) -> Venue:
    return venue_factories.make_venue(s(w), w.town, village=0 if own else 1)


def problem(w: World, own: bool) -> Problem:
    return venue_factories.make_problem(s(w), w.town, village=0 if own else 1, recorded_by=w.own_user_id)


def recheck(c: TestClient, h: dict[str, str], w: World, own: bool) -> Response:
    found = problem(w, own)
    at = s(w).get(Venue, found.venue_id)
    assert at is not None
    body = venue_factories.inspection_body(at, rechecks=[{"problem_id": found.id, "fixed": True}])
    return c.post("/api/v1/inspections", json=body, headers=h)


def plan(w: World, own: bool) -> int:
    """A draft plan of a week no other call of this world used (a published week takes no new draft)."""
    week = schedule_service.next_monday(clock.now().date()) + timedelta(weeks=serial())
    made = schedule_service.generate(s(w), None, unit_id(w, own), week)
    s(w).commit()
    return made.id or 0


def user(w: World, user_id: int) -> User:
    found = s(w).get(User, user_id)
    assert found is not None
    return found


def managed_user(w: World, own: bool) -> int:
    """A user the caller ranks above in the grant table (backend/accounts/grants.py), on the own side
    (the caller's village) or the foreign one (village 1): an administrator manages coordinators, a
    coordinator the field workers (the own or foreign volunteer); other roles manage nobody."""
    if Role.admin in accounts.user_roles(s(w), w.caller_id):
        unit = w.town.villages[0] if own else w.town.villages[1]
        return make_user(s(w), unit, Role.coordinator, agency=Agency.government).id or 0
    return w.own_user_id if own else w.foreign_user_id


def grantable_user(w: World, own: bool) -> dict[str, Any]:
    """A new user the caller may create by the grant table, in grid 0/0 or village 1: an administrator
    appoints a coordinator (of the caller's village), a coordinator a women's-federation volunteer."""
    body: dict[str, Any] = {"phone": next_phone(), "display_name": "新用户", "password": "long-enough-secret"}
    if Role.admin in accounts.user_roles(s(w), w.caller_id):
        unit = w.town.villages[0] if own else w.town.villages[1]
        return body | {"org_unit_id": unit.id, "roles": [Role.coordinator.value], "agency": Agency.government.value}
    return body | {"org_unit_id": unit_id(w, own), "roles": [Role.volunteer.value],
                   "agency": Agency.womens_federation.value}


def volunteer(w: World, own: bool) -> User:
    return user(w, w.own_user_id if own else w.foreign_user_id)


def grid(w: World, own: bool) -> OrgUnit:
    return w.town.grids[0][2] if own else w.town.grids[1][0]


def child(w: World, own: bool) -> Person:
    kid = make_child(s(w), grid(w, own))
    if w.assigned:
        take_on(w, kid)
    return kid


def take_on(w: World, kid: Person) -> None:
    """The caller takes the child on: an accepted assignment to the caller's helper profile."""
    profile = helper_profile(w, user(w, w.caller_id))
    now = clock.now()
    s(w).add(Assignment(child_id=kid.id or 0, helper_id=profile.id or 0, org_unit_id=kid.org_unit_id,
                        mode="one_to_one", status=AssignmentStatus.accepted.value, proposed_at=now, confirmed_at=now,
                        answer_due_at=now, answered_at=now))
    s(w).commit()


def home_of(w: World, person: Person) -> Household:
    home = s(w).get(Household, person.household_id)
    assert home is not None
    return home


def household(w: World, own: bool) -> Household:
    return home_of(w, child(w, own))


def edit_household(c: TestClient, h: dict[str, str], w: World, own: bool) -> Response:
    home = household(w, own)
    return c.put(f"/api/v1/households/{home.id}", headers=h,
                 json={"version": home.version, "address": "新址1号", "grid_id": home.org_unit_id})


def edit_child(c: TestClient, h: dict[str, str], w: World, own: bool) -> Response:
    kid = child(w, own)
    return c.put(f"/api/v1/persons/{kid.id}", headers=h,
                 json={"version": kid.version, "name": "改名", "household_uuid": str(home_of(w, kid).uuid)})


def risk_person(w: World, own: bool) -> int:
    row = RiskPerson(org_unit_id=grid(w, own).id or 0, name="某甲",
                     categories=[RiskPersonCategory.community_correction.value])
    s(w).add(row)
    s(w).commit()
    return row.id or 0


def overdue_risk_person(w: World, own: bool) -> int:
    """A 附件2 entry under control never checked in, made long enough ago to be overdue."""
    row = RiskPerson(org_unit_id=grid(w, own).id or 0, name="某丁", created_at=clock.now() - timedelta(days=400),
                     categories=[RiskPersonCategory.lives_with_stepdaughter.value])
    s(w).add(row)
    s(w).commit()
    return row.id or 0


def linked_risk_person(w: World, own: bool) -> int:
    """A 附件2 entry linked to a household of its side (as `POST .../household-link` makes it)."""
    rid = risk_person(w, own)
    s(w).add(RiskPersonHousehold(risk_person_id=rid, household_id=household(w, own).id or 0))
    s(w).commit()
    return rid


def sealed_risk_person(w: World, own: bool) -> int:
    """A 附件2 entry sealed as the registry seals an entry of a minor (backend/sealing)."""
    row = RiskPerson(org_unit_id=grid(w, own).id or 0, name="某丙", sealed=True,
                     categories=[RiskPersonCategory.community_correction.value])
    s(w).add(row)
    s(w).commit()
    return row.id or 0


def push_visit(c: TestClient, h: dict[str, str], home: Household, *, abuse: bool = False) -> Response:
    answers = fine_answers()
    if abuse:
        answers["look1"] = {"value": "yes"}  # signs of abuse: a mandatory report opens at once
    return c.post("/api/v1/sync/push", json={"items": [visit_item(str(home.uuid), answers=answers)]}, headers=h)


def item_outcome(resp: Response) -> Response:
    """A push answers 200 with a result per item; this is the one item's outcome as a response of its own
    (created 201, duplicate 200, rejected with the status of its problem)."""
    if resp.status_code != 200:
        return resp  # refused as a whole (no token)
    [result] = resp.json()["results"]
    status = {"created": 201, "duplicate": 200}.get(result["status"]) or (result["problem"] or {}).get("status", 409)
    return Response(status, json=result, request=resp.request)


def visit(c: TestClient, w: World, own: bool, *, abuse: bool = False) -> int:
    pushed = item_outcome(push_visit(c, headers_for(s(w), volunteer(w, own)), household(w, own), abuse=abuse))
    assert pushed.status_code == 201, pushed.text
    return int(pushed.json()["record"]["id"])


def visit_uuid(c: TestClient, w: World, own: bool) -> str:
    """The client UUID of a new visit of a new household of the own or the foreign side."""
    pushed = item_outcome(push_visit(c, headers_for(s(w), volunteer(w, own)), household(w, own)))
    assert pushed.status_code == 201, pushed.text
    return str(pushed.json()["client_uuid"])


def photo_parent(c: TestClient, w: World, own: bool) -> str:
    """What a probe's photo belongs to: a visit of a child the caller took on (assigned axis), else a
    visit that has not arrived yet (the photo stays with its uploader's unit)."""
    return visit_uuid(c, w, own) if w.assigned else str(uuid.uuid4())


def referral(c: TestClient, w: World, own: bool) -> int:
    visit_id = visit(c, w, own, abuse=True)
    return int(s(w).execute(select(col(Referral.id)).where(col(Referral.visit_id) == visit_id)).scalar_one())


def mandatory_report_body(place_unit_id: int) -> dict[str, Any]:
    """A mandatory report (强制报告) filed directly, about a place of the given unit."""
    seen = (clock.now() - timedelta(hours=1)).astimezone(clock.SHANGHAI).isoformat()
    return {"description": "矩阵线索：孩子身上有伤", "seen_at": seen, "place": "村口", "org_unit_id": place_unit_id}


def mandatory_report(w: World, own: bool) -> int:
    """A report filed directly by the caller (own) or by the foreign volunteer (foreign), about a place
    of its side: the reporter follows its own reports only."""
    now = clock.now()
    row = Referral(org_unit_id=unit_id(w, own), police_unit_id=w.town.town.id, source_kind="school",
                   reporter_user_id=w.caller_id if own else w.foreign_user_id, description="矩阵线索",
                   seen_at=now - timedelta(hours=1), receive_due_at=now + timedelta(hours=24),
                   handle_due_at=now + timedelta(days=7))
    s(w).add(row)
    s(w).commit()
    return row.id or 0


JPEG = camera_jpeg(64, 48)


def upload(c: TestClient, h: dict[str, str], client_uuid: str, parent_uuid: str | None = None) -> Response:
    return c.put(f"/api/v1/media/{client_uuid}", content=JPEG, headers=h,
                 params={"parent_kind": "visit", "parent_uuid": parent_uuid or str(uuid.uuid4())})


def photo(c: TestClient, w: World, own: bool, parent_uuid: str | None = None) -> str:
    """A photo uploaded by the own or the foreign volunteer (it belongs to their unit until linked)."""
    client_uuid = str(uuid.uuid4())
    resp = upload(c, headers_for(s(w), volunteer(w, own)), client_uuid, parent_uuid or photo_parent(c, w, own))
    assert resp.status_code == 201, resp.text
    return client_uuid


def ledger(annex: Annex) -> bytes:
    """An .xlsx of the annex with its printed headers and no rows."""
    return xlsx_bytes([list(HEADERS[annex])])


def notification(w: World, own: bool) -> int:
    [row] = notify(s(w), user(w, w.caller_id if own else w.foreign_user_id))
    return row.id or 0


NEIGHBOUR_COUNTY = "990102000000"


def county(w: World, own: bool) -> OrgUnit:
    """The town's county, or a neighbouring county (made on first use)."""
    if own:
        return w.town.county
    found = s(w).execute(select(OrgUnit).where(col(OrgUnit.code) == NEIGHBOUR_COUNTY)).scalar_one_or_none()
    if found is not None:
        return found
    unit = orgunits.create_unit(s(w), code=NEIGHBOUR_COUNTY, name="邻县", level=OrgLevel.county, parent=w.town.city)
    s(w).commit()
    return unit


def incident(w: World, own: bool) -> int:
    session = s(w)
    opener = accounts.principal_for(session, make_user(session, county(w, own), Role.coordinator).id or 0,
                                    device_id=None, ip=None)
    assert opener is not None
    made = incidents.create(session, opener, title="网络舆情线索", summary="待核实", source_url=None, org_unit_id=None)
    session.commit()
    return made.id or 0


def town_caller(town: DemoTown) -> OrgUnit:
    """The police station's town (issue 16's police case register): the foreign side is another town
    of the same county."""
    return town.town


NEIGHBOUR_TOWN = "990101200000"


def station(w: World, own: bool) -> OrgUnit:
    """The town's police station, or a neighbouring town's (made on first use)."""
    if own:
        return w.town.town
    found = s(w).execute(select(OrgUnit).where(col(OrgUnit.code) == NEIGHBOUR_TOWN)).scalar_one_or_none()
    if found is not None:
        return found
    unit = orgunits.create_unit(s(w), code=NEIGHBOUR_TOWN, name="邻镇", level=OrgLevel.town, parent=w.town.county)
    s(w).commit()
    return unit


def police_case(w: World, own: bool) -> int:
    """A case the own or the neighbouring station filed (立案)."""
    row = PoliceCase(station_unit_id=station(w, own).id or 0, case_number=f"M-{serial()}",
                     filed_date=clock.now().astimezone(clock.SHANGHAI).date(), category="child_molestation",
                     summary="矩阵测试", victims=1)
    s(w).add(row)
    s(w).commit()
    return row.id or 0


def case_review(w: World, own: bool) -> int:
    """A one-case-one-review of such a case, with one open task of a unit (the station's town)."""
    unit = station(w, own)
    row = CaseReview(police_case_id=police_case(w, own), org_unit_id=unit.id or 0, analysis="剖析")
    s(w).add(row)
    s(w).commit()
    return row.id or 0


def review_task(w: World, own: bool) -> tuple[int, int]:
    review = case_review(w, own)
    task = CaseReviewTask(review_id=review, subject="unit", org_unit_id=station(w, own).id, agency="education",
                          description="开展防性侵教育", deadline_date=clock.now().date() + timedelta(days=7))
    s(w).add(task)
    s(w).commit()
    return review, task.id or 0


def helper_profile(w: World, holder: User) -> HelperProfile:
    """The holder's helper profile (a user has at most one)."""
    session = s(w)
    found = session.execute(select(HelperProfile).where(col(HelperProfile.user_id) == holder.id)).scalar_one_or_none()
    if found is not None:
        return found
    profile = HelperProfile(user_id=holder.id or 0, org_unit_id=holder.org_unit_id, sex="female")
    session.add(profile)
    session.commit()
    return profile


def assignment(w: World, own: bool, status: AssignmentStatus) -> int:
    """Own: a child of the caller's village held by the caller's own helper profile (so a helper answers
    it and a coordinator sees it); foreign: a child of village 1 held by the foreign volunteer's."""
    session = s(w)
    kid = make_child(session, grid(w, own))
    profile = helper_profile(w, user(w, w.caller_id if own else w.foreign_user_id))
    now = clock.now()
    offered = status is not AssignmentStatus.proposed
    row = Assignment(child_id=kid.id or 0, helper_id=profile.id or 0, org_unit_id=kid.org_unit_id,
                     mode="one_to_one", status=status.value, proposed_at=now, confirmed_at=now if offered else None,
                     answer_due_at=now + timedelta(hours=24) if offered else None,
                     answered_at=now if status is AssignmentStatus.accepted else None)
    session.add(row)
    session.commit()
    return row.id or 0


def case(c: TestClient, w: World, own: bool) -> int:
    """A case (个案) opened by a referral for a child of the own or the foreign side (police see the
    cases a referral opened; on the assigned axis the child is the caller's)."""
    referral_id = referral(c, w, own)
    return int(s(w).execute(select(col(Case.id)).where(col(Case.opened_from) == "referral",
                                                      col(Case.source_id) == referral_id)).scalar_one())


def pending_case(c: TestClient, w: World, own: bool) -> int:
    """A case whose closure was proposed and waits for a coordinator."""
    row = s(w).get(Case, case(c, w, own))
    assert row is not None
    row.closure_reason, row.closure_proposed_at = "risk_lowered", clock.now()
    s(w).add(row)
    s(w).commit()
    return row.id or 0


def closed_case(c: TestClient, w: World, own: bool) -> int:
    row = s(w).get(Case, case(c, w, own))
    assert row is not None
    row.status, row.closed_at, row.close_reason = "closed", clock.now(), "risk_lowered"
    s(w).add(row)
    s(w).commit()
    return row.id or 0


def callers_unit(w: World) -> tuple[int, str]:
    """The caller's own unit: its org unit and its agency (a caller made without an agency is given one:
    police their station's, anyone else the 司法所's), to address a service or a referral to it."""
    caller = user(w, w.caller_id)
    if caller.agency is None:
        police = Role.police in accounts.user_roles(s(w), w.caller_id)
        caller.agency = (Agency.police if police else Agency.judicial).value
        s(w).add(caller)
        s(w).commit()
    return caller.org_unit_id, caller.agency or ""


def addressee(w: World, own: bool) -> tuple[int, str]:
    """Own: the caller's unit; foreign: the 司法所 of village 1."""
    return callers_unit(w) if own else (w.town.villages[1].id or 0, Agency.judicial.value)


def case_service(c: TestClient, w: World, own: bool) -> CaseService:
    """A planned service of a case of the own or the foreign side (`case`: opened by a referral, so police
    see it; on the assigned axis the caller's child), provided by the caller's own unit on the own side
    (its staff handle it) and by a unit of village 1 on the foreign side."""
    ensure_service_kinds(s(w))
    kase = s(w).get(Case, case(c, w, own))
    assert kase is not None
    unit, agency = addressee(w, own)
    row = CaseService(case_id=kase.id or 0, org_unit_id=kase.org_unit_id, kind="legal_aid", provider_unit_id=unit,
                      provider_agency=agency)
    s(w).add(row)
    s(w).commit()
    return row


def case_to_serve(c: TestClient, w: World, own: bool) -> int:
    """A case (`case`) with the kinds of service in place (migration 0021's seeds)."""
    ensure_service_kinds(s(w))
    return case(c, w, own)


def service(c: TestClient, w: World, own: bool) -> int:
    return case_service(c, w, own).id or 0


def agency_referral(c: TestClient, w: World, own: bool,
                    status: AgencyReferralStatus = AgencyReferralStatus.sent) -> int:
    """A referral of a case of the own or the foreign side to the caller's own unit (own) or to a unit of
    village 1 (foreign), sent by the town's coordinators, sharing the default fields (none names the child)."""
    kase = s(w).get(Case, case(c, w, own))
    assert kase is not None
    unit, agency = addressee(w, own)
    row = AgencyReferral(case_id=kase.id or 0, org_unit_id=kase.org_unit_id, from_unit_id=w.town.town.id or 0,
                         from_agency=Agency.government.value, to_unit_id=unit, to_agency=agency,
                         shared_fields=list(DEFAULT_SHARED), status=status.value)
    s(w).add(row)
    s(w).commit()
    return row.id or 0


def inspection_with_issues(w: World, own: bool) -> int:
    """An inspection the caller recorded (own side; the foreign side another unit's), sent back has_issues
    by a coordinator (backend/reviews)."""
    found = problem(w, own)
    inspection = s(w).get(Inspection, found.found_in_inspection_id)
    assert inspection is not None and inspection.id is not None
    recorder = w.caller_id if own else w.foreign_user_id
    inspection.recorded_by_user_id, inspection.review_state = recorder, "has_issues"
    s(w).add(inspection)
    s(w).add(ReviewEvent(record_kind="inspection", record_id=inspection.id, record_uuid=inspection.client_uuid,
                         org_unit_id=inspection.org_unit_id, recorded_by=recorder, from_state="pending",
                         to_state="has_issues", comment="缺少签名", decided_by=w.own_user_id))
    s(w).commit()
    return inspection.id


def activity_body(w: World, own: bool) -> dict[str, Any]:
    """A door-to-door activity (进村入户) in the caller's village, or in the foreign one."""
    return {"client_uuid": str(uuid.uuid4()), **prevention_factories.village_data(
        w.town.villages[0 if own else 1].id or 0)}


def activity(w: World, own: bool) -> int:
    """An activity held in the own grid or the foreign village, recorded by that side's volunteer."""
    return prevention_factories.make_activity(s(w), unit_id=unit_id(w, own),
                                              recorded_by=w.own_user_id if own else w.foreign_user_id).id or 0


def survey_school(w: World, own: bool) -> int:
    """A school of the town's first village (own) or of a neighbouring town (foreign), for an awareness
    round: foreign to a village caller and to a town caller alike."""
    return awareness_factories.school(s(w), w.town.villages[0] if own else station(w, False)).id or 0


def education(w: World) -> None:
    """Member-unit staff manage awareness surveys only for the education agency (backend/awareness): a
    caller of that role made without an agency is given it."""
    caller = user(w, w.caller_id)
    if caller.agency is None:
        caller.agency = Agency.education.value
        s(w).add(caller)
        s(w).commit()


def survey_round(c: TestClient, w: World, own: bool) -> int:
    """An awareness round at a school of the own side, opened by the town's coordinator (a town caller
    may end it: it is the opener's), or of the foreign side, opened by the county's."""
    opener = make_user(s(w), w.town.town if own else w.town.county, Role.coordinator)
    resp = c.post("/api/v1/awareness/rounds", json={"institution_id": survey_school(w, own)},
                  headers=headers_for(s(w), opener))
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def national_questionnaire(w: World) -> int:
    """The id of the built-in national questionnaire (version 1)."""
    awareness.ensure_builtin(s(w))
    s(w).commit()
    found = s(w).execute(select(col(AwarenessQuestionnaire.id)).where(
        col(AwarenessQuestionnaire.owner) == NATIONAL)).scalars().first()
    return int(found or 0)


def open_survey(c: TestClient, h: dict[str, str], w: World, own: bool) -> Response:
    education(w)
    return c.post("/api/v1/awareness/rounds", headers=h, json={"institution_id": survey_school(w, own)})


def institution(w: World, own: bool) -> int:
    """A primary school (supervised by education) in a grid under the caller's village, or in the foreign
    village. Under, not at, the caller's unit: a supervising agency's clerk sits above the schools it
    supervises; a user at the school's own unit is the school's staff and sees no staff list."""
    return make_institution(s(w), w.town.grids[0][0].id if own else w.town.villages[1].id or 0).id or 0


def staff_institution(w: World, own: bool) -> int:
    """A primary school in the town's first village (own) or in a neighbouring town (foreign), for callers
    at the town (`town_caller`): a supervising agency's clerk sits strictly above the school's
    administrative unit, and a grid counts as its village, so no clerk of a village supervises anything."""
    return make_institution(s(w), w.town.villages[0].id if own else station(w, False).id or 0).id or 0


def staff_member(w: World, own: bool) -> int:
    """An employed member of such a school. Member-unit staff see staff only of the institutions their
    agency supervises: a caller made without an agency is given education's (`education`)."""
    education(w)
    school = s(w).get(Institution, staff_institution(w, own))
    assert school is not None
    return make_member(s(w), school).id or 0


def campaign_body() -> dict[str, Any]:
    code = f"matrix-{serial()}"
    return {"code": code, "name": "矩阵", "start_date": "2026-01-01", "end_date": "2026-12-31",
            "phases": [{"code": "p", "name_zh": "阶段", "name_en": "Phase", "start_date": "2026-01-01",
                        "end_date": "2026-12-31"}]}


def supervised_problem(w: World, own: bool, *, below: bool = False, submitted: bool = False) -> int:
    """A problem of a unit (issue 18, 督办): of village 0 (own) or village 1 (foreign), the unit as a
    whole, so member-unit staff of the caller's unit have it addressed to them; `below`: of a grid of
    that village instead (a unit above it, the caller's village, may supervise it); `submitted`: its
    rectification reported, awaiting verification."""
    unit = (w.town.grids[0][0] if own else w.town.grids[1][0]) if below else w.town.villages[0 if own else 1]
    row = Problem(subject="unit", org_unit_id=unit.id or 0, source="unannounced_check", description="暗访发现问题",
                  measure="限期整改", responsible_party=unit.name, deadline_date=clock.now().date() + timedelta(days=7),
                  status="submitted" if submitted else "open", rectification="已整改" if submitted else "")
    s(w).add(row)
    s(w).commit()
    return row.id or 0


def notice(w: World, own: bool, *, published_by_village: bool = False) -> int:
    """A typical-case notice addressed to village 0 (own) or village 1 (foreign) as a whole, published by
    the town; `published_by_village`: published by that village itself (its publishing side)."""
    village = w.town.villages[0 if own else 1]
    row = Notice(title="典型案例通报", body="某旅馆未落实五必须，已责令整改。", publisher_user_id=w.own_user_id,
                 publisher_unit_id=(village.id if published_by_village else w.town.town.id) or 0)
    s(w).add(row)
    s(w).flush()
    s(w).add(NoticeRecipient(notice_id=row.id or 0, org_unit_id=village.id or 0))
    s(w).commit()
    return row.id or 0


PROBES: dict[str, Probe] = {
    # The institution register and staff checks (从业查询, issue 18): a school of the caller's village.
    "institution.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/institutions/{institution(w, own)}", headers=h)),
    "institution.write": Probe(lambda c, h, w, own: c.patch(f"/api/v1/institutions/{institution(w, own)}",
                                                            json={"address": "矩阵路1号"}, headers=h)),
    # Staff of a school the caller's town supervises (callers at the town: see staff_institution).
    "staff.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/staff/{staff_member(w, own)}", headers=h),
                        caller=town_caller),
    "staff.manage": Probe(lambda c, h, w, own: c.patch(f"/api/v1/staff/{staff_member(w, own)}",
                                                       json={"position": "班主任"}, headers=h), caller=town_caller),
    "staff.check": Probe(lambda c, h, w, own: c.post(f"/api/v1/staff/{staff_member(w, own)}/checks", headers=h, json={
        "check_date": clock.now().astimezone(clock.SHANGHAI).date().isoformat(), "kind": "periodic",
        "result": "clear"}), caller=town_caller),
    "staff.overview": Probe(lambda c, h, w, own: c.get("/api/v1/staff-checks/overview",
                                                       params={"unit_id": unit_id(w, own)}, headers=h)),
    # Issue 18: supervision of any unit (督办, 挂牌督办) and typical-case notices (典型案例通报).
    "supervision.read": Probe(lambda c, h, w, own: c.get("/api/v1/supervision/problems",
                                                         params={"unit_id": unit_id(w, own)}, headers=h)),
    "supervision.manage": Probe(lambda c, h, w, own: c.post("/api/v1/supervision/problems", headers=h, json={
        "subject": {"kind": "unit", "org_unit_id": unit_id(w, own)}, "source": "unannounced_check",
        "description": "暗访发现问题", "measure": "限期整改",
        "deadline_date": (clock.now().date() + timedelta(days=7)).isoformat()})),
    "supervision.rectify": Probe(lambda c, h, w, own: c.post(
        f"/api/v1/supervision/problems/{supervised_problem(w, own)}/rectification", json={"report": "已整改"},
        headers=h)),
    "notice.publish": Probe(lambda c, h, w, own: c.post("/api/v1/notices", headers=h, json={
        "title": "典型案例通报", "body": "某旅馆未落实五必须，已责令整改。",
        "recipients": [{"unit_id": unit_id(w, own)}]})),
    "notice.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/notices/{notice(w, own)}", headers=h)),
    # Issue 5: venues, inspections, problems, plans.
    "venue.read": Probe(lambda c, h, w, own: c.get("/api/v1/venues", params={"org_unit_id": unit_id(w, own)},
                                                   headers=h)),
    "venue.write": Probe(lambda c, h, w, own: c.post("/api/v1/venues", headers=h, json={
        "venue_type": "ktv", "name": "矩阵KTV", "credit_code": venue_factories.credit_code(), "lon": 108.301,
        "lat": 30.001, "org_unit_id": unit_id(w, own)})),
    "inspection.read": Probe(lambda c, h, w, own: c.get("/api/v1/problems", params={"org_unit_id": unit_id(w, own)},
                                                        headers=h)),
    "inspection.create": Probe(lambda c, h, w, own: c.post("/api/v1/inspections", headers=h, json=(
        venue_factories.inspection_body(venue(w, own))))),
    "problem.update": Probe(lambda c, h, w, own: c.patch(f"/api/v1/problems/{problem(w, own).id}",
                                                         json={"status": "rectifying"}, headers=h)),
    "problem.verify": Probe(recheck),
    "schedule.read": Probe(lambda c, h, w, own: c.get("/api/v1/schedules", params={"org_unit_id": unit_id(w, own)},
                                                      headers=h)),
    "schedule.generate": Probe(lambda c, h, w, own: c.post("/api/v1/schedules/generate",
                                                           json={"org_unit_id": unit_id(w, own)}, headers=h)),
    "schedule.publish": Probe(lambda c, h, w, own: c.post(f"/api/v1/schedules/{plan(w, own)}/publish", headers=h)),
    "orgunit.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/org-units/{unit_id(w, own)}", headers=h)),
    "device.register": Probe(
        lambda c, h, w, own: c.post("/api/v1/devices", json={"platform": "android", "push_token": "tok-matrix-1"},
                                    headers=h),
        has_jurisdiction=False,
    ),
    "user.read": Probe(
        lambda c, h, w, own: c.get(f"/api/v1/users/{w.own_user_id if own else w.foreign_user_id}", headers=h)
    ),
    "user.manage": Probe(
        lambda c, h, w, own: c.patch(f"/api/v1/users/{managed_user(w, own)}", json={"display_name": "改名"}, headers=h)
    ),
    "audit.read": Probe(lambda c, h, w, own: c.get("/api/v1/audit", headers=h), has_jurisdiction=False),
    "coverage.read": Probe(lambda c, h, w, own: c.get("/api/v1/coverage", params={"unit_id": unit_id(w, own)},
                                                      headers=h)),
    "coverage.households": Probe(
        lambda c, h, w, own: c.get("/api/v1/coverage/not-visited", params={"unit_id": unit_id(w, own)}, headers=h)
    ),
    "campaign.manage": Probe(lambda c, h, w, own: c.post("/api/v1/campaigns", json=campaign_body(), headers=h),
                             has_jurisdiction=False),
    "report.read": Probe(lambda c, h, w, own: c.get("/api/v1/reports/monthly",
                                                    params={"unit_id": unit_id(w, own), "month": "2026-03"},
                                                    headers=h)),
    "report.generate": Probe(lambda c, h, w, own: c.post("/api/v1/reports/monthly",
                                                         json={"unit_id": unit_id(w, own), "month": "2026-03"},
                                                         headers=h)),
    # Issue 4: photos.
    "media.upload": Probe(lambda c, h, w, own: upload(c, h, str(uuid.uuid4()) if own else photo(c, w, False))),
    "media.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/media/{photo(c, w, own)}", headers=h)),
    "media.original": Probe(lambda c, h, w, own: c.get(f"/api/v1/media/{photo(c, w, own)}/original", headers=h)),
    # Issue 3: registry, visits, referrals, ledgers, checklists.
    "household.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/households/{household(w, own).id}", headers=h)),
    "household.write": Probe(edit_household),
    "child.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/persons/{child(w, own).id}", headers=h)),
    "child.write": Probe(edit_child),
    "child.reveal_id": Probe(lambda c, h, w, own: c.post(f"/api/v1/persons/{child(w, own).id}/reveal-id", json={},
                                                         headers=h)),
    "risk_person.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/risk-persons/{risk_person(w, own)}", headers=h)),
    "risk_person.write": Probe(lambda c, h, w, own: c.post("/api/v1/risk-persons", headers=h, json={
        "name": "某乙", "categories": [RiskPersonCategory.vagrant.value], "org_unit_id": grid(w, own).id})),
    # A control check-in: who may not read 附件2 learns nothing (404); a coordinator reads it but does not
    # control (403).
    "risk_person.control": Probe(
        lambda c, h, w, own: c.post(f"/api/v1/risk-persons/{risk_person(w, own)}/check-ins", headers=h,
                                    json={"method": "home_visit", "finding": "normal"}),
        hidden_behind=frozenset({Action.risk_person_read}),
    ),
    "sealed.open": Probe(lambda c, h, w, own: c.post(f"/api/v1/risk-persons/{sealed_risk_person(w, own)}/open-sealed",
                                                     json={"reason": "办案需要，核查"}, headers=h)),
    "visit.create": Probe(lambda c, h, w, own: item_outcome(push_visit(c, h, household(w, own)))),
    "visit.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/visits/{visit(c, w, own)}", headers=h)),
    "referral.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/referrals/{referral(c, w, own)}", headers=h)),
    "referral.manage": Probe(lambda c, h, w, own: c.post(f"/api/v1/referrals/{referral(c, w, own)}/receive",
                                                         headers=h)),
    # 附件1 lists children: who may not see children gets 404 before the export right is asked.
    "ledger.export": Probe(lambda c, h, w, own: c.get("/api/v1/ledgers/1.xlsx", headers=h), has_jurisdiction=False,
                           hidden_behind=frozenset({Action.child_read})),
    # 附件2 (risk persons) is the ledger police import; who may not see it gets 404.
    "ledger.import": Probe(
        lambda c, h, w, own: c.post("/api/v1/ledgers/2/import", params={"org_unit_id": grid(w, own).id},
                                    files={"file": ("a2.xlsx", ledger(Annex.risk_persons))}, headers=h),
        hidden_behind=frozenset({Action.risk_person_read, Action.risk_person_write}),
    ),
    "risk.override": Probe(lambda c, h, w, own: c.post(f"/api/v1/persons/{child(w, own).id}/risk-level",
                                                       json={"level": "较大风险", "reason": "专班研判"}, headers=h)),
    "checklist.manage": Probe(
        lambda c, h, w, own: c.post(f"/api/v1/checklists/matrix-check-{serial()}", headers=h, json={
            "title_zh": "矩阵检查", "title_en": "Matrix check", "items": [{"id": "q1", "label_zh": "问题一"}]}),
        has_jurisdiction=False,
    ),
    # Issue 6: the inbox, 2112 incidents, helpers and assignments.
    "notification.read": Probe(lambda c, h, w, own: c.post(f"/api/v1/notifications/{notification(w, own)}/read",
                                                           headers=h)),
    # Issue 19: where notifications got to (a user of the caller's area, or of a foreign one: 404), and
    # channel health (of a unit of the caller's area, or a foreign one: 404).
    "notification.delivery.read": Probe(lambda c, h, w, own: c.get("/api/v1/notifications/delivery", params={
        "user_id": w.own_user_id if own else w.foreign_user_id}, headers=h)),
    "notification.health.read": Probe(lambda c, h, w, own: c.get("/api/v1/notifications/channels/health",
                                                                 params={"unit_id": unit_id(w, own)}, headers=h)),
    "incident.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/incidents/{incident(w, own)}", headers=h),
                           caller=county_caller),
    "incident.create": Probe(lambda c, h, w, own: c.post("/api/v1/incidents", headers=h, json={
        "title": "网络舆情线索", "org_unit_id": county(w, own).id}), caller=county_caller),
    "incident.handoff": Probe(lambda c, h, w, own: c.post(f"/api/v1/incidents/{incident(w, own)}/handoffs",
                                                          json={"to_unit_ids": [w.town.town.id]}, headers=h),
                              caller=county_caller),
    "incident.close": Probe(lambda c, h, w, own: c.post(f"/api/v1/incidents/{incident(w, own)}/close", json={},
                                                        headers=h), caller=county_caller),
    "helper.read": Probe(lambda c, h, w, own: c.get("/api/v1/helpers", headers=h), has_jurisdiction=False),
    "helper.manage": Probe(lambda c, h, w, own: c.post("/api/v1/helpers", headers=h, json={
        "user_id": w.own_user_id if own else w.foreign_user_id, "sex": "female"})),
    "assignment.read": Probe(lambda c, h, w, own: c.get(
        f"/api/v1/helpers/assignments/{assignment(w, own, AssignmentStatus.proposed)}", headers=h)),
    "assignment.confirm": Probe(lambda c, h, w, own: c.post(
        f"/api/v1/helpers/assignments/{assignment(w, own, AssignmentStatus.proposed)}/confirm", headers=h)),
    "assignment.answer": Probe(lambda c, h, w, own: c.post(
        f"/api/v1/helpers/assignments/{assignment(w, own, AssignmentStatus.offered)}/accept", headers=h)),
    # Issue 16: cases (个案).
    "case.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/cases/{case(c, w, own)}", headers=h)),
    "case.manage": Probe(lambda c, h, w, own: c.post(f"/api/v1/cases/{case(c, w, own)}/activate", headers=h)),
    # Mandatory reports filed directly: about a place of the caller's jurisdiction (a foreign unit is 404).
    "mandatory_report.file": Probe(lambda c, h, w, own: c.post("/api/v1/mandatory-reports", headers=h,
                                                               json=mandatory_report_body(unit_id(w, own)))),
    # The police case register (立案) and one-case-one-review (一案一倒查): callers at the town (the station),
    # the foreign side another town of the county.
    "police_case.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/police-cases/{police_case(w, own)}", headers=h),
                              caller=town_caller),
    "police_case.manage": Probe(lambda c, h, w, own: c.post(f"/api/v1/police-cases/{police_case(w, own)}/status",
                                                            json={"to": "investigating"}, headers=h),
                                caller=town_caller),
    "case_review.manage": Probe(lambda c, h, w, own: c.post("/api/v1/case-reviews", headers=h, json={
        "police_case_id": police_case(w, own), "analysis": "剖析"}), caller=town_caller),
    # Services of cases and referrals between units (issue 16): the own service is provided by the
    # caller's own unit (its staff, police of that station, a helper of it see and handle it).
    "service.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/services/{service(c, w, own)}", headers=h)),
    "service.manage": Probe(lambda c, h, w, own: c.post(f"/api/v1/cases/{case_to_serve(c, w, own)}/services", headers=h,
                                                        json={"kind": "legal_aid", "due_on": "2030-01-31"})),
    "service.handle": Probe(lambda c, h, w, own: c.post(f"/api/v1/services/{service(c, w, own)}/steps", headers=h,
                                                        json={"to_status": "in_progress", "note": "已联系"})),
    # Review of field work (审核, issue 17): decisions on the visits of the caller's area.
    "review.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/visits/{visit(c, w, own)}/reviews", headers=h)),
    "review.manage": Probe(lambda c, h, w, own: c.post(f"/api/v1/visits/{visit(c, w, own)}/review", headers=h,
                                                       json={"state": "approved"})),
    # Prevention activities (宣传教育, issue 18): recorded at a village of the caller's area; read by id.
    "activity.record": Probe(lambda c, h, w, own: c.post("/api/v1/activities", headers=h, json=activity_body(w, own))),
    "activity.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/activities/{activity(w, own)}", headers=h)),
    # Awareness surveys (知晓率, issue 18): a round opened at a school of the caller's area; its rates.
    # Callers at the town: education staff of the school's own village are its staff and run no survey of
    # it (403 awareness-own-school, tests/awareness/test_own_figure.py).
    "survey.manage": Probe(open_survey, caller=town_caller),
    "survey.read": Probe(lambda c, h, w, own: c.get("/api/v1/awareness/rates", params={"unit_id": unit_id(w, own)},
                                                    headers=h)),
}
