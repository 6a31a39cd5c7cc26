"""The grant table (backend/accounts/grants.py), walked exhaustively over HTTP.

EXPECTED_GRANTS below is written out by hand, independently of the code; the first test fails when
the two disagree. The walk then tries, for every role as the granter (the two that manage users
placed at each level of the tree), every role x every unit relative to the granter's (above, its
own, below it at every level, a sibling outside) x every agency (and none), once as POST /users and
once as PATCH /users/{id} of a user holding no role yet, and checks each answer against the table.
The other tests here are the rules around the table: nobody changes their own standing, nobody
touches a peer or a superior, nobody moves a user out of their jurisdiction, refusals are audited.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import delete, select, update
from sqlmodel import Session, col

from backend.accounts.models import Agency, User, UserRole
from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.demo.town import DemoTown
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from tests.factories import make_town, make_user
from tests.notifications.factories import headers_for

R, L, G = Role, OrgLevel, Agency
API = "/api/v1"

OWN_AND_BELOW = "own unit and below"
BELOW_ONLY = "below only"
FIELD_LEVELS_TOWN_DOWN = {L.town, L.village, L.grid}
HELPER_AGENCIES = {G.womens_federation, G.civil_affairs, G.judicial, G.education, G.health, G.youth_league,
                   G.village_committee}

# (granter, role) -> (where the user's unit may be relative to the granter's, the levels that unit may
# be at, the agencies the user may belong to). A pair not listed is never granted.
EXPECTED_GRANTS: dict[tuple[Role, Role], tuple[str, set[OrgLevel], set[Agency]]] = {
    # System administrators appoint administrators below them and coordinators; no field roles.
    (R.admin, R.admin): (BELOW_ONLY, {L.province, L.city, L.county}, {G.government}),
    (R.admin, R.coordinator): (OWN_AND_BELOW, {L.province, L.city, L.county, L.town, L.village},
                               {G.government, G.womens_federation}),
    # Coordinators appoint the field workers of their own unit and below; never coordinators or admins.
    (R.coordinator, R.police): (OWN_AND_BELOW, {L.county, L.town}, {G.police}),
    # 行业执法人员: every inspecting body beside the police (issue 18).
    (R.coordinator, R.market_officer): (OWN_AND_BELOW, {L.county, L.town},
                                        {G.market_supervision, G.culture_tourism, G.education,
                                         G.comprehensive_enforcement, G.health}),
    (R.coordinator, R.volunteer): (OWN_AND_BELOW, FIELD_LEVELS_TOWN_DOWN, {G.womens_federation}),
    (R.coordinator, R.grid_worker): (OWN_AND_BELOW, {L.village, L.grid}, {G.village_committee, G.government}),
    (R.coordinator, R.helper): (OWN_AND_BELOW, FIELD_LEVELS_TOWN_DOWN, HELPER_AGENCIES),
    # Staff of the member units that provide services and receive referrals (issue 16).
    # Also the supervising agencies of institutions, who keep staff lists (从业查询, issue 18).
    (R.coordinator, R.agency_staff): (OWN_AND_BELOW, {L.county, L.town, L.village},
                                      HELPER_AGENCIES | {G.government, G.market_supervision, G.culture_tourism,
                                                         G.comprehensive_enforcement}),
}

MANAGERS = {R.admin, R.coordinator}  # the roles holding user.manage


def test_grant_table_in_code_matches_the_table() -> None:
    from backend.accounts.grants import GRANTS, Scope

    scope_names = {Scope.own_unit_and_below: OWN_AND_BELOW, Scope.below_only: BELOW_ONLY}
    in_code = {(g.granter, g.role): (scope_names[g.scope], set(g.levels), set(g.agencies)) for g in GRANTS}
    assert len(in_code) == len(GRANTS), "one row per (granter, role)"
    assert in_code == EXPECTED_GRANTS


# ------------------------------------------------------------------ the exhaustive walk

_phones = itertools.count(1)


def phone() -> str:
    """Numbers of their own (the walk creates thousands of users; tests.factories counts to 9999)."""
    return f"1970{next(_phones):07d}"


@dataclass(frozen=True)
class Target:
    name: str
    unit: OrgUnit


def _unit(session: Session, code: str, name: str, level: OrgLevel, parent: OrgUnit | None) -> OrgUnit:
    found = session.execute(select(OrgUnit).where(col(OrgUnit.code) == code)).scalar_one_or_none()
    if found is None:
        found = orgunits.create_unit(session, code=code, name=name, level=level, parent=parent)
        session.commit()
    return found


LEVELS = ("province", "city", "county", "town", "village", "grid")


def placements(session: Session, town: DemoTown, at: str) -> tuple[OrgUnit, list[Target]]:
    """The granter's unit and the units to try: above it, itself, below it, a sibling. Below, every
    level is tried from the province and the next level from elsewhere: how far below a unit lies
    does not change the answer, its level does, and the province reaches every level."""
    chain = [town.province, town.city, town.county, town.town, town.villages[0], town.grids[0][0]]
    depth = LEVELS.index(at)
    own = chain[depth]
    targets = [] if depth == 0 else [Target("above", chain[depth - 1])]
    targets.append(Target("own", own))
    below = chain[depth + 1:] if depth == 0 else chain[depth + 1:depth + 2]
    targets += [Target(f"below-{OrgLevel(u.level).value}", u) for u in below]
    sibling = {
        "province": lambda: _unit(session, "980000000000", "邻省", L.province, None),
        "city": lambda: _unit(session, "990200000000", "邻市", L.city, town.province),
        "county": lambda: _unit(session, "990102000000", "邻县", L.county, town.city),
        "town": lambda: _unit(session, "990101200000", "邻镇", L.town, town.county),
        "village": lambda: town.villages[1],
        "grid": lambda: town.grids[0][1],
    }[at]()
    targets.append(Target("outside", sibling))
    return own, targets


def expected(granter: Role, own: OrgUnit, role: Role, target: OrgUnit, agency: Agency | None) -> tuple[int, str]:
    """(status, problem code) by the hand-written table; status 0 means success."""
    if granter not in MANAGERS:
        return 403, "forbidden"
    if not target.path.startswith(own.path):
        return 404, "not-found"
    row = EXPECTED_GRANTS.get((granter, role))
    if row is None:
        return 403, "role-not-grantable"
    scope, levels, agencies = row
    if scope == BELOW_ONLY and target.path == own.path:
        return 403, "role-not-grantable"
    if OrgLevel(target.level) not in levels or agency not in agencies:
        return 403, "role-not-grantable"
    return 0, ""


def outcome(resp: Response, success: int) -> tuple[int, str]:
    if resp.status_code == success:
        return 0, ""
    body: Any = resp.json() if resp.headers.get("content-type", "").endswith("json") else {}
    return resp.status_code, str(body.get("code", ""))


def _reset(session: Session, user_id: int) -> None:
    """Back to a user holding no role and no agency."""
    session.execute(delete(UserRole).where(col(UserRole.user_id) == user_id))
    session.execute(update(User).where(col(User.id) == user_id).values(agency=None))
    session.commit()


# For POST, besides no agency and the government: the first agency the table names for the role, so
# every role is also created successfully at least once where the table allows it.
POST_AGENCIES: dict[Role, tuple[Agency, ...]] = {
    role: tuple(sorted(row[2], key=lambda a: a.value)[:1]) for (_, role), row in EXPECTED_GRANTS.items()
}

# Managers are placed at every level; a role that manages nobody is refused before anything else is
# looked at, so one placement (the town, with a unit above, its own, two below and a sibling) shows it.
WALK = [(granter, at) for granter in Role for at in (LEVELS if granter in MANAGERS else ("town",))]


@pytest.mark.parametrize(("granter", "at"), WALK, ids=[f"{g.value}-at-{at}" for g, at in WALK])
def test_every_grant_over_http(client: TestClient, session: Session, granter: Role, at: str) -> None:
    """Every cell, as POST and as PATCH. The agency axis is walked in full wherever the table decides;
    where the answer comes before the table is read (a role that manages nobody, a unit outside the
    jurisdiction) one agency stands for all, which keeps the walk to about 6,000 requests."""
    town = make_town(session)
    own, targets = placements(session, town, at)
    caller = make_user(session, own, granter, agency=G.government)
    headers = headers_for(session, caller)
    session.commit()
    bare = {t.name: make_user(session, t.unit).id or 0 for t in targets}  # users holding no role
    failures: list[str] = []
    for target in targets:
        decided_by_table = granter in MANAGERS and target.unit.path.startswith(own.path)
        for role in Role:
            for agency in [None, *Agency] if decided_by_table else [G.government]:
                want = expected(granter, own, role, target.unit, agency)
                body: dict[str, Any] = {"phone": phone(), "display_name": "新用户", "password": "long-enough-pw",
                                        "org_unit_id": target.unit.id, "roles": [role.value]}
                if agency is not None:
                    body["agency"] = agency.value
                cell = f"{granter.value}@{at} grants {role.value} at {target.name} to {agency and agency.value}"
                # POST hashes a password for each user it makes (argon2, on purpose slow): it walks the
                # agency axis at its ends, PATCH (the same check_user_change) walks all of it.
                if agency in (None, G.government, *POST_AGENCIES.get(role, ())):
                    got = outcome(client.post(f"{API}/users", json=body, headers=headers), 201)
                    if got != want:
                        failures.append(f"POST {cell}: got {got}, expected {want}")
                patch = {"roles": [role.value]} | ({"agency": agency.value} if agency is not None else {})
                got = outcome(client.patch(f"{API}/users/{bare[target.name]}", json=patch, headers=headers), 200)
                if got != want:
                    failures.append(f"PATCH {cell}: got {got}, expected {want}")
                if got == (0, ""):
                    _reset(session, bare[target.name])
    assert not failures, f"{len(failures)} cells disagree with the grant table:\n" + "\n".join(failures[:60])


# ------------------------------------------------------------------ self, peers, superiors


def _patch(client: TestClient, headers: dict[str, str], user: User, **changes: Any) -> Response:
    return client.patch(f"{API}/users/{user.id}", json=changes, headers=headers)


def _roles(session: Session, user: User) -> set[str]:
    return set(session.execute(select(col(UserRole.role)).where(col(UserRole.user_id) == user.id)).scalars())


def test_a_coordinator_cannot_raise_itself_to_police(client: TestClient, session: Session) -> None:
    town = make_town(session)
    me = make_user(session, town.town, R.coordinator, agency=G.government)
    headers = headers_for(session, me)
    resp = _patch(client, headers, me, roles=["coordinator", "police"])
    assert resp.status_code == 403, resp.text
    assert resp.json()["code"] == "user-self-change"
    assert _roles(session, me) == {"coordinator"}
    # Not through an agency change first either.
    assert _patch(client, headers, me, agency="police").json()["code"] == "user-self-change"


@pytest.mark.parametrize("role", sorted(MANAGERS))
@pytest.mark.parametrize("change", ["roles", "unit", "active", "agency"])
def test_nobody_changes_their_own_standing(client: TestClient, session: Session, role: Role, change: str) -> None:
    town = make_town(session)
    me = make_user(session, town.county, role, agency=G.government)
    headers = headers_for(session, me)
    body = {"roles": {"roles": ["admin", "coordinator"]}, "unit": {"org_unit_id": town.town.id},
            "active": {"is_active": False}, "agency": {"agency": "womens_federation"}}[change]
    resp = _patch(client, headers, me, **body)
    assert resp.status_code == 403, resp.text
    assert resp.json()["code"] == "user-self-change"
    for locale, words in (("zh-CN", "自己"), ("en", "own")):
        problem = client.patch(f"{API}/users/{me.id}", json=body, headers={**headers, "Accept-Language": locale})
        assert words in problem.json()["title"]
    session.refresh(me)
    assert (me.org_unit_id, me.is_active, me.agency) == (town.county.id, True, "government")
    assert _roles(session, me) == {role.value}


def test_one_may_still_rename_oneself_and_resend_unchanged_fields(client: TestClient, session: Session) -> None:
    """A dashboard sends back every field it holds: unchanged roles, unit and state are no change."""
    town = make_town(session)
    me = make_user(session, town.town, R.coordinator, agency=G.government)
    resp = _patch(client, headers_for(session, me), me, display_name="新名字", roles=["coordinator"],
                  org_unit_id=town.town.id, is_active=True, agency="government")
    assert resp.status_code == 200, resp.text
    assert resp.json()["display_name"] == "新名字"


@pytest.mark.parametrize("change", ["deactivate", "move", "demote", "promote", "rename"])
def test_a_coordinator_cannot_touch_a_peer_coordinator(client: TestClient, session: Session, change: str) -> None:
    town = make_town(session)
    me = make_user(session, town.town, R.coordinator, agency=G.government)
    peer = make_user(session, town.town, R.coordinator, agency=G.government)
    body = {"deactivate": {"is_active": False}, "move": {"org_unit_id": town.villages[0].id},
            "demote": {"roles": ["volunteer"]}, "promote": {"roles": ["coordinator", "police"]},
            "rename": {"display_name": "改名"}}[change]
    resp = _patch(client, headers_for(session, me), peer, **body)
    assert resp.status_code == 403, resp.text
    assert resp.json()["code"] == "user-not-manageable"
    session.refresh(peer)
    assert (peer.is_active, peer.org_unit_id, peer.display_name) == (True, town.town.id, "测试用户" + str(town.town.id))
    assert _roles(session, peer) == {"coordinator"}


def test_coordinators_do_not_manage_coordinators_below_them(client: TestClient, session: Session) -> None:
    """Only administrators appoint, move or stop coordinators."""
    town = make_town(session)
    county = make_user(session, town.county, R.coordinator, agency=G.government)
    below = make_user(session, town.town, R.coordinator, agency=G.government)
    resp = _patch(client, headers_for(session, county), below, is_active=False)
    assert resp.status_code == 403, resp.text
    assert resp.json()["code"] == "user-not-manageable"


def test_a_user_holding_a_role_the_caller_cannot_grant_is_out_of_reach(client: TestClient, session: Session) -> None:
    """A police officer who is also a coordinator outranks the town's coordinator."""
    town = make_town(session)
    me = make_user(session, town.town, R.coordinator, agency=G.government)
    both = make_user(session, town.villages[0], R.police, R.coordinator, agency=G.police)
    resp = _patch(client, headers_for(session, me), both, roles=["police"])
    assert resp.status_code == 403, resp.text
    assert resp.json()["code"] == "user-not-manageable"


