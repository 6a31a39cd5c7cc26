"""Demo venues for the synthetic town: 60 places inside its grids, about a third of them key
venues, with valid synthetic credit codes; officers' weekdays and the town's planning rules."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import User
from backend.core.geo import point
from backend.demo.town import DEMO_ACCOUNTS, VILLAGE_NAMES, DemoTown, grid_box
from backend.schedules.models import ScheduleRule
from backend.schedules.service import set_weekdays
from backend.venues.credit_code import ALPHABET, complete
from backend.venues.models import Venue, VenueStatus, VenueType

DEMO_VENUE_COUNT = 60

_TYPES: tuple[tuple[VenueType, str], ...] = (
    (VenueType.hotel, "快捷酒店"),
    (VenueType.hotel, "宾馆"),
    (VenueType.esports_hotel, "电竞酒店"),
    (VenueType.internet_cafe, "网咖"),
    (VenueType.ktv, "KTV"),
    (VenueType.bar, "音乐酒吧"),
    (VenueType.on_demand_cinema, "点播影院"),
    (VenueType.training, "培训学校"),
    (VenueType.school_shop, "文具店"),
    (VenueType.hotel, "民宿"),
)
_SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨"
_GIVEN = ("明", "华", "强", "芳", "军", "丽", "伟", "静")
# Weekdays (0 = Monday) for the demo officers, by phone.
DEMO_WEEKDAYS: dict[str, list[int]] = {
    "19900000004": [0, 1, 2, 3, 4],  # 演示民警
    "19900000010": [0, 1, 2, 3],  # 演示民警乙
    "19900000005": [1, 2, 3, 4],  # 演示市场监管员
    "19900000011": [0, 1, 2, 3, 4],  # 演示市场监管员乙
}


def demo_credit_code(index: int) -> str:
    """A synthetic, checksum-valid code: 9 (market regulator) 2 (sole trader), division 990101,
    a made-up organisation code, and the GB 32100 check character."""
    org = "".join(ALPHABET[(index * 7 + k * 13) % 31] for k in range(8)) + str(index % 10)
    return complete(f"92990101{org}")


def demo_venues(town: DemoTown) -> list[Venue]:
    """The 60 demo venues (not yet added to a session)."""
    out = []
    for i in range(DEMO_VENUE_COUNT):
        v, g = i % 8, (i // 8) % 5
        west, south, east, north = grid_box(v, g)
        fx, fy = ((i * 37) % 80 + 10) / 100, ((i * 53) % 80 + 10) / 100
        lon, lat = west + (east - west) * fx, south + (north - south) * fy
        vtype, word = _TYPES[i % len(_TYPES)]
        village = VILLAGE_NAMES[v].removesuffix("村").removesuffix("社区")
        grid = town.grids[v][g]
        assert grid.id is not None
        out.append(Venue(
            venue_type=vtype.value, name=f"{village}{word}{i // len(_TYPES) + 1}号店" if i >= len(_TYPES)
            else f"{village}{word}", credit_code=demo_credit_code(i),
            address=f"护蕾镇{VILLAGE_NAMES[v]}{g + 1}组{i % 30 + 1}号", location=point(round(lon, 6), round(lat, 6)),
            owner_name=_SURNAMES[i % len(_SURNAMES)] + _GIVEN[i % len(_GIVEN)], owner_phone=f"1990001{i:04d}",
            is_key=i % 3 == 0, org_unit_id=grid.id,
            status=VenueStatus.closed.value if i == 59 else VenueStatus.open.value,
        ))
    return out


def seed_venues(session: Session, town: DemoTown) -> list[Venue]:
    """Add the demo venues, the officers' weekdays and the town's rules (two joint operations a
    month, as in seed 001)."""
    venues = demo_venues(town)
    session.add_all(venues)
    session.flush()
    phones = {a.phone for a in DEMO_ACCOUNTS}
    users = {u.phone: u for u in session.execute(select(User).where(col(User.phone).in_(phones))).scalars()}
    for phone, days in DEMO_WEEKDAYS.items():
        user = users.get(phone)
        if user is not None and user.id is not None:
            set_weekdays(session, user.id, days)
    assert town.town.id is not None
    session.add(ScheduleRule(org_unit_id=town.town.id, joint_ops_per_month=2, daily_capacity=6))
    session.flush()
    return venues
