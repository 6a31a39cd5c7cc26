"""The permission matrix, as a table: role x action x own/foreign jurisdiction, through HTTP.

EXPECTED below is written out by hand, independently of backend/accounts/permissions.py; the first
test fails when the two disagree, so a new action cannot appear without a row here, and the second
drives every row through a real endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import Session

from backend.accounts.permissions import HIDDEN_ACTIONS, PERMISSIONS, Action, Role
from backend.demo.town import DemoTown
from tests.factories import make_town, make_user, sign_in

R = Role
EXPECTED: dict[str, set[Role]] = {
    "orgunit.read": set(Role),
    "device.register": set(Role),
    "user.read": {R.coordinator, R.admin},
    "user.manage": {R.coordinator, R.admin},
    "audit.read": {R.admin},
}


def test_matrix_in_code_matches_the_table() -> None:
    in_code = {a.value: {r for r in Role if a in PERMISSIONS[r]} for a in Action}
    assert in_code == EXPECTED


@dataclass
class World:
    town: DemoTown
    own_user_id: int
    foreign_user_id: int


@dataclass(frozen=True)
class Probe:
    """How to exercise an action against a record in the caller's or a foreign jurisdiction."""

    call: Callable[[TestClient, dict[str, str], World, bool], Response]
    has_jurisdiction: bool = True


def _unit(w: World, own: bool) -> int:
    return (w.town.grids[0][0] if own else w.town.villages[1]).id or 0


PROBES: dict[str, Probe] = {
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
}


def test_every_action_has_a_probe() -> None:
    assert set(PROBES) == {a.value for a in Action}


CASES = [
    (role, action, own)
    for action in sorted(EXPECTED)
    for role in Role
    for own in (True, False)
    if own or PROBES[action].has_jurisdiction
]


@pytest.mark.parametrize(("role", "action", "own"), CASES,
                         ids=[f"{r.value}-{a}-{'own' if o else 'foreign'}" for r, a, o in CASES])
def test_role_action_jurisdiction(client: TestClient, session: Session, role: Role, action: str, own: bool) -> None:
    town = make_town(session)
    caller = make_user(session, town.villages[0], role)
    own_user = make_user(session, town.grids[0][2], Role.volunteer)
    foreign_user = make_user(session, town.villages[1], Role.volunteer)
    world = World(town, own_user.id or 0, foreign_user.id or 0)
    headers = sign_in(client, caller).headers

    resp = PROBES[action].call(client, headers, world, own)

    if role not in EXPECTED[action]:
        expected = 404 if Action(action) in HIDDEN_ACTIONS else 403
        assert resp.status_code == expected, resp.text
    elif own:
        assert 200 <= resp.status_code < 300, resp.text
    else:
        assert resp.status_code == 404, resp.text
