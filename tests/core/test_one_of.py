"""A batch lookup (`one_of`) finds exactly the rows whose key is in the batch, whatever the keys are:
UUIDs, integers, text with characters an array literal would need to quote, or none at all."""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, select

from backend.core.db import one_of
from backend.orgunits.models import OrgUnit
from backend.registry.models import Household
from tests.factories import make_town


def test_a_batch_lookup_finds_exactly_the_keys_asked_for(session: Session) -> None:
    town = make_town(session)
    households = [Household(uuid=uuid.uuid4(), org_unit_id=town.grids[0][0].id or 0, address=f"{n}号",
                            content_hash="0" * 64, rev=n + 1) for n in range(5)]
    session.add_all(households)
    session.commit()
    wanted = [households[0].uuid, households[3].uuid, uuid.uuid4()]
    found = session.exec(select(Household.uuid).where(one_of(session, col(Household.uuid), wanted))).all()
    assert set(found) == {households[0].uuid, households[3].uuid}
    ids = [h.id for h in households[1:3]] + [2**31 - 1]
    found_ids = session.exec(select(Household.id).where(one_of(session, col(Household.id), ids))).all()
    assert set(found_ids) == {households[1].id, households[2].id}
    assert session.exec(select(Household.id).where(one_of(session, col(Household.id), []))).all() == []
    assert session.exec(select(Household.id).where(one_of(session, col(Household.uuid), []))).all() == []


def test_text_keys_with_quotes_commas_and_braces_are_matched_as_written(session: Session) -> None:
    town = make_town(session)
    odd = ['村,"一"', "{二}", "三\\四", "NULL"]
    for name, unit in zip(odd, [town.town, town.villages[0], town.grids[0][0], town.county], strict=True):
        unit.name = name
    session.commit()
    found = session.exec(select(OrgUnit.name).where(one_of(session, col(OrgUnit.name), [*odd, "无"]))).all()
    assert sorted(found) == sorted(odd)
