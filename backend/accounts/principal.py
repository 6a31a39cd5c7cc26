"""Who is calling: the one authorisation object every service takes."""

from __future__ import annotations

from dataclasses import dataclass

from backend.accounts.permissions import (
    ACTS_FOR_UNIT,
    ASSIGNED_ONLY,
    HIDDEN_ACTIONS,
    PERMISSIONS,
    Action,
    Role,
    allowed,
)
from backend.core.errors import Forbidden, NotFound


@dataclass(frozen=True)
class Principal:
    """An authenticated user with roles and jurisdiction (the subtree under `org_path`)."""

    user_id: int
    roles: frozenset[Role]
    org_unit_id: int
    org_path: str
    agency: str | None = None
    device_id: str | None = None
    ip: str | None = None
    # The sign-in (refresh-token family) the access token belongs to; None for tokens minted
    # outside a sign-in (tools, tests) and for principals built in-process.
    family_id: str | None = None

    def can(self, action: Action) -> bool:
        return allowed(self.roles, action)

    def require(self, action: Action) -> None:
        """Refuse the action unless a role grants it (404 for hidden actions, else 403)."""
        if self.can(action):
            return
        if action in HIDDEN_ACTIONS:
            raise NotFound()
        raise Forbidden(
            f"当前角色无权执行“{action.value}”",
            f"Your roles do not allow '{action.value}'",
            action=action.value,
        )

    def by_assignment(self, action: Action) -> bool:
        """Whether the right to `action` comes only from roles that reach the children assigned to the
        user (helpers): then it reaches those children, their households and those households' visits,
        not the whole jurisdiction. Every scoped query asks through backend/accounts/scope.py."""
        granting = {r for r in self.roles if action in PERMISSIONS[r]}
        return bool(granting) and granting <= ASSIGNED_ONLY

    def acts_for(self, unit_id: int | None, agency: str | None) -> bool:
        """Whether the principal acts for that unit (成员单位: org unit + agency): it is its own, and one
        of its roles acts for its unit (permissions.ACTS_FOR_UNIT; a helper acts for itself)."""
        return (self.agency is not None and unit_id == self.org_unit_id and agency == self.agency
                and bool(self.roles & ACTS_FOR_UNIT))

    def covers(self, unit_path: str) -> bool:
        """Whether a unit (by its path) lies inside this principal's jurisdiction."""
        return unit_path.startswith(self.org_path)

    def ensure_covers(self, unit_path: str | None) -> None:
        """404 for anything outside the jurisdiction, so ids cannot be probed."""
        if unit_path is None or not self.covers(unit_path):
            raise NotFound()

    @property
    def role_names(self) -> list[str]:
        return sorted(r.value for r in self.roles)
