"""Test data: the demo town's tree, users with roles, and signed-in clients."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fastapi.testclient import TestClient
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
    return f"1980000{next(_phones):04d}"


def make_town(session: Session) -> DemoTown:
    """Province > city > county > town > 8 villages > 40 grids, committed."""
    town = build_org_tree(session)
    session.commit()
    return town


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
