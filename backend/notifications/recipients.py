"""Who to tell: coordinators of a unit, or of the nearest unit above that has any."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import User, UserRole
from backend.accounts.permissions import Role
from backend.orgunits.models import OrgUnit


def users_of_unit(session: Session, unit_id: int, role: Role) -> list[int]:
    """Active users holding `role` whose own unit is exactly `unit_id`."""
    return sorted(int(i) for i in session.execute(
        select(col(User.id)).join(UserRole, col(UserRole.user_id) == col(User.id))
        .where(col(User.org_unit_id) == unit_id, col(User.is_active).is_(True), col(UserRole.role) == role.value)
    ).scalars())


def coordinators_of_unit(session: Session, unit_id: int) -> list[int]:
    """Active coordinators whose own unit is exactly `unit_id`."""
    return users_of_unit(session, unit_id, Role.coordinator)


def role_at_or_above(session: Session, unit: OrgUnit, role: Role) -> tuple[int | None, list[int]]:
    """The nearest unit at or above `unit` that has active users with `role`, and their ids."""
    chain = [int(p) for p in unit.path.strip("/").split("/") if p]
    for unit_id in reversed(chain):
        users = users_of_unit(session, unit_id, role)
        if users:
            return unit_id, users
    return None, []


def coordinators_at_or_above(session: Session, unit: OrgUnit) -> tuple[int | None, list[int]]:
    """The nearest unit at or above `unit` that has active coordinators, and their user ids."""
    return role_at_or_above(session, unit, Role.coordinator)