def test_administrators_manage_coordinators_and_administrators_below(client: TestClient, session: Session) -> None:
    town = make_town(session)
    county_admin = make_user(session, town.county, R.admin, agency=G.government)
    peer_admin = make_user(session, town.county, R.admin, agency=G.government)
    county_coordinator = make_user(session, town.county, R.coordinator, agency=G.government)
    volunteer = make_user(session, town.villages[0], R.volunteer, agency=G.womens_federation)
    headers = headers_for(session, county_admin)
    assert _patch(client, headers, county_coordinator, is_active=False).status_code == 200
    assert _patch(client, headers, peer_admin, is_active=False).json()["code"] == "user-not-manageable"
    assert _patch(client, headers, volunteer, is_active=False).json()["code"] == "user-not-manageable"
    province_admin = make_user(session, town.province, R.admin, agency=G.government)
    resp = _patch(client, headers_for(session, province_admin), peer_admin, is_active=False)
    assert resp.status_code == 200, resp.text


def test_a_coordinator_manages_the_field_workers_of_its_own_unit(client: TestClient, session: Session) -> None:
    town = make_town(session)
    me = make_user(session, town.town, R.coordinator, agency=G.government)
    officer = make_user(session, town.town, R.police, agency=G.police)
    headers = headers_for(session, me)
    assert _patch(client, headers, officer, display_name="民警丙").status_code == 200
    assert _patch(client, headers, officer, is_active=False).status_code == 200


