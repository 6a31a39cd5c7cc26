"""The push envelope in openapi.json documents each kind's `data` (with its limits), generated from the
kind registry; the server still judges every item on its own (an unknown kind or bad data rejects
that item only, with its index)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.main import create_app
from backend.registries import load_all
from backend.sync.kinds import KINDS
from backend.sync.schemas import MAX_PUSH_ITEMS
from tests.registry.factories import household_item, make_world, push, statuses


def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = create_app().openapi()
    return spec


def _component(spec: dict[str, Any], ref: str) -> dict[str, Any]:
    schema: dict[str, Any] = spec["components"]["schemas"][ref.removeprefix("#/components/schemas/")]
    return schema


def _data_refs(variant: dict[str, Any]) -> list[str]:
    """The `data` schemas of one kind's item: a new record's, then (kinds taking edits) an edit's."""
    data = variant["properties"]["data"]
    return [s["$ref"] for s in data.get("anyOf", [data])]


def _push_item(spec: dict[str, Any]) -> dict[str, Any]:
    body = spec["paths"]["/api/v1/sync/push"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    items = _component(spec, body["$ref"])["properties"]["items"]
    assert items["maxItems"] == MAX_PUSH_ITEMS
    return _component(spec, items["items"]["$ref"])


def test_every_registered_push_kind_documents_its_data_schema() -> None:
    spec = _spec()
    load_all()
    item = _push_item(spec)
    mapping = item["discriminator"]["mapping"]
    assert item["discriminator"]["propertyName"] == "kind"
    assert set(mapping) == set(KINDS), "a registered push kind has no documented data schema"
    # The variants are listed in processing order (households before the visits naming them).
    assert [v["$ref"] for v in item["oneOf"]] == [mapping[k] for k in sorted(KINDS, key=lambda k: KINDS[k].order)]
    for kind, ref in mapping.items():
        variant = _component(spec, ref)
        assert variant["properties"]["kind"]["const"] == kind
        assert {"kind", "client_uuid", "data"} <= set(variant["required"])
        documented = [_component(spec, ref) for ref in _data_refs(variant)]
        models = [m for m in (KINDS[kind].data_model, KINDS[kind].edit_model) if m is not None]
        assert [d["title"] for d in documented] == [m.__name__ for m in models], kind
        assert all(d["properties"] for d in documented), kind


def test_documented_limits_are_the_ones_the_handlers_enforce() -> None:
    spec = _spec()
    mapping = _push_item(spec)["discriminator"]["mapping"]

    def data_of(kind: str, edit: bool = False) -> dict[str, Any]:
        return _component(spec, _data_refs(_component(spec, mapping[kind]))[1 if edit else 0])

    assert data_of("household")["properties"]["address"]["maxLength"] == 200
    assert "address" in data_of("household")["required"]
    # An edit names only what it changes: nothing is required, the limits stay.
    assert "required" not in data_of("household", edit=True)
    # A field the record needs is not nullable in an edit; one that can be empty is (null clears it).
    assert data_of("person", edit=True)["properties"]["name"]["maxLength"] == 60
    assert {"type": "null"} in data_of("person", edit=True)["properties"]["contact"]["anyOf"]
    assert "anyOf" not in data_of("person", edit=True)["properties"]["key_minor"]
    assert data_of("visit")["properties"]["children_seen"]["maxItems"] == 30
    assert "amends_uuid" in data_of("amendment")["required"]
    # An inspection's client UUID is the item's: its data does not carry (or need) one.
    assert "client_uuid" not in data_of("inspection")["properties"]
    assert data_of("inspection")["properties"]["notes"]["maxLength"] == 4000


def test_data_beyond_a_documented_limit_rejects_that_item_only(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    spec = client.get("/openapi.json").json()
    mapping = _push_item(spec)["discriminator"]["mapping"]
    household = _component(spec, _data_refs(_component(spec, mapping["household"]))[0])
    too_long = "址" * (household["properties"]["address"]["maxLength"] + 1)
    body = push(client, w.volunteer_a, [household_item(0), household_item(0, address=too_long),
                                        {**household_item(0), "kind": "household-v9"}])
    assert statuses(body) == ["created", "rejected", "rejected"]
    assert [r["index"] for r in body["results"]] == [0, 1, 2]
    assert body["results"][1]["problem"]["code"] == "invalid-input"
    assert [e["field"] for e in body["results"][1]["problem"]["errors"]] == ["address"]
    assert body["results"][2]["problem"]["code"] == "sync-unknown-kind"
