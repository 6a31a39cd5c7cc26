"""The permission matrix, as a table: role x action x own/foreign jurisdiction, through HTTP.

EXPECTED below is written out by hand, independently of backend/accounts/permissions.py; the first
test fails when the two disagree, so a new action cannot appear without a row here, and the second
drives every row through a real endpoint.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from openpyxl import Workbook
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts import service as accounts
from backend.accounts.models import User
from backend.accounts.permissions import HIDDEN_ACTIONS, PERMISSIONS, Action, Role
from backend.core import clock
from backend.demo.town import DemoTown
from backend.helpers.models import Assignment, AssignmentStatus, HelperProfile
from backend.incidents import service as incidents
from backend.inspections.models import Problem
from backend.ledgers.sheets import HEADERS, Annex
from backend.main import create_app
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.referrals.models import Referral
from backend.registry.models import Household, Person, RiskPerson, RiskPersonCategory
from backend.schedules import service as schedule_service
from backend.venues.models import Venue
from tests.factories import make_town, make_user, sign_in
from tests.helpers.factories import make_child
from tests.media.conftest import camera_jpeg, media_root  # noqa: F401 (a fixture)
from tests.notifications.factories import headers_for, notify
from tests.registry.factories import fine_answers, visit_item
from tests.venues import factories as venue_factories

R = Role
EXPECTED: dict[str, set[Role]] = {
    # Venues, inspections, problems and weekly plans (issue 5).
    "venue.read": {R.grid_worker, R.market_officer, R.police, R.coordinator, R.admin},
    "venue.write": {R.market_officer, R.police, R.coordinator},
    "inspection.read": {R.market_officer, R.police, R.coordinator, R.admin},
    "inspection.create": {R.market_officer, R.police},
    "problem.update": {R.market_officer, R.police, R.coordinator},
    "problem.verify": {R.market_officer, R.police},
    "schedule.read": {R.market_officer, R.police, R.coordinator, R.admin},
    "schedule.generate": {R.coordinator},
    "schedule.publish": {R.coordinator},
    "orgunit.read": set(Role),
    "device.register": set(Role),
    "user.read": {R.coordinator, R.admin},
    "user.manage": {R.coordinator, R.admin},
    "audit.read": {R.admin},
    # Coverage, campaigns and monthly reports (issue 7).
    "coverage.read": {R.volunteer, R.grid_worker, R.helper, R.police, R.coordinator, R.admin},
    "coverage.households": {R.volunteer, R.grid_worker, R.coordinator},
    "campaign.manage": {R.coordinator, R.admin},
    "report.read": {R.police, R.coordinator, R.admin},
    "report.generate": {R.coordinator},
    # Photos (issue 4).
    "media.upload": {R.volunteer, R.helper, R.grid_worker, R.market_officer, R.police, R.coordinator},
    "media.read": {R.volunteer, R.helper, R.grid_worker, R.market_officer, R.police, R.coordinator},
    "media.original": {R.police},
    # Registry, visits, referrals, ledgers, checklists (issue 3).
    "household.read": {R.volunteer, R.grid_worker, R.helper, R.police, R.coordinator},
    "household.write": {R.volunteer, R.grid_worker, R.coordinator},
    "child.read": {R.volunteer, R.grid_worker, R.helper, R.police, R.coordinator},
    "child.write": {R.volunteer, R.grid_worker, R.coordinator},
    "child.reveal_id": {R.police, R.coordinator},
    "risk_person.read": {R.police, R.coordinator},
    "risk_person.write": {R.police, R.coordinator},
    "visit.create": {R.volunteer, R.grid_worker, R.helper, R.coordinator},
    "visit.read": {R.volunteer, R.grid_worker, R.helper, R.police, R.coordinator},
    "referral.read": {R.police, R.coordinator},
    "referral.manage": {R.police, R.coordinator},
    "ledger.export": {R.police, R.coordinator},
    "ledger.import": {R.police, R.coordinator},
    "risk.override": {R.coordinator},
    "checklist.manage": {R.coordinator},
    # Notifications, 2112 incidents, helpers and assignments (issue 6).
    "notification.read": set(Role),
    "incident.read": {R.coordinator},
    "incident.create": {R.coordinator},
    "incident.handoff": {R.coordinator},
    "incident.close": {R.coordinator},
    "helper.read": {R.coordinator},
    "helper.manage": {R.coordinator},
    "assignment.read": {R.coordinator, R.helper},
    "assignment.confirm": {R.coordinator},
    "assignment.answer": {R.helper},
}


def test_matrix_in_code_matches_the_table() -> None:
    in_code = {a.value: {r for r in Role if a in PERMISSIONS[r]} for a in Action}
    assert in_code == EXPECTED


@dataclass
class World:
    town: DemoTown
    own_user_id: int
    foreign_user_id: int
    session: Session | None = None  # for probes that need records made first
    caller_id: int = 0  # the signed-in caller (for records that belong to a person, not a unit)


def _village_caller(town: DemoTown) -> OrgUnit:
    return town.villages[0]


@dataclass(frozen=True)
class Probe:
    """How to exercise an action against a record in the caller's or a foreign jurisdiction."""

    call: Callable[[TestClient, dict[str, str], World, bool], Response]
    has_jurisdiction: bool = True
    # Where the caller sits; own/foreign records are chosen relative to it.
    caller: Callable[[DemoTown], OrgUnit] = _village_caller
    # Hidden actions the endpoint checks before this one: a role lacking any of them learns nothing (404).
    hidden_behind: frozenset[Action] = field(default_factory=frozenset)


