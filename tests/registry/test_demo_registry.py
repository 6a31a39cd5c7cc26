"""The demo registry: deterministic, inside the grids, checksum-valid minors, fast."""

from __future__ import annotations

import time

from sqlalchemy import func, select
from sqlmodel import Session

from backend.core import crypto
from backend.demo.town import build_org_tree, create_demo_users
from backend.orgunits import service as orgunits
from backend.registry import idnumber
from backend.registry.demo import seed_registry
from backend.registry.models import Household, Person


def test_demo_registry_places_households_in_their_grids_with_valid_minor_ids(session: Session) -> None:
    town = build_org_tree(session)
    create_demo_users(session, town)
    started = time.perf_counter()
    counts = seed_registry(session, town)
    session.commit()
    assert time.perf_counter() - started < 20  # a few seconds on a quiet machine
    assert counts["households"] == 3000 and 900 <= counts["children"] <= 1000
    assert session.execute(select(func.count()).select_from(Household)).scalar_one() == 3000
    sample = list(session.execute(select(Household).order_by(Household.id).limit(20)).scalars())
    for h in sample:
        found = orgunits.locate(session, h.lon or 0, h.lat or 0)
        assert found is not None and found.id == h.org_unit_id
    child = session.execute(select(Person).where(Person.role == "child").limit(1)).scalar_one()
    parsed = idnumber.parse(crypto.decrypt(child.id_cipher or ""))
    assert parsed.region == "990101" and parsed.age_on(child.updated_at.date()) < 18
    assert child.name.startswith("演示儿童")