def test_a_move_out_of_the_jurisdiction_is_refused(client: TestClient, session: Session) -> None:
    town = make_town(session)
    me = make_user(session, town.villages[0], R.coordinator, agency=G.government)
    volunteer = make_user(session, town.grids[0][1], R.volunteer, agency=G.womens_federation)
    headers = headers_for(session, me)
    for unit in (town.villages[1], town.town):  # a sibling village, the town above
        assert _patch(client, headers, volunteer, org_unit_id=unit.id).status_code == 404
    session.refresh(volunteer)
    assert volunteer.org_unit_id == town.grids[0][1].id


def test_a_move_must_keep_every_role_grantable_where_it_lands(client: TestClient, session: Session) -> None:
    """Moving is granting the same roles again at the new unit: a grid worker cannot sit at a town."""
    town = make_town(session)
    me = make_user(session, town.town, R.coordinator, agency=G.government)
    worker = make_user(session, town.grids[0][0], R.grid_worker, agency=G.village_committee)
    headers = headers_for(session, me)
    resp = _patch(client, headers, worker, org_unit_id=town.town.id)
    assert resp.status_code == 403, resp.text
    assert resp.json()["code"] == "role-not-grantable"
    assert resp.json()["refused"] == [{"role": "grid_worker", "reason": "level"}]
    assert _patch(client, headers, worker, org_unit_id=town.grids[1][0].id).status_code == 200


