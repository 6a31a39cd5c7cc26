"""Venue, officer and inspection test data shared by the venue, inspection and schedule tests."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.geo import point
from backend.demo.town import DemoTown, grid_box
from backend.inspections import checklists
from backend.inspections.models import Inspection, Problem
from backend.venues.credit_code import complete
from backend.venues.models import Venue, VenueType
from tests.factories import SignedIn, make_town, user_client

_codes = itertools.count(1)


def credit_code(n: int | None = None) -> str:
    """A fresh checksum-valid synthetic credit code."""
    n = next(_codes) if n is None else n
    return complete(f"91990101MA{n:07d}")


def grid_point(town_grid: tuple[int, int], fx: float = 0.5, fy: float = 0.5) -> tuple[float, float]:
    west, south, east, north = grid_box(*town_grid)
    return west + (east - west) * fx, south + (north - south) * fy


def make_venue(session: Session, town: DemoTown, *, venue_type: VenueType = VenueType.hotel, village: int = 0,
               grid: int = 0, is_key: bool = False, fx: float = 0.5, fy: float = 0.5, name: str | None = None,
               code: str | None = None) -> Venue:
    """A committed venue at a point inside the given grid."""
    lon, lat = grid_point((village, grid), fx, fy)
    unit = town.grids[village][grid]
    assert unit.id is not None
    venue = Venue(venue_type=venue_type.value, name=name or f"测试{venue_type.zh}{next(_codes)}",
                  credit_code=code or credit_code(), address="测试地址", location=point(lon, lat),
                  owner_name="测试负责人", owner_phone="19900009999", is_key=is_key, org_unit_id=unit.id)
    session.add(venue)
    session.commit()
    return venue


@dataclass
class VenueWorld:
    town: DemoTown
    police: SignedIn
    market: SignedIn
    coordinator: SignedIn
    foreign_market: SignedIn  # market officer of village 1 only


def make_world(client: TestClient, session: Session) -> VenueWorld:
    town = make_town(session)
    return VenueWorld(
        town=town,
        police=user_client(client, session, town.town, Role.police, agency=Agency.police),
        market=user_client(client, session, town.town, Role.market_officer, agency=Agency.market_supervision),
        coordinator=user_client(client, session, town.town, Role.coordinator, agency=Agency.government),
        foreign_market=user_client(client, session, town.villages[1], Role.market_officer,
                                   agency=Agency.market_supervision),
    )


def answers_for(venue_type: VenueType, no: tuple[str, ...] = (), *,
                checklist: checklists.Checklist | None = None) -> dict[str, str]:
    """Every item of the checklist (the built-in current one by default) answered "yes" except those in `no`."""
    items = (checklist or checklists.builtin_current(venue_type)).items
    return {i.code: ("no" if i.code in no else "yes") for i in items}


def inspection_body(venue: Venue, *, no: tuple[str, ...] = (), at: tuple[float, float] | None = None,
                    started_at: datetime | None = None, **extra: Any) -> dict[str, Any]:
    vtype = VenueType(venue.venue_type)
    checklist = checklists.builtin_current(vtype)
    body: dict[str, Any] = {
        "client_uuid": str(uuid.uuid4()), "venue_id": venue.id, "checklist_code": checklist.code,
        "checklist_version": checklist.version, "started_at": (started_at or clock.now()).isoformat(),
        "answers": answers_for(vtype, no), **extra,
    }
    if at is not None:
        body["fix"] = {"lon": at[0], "lat": at[1], "accuracy_m": 8}
    return body


def make_problem(session: Session, town: DemoTown, *, village: int = 0, recorded_by: int) -> Problem:
    """A committed open problem (with the inspection that found it) at a hotel in the village."""
    venue = make_venue(session, town, village=village)
    assert venue.id is not None
    inspection = Inspection(client_uuid=str(uuid.uuid4()), payload_hash="0" * 64, venue_id=venue.id,
                            org_unit_id=venue.org_unit_id, recorded_by_user_id=recorded_by,
                            checklist_code="accommodation", checklist_version=1, started_at=clock.now())
    session.add(inspection)
    session.flush()
    problem = Problem(venue_id=venue.id, org_unit_id=venue.org_unit_id, found_in_inspection_id=inspection.id or 0,
                      item_code="five_musts.identity", description="未登记", measure="登记",
                      responsible_party=venue.name, deadline_date=clock.now().date() + timedelta(days=3))
    session.add(problem)
    session.commit()
    return problem
