"""Test data: the demo town's tree, users with roles, and signed-in clients."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session

from backend.accounts.models import Agency, User, UserRole
from backend.accounts.permissions import Role
from backend.core.security import hash_password
from backend.demo.town import DemoTown, build_org_tree
from backend.orgunits.models import OrgUnit

TEST_PASSWORD = "correct-horse-battery"
_phones = itertools.count(1)


@lru_cache(maxsize=1)
def _password_hash() -> str:
    return hash_password(TEST_PASSWORD)


def next_phone() -> str:
    # Eight digits of counter: one test process makes well over 10,000 users in a full run (the old four
    # ran past eleven characters on PostgreSQL, whose column refuses them; SQLite kept them silently).
    return f"198{next(_phones):08d}"


# The units the demo's own build_org_tree made on the first call in this process, in the order it made
# them: (code, name, level, index of the parent, boundary), and where each sits in a DemoTown.
_TOWN_UNITS: list[tuple[str, str, str, int | None, Any]] = []
_TOWN_SHAPE: list[Any] = []


def make_town(session: Session) -> DemoTown:
    """Province > city > county > town > 8 villages > 40 grids, committed.

    The first call in a process builds the tree with the demo's build_org_tree (two flushes per unit);
    later calls insert the same units, with the ids the database gives next and the same parents,
    paths and boundaries, in one batch: most tests start with a town, and the per-unit round trips
    were most of a short test's time."""
    if not _TOWN_UNITS:
        town = build_org_tree(session)
        session.commit()
        units = sorted([town.province, town.city, town.county, town.town, *town.villages,
                        *(g for grids in town.grids for g in grids)], key=lambda u: u.id or 0)
        index = {u.id: n for n, u in enumerate(units)}
        _TOWN_UNITS.extend((u.code, u.name, u.level, index.get(u.parent_id), u.boundary) for u in units)
        _TOWN_SHAPE.extend([town.province.code, town.city.code, town.county.code, town.town.code,
                            [v.code for v in town.villages], [[g.code for g in grids] for grids in town.grids]])
        return town
    made: list[OrgUnit] = []
    for unit_id, (code, name, level, parent, boundary) in zip(_next_unit_ids(session, len(_TOWN_UNITS)),
                                                               _TOWN_UNITS, strict=True):
        above = made[parent] if parent is not None else None
        made.append(OrgUnit(id=unit_id, code=code, name=name, level=level, parent_id=above.id if above else None,
                            path=(above.path if above else "/") + f"{unit_id}/", boundary=boundary))
    session.add_all(made)
    session.commit()
    by_code = {u.code: u for u in made}
    province, city, county, town_code, villages, grids = _TOWN_SHAPE
    return DemoTown(by_code[province], by_code[city], by_code[county], by_code[town_code],
                    [by_code[v] for v in villages], [[by_code[g] for g in row] for row in grids])


def _next_unit_ids(session: Session, count: int) -> list[int]:
    """The ids the database would give the next `count` units (taken from the sequence on PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        return sorted(session.execute(text(
            "SELECT nextval(pg_get_serial_sequence('org_unit', 'id')) FROM generate_series(1, :n)"), {"n": count}
        ).scalars())
    last = session.execute(text("SELECT COALESCE(MAX(id), 0) FROM org_unit")).scalar_one()
    return list(range(last + 1, last + 1 + count))


def make_user(
    session: Session,
    unit: OrgUnit,
    *roles: Role,
    phone: str | None = None,
    agency: Agency | None = None,
    active: bool = True,
) -> User:
    """A committed user of `unit` holding `roles`, password TEST_PASSWORD."""
    assert unit.id is not None
    user = User(phone=phone or next_phone(), display_name=f"测试用户{unit.id}", password_hash=_password_hash(),
                org_unit_id=unit.id, agency=agency.value if agency else None, is_active=active)
    session.add(user)
    session.flush()
    for role in roles:
        session.add(UserRole(user_id=user.id, role=role.value))  # type: ignore[arg-type]
    session.commit()
    return user


@dataclass
class SignedIn:
    user: User
    headers: dict[str, str]
    refresh_token: str


def sign_in(client: TestClient, user: User, password: str = TEST_PASSWORD) -> SignedIn:
    """Log in over HTTP and return bearer headers."""
    resp = client.post("/api/v1/auth/login", json={"phone": user.phone, "password": password})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return SignedIn(user, {"Authorization": f"Bearer {body['access_token']}"}, body["refresh_token"])


def user_client(client: TestClient, session: Session, unit: OrgUnit, *roles: Role, **kw: Any) -> SignedIn:
    """A new user with `roles` at `unit`, signed in."""
    return sign_in(client, make_user(session, unit, *roles, **kw))