def _unit(w: World, own: bool) -> int:
    return (w.town.grids[0][0] if own else w.town.villages[1]).id or 0


def _venue(w: World, own: bool) -> Venue:
    assert w.session is not None
    return venue_factories.make_venue(w.session, w.town, village=0 if own else 1)


def _problem(w: World, own: bool) -> Problem:
    assert w.session is not None
    return venue_factories.make_problem(w.session, w.town, village=0 if own else 1, recorded_by=w.own_user_id)


def _recheck(c: TestClient, h: dict[str, str], w: World, own: bool) -> Response:
    problem = _problem(w, own)
    venue = w.session.get(Venue, problem.venue_id) if w.session else None
    assert venue is not None
    body = venue_factories.inspection_body(venue, rechecks=[{"problem_id": problem.id, "fixed": True}])
    return c.post("/api/v1/inspections", json=body, headers=h)


def _plan(w: World, own: bool) -> int:
    assert w.session is not None
    plan = schedule_service.generate(w.session, None, _unit(w, own))
    w.session.commit()
    return plan.id or 0


# Registry records, visits, referrals and photos of the own side sit in grid 0/2 (the own volunteer's grid),
# those of the foreign side in village 1 (the foreign volunteer's), so either volunteer can make them.


def _s(w: World) -> Session:
    assert w.session is not None
    return w.session


def _user(w: World, user_id: int) -> User:
    user = _s(w).get(User, user_id)
    assert user is not None
    return user


def _volunteer(w: World, own: bool) -> User:
    return _user(w, w.own_user_id if own else w.foreign_user_id)


def _grid(w: World, own: bool) -> OrgUnit:
    return w.town.grids[0][2] if own else w.town.grids[1][0]


def _child(w: World, own: bool) -> Person:
    return make_child(_s(w), _grid(w, own))


def _home_of(w: World, child: Person) -> Household:
    home = _s(w).get(Household, child.household_id)
    assert home is not None
    return home


def _household(w: World, own: bool) -> Household:
    return _home_of(w, _child(w, own))


def _edit_household(c: TestClient, h: dict[str, str], w: World, own: bool) -> Response:
    home = _household(w, own)
    return c.put(f"/api/v1/households/{home.id}", headers=h,
                 json={"version": home.version, "address": "新址1号", "grid_id": home.org_unit_id})


