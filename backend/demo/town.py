"""The demo town: a deterministic synthetic 乡镇 with 8 villages and 40 grids, and users for
every role. All names, codes and phone numbers are made up; the seeds' real names never appear."""

from __future__ import annotations

from dataclasses import dataclass

from shapely.geometry import MultiPolygon, box
from sqlalchemy import func, select
from sqlmodel import Session

from backend.accounts.models import Agency, User, UserRole
from backend.accounts.permissions import Role
from backend.core.security import hash_password
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit

DEMO_PASSWORD = "Hulei-demo-2026"  # noqa: S105 - synthetic demo accounts, listed in README

# South-west corner of the town and the size of one village cell, in degrees.
TOWN_WEST, TOWN_SOUTH = 108.300, 30.000
VILLAGE_DLON, VILLAGE_DLAT = 0.020, 0.020
VILLAGE_COLUMNS, VILLAGE_ROWS = 4, 2
GRIDS_PER_VILLAGE = 5

VILLAGE_NAMES = ["青山村", "溪口村", "柳湾村", "石桥村", "桃源村", "云岭村", "河坝社区", "新街社区"]


@dataclass(frozen=True)
class DemoAccount:
    phone: str
    name: str
    roles: tuple[Role, ...]
    unit: str  # "province", "county", "town", "village:N" or "grid:N:M" (0-based)
    agency: Agency | None = None


DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("19900000001", "演示管理员", (Role.admin,), "province", Agency.government),
    DemoAccount("19900000002", "演示县级协调员", (Role.coordinator,), "county", Agency.government),
    DemoAccount("19900000003", "演示乡镇协调员", (Role.coordinator,), "town", Agency.government),
    DemoAccount("19900000004", "演示民警", (Role.police,), "town", Agency.police),
    DemoAccount("19900000005", "演示市场监管员", (Role.market_officer,), "town", Agency.market_supervision),
    DemoAccount("19900000006", "演示志愿者甲", (Role.volunteer,), "village:0", Agency.womens_federation),
    DemoAccount("19900000007", "演示志愿者乙", (Role.volunteer,), "village:1", Agency.womens_federation),
    DemoAccount("19900000008", "演示网格员", (Role.grid_worker,), "grid:0:0", Agency.village_committee),
    DemoAccount("19900000009", "演示帮扶人", (Role.helper,), "town", Agency.womens_federation),
    DemoAccount("19900000010", "演示民警乙", (Role.police,), "town", Agency.police),
    DemoAccount("19900000011", "演示市场监管员乙", (Role.market_officer,), "town", Agency.market_supervision),
    # Member-unit staff (issue 16): a teacher of the village school files mandatory reports; the
    # town's 司法所 and 民政办 provide the services of cases and answer referrals.
    DemoAccount("19900000012", "演示学校老师", (Role.agency_staff,), "village:0", Agency.education),
    DemoAccount("19900000013", "演示司法所经办人", (Role.agency_staff,), "town", Agency.judicial),
    DemoAccount("19900000014", "演示民政办经办人", (Role.agency_staff,), "town", Agency.civil_affairs),
    # Issue 18: the county education bureau's clerk keeps the schools' staff lists and reads their
    # background checks (从业查询) beside the police.
    DemoAccount("19900000015", "演示教育局经办人", (Role.agency_staff,), "county", Agency.education),
)


@dataclass
class DemoTown:
    province: OrgUnit
    city: OrgUnit
    county: OrgUnit
    town: OrgUnit
    villages: list[OrgUnit]
    grids: list[list[OrgUnit]]


def village_box(index: int) -> tuple[float, float, float, float]:
    col, row = index % VILLAGE_COLUMNS, index // VILLAGE_COLUMNS
    west = TOWN_WEST + col * VILLAGE_DLON
    south = TOWN_SOUTH + row * VILLAGE_DLAT
    return west, south, west + VILLAGE_DLON, south + VILLAGE_DLAT


def grid_box(village: int, grid: int) -> tuple[float, float, float, float]:
    west, south, east, north = village_box(village)
    width = (east - west) / GRIDS_PER_VILLAGE
    return west + grid * width, south, west + (grid + 1) * width, north


