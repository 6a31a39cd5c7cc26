"""Registry, visit and sync test data: a town with users per role and builders of push items."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts import service as accounts
from backend.accounts.permissions import Role
from backend.checklists.builtin import six_looks_items
from backend.core import clock
from backend.demo.town import DemoTown, grid_box
from backend.orgunits.models import OrgUnit
from backend.registry import idnumber
from backend.registry import service as registry
from backend.registry.models import RiskPerson, RiskPersonCategory
from backend.registry.schemas import RiskPersonData
from tests.factories import SignedIn, make_town, make_user, user_client

# Ledger tests import the clerk's workbook from here.
from tests.xlsx_support import xlsx_bytes as xlsx_bytes


class World:
    """A town and signed-in users, each made on first use (signing in costs a password hash)."""

    def __init__(self, client: TestClient, session: Session) -> None:
        self.client, self.session = client, session
        self.town: DemoTown = make_town(session)
        self._users: dict[str, SignedIn] = {}

    def _user(self, key: str, unit: OrgUnit, role: Role) -> SignedIn:
        if key not in self._users:
            self._users[key] = user_client(self.client, self.session, unit, role)
        return self._users[key]

    @property
    def volunteer_a(self) -> SignedIn:  # village 0
        return self._user("volunteer_a", self.town.villages[0], Role.volunteer)

    @property
    def volunteer_b(self) -> SignedIn:  # village 1
        return self._user("volunteer_b", self.town.villages[1], Role.volunteer)

    @property
    def police(self) -> SignedIn:
        return self._user("police", self.town.town, Role.police)

    @property
    def coordinator(self) -> SignedIn:
        return self._user("coordinator", self.town.town, Role.coordinator)

    @property
    def market(self) -> SignedIn:
        return self._user("market", self.town.town, Role.market_officer)

    @property
    def helper(self) -> SignedIn:
        return self._user("helper", self.town.town, Role.helper)


def make_world(client: TestClient, session: Session) -> World:
    return World(client, session)


def grid_centre(village: int, grid: int = 0) -> tuple[float, float]:
    west, south, east, north = grid_box(village, grid)
    return (west + east) / 2, (south + north) / 2


_seq = iter(range(1, 999))


def child_id(birth: date = date(2014, 5, 6), *, male: bool = True) -> str:
    """A checksum-valid ID number of a minor (region 990101, a synthetic code)."""
    while True:
        n = next(_seq)
        if (n % 2 == 1) == male:
            return idnumber.make("990101", birth, n)


def household_item(
    village: int = 0,
    grid: int = 0,
    *,
    address: str = "青山村1组3号",
    uid: uuid.UUID | None = None,
    base_version: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    lon, lat = grid_centre(village, grid)
    data = {"address": address, "head_name": "张某", "contact": "13800000000", "lon": lon, "lat": lat, **extra}
    return {"kind": "household", "client_uuid": str(uid or uuid.uuid4()), "base_version": base_version, "data": data}


def child_item(
    household_uuid: str,
    *,
    name: str = "测试儿童",
    id_number: str | None = None,
    uid: uuid.UUID | None = None,
    base_version: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    data = {
        "role": "child",
        "household_uuid": household_uuid,
        "name": name,
        "id_number": id_number if id_number is not None else child_id(),
        "in_school": True,
        **extra,
    }
    return {"kind": "person", "client_uuid": str(uid or uuid.uuid4()), "base_version": base_version, "data": data}


def fine_answers() -> dict[str, Any]:
    """Answers with no concern at all."""
    return {item["id"]: {"value": "no" if item["concern"] == "yes" else "yes"} for item in six_looks_items()}


def visit_item(
    household_uuid: str,
    *,
    answers: dict[str, Any] | None = None,
    at: tuple[float, float] | None = None,
    accuracy_m: float = 10.0,
    crs: str = "wgs84",
    outcome: str = "visited",
    children_seen: list[str] | None = None,
    uid: uuid.UUID | None = None,
    kind: str = "visit",
    **extra: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "household_uuid": household_uuid,
        "device_time": datetime(2026, 11, 20, 9, 30, tzinfo=UTC).isoformat(),
        "outcome": outcome,
        "answers": answers if answers is not None else fine_answers(),
        "children_seen": children_seen or [],
        **extra,
    }
    if at is not None:
        data["gps"] = {"lon": at[0], "lat": at[1], "accuracy_m": accuracy_m, "crs": crs}
    return {"kind": kind, "client_uuid": str(uid or uuid.uuid4()), "data": data}


def push(client: TestClient, who: SignedIn, items: list[dict[str, Any]], status: int = 200) -> dict[str, Any]:
    resp = client.post("/api/v1/sync/push", json={"items": items}, headers=who.headers)
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    return body


def statuses(body: dict[str, Any]) -> list[str]:
    return [r["status"] for r in body["results"]]


def seed_household(
    client: TestClient, who: SignedIn, village: int = 0, grid: int = 0, children: int = 1
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A household with children, pushed by `who`; returns their stored records."""
    h = household_item(village, grid)
    kids = [child_item(h["client_uuid"], name=f"儿童{i}") for i in range(children)]
    body = push(client, who, [h, *kids])
    assert statuses(body) == ["created"] * (1 + children), body
    return body["results"][0]["record"], [r["record"] for r in body["results"][1:]]


def born_years_ago(years: int, days: int = 30) -> date:
    """The birth date of someone `years` old today (China time) whose birthday was `days` ago; `days`
    may be negative (the birthday is still ahead: one year younger)."""
    today = clock.now().astimezone(clock.SHANGHAI).date() - timedelta(days=days)
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February in a year without one
        return today.replace(year=today.year - years, day=28)


def add_risk_person(
    session: Session, unit: OrgUnit, *, name: str, id_number: str | None = None, birth_date: date | None = None,
    role: Role = Role.police,
) -> RiskPerson:
    """A 附件2 entry written through the registry service by a new user of `role` at `unit` (committed)."""
    user = make_user(session, unit, role)
    principal = accounts.principal_for(session, user.id or 0, device_id=None, ip=None)
    assert principal is not None
    data: dict[str, Any] = {"name": name, "id_number": id_number,
                            "categories": [RiskPersonCategory.community_correction]}
    if birth_date is not None:
        data["birth_date"] = birth_date
    row = registry.create_risk_person(session, principal, RiskPersonData.model_validate(data))
    session.commit()
    return row


def make_child_born(session: Session, grid: OrgUnit, birth: date, **kw: Any) -> Any:
    """A committed child born on `birth` in a household of `grid` (registry rows, no ID number):
    for tests of what happens as children grow up (backend/registry/retention.py)."""
    from backend.registry.models import Person
    from tests.helpers.factories import make_child

    child = make_child(session, grid, **kw)
    child.birth_date = birth
    session.add(child)
    session.commit()
    stored = session.get(Person, child.id)
    assert stored is not None
    return stored