def _edit_child(c: TestClient, h: dict[str, str], w: World, own: bool) -> Response:
    child = _child(w, own)
    return c.put(f"/api/v1/persons/{child.id}", headers=h,
                 json={"version": child.version, "name": "改名", "household_uuid": str(_home_of(w, child).uuid)})


def _risk_person(w: World, own: bool) -> int:
    row = RiskPerson(org_unit_id=_grid(w, own).id or 0, name="某甲",
                     categories=[RiskPersonCategory.community_correction.value])
    _s(w).add(row)
    _s(w).commit()
    return row.id or 0


def _push_visit(c: TestClient, h: dict[str, str], home: Household, *, abuse: bool = False) -> Response:
    answers = fine_answers()
    if abuse:
        answers["look1"] = {"value": "yes"}  # signs of abuse: a mandatory report opens at once
    return c.post("/api/v1/sync/push", json={"items": [visit_item(str(home.uuid), answers=answers)]}, headers=h)


def _item_outcome(resp: Response) -> Response:
    """A push answers 200 with a result per item; this is the one item's outcome as a response of its own
    (created 201, duplicate 200, rejected with the status of its problem)."""
    assert resp.status_code == 200, resp.text
    [result] = resp.json()["results"]
    status = {"created": 201, "duplicate": 200}.get(result["status"]) or (result["problem"] or {}).get("status", 409)
    return Response(status, json=result, request=resp.request)


def _visit(c: TestClient, w: World, own: bool, *, abuse: bool = False) -> int:
    pushed = _item_outcome(_push_visit(c, headers_for(_s(w), _volunteer(w, own)), _household(w, own), abuse=abuse))
    assert pushed.status_code == 201, pushed.text
    return int(pushed.json()["record"]["id"])


def _referral(c: TestClient, w: World, own: bool) -> int:
    visit_id = _visit(c, w, own, abuse=True)
    return int(_s(w).execute(select(col(Referral.id)).where(col(Referral.visit_id) == visit_id)).scalar_one())


_JPEG = camera_jpeg(64, 48)


def _upload(c: TestClient, h: dict[str, str], client_uuid: str) -> Response:
    return c.put(f"/api/v1/media/{client_uuid}", content=_JPEG, headers=h,
                 params={"parent_kind": "visit", "parent_uuid": str(uuid.uuid4())})


def _photo(c: TestClient, w: World, own: bool) -> str:
    """A photo uploaded by the own or the foreign volunteer (it belongs to their unit until linked)."""
    client_uuid = str(uuid.uuid4())
    resp = _upload(c, headers_for(_s(w), _volunteer(w, own)), client_uuid)
    assert resp.status_code == 201, resp.text
    return client_uuid


def _ledger(annex: Annex) -> bytes:
    """An .xlsx of the annex with its printed headers and no rows."""
    book = Workbook()
    sheet: Any = book.active
    sheet.append(list(HEADERS[annex]))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _notification(w: World, own: bool) -> int:
    [row] = notify(_s(w), _user(w, w.caller_id if own else w.foreign_user_id))
    return row.id or 0


# 2112 incidents open at province, city or county level: their caller sits at the county, the foreign
# side is a neighbouring county.


def _county_caller(town: DemoTown) -> OrgUnit:
    return town.county


def _county(w: World, own: bool) -> OrgUnit:
    if own:
        return w.town.county
    unit = orgunits.create_unit(_s(w), code="990102000000", name="邻县", level=OrgLevel.county, parent=w.town.city)
    _s(w).commit()
    return unit


def _incident(w: World, own: bool) -> int:
    s = _s(w)
    opener = accounts.principal_for(s, make_user(s, _county(w, own), Role.coordinator).id or 0, device_id=None, ip=None)
    assert opener is not None
    incident = incidents.create(s, opener, title="网络舆情线索", summary="待核实", source_url=None, org_unit_id=None)
    s.commit()
    return incident.id or 0