def _multi(bounds: tuple[float, float, float, float]) -> MultiPolygon:
    return MultiPolygon([box(*bounds)])


def build_org_tree(session: Session) -> DemoTown:
    """Create province > city > county > town > 8 villages > 40 grids."""
    province = orgunits.create_unit(session, code="990000000000", name="示范省", level=OrgLevel.province, parent=None)
    city = orgunits.create_unit(session, code="990100000000", name="示范市", level=OrgLevel.city, parent=province)
    county = orgunits.create_unit(session, code="990101000000", name="示范县", level=OrgLevel.county, parent=city)
    town_bounds = (TOWN_WEST, TOWN_SOUTH, TOWN_WEST + VILLAGE_COLUMNS * VILLAGE_DLON,
                   TOWN_SOUTH + VILLAGE_ROWS * VILLAGE_DLAT)
    town = orgunits.create_unit(session, code="990101100000", name="护蕾镇", level=OrgLevel.town,
                                parent=county, boundary=_multi(town_bounds))
    villages: list[OrgUnit] = []
    grids: list[list[OrgUnit]] = []
    for v, name in enumerate(VILLAGE_NAMES):
        village = orgunits.create_unit(session, code=f"990101100{v + 1:03d}", name=name, level=OrgLevel.village,
                                       parent=town, boundary=_multi(village_box(v)))
        villages.append(village)
        grids.append([
            orgunits.create_unit(session, code=f"990101100{v + 1:03d}{g + 1:02d}", name=f"{name}第{g + 1}网格",
                                 level=OrgLevel.grid, parent=village, boundary=_multi(grid_box(v, g)))
            for g in range(GRIDS_PER_VILLAGE)
        ])
    return DemoTown(province, city, county, town, villages, grids)


def _unit_for(town: DemoTown, where: str) -> OrgUnit:
    if where in ("province", "county", "town"):
        return getattr(town, where)  # type: ignore[no-any-return]
    kind, *idx = where.split(":")
    if kind == "village":
        return town.villages[int(idx[0])]
    return town.grids[int(idx[0])][int(idx[1])]


def create_demo_users(session: Session, town: DemoTown) -> list[User]:
    """One account per entry of DEMO_ACCOUNTS, all with DEMO_PASSWORD."""
    password_hash = hash_password(DEMO_PASSWORD)
    users = []
    for account in DEMO_ACCOUNTS:
        unit = _unit_for(town, account.unit)
        assert unit.id is not None
        user = User(phone=account.phone, display_name=account.name, password_hash=password_hash,
                    org_unit_id=unit.id, agency=account.agency.value if account.agency else None)
        session.add(user)
        session.flush()
        for role in account.roles:
            session.add(UserRole(user_id=user.id, role=role.value))  # type: ignore[arg-type]
        users.append(user)
    session.flush()
    return users


def database_is_empty(session: Session) -> bool:
    return bool(session.execute(select(func.count()).select_from(OrgUnit)).scalar_one() == 0)


def seed_demo(session: Session) -> DemoTown:
    """Build the whole demo town in the caller's transaction."""
    town = build_org_tree(session)
    create_demo_users(session, town)
    from backend.venues.demo import seed_venues  # venues build on the town and its officers

    seed_venues(session, town)
    from backend.registry.demo import seed_registry  # households and children inside the grids

    seed_registry(session, town)
    from backend.visits.demo import seed_visits  # a day's door-knocking, so the map is not all red

    seed_visits(session, town)
    # Issue 18: the institutions (schools, a hotel and an internet café linked to their venues), their
    # staff lists and checks, prevention activities and an awareness survey round.
    from backend.awareness.demo import seed_demo as seed_awareness
    from backend.institutions.demo import seed_demo as seed_institutions
    from backend.prevention.demo import seed_demo as seed_activities
    from backend.staff_checks.demo import seed_demo as seed_staff

    institutions = seed_institutions(session, town)
    seed_staff(session, institutions)
    seed_activities(session, town)
    seed_awareness(session, town)
    return town
