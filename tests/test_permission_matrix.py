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

from backend.accounts.permissions import HIDDEN_ACTIONS, PERMISSIONS, Action, Role
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