def test_a_refusal_names_the_role_and_why_in_both_languages(client: TestClient, session: Session) -> None:
    town = make_town(session)
    me = make_user(session, town.town, R.coordinator, agency=G.government)
    headers = headers_for(session, me)
    body = {"phone": phone(), "display_name": "新民警", "password": "long-enough-pw", "org_unit_id": town.town.id,
            "roles": ["police"], "agency": "womens_federation"}
    zh = client.post(f"{API}/users", json=body, headers=headers).json()
    en = client.post(f"{API}/users", json=body, headers={**headers, "Accept-Language": "en"}).json()
    assert zh["type"] == en["type"] == "urn:hulei:problem:role-not-grantable"
    assert zh["refused"] == en["refused"] == [{"role": "police", "reason": "agency"}]
    assert "民警" in zh["detail"] and "公安" in zh["detail"]
    assert "police" in en["detail"]
    admin = client.post(f"{API}/users", json=body | {"roles": ["admin"], "agency": "government"},
                        headers=headers).json()
    assert admin["refused"] == [{"role": "admin", "reason": "role"}]


def test_refused_user_changes_are_audited(client: TestClient, session: Session) -> None:
    town = make_town(session)
    me = make_user(session, town.town, R.coordinator, agency=G.government)
    peer = make_user(session, town.town, R.coordinator, agency=G.government)
    headers = headers_for(session, me)
    assert _patch(client, headers, me, roles=["coordinator", "police"]).status_code == 403
    assert _patch(client, headers, peer, is_active=False).status_code == 403
    entries = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "user.change_refused")
                              .order_by(col(AuditEntry.id))).scalars().all()
    assert [(e.actor_user_id, e.object_id, e.details["code"]) for e in entries] == [
        (me.id, str(me.id), "user-self-change"), (me.id, str(peer.id), "user-not-manageable")]


def test_the_last_coordinator_of_a_town_can_still_be_stopped(client: TestClient, session: Session) -> None:
    """A misused coordinator account must be stoppable at once, even the town's only one: the
    administrator keeps every right over the town, and the town's alerts go to the county's coordinators."""
    from backend.notifications.recipients import coordinators_at_or_above

    town = make_town(session)
    admin = make_user(session, town.county, R.admin, agency=G.government)
    county_coordinator = make_user(session, town.county, R.coordinator, agency=G.government)
    last = make_user(session, town.town, R.coordinator, agency=G.government)
    assert coordinators_at_or_above(session, town.town) == (town.town.id, [last.id])
    session.commit()
    assert _patch(client, headers_for(session, admin), last, is_active=False).status_code == 200
    session.commit()
    assert coordinators_at_or_above(session, town.town) == (town.county.id, [county_coordinator.id])
