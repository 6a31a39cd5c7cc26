"""Demo visits: the town coordinator's door-knocking of the last day, a different share of each
village's households, so a fresh `make run` shows a map of varied coverage (issue 17) instead of all
red. Stored through the visit push itself (`push_visits`), as a phone's would be; deterministic."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session, col

from backend.accounts import service as accounts
from backend.accounts.models import User
from backend.checklists.builtin import six_looks_items
from backend.core import clock
from backend.demo.town import DemoTown
from backend.registry.models import Household
from backend.sync.kinds import ItemStatus, PushItem
from backend.sync.schemas import MAX_PUSH_ITEMS
from backend.visits.service import push_visits

# The share of each village's households visited (villages in the demo's order): every legend class
# appears, and one village is still untouched.
VILLAGE_SHARES = (0.95, 0.8, 0.62, 0.45, 0.33, 0.15, 0.72, 0.0)
COORDINATOR_PHONE = "19900000003"


def _fine_answers() -> dict[str, Any]:
    """Answers that raise no concern (a demo visit changes no child's risk)."""
    return {item["id"]: {"value": "no" if item["concern"] == "yes" else "yes"} for item in six_looks_items()}


def seed_visits(session: Session, town: DemoTown, *, seed: int = 2026) -> int:
    """Visit each village's share of households in the last day, with the phone's point at the door;
    answers the number of visits stored (caller commits)."""
    rng = random.Random(seed)  # noqa: S311 - deterministic synthetic data, not secrets
    user_id = session.execute(select(col(User.id)).where(col(User.phone) == COORDINATOR_PHONE)).scalar_one()
    principal = accounts.principal_for(session, user_id, device_id=None, ip=None)
    assert principal is not None
    answers = _fine_answers()
    now = clock.now()
    # The households were registered a week before the door-knocking (a household counts in a period
    # only from when it is placed): seeded at 01:00 China time, yesterday's visits would otherwise fall
    # in a month in which their households did not exist yet.
    all_grids = [g.id for grids in town.grids for g in grids]
    session.execute(update(Household).where(col(Household.org_unit_id).in_(all_grids))
                    .values(counted_at=now - timedelta(days=7)).execution_options(synchronize_session=False))
    items: list[PushItem] = []
    for village, share in zip(town.villages, VILLAGE_SHARES, strict=True):
        grids = [g.id for g in town.grids[town.villages.index(village)]]
        homes = session.execute(
            select(col(Household.uuid), col(Household.lon), col(Household.lat))
            .where(col(Household.org_unit_id).in_(grids)).order_by(col(Household.id))
        ).all()
        for home_uuid, lon, lat in homes:
            if rng.random() >= share:
                continue
            at = clock.china_time(now - timedelta(minutes=rng.randrange(30, 20 * 60)))
            data: dict[str, Any] = {"household_uuid": str(home_uuid), "device_time": at.isoformat(),
                                    "outcome": "visited", "answers": answers}
            if lon is not None and lat is not None:
                data["gps"] = {"lon": lon, "lat": lat, "accuracy_m": 8.0, "crs": "wgs84"}
            items.append(PushItem(index=len(items), kind="visit", client_uuid=uuid.UUID(int=rng.getrandbits(128),
                                                                                          version=4),
                                  base_version=None, data=data))
    stored = 0
    for start in range(0, len(items), MAX_PUSH_ITEMS):
        batch = [PushItem(index=i, kind=p.kind, client_uuid=p.client_uuid, base_version=None, data=p.data)
                 for i, p in enumerate(items[start:start + MAX_PUSH_ITEMS])]
        results = push_visits(session, principal, batch, "zh")
        stored += sum(1 for r in results if r.status is ItemStatus.created)
    return stored
