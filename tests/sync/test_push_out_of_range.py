"""A number no column can hold rejects only the item that carries it, the same on both backends.

PostgreSQL's integer columns hold 32 bits and SQLite's 64: a grid id, an org unit, a template version
or a base version of 2^31 reached PostgreSQL and lost the whole batch there, while SQLite refused
only the item (and at 2^63 lost the whole batch too)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests.registry.factories import household_item, make_world, push, visit_item

TOO_BIG = [2**31, 2**63, -(2**31) - 1]


@pytest.mark.parametrize("number", TOO_BIG)
@pytest.mark.parametrize("where", ["grid_id", "template_version", "org_unit_id"])
def test_an_out_of_range_number_rejects_only_its_item(
    client: TestClient, session: Session, where: str, number: int
) -> None:
    w = make_world(client, session)
    good = household_item(0)
    if where == "grid_id":
        bad = household_item(0, grid_id=number)
    elif where == "org_unit_id":
        bad = {"kind": "person", "client_uuid": household_item(0)["client_uuid"],
               "data": {"role": "guardian", "name": "越界", "org_unit_id": number}}
    else:
        bad = visit_item(good["client_uuid"], template_version=number)
    body = push(client, w.coordinator, [good, bad])
    results = body["results"]
    assert results[0]["status"] == "created", body
    assert results[1]["status"] == "rejected", body
    assert results[1]["problem"]["code"] == "invalid-input", body
    assert results[1]["problem"].get("field", "").endswith(where), body


@pytest.mark.parametrize("number", [2**31, 2**63])
def test_an_out_of_range_base_version_rejects_only_its_item(client: TestClient, session: Session, number: int) -> None:
    w = make_world(client, session)
    good = household_item(0)
    bad = {**household_item(0), "base_version": number}
    body = push(client, w.coordinator, [good, bad])
    assert [r["status"] for r in body["results"]] == ["created", "rejected"], body
