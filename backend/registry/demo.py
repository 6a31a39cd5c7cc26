"""Demo registry: 3,000 households placed inside their grids, ~1,000 children with synthetic,
checksum-valid ID numbers (region 990101, which does not exist), guardians and a few risk levels.
Deterministic (random.Random(seed)); written with a handful of bulk INSERTs."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlmodel import Session, col

from backend.core import clock
from backend.core.geo import point
from backend.demo.town import DemoTown, grid_box
from backend.registry import idnumber
from backend.registry.models import (
    ChildCategory,
    ChildGroup,
    Guardianship,
    Household,
    Person,
    PersonRole,
    RiskLevel,
    RiskLevelChange,
)
from backend.registry.service import content_hash, seal_id
from backend.sync import revisions

HOUSEHOLDS = 3000
CHILD_SHARE = 3  # about one household in three has a child
DEMO_REGION = "990101"


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


def seed_registry(session: Session, town: DemoTown, *, seed: int = 2026) -> dict[str, int]:
    """Add the demo households, children and guardians to the town (caller commits)."""
    rng = random.Random(seed)  # noqa: S311 - deterministic synthetic data, not secrets
    today = clock.now().date()
    now = clock.now()
    grids = [(v, g, unit) for v, row in enumerate(town.grids) for g, unit in enumerate(row)]
    household_rows: list[dict[str, Any]] = []
    first_rev = revisions.allocate(session, HOUSEHOLDS * 3)
    rev = first_rev
    for n in range(HOUSEHOLDS):
        v, g, unit = grids[n % len(grids)]
        west, south, east, north = grid_box(v, g)
        lon = round(rng.uniform(west + 1e-4, east - 1e-4), 6)
        lat = round(rng.uniform(south + 1e-4, north - 1e-4), 6)
        household_rows.append(
            {
                "uuid": uuid.UUID(int=rng.getrandbits(128)),
                "org_unit_id": unit.id,
                "address": f"{town.villages[v].name}{g + 1}组{n // len(grids) + 1}号",
                "head_name": f"演示户主{n + 1:04d}",
                "contact": f"199{rng.randrange(10**8):08d}",
                "lon": lon,
                "lat": lat,
                "location": point(lon, lat),
                "note": None,
                "version": 1,
                "content_hash": content_hash({"demo": n}),
                "rev": rev,
                "created_at": now,
                "updated_at": now,
            }
        )
        rev += 1
    session.execute(insert(_table(Household)), household_rows)
    ids: dict[uuid.UUID, int] = {u: i for u, i in session.execute(select(col(Household.uuid), col(Household.id)))}
    children: list[dict[str, Any]] = []
    seen: set[str] = set()
    guardians: list[dict[str, Any]] = []
    for n, h in enumerate(household_rows):
        if n % CHILD_SHARE:
            continue
        age_days = rng.randrange(365 * 2, 365 * 17)
        birth = today - timedelta(days=age_days)
        seq = rng.randrange(1, 999)
        number = idnumber.make(DEMO_REGION, birth, seq)
        sealed = seal_id(number)
        if sealed.index in seen:  # the same birth date and sequence drawn twice: skip the repeat
            continue
        seen.add(sealed.index)
        groups = rng.sample([g.value for g in ChildGroup], k=rng.choice([0, 0, 1, 2]))
        categories = rng.sample([c.value for c in ChildCategory], k=rng.choice([0, 0, 0, 1]))
        child_no = len(children) + 1
        children.append(
            {
                "uuid": uuid.UUID(int=rng.getrandbits(128)),
                "role": PersonRole.child.value,
                "household_id": ids[h["uuid"]],
                "org_unit_id": h["org_unit_id"],
                "name": f"演示儿童{child_no:04d}",
                "id_cipher": sealed.cipher,
                "id_key_id": sealed.key_id,
                "id_index": sealed.index,
                "id_masked": sealed.masked,
                "sex": idnumber.parse(number).sex.value,
                "birth_date": birth,
                "hukou_place": "示范县",
                "residence": h["address"],
                "in_school": age_days > 365 * 6,
                "contact": None,
                "categories": categories,
                "groups": groups,
                "signs": None,
                "task_force": None,
                "assistance": None,
                "key_minor": bool(categories),
                "vulnerable": "留守" in groups,
                "risk_level": None,
                "risk_reasons": [],
                "version": 1,
                "content_hash": content_hash({"demo-child": child_no}),
                "rev": rev,
                "created_at": now,
                "updated_at": now,
            }
        )
        guardians.append(
            {
                "uuid": uuid.UUID(int=rng.getrandbits(128)),
                "role": PersonRole.guardian.value,
                "household_id": ids[h["uuid"]],
                "org_unit_id": h["org_unit_id"],
                "name": f"演示监护人{child_no:04d}",
                "contact": h["contact"],
                "categories": [],
                "groups": [],
                "key_minor": False,
                "vulnerable": False,
                "risk_reasons": [],
                "version": 1,
                "content_hash": content_hash({"demo-guardian": child_no}),
                "rev": rev + 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        rev += 2
    session.execute(insert(_table(Person)), children)
    session.execute(insert(_table(Person)), guardians)
    person_ids: dict[uuid.UUID, int] = {
        u: i for u, i in session.execute(select(col(Person.uuid), col(Person.id)).where(col(Person.name).like("演示%")))
    }
    links = [
        {"child_id": person_ids[c["uuid"]], "guardian_id": person_ids[gd["uuid"]], "relation": "监护人"}
        for c, gd in zip(children, guardians, strict=True)
    ]
    session.execute(insert(_table(Guardianship)), links)
    levels = [RiskLevel.general, RiskLevel.major, RiskLevel.severe, RiskLevel.low]
    changes = []
    for i, c in enumerate(children[:: max(1, len(children) // 40)]):
        level = levels[i % len(levels)]
        pid = person_ids[c["uuid"]]
        reasons = [{"rule": "demo", "reason_zh": "演示数据", "reason_en": "Demo data"}]
        session.execute(
            _table(Person).update()
            .where(_table(Person).c.id == pid)
            .values(risk_level=level.value, risk_reasons=reasons)
        )
        changes.append(
            {
                "person_id": pid,
                "previous_level": None,
                "level": level.value,
                "source": "import",
                "reasons": reasons,
                "created_at": now,
            }
        )
    session.execute(insert(_table(RiskLevelChange)), changes)
    return {
        "households": len(household_rows),
        "children": len(children),
        "guardians": len(guardians),
        "risk_levels": len(changes),
    }
