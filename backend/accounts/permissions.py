"""The permission matrix: which role may do which action. The only place it is written down.

Jurisdiction is separate and uniform: a user acts only inside the subtree of their own org unit,
and a record outside it answers 404 (see backend.accounts.deps).
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    volunteer = "volunteer"  # 巾帼志愿者 / 执委妈妈
    helper = "helper"  # 帮扶人
    grid_worker = "grid_worker"  # 网格员
    market_officer = "market_officer"  # 市场监管执法人员
    police = "police"  # 民警
    coordinator = "coordinator"  # 乡镇/县 专班协调人
    admin = "admin"  # 系统管理员


class Action(StrEnum):
    orgunit_read = "orgunit.read"
    user_read = "user.read"
    user_manage = "user.manage"
    audit_read = "audit.read"
    device_register = "device.register"


# Actions whose very existence is sensitive: a role without them gets 404, exactly as if the
# record did not exist, rather than a 403 that confirms it does.
HIDDEN_ACTIONS: frozenset[Action] = frozenset()

_EVERYONE = frozenset({Action.orgunit_read, Action.device_register})

PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.volunteer: _EVERYONE,
    Role.helper: _EVERYONE,
    Role.grid_worker: _EVERYONE,
    Role.market_officer: _EVERYONE,
    Role.police: _EVERYONE,
    Role.coordinator: _EVERYONE | {Action.user_read, Action.user_manage},
    Role.admin: _EVERYONE | {Action.user_read, Action.user_manage, Action.audit_read},
}

# Roles a coordinator may hand out; only an admin creates coordinators and admins.
GRANTABLE_BY: dict[Role, frozenset[Role]] = {
    Role.coordinator: frozenset(
        {Role.volunteer, Role.helper, Role.grid_worker, Role.market_officer, Role.police}
    ),
    Role.admin: frozenset(Role),
}


def allowed(roles: frozenset[Role] | set[Role], action: Action) -> bool:
    """Whether any of the roles grants the action."""
    return any(action in PERMISSIONS[r] for r in roles)


def grantable(roles: frozenset[Role] | set[Role]) -> frozenset[Role]:
    """Roles that a user holding `roles` may grant to others."""
    out: set[Role] = set()
    for r in roles:
        out |= GRANTABLE_BY.get(r, frozenset())
    return frozenset(out)