def _assignment(w: World, own: bool, status: AssignmentStatus) -> int:
    """Own: a child of the caller's village held by the caller's own helper profile (so a helper answers
    it and a coordinator sees it); foreign: a child of village 1 held by the foreign volunteer's."""
    s = _s(w)
    child = _child(w, own)
    holder = _user(w, w.caller_id if own else w.foreign_user_id)
    profile = HelperProfile(user_id=holder.id or 0, org_unit_id=holder.org_unit_id, sex="female")
    s.add(profile)
    s.flush()
    now = clock.now()
    offered = status is AssignmentStatus.offered
    row = Assignment(child_id=child.id or 0, helper_id=profile.id or 0, org_unit_id=child.org_unit_id,
                     mode="one_to_one", status=status.value, proposed_at=now, confirmed_at=now if offered else None,
                     answer_due_at=now + timedelta(hours=24) if offered else None)
    s.add(row)
    s.commit()
    return row.id or 0


PROBES: dict[str, Probe] = {
    # Issue 5: venues, inspections, problems, plans.
    "venue.read": Probe(lambda c, h, w, own: c.get("/api/v1/venues", params={"org_unit_id": _unit(w, own)},
                                                   headers=h)),
    "venue.write": Probe(lambda c, h, w, own: c.post("/api/v1/venues", headers=h, json={
        "venue_type": "ktv", "name": "矩阵KTV", "credit_code": venue_factories.credit_code(), "lon": 108.301,
        "lat": 30.001, "org_unit_id": _unit(w, own)})),
    "inspection.read": Probe(lambda c, h, w, own: c.get("/api/v1/problems", params={"org_unit_id": _unit(w, own)},
                                                        headers=h)),
    "inspection.create": Probe(lambda c, h, w, own: c.post("/api/v1/inspections", headers=h, json=(
        venue_factories.inspection_body(_venue(w, own))))),
    "problem.update": Probe(lambda c, h, w, own: c.patch(f"/api/v1/problems/{_problem(w, own).id}",
                                                         json={"status": "rectifying"}, headers=h)),
    "problem.verify": Probe(lambda c, h, w, own: _recheck(c, h, w, own)),
    "schedule.read": Probe(lambda c, h, w, own: c.get("/api/v1/schedules", params={"org_unit_id": _unit(w, own)},
                                                      headers=h)),
    "schedule.generate": Probe(lambda c, h, w, own: c.post("/api/v1/schedules/generate",
                                                           json={"org_unit_id": _unit(w, own)}, headers=h)),
    "schedule.publish": Probe(lambda c, h, w, own: c.post(f"/api/v1/schedules/{_plan(w, own)}/publish", headers=h)),
    "orgunit.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/org-units/{_unit(w, own)}", headers=h)),
    "device.register": Probe(
        lambda c, h, w, own: c.post("/api/v1/devices", json={"platform": "android", "push_token": "tok-matrix-1"},
                                    headers=h),
        has_jurisdiction=False,
    ),
    "user.read": Probe(
        lambda c, h, w, own: c.get(f"/api/v1/users/{w.own_user_id if own else w.foreign_user_id}", headers=h)
    ),
    "user.manage": Probe(
        lambda c, h, w, own: c.patch(f"/api/v1/users/{w.own_user_id if own else w.foreign_user_id}",
                                     json={"display_name": "改名"}, headers=h)
    ),
    "audit.read": Probe(lambda c, h, w, own: c.get("/api/v1/audit", headers=h), has_jurisdiction=False),
    "coverage.read": Probe(lambda c, h, w, own: c.get("/api/v1/coverage", params={"unit_id": _unit(w, own)},
                                                      headers=h)),
    "coverage.households": Probe(
        lambda c, h, w, own: c.get("/api/v1/coverage/not-visited", params={"unit_id": _unit(w, own)}, headers=h)
    ),
    "campaign.manage": Probe(
        lambda c, h, w, own: c.post("/api/v1/campaigns", json={
            "code": "matrix", "name": "矩阵", "start_date": "2026-01-01", "end_date": "2026-12-31",
            "phases": [{"code": "p", "name_zh": "阶段", "name_en": "Phase", "start_date": "2026-01-01",
                        "end_date": "2026-12-31"}]}, headers=h),
        has_jurisdiction=False,
    ),
    "report.read": Probe(lambda c, h, w, own: c.get("/api/v1/reports/monthly",
                                                    params={"unit_id": _unit(w, own), "month": "2026-03"}, headers=h)),
    "report.generate": Probe(lambda c, h, w, own: c.post("/api/v1/reports/monthly",
                                                         json={"unit_id": _unit(w, own), "month": "2026-03"},
                                                         headers=h)),
    # Issue 4: photos.
    "media.upload": Probe(lambda c, h, w, own: _upload(c, h, str(uuid.uuid4()) if own else _photo(c, w, False))),
    "media.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/media/{_photo(c, w, own)}", headers=h)),
    "media.original": Probe(lambda c, h, w, own: c.get(f"/api/v1/media/{_photo(c, w, own)}/original", headers=h)),
    # Issue 3: registry, visits, referrals, ledgers, checklists.
    "household.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/households/{_household(w, own).id}", headers=h)),
    "household.write": Probe(_edit_household),
    "child.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/persons/{_child(w, own).id}", headers=h)),
    "child.write": Probe(_edit_child),
    "child.reveal_id": Probe(lambda c, h, w, own: c.post(f"/api/v1/persons/{_child(w, own).id}/reveal-id", json={},
                                                         headers=h)),
    "risk_person.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/risk-persons/{_risk_person(w, own)}", headers=h)),
    "risk_person.write": Probe(lambda c, h, w, own: c.post("/api/v1/risk-persons", headers=h, json={
        "name": "某乙", "categories": [RiskPersonCategory.vagrant.value], "org_unit_id": _grid(w, own).id})),
    "visit.create": Probe(lambda c, h, w, own: _item_outcome(_push_visit(c, h, _household(w, own)))),
    "visit.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/visits/{_visit(c, w, own)}", headers=h)),
    "referral.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/referrals/{_referral(c, w, own)}", headers=h)),
    "referral.manage": Probe(lambda c, h, w, own: c.post(f"/api/v1/referrals/{_referral(c, w, own)}/receive",
                                                         headers=h)),
    # 附件1 lists children: who may not see children gets 404 before the export right is asked.
    "ledger.export": Probe(lambda c, h, w, own: c.get("/api/v1/ledgers/1.xlsx", headers=h), has_jurisdiction=False,
                           hidden_behind=frozenset({Action.child_read})),
    # 附件2 (risk persons) is the ledger police import; who may not see it gets 404.
    "ledger.import": Probe(
        lambda c, h, w, own: c.post("/api/v1/ledgers/2/import", params={"org_unit_id": _grid(w, own).id},
                                    files={"file": ("a2.xlsx", _ledger(Annex.risk_persons))}, headers=h),
        hidden_behind=frozenset({Action.risk_person_read, Action.risk_person_write}),
    ),
    "risk.override": Probe(lambda c, h, w, own: c.post(f"/api/v1/persons/{_child(w, own).id}/risk-level",
                                                       json={"level": "较大风险", "reason": "专班研判"}, headers=h)),
    "checklist.manage": Probe(
        lambda c, h, w, own: c.post("/api/v1/checklists/matrix-check", headers=h, json={
            "title_zh": "矩阵检查", "title_en": "Matrix check", "items": [{"id": "q1", "label_zh": "问题一"}]}),
        has_jurisdiction=False,
    ),
    # Issue 6: the inbox, 2112 incidents, helpers and assignments.
    "notification.read": Probe(lambda c, h, w, own: c.post(f"/api/v1/notifications/{_notification(w, own)}/read",
                                                           headers=h)),
    "incident.read": Probe(lambda c, h, w, own: c.get(f"/api/v1/incidents/{_incident(w, own)}", headers=h),
                           caller=_county_caller),
    "incident.create": Probe(lambda c, h, w, own: c.post("/api/v1/incidents", headers=h, json={
        "title": "网络舆情线索", "org_unit_id": _county(w, own).id}), caller=_county_caller),
    "incident.handoff": Probe(lambda c, h, w, own: c.post(f"/api/v1/incidents/{_incident(w, own)}/handoffs",
                                                          json={"to_unit_ids": [w.town.town.id]}, headers=h),
                              caller=_county_caller),
    "incident.close": Probe(lambda c, h, w, own: c.post(f"/api/v1/incidents/{_incident(w, own)}/close", json={},
                                                        headers=h), caller=_county_caller),
    "helper.read": Probe(lambda c, h, w, own: c.get("/api/v1/helpers", headers=h), has_jurisdiction=False),
    "helper.manage": Probe(lambda c, h, w, own: c.post("/api/v1/helpers", headers=h, json={
        "user_id": w.own_user_id if own else w.foreign_user_id, "sex": "female"})),
    "assignment.read": Probe(lambda c, h, w, own: c.get(
        f"/api/v1/helpers/assignments/{_assignment(w, own, AssignmentStatus.proposed)}", headers=h)),
    "assignment.confirm": Probe(lambda c, h, w, own: c.post(
        f"/api/v1/helpers/assignments/{_assignment(w, own, AssignmentStatus.proposed)}/confirm", headers=h)),
    "assignment.answer": Probe(lambda c, h, w, own: c.post(
        f"/api/v1/helpers/assignments/{_assignment(w, own, AssignmentStatus.offered)}/accept", headers=h)),
}


