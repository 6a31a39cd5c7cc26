"""The permission matrix, as a table: role x action x own/foreign jurisdiction, through HTTP.

EXPECTED below is written out by hand, independently of backend/accounts/permissions.py; the first
test fails when the two disagree, so a new action cannot appear without a row here, and the second
drives every row through a real endpoint (the probes are in tests/matrix_support.py, shared with the
endpoint table of tests/test_endpoint_matrix.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.models import Agency
from backend.accounts.permissions import ASSIGNED_ONLY, HIDDEN_ACTIONS, PERMISSIONS, Action, Role
from backend.main import create_app
from tests.factories import make_town, make_user, sign_in
from tests.matrix_support import PROBES, World
from tests.media.conftest import media_root  # noqa: F401 (a fixture)

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
    "risk_person.control": {R.police},
    "sealed.open": {R.police},
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
    # Cases (issue 16): police see those a referral opened or joined; helpers their children's.
    "case.read": {R.helper, R.police, R.coordinator},
    "case.manage": {R.coordinator},
    # Service plans and referrals between units, mandatory reports from any source, the police case
    # register (issue 16).
    "service.read": {R.helper, R.police, R.coordinator, R.agency_staff},
    "service.manage": {R.coordinator},
    "service.handle": {R.helper, R.police, R.coordinator, R.agency_staff},
    "mandatory_report.file": {R.volunteer, R.helper, R.grid_worker, R.market_officer, R.police, R.coordinator,
                              R.agency_staff},
    "police_case.read": {R.police, R.coordinator},
    "police_case.manage": {R.police},
    "case_review.manage": {R.police, R.coordinator},
    # Review of field work (issue 17): coordinators decide on visits and inspections.
    "review.read": {R.coordinator},
    "review.manage": {R.coordinator},
    # Issue 18: the institution register, prevention activities, awareness surveys, staff background
    # checks (results: police and the supervising agency only), supervision of any unit, notices.
    "institution.read": {R.volunteer, R.grid_worker, R.market_officer, R.police, R.coordinator, R.admin,
                         R.agency_staff},
    "institution.write": {R.coordinator},
    "activity.record": {R.volunteer, R.grid_worker, R.market_officer, R.police, R.coordinator, R.agency_staff},
    "activity.read": {R.volunteer, R.grid_worker, R.market_officer, R.police, R.coordinator, R.admin,
                      R.agency_staff},
    "survey.manage": {R.coordinator, R.agency_staff},
    "survey.read": {R.coordinator, R.admin, R.agency_staff},
    "staff.read": {R.police, R.agency_staff},
    "staff.manage": {R.police, R.agency_staff},
    "staff.check": {R.police},
    "staff.overview": {R.police, R.coordinator, R.admin, R.agency_staff},
    "supervision.read": {R.market_officer, R.police, R.coordinator, R.admin, R.agency_staff},
    "supervision.manage": {R.coordinator},
    "supervision.rectify": {R.police, R.coordinator, R.agency_staff},
    "notice.publish": {R.coordinator},
    "notice.read": {R.market_officer, R.police, R.coordinator, R.admin, R.agency_staff},
    # Delivery of notifications and the health of push channels and SMS (issue 19).
    "notification.delivery.read": {R.coordinator, R.admin},
    "notification.health.read": {R.coordinator, R.admin},
}


# The assigned / not-assigned axis (issue 13, fault 2). A helper reaches children's records only through
# an accepted assignment (backend/accounts/scope.py): for these actions a helper's own-side record of a
# child not assigned to it answers 404, exactly like a foreign one. Written by hand, with what every
# other action of a helper is about; the test below fails when a helper gains an action nobody classified.
BY_ASSIGNMENT = {"household.read", "child.read", "visit.read", "visit.create", "media.read", "case.read",
                 "service.read", "service.handle"}
HELPER_ACTIONS = {
    **dict.fromkeys(BY_ASSIGNMENT, "the assigned children, their households and those households' visits"),
    "case.read": "the cases of the assigned children",
    "service.read": "the services of the assigned children's cases",
    "service.handle": "the steps of the services of the assigned children's cases",
    "mandatory_report.file": "its own reports: it sees their status, never the case",
    "coverage.read": "counts of the assigned children, their households and visits only",
    "media.upload": "its own uploads (a photo of a visit it may see is read through media.read)",
    "assignment.read": "its own assignments: the relation itself",
    "assignment.answer": "its own offers and follow-ups",
    "orgunit.read": "the org tree, no child",
    "device.register": "its own phone",
    "notification.read": "its own inbox (assignment ids only, never a child's name)",
}


def test_matrix_in_code_matches_the_table() -> None:
    in_code = {a.value: {r for r in Role if a in PERMISSIONS[r]} for a in Action}
    assert in_code == EXPECTED


def test_every_action_of_a_helper_is_scoped_by_its_assignments_or_about_no_child() -> None:
    assert {R.helper} == ASSIGNED_ONLY
    assert {a.value for a in PERMISSIONS[R.helper]} == set(HELPER_ACTIONS)


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


# Helpers are tried with and without the probe's child taken on by them; other roles without.
CASES = [
    (role, action, own, assigned)
    for action in sorted(EXPECTED)
    for role in Role
    for own in (True, False)
    if own or PROBES[action].has_jurisdiction
    for assigned in ((False, True) if role is R.helper else (False,))
]


def _case_id(role: Role, action: str, own: bool, assigned: bool) -> str:
    axis = ("-assigned" if assigned else "-not-assigned") if role is R.helper else ""
    return f"{role.value}-{action}-{'own' if own else 'foreign'}{axis}"


@pytest.mark.usefixtures("media_root")  # photos go to this test's own directory
@pytest.mark.parametrize(("role", "action", "own", "assigned"), CASES, ids=[_case_id(*c) for c in CASES])
def test_role_action_jurisdiction(client: TestClient, session: Session, role: Role, action: str, own: bool,
                                  assigned: bool) -> None:
    probe = PROBES[action]
    town = make_town(session)
    caller = make_user(session, probe.caller(town), role)
    own_user = make_user(session, town.grids[0][2], Role.volunteer)
    foreign_user = make_user(session, town.villages[1], Role.volunteer)
    world = World(town, own_user.id or 0, foreign_user.id or 0, session=session, caller_id=caller.id or 0,
                  assigned=assigned)
    headers = sign_in(client, caller).headers

    resp = probe.call(client, headers, world, own)

    if role not in EXPECTED[action]:
        hidden = Action(action) in HIDDEN_ACTIONS or any(role not in EXPECTED[a.value] for a in probe.hidden_behind)
        assert resp.status_code == (404 if hidden else 403), resp.text
    elif own and not (role is R.helper and action in BY_ASSIGNMENT and not assigned):
        assert 200 <= resp.status_code < 300, resp.text
    else:
        assert resp.status_code == 404, resp.text


# User administration (issue 13, fault 5): role x whom (oneself, a peer of the same role and unit, a user
# the role ranks above in the grant table of backend/accounts/grants.py) x what changes. Nobody changes
# their own roles, unit, agency or active state; nobody touches a peer; the grant table itself is walked
# cell by cell in tests/accounts/test_grants.py. Written out by hand like EXPECTED above.
SELF, PEER, BELOW = "self", "peer", "below"
CHANGES = ("display_name", "roles", "unit", "active", "agency")
OK = "2xx"
_self_rules = {"display_name": OK, "roles": "user-self-change", "unit": "user-self-change",
               "active": "user-self-change", "agency": "user-self-change"}
USER_ADMIN: dict[tuple[Role, str], dict[str, str]] = {
    (R.coordinator, SELF): _self_rules,
    (R.coordinator, PEER): dict.fromkeys(CHANGES, "user-not-manageable"),
    (R.coordinator, BELOW): dict.fromkeys(CHANGES, OK),
    (R.admin, SELF): _self_rules,
    (R.admin, PEER): dict.fromkeys(CHANGES, "user-not-manageable"),
    (R.admin, BELOW): dict.fromkeys(CHANGES, OK),
    **{(role, whom): dict.fromkeys(CHANGES, "forbidden")
       for role in (R.volunteer, R.helper, R.grid_worker, R.market_officer, R.police, R.agency_staff)
       for whom in (SELF, PEER, BELOW)},
}


def test_user_administration_table_covers_every_role() -> None:
    assert set(USER_ADMIN) == {(role, whom) for role in Role for whom in (SELF, PEER, BELOW)}
    assert {role for role in Role if Action.user_manage in PERMISSIONS[role]} == {R.coordinator, R.admin}


ADMIN_CASES = sorted(USER_ADMIN, key=lambda k: (k[0].value, k[1]))


@pytest.mark.parametrize(("role", "whom"), ADMIN_CASES, ids=[f"{r.value}-{w}" for r, w in ADMIN_CASES])
def test_user_administration(client: TestClient, session: Session, role: Role, whom: str) -> None:
    """An administrator sits at the province and ranks above a county coordinator; a coordinator (and
    every role that manages nobody) sits at the town and ranks above a helper of village 0."""
    town = make_town(session)
    admin = role is R.admin
    home = town.province if admin else town.town
    caller = make_user(session, home, role, agency=Agency.government)
    headers = sign_in(client, caller).headers
    bodies: dict[str, dict[str, object]] = {
        "display_name": {"display_name": "改名"},
        "roles": {"roles": ["admin", "coordinator"] if admin else ["coordinator", "police"]},
        "unit": {"org_unit_id": (town.county if admin else town.villages[0]).id},
        "active": {"is_active": False},
        "agency": {"agency": "womens_federation" if admin else "police"},
    }
    if whom == BELOW:  # changes that keep the user inside what the caller may grant
        bodies |= {"roles": {"roles": ["admin"] if admin else ["volunteer"]},
                   "unit": {"org_unit_id": (town.town if admin else town.villages[1]).id},
                   "agency": {"agency": "womens_federation" if admin else "civil_affairs"}}
    failures = []
    for change in CHANGES:
        if whom == SELF:
            target = caller
        elif whom == PEER:
            target = make_user(session, home, role, agency=Agency.government)
        elif admin:
            target = make_user(session, town.county, R.coordinator, agency=Agency.government)
        else:
            target = make_user(session, town.villages[0], R.helper, agency=Agency.womens_federation)
        resp = client.patch(f"/api/v1/users/{target.id}", json=bodies[change], headers=headers)
        want = USER_ADMIN[(role, whom)][change]
        got = OK if resp.is_success else resp.json().get("code")
        if got != want:
            failures.append(f"{change}: {resp.status_code} {got}, expected {want}: {resp.text[:200]}")
    assert not failures, "\n".join(failures)
