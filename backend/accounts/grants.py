"""The grant table: who may give which role to whom. The only place it is written down.

Each row says that a holder of `granter` may give `role` to a user whose unit is inside the granter's
jurisdiction, `scope` relative to the granter's own unit (that unit and below, or strictly below),
at one of `levels`, and who belongs to one of `agencies`. A pair without a row is never granted.

Everything that administers users goes through `check_user_change`, which reads only this table:

- nobody changes their own roles, unit, agency or active state (their name and password stay theirs);
- a user is touched at all (renamed, moved, deactivated, granted or stripped of roles) only by someone
  who could have given every role the user holds at the unit where the user sits: a peer, or anyone
  holding a role the caller may not grant there, is out of reach;
- whenever roles, unit or agency change, or a user is created, the result must be a grant the caller
  may make: each role by a row of the table, at the new unit, for the user's agency. A move is a
  grant of the same roles at the new unit, so it cannot take a user out of the caller's jurisdiction
  (404, as for any unit outside it) nor to a level their roles are not held at.

The table is printed for county administrators in README.md ("Who may grant which role"), and
tests/accounts/test_grants.py walks every cell of it over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.accounts.principal import Principal
from backend.core.errors import Forbidden
from backend.orgunits.models import OrgLevel


class Scope(StrEnum):
    """Where a granted user's unit may be, relative to the granter's own unit."""

    own_unit_and_below = "own_unit_and_below"  # 本单位及下级单位
    below_only = "below_only"  # 仅下级单位 (never a peer at the granter's own unit)


@dataclass(frozen=True)
class Grant:
    granter: Role
    role: Role
    scope: Scope
    levels: frozenset[OrgLevel]  # the level of the unit the user belongs to
    agencies: frozenset[Agency]  # the body the user acts for (User.agency)


L, A = OrgLevel, Agency
_TOWN_DOWN = frozenset({L.town, L.village, L.grid})
_HELPER_AGENCIES = frozenset({A.womens_federation, A.civil_affairs, A.judicial, A.education, A.health,
                              A.youth_league, A.village_committee})

GRANTS: tuple[Grant, ...] = (
    # System administrators (province, city, county) appoint administrators of the units below them;
    # the top administrator is made by whoever installs the system, never through the API.
    Grant(Role.admin, Role.admin, Scope.below_only, frozenset({L.province, L.city, L.county}),
          frozenset({A.government})),
    # ... and the coordinators of the campaign's task forces (专班), at their own unit and below, down
    # to the village: the political-legal office or the women's federation that leads the campaign.
    # Administrators grant no field role: they are kept away from children's records, and a police or
    # volunteer account of their own making would open them.
    Grant(Role.admin, Role.coordinator, Scope.own_unit_and_below,
          frozenset({L.province, L.city, L.county, L.town, L.village}), frozenset({A.government, A.womens_federation})),
    # Coordinators appoint the field workers of their own unit and below, each from the body that does
    # that work (seeds 001-004); never another coordinator or an administrator.
    # 派出所 / 县公安局 officers: venues, 附件2, referrals.
    Grant(Role.coordinator, Role.police, Scope.own_unit_and_below, frozenset({L.county, L.town}),
          frozenset({A.police})),
    # 行业执法人员: the officers of every inspecting body beside the police, venue inspections (市场监管所;
    # 文旅, 教育, 综合执法, 卫健 since issue 18, seed 002). Each inspection records the body they act for.
    Grant(Role.coordinator, Role.market_officer, Scope.own_unit_and_below, frozenset({L.county, L.town}),
          frozenset({A.market_supervision, A.culture_tourism, A.education, A.comprehensive_enforcement, A.health})),
    # 妇联执委 and 巾帼志愿者 knocking on doors (敲门行动).
    Grant(Role.coordinator, Role.volunteer, Scope.own_unit_and_below, _TOWN_DOWN, frozenset({A.womens_federation})),
    # 网格员, employed by the village committee or the town's 综治中心, in their village or grid.
    Grant(Role.coordinator, Role.grid_worker, Scope.own_unit_and_below, frozenset({L.village, L.grid}),
          frozenset({A.village_committee, A.government})),
    # 一对一 / 多对一 helpers: 妇联, 民政办, 司法所 (legal aid), schools, 卫生院, 团委, village committees.
    Grant(Role.coordinator, Role.helper, Scope.own_unit_and_below, _TOWN_DOWN, _HELPER_AGENCIES),
    # 成员单位经办人: staff of the units that provide cases' services and receive referrals (issue 16).
    # Also the supervising agencies of institutions in close contact with minors, who keep their staff
    # lists and read their background checks (从业查询, issue 18).
    Grant(Role.coordinator, Role.agency_staff, Scope.own_unit_and_below, frozenset({L.county, L.town, L.village}),
          _HELPER_AGENCIES | frozenset({A.government, A.market_supervision, A.culture_tourism,
                                        A.comprehensive_enforcement})),
)

ROLE_ZH: dict[Role, str] = {
    Role.volunteer: "巾帼志愿者",
    Role.helper: "帮扶人",
    Role.grid_worker: "网格员",
    Role.market_officer: "行业执法人员",
    Role.police: "民警",
    Role.coordinator: "专班协调人",
    Role.admin: "系统管理员",
    Role.agency_staff: "成员单位经办人",
}

AGENCY_ZH: dict[Agency, str] = {
    A.police: "公安（派出所）",
    A.market_supervision: "市场监管所",
    A.womens_federation: "妇联",
    A.judicial: "司法所",
    A.civil_affairs: "民政办",
    A.education: "学校/教育",
    A.health: "卫生院",
    A.youth_league: "团委",
    A.village_committee: "村（社区）委员会",
    A.government: "乡镇政府/平安法治办",
    A.culture_tourism: "文旅",
    A.comprehensive_enforcement: "综合执法",
}


@dataclass(frozen=True)
class Standing:
    """What a user is, as far as granting goes: where, as what, for whom, and whether active."""

    unit_path: str
    unit_level: OrgLevel
    roles: frozenset[Role]
    agency: Agency | None
    is_active: bool


class UserSelfChange(Forbidden):
    code = "user-self-change"
    title_zh = "不能更改自己的角色、单位、所属机构或启用状态"
    title_en = "You cannot change your own roles, unit, agency or active state"


class UserNotManageable(Forbidden):
    code = "user-not-manageable"
    title_zh = "无权更改同级或上级人员"
    title_en = "You may not change a peer or a superior"


class RoleNotGrantable(Forbidden):
    code = "role-not-grantable"
    title_zh = "无权授予该角色"
    title_en = "You may not grant this role"


# Why a role cannot be granted, in the order a grant is checked: no row for it, the unit's place
# relative to the granter, the unit's level, the user's agency.
REASONS = ("role", "scope", "level", "agency")


def _within_scope(granter_path: str, unit_path: str, scope: Scope) -> bool:
    if not unit_path.startswith(granter_path):
        return False
    return scope is Scope.own_unit_and_below or unit_path != granter_path


def _rows(granter_roles: frozenset[Role], role: Role) -> list[Grant]:
    return [g for g in GRANTS if g.granter in granter_roles and g.role is role]


def _refusal(principal: Principal, role: Role, after: Standing) -> str | None:
    """None when some row lets the principal grant `role` to a user standing as `after`, else the
    reason of the row that came closest."""
    best = 0
    for row in _rows(principal.roles, role):
        checks = (
            _within_scope(principal.org_path, after.unit_path, row.scope),
            after.unit_level in row.levels,
            after.agency in row.agencies,
        )
        failed = next((i for i, ok in enumerate(checks) if not ok), None)
        if failed is None:
            return None
        best = max(best, failed + 1)
    return REASONS[best]


def _in_reach(principal: Principal, role: Role, before: Standing) -> bool:
    """Whether the principal could have granted `role` where the user sits (rank, not paperwork:
    the user's level and agency, which only a grant must get right, do not count)."""
    return any(_within_scope(principal.org_path, before.unit_path, row.scope) for row in _rows(principal.roles, role))


def _zh(value: StrEnum) -> str:
    if isinstance(value, Role):
        return ROLE_ZH[value]
    if isinstance(value, Agency):
        return AGENCY_ZH[value]
    return OrgLevel(value).zh


def _names(items: Iterable[StrEnum], zh: bool) -> str:
    values = sorted(items)
    if not zh:
        return ", ".join(values)
    return "、".join(_zh(v) for v in values)


def _explain(principal: Principal, role: Role, reason: str) -> tuple[str, str]:
    zh_role, rows = ROLE_ZH[role], _rows(principal.roles, role)
    if reason == "role":
        granters = {g.granter for g in GRANTS if g.role is role}
        return (f"“{zh_role}”只能由{_names(granters, True)}授予",
                f"'{role}' is granted only by: {_names(granters, False)}")
    if reason == "scope":
        return (f"“{zh_role}”只能授予您下级单位的人员，不能授予本单位人员",
                f"'{role}' may only be granted to users of units below yours, not of your own unit")
    if reason == "level":
        levels = frozenset().union(*(g.levels for g in rows))
        return (f"“{zh_role}”只能设在以下级别的单位：{_names(levels, True)}",
                f"'{role}' is held only by users of a unit at level: {_names(levels, False)}")
    agencies = frozenset().union(*(g.agencies for g in rows))
    return (f"“{zh_role}”只能授予以下机构的人员：{_names(agencies, True)}；请填写正确的所属机构",
            f"'{role}' may only be held by users of: {_names(agencies, False)}; set the user's agency")


def check_grant(principal: Principal, after: Standing) -> None:
    """RoleNotGrantable unless the principal may give every role of `after` at its unit and agency."""
    refused = [(role, reason) for role in sorted(after.roles)
               if (reason := _refusal(principal, role, after)) is not None]
    if refused:
        zh, en = _explain(principal, *refused[0])
        raise RoleNotGrantable(zh, en, refused=[{"role": role.value, "reason": reason} for role, reason in refused])


def check_in_reach(principal: Principal, before: Standing) -> None:
    """UserNotManageable unless the principal ranks above the user in the table."""
    out = [role for role in sorted(before.roles) if not _in_reach(principal, role, before)]
    if not out:
        return
    role = out[0]
    if _rows(principal.roles, role):  # the caller grants that role, but not at the user's own level
        zh = f"该用户是您本单位的“{ROLE_ZH[role]}”，与您同级，只能由上级单位更改"
        en = f"This user is a '{role}' of your own unit, your peer: only a unit above may change them"
    else:
        zh = f"该用户持有您无权授予的角色“{ROLE_ZH[role]}”"
        en = f"This user holds a role you may not grant: '{role}'"
    raise UserNotManageable(zh, en, roles=[r.value for r in out])


def check_user_change(principal: Principal, *, user_id: int | None, before: Standing | None,
                      after: Standing) -> None:
    """The one check of every user-administration path: creating a user (`before` None) and changing
    one's name, roles, unit, agency or active state. Raises NotFound (a unit outside the caller's
    jurisdiction), UserSelfChange, UserNotManageable or RoleNotGrantable."""
    principal.ensure_covers(after.unit_path)
    if before is not None:
        principal.ensure_covers(before.unit_path)
    if before is not None and user_id == principal.user_id:
        fields = [name for name, old, new in (("roles", before.roles, after.roles),
                                              ("org_unit_id", before.unit_path, after.unit_path),
                                              ("agency", before.agency, after.agency),
                                              ("is_active", before.is_active, after.is_active)) if old != new]
        if fields:
            raise UserSelfChange(fields=fields)
        return
    if before is not None:
        check_in_reach(principal, before)
    if before is None or (before.roles, before.unit_path, before.agency) != (after.roles, after.unit_path,
                                                                             after.agency):
        check_grant(principal, after)