def test_every_action_has_a_probe() -> None:
    assert set(PROBES) == {a.value for a in Action}
    assert all(p.hidden_behind <= HIDDEN_ACTIONS for p in PROBES.values())


@pytest.fixture(scope="module")
def matrix_app() -> FastAPI:
    """One app for every case of the matrix: it reads settings and the database per request, and
    building its routes is most of what a fresh app per case would cost."""
    return create_app()


@pytest.fixture
def client(matrix_app: FastAPI, database_url: str) -> Iterator[TestClient]:
    """The shared app over HTTP, started and stopped per case like the suite's own client."""
    with TestClient(matrix_app) as c:
        yield c


CASES = [
    (role, action, own)
    for action in sorted(EXPECTED)
    for role in Role
    for own in (True, False)
    if own or PROBES[action].has_jurisdiction
]


@pytest.mark.usefixtures("media_root")  # photos go to this test's own directory
@pytest.mark.parametrize(("role", "action", "own"), CASES,
                         ids=[f"{r.value}-{a}-{'own' if o else 'foreign'}" for r, a, o in CASES])
def test_role_action_jurisdiction(client: TestClient, session: Session, role: Role, action: str, own: bool) -> None:
    probe = PROBES[action]
    town = make_town(session)
    caller = make_user(session, probe.caller(town), role)
    own_user = make_user(session, town.grids[0][2], Role.volunteer)
    foreign_user = make_user(session, town.villages[1], Role.volunteer)
    world = World(town, own_user.id or 0, foreign_user.id or 0, session=session, caller_id=caller.id or 0)
    headers = sign_in(client, caller).headers

    resp = probe.call(client, headers, world, own)

    if role not in EXPECTED[action]:
        hidden = Action(action) in HIDDEN_ACTIONS or any(role not in EXPECTED[a.value] for a in probe.hidden_behind)
        assert resp.status_code == (404 if hidden else 403), resp.text
    elif own:
        assert 200 <= resp.status_code < 300, resp.text
    else:
        assert resp.status_code == 404, resp.text
