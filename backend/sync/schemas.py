"""The phone's sync envelope (see mobile_api_spec/sync.md)."""

from __future__ import annotations

import re
from typing import Any, Literal, cast
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, create_model
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from backend.sync.kinds import KINDS, ItemStatus, Kind

MAX_PUSH_ITEMS = 500


class PushItemIn(BaseModel):
    """One record. Validated here only as an envelope: each kind's handler validates `data`, so an
    unknown kind or bad data rejects that item alone (with its index), never the request. The
    document (openapi.json) shows `data` per kind, generated from the kind registry."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(max_length=40, description="household, person, visit, amendment, inspection; more kinds may "
                                                 "be added, and a kind the server does not know rejects that item")
    client_uuid: UUID = Field(description="Made on the phone when the record was made; resending it is safe")
    base_version: int | None = Field(default=None, ge=1, strict=True,
                                     description="Registry edits: the version edited; null = new")
    data: dict[str, Any]

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        """A oneOf of one documented variant per registered kind, in processing order."""
        from backend.registries import load_all  # the registering modules import this one

        load_all()
        kinds = sorted((k for k in KINDS.values() if k.data_model is not None), key=lambda k: (k.order, k.name))
        # A tagged union documents as oneOf + discriminator, each variant a component of its own.
        documented = core_schema.tagged_union_schema(
            {k.name: _documented_item(k).__pydantic_core_schema__ for k in kinds}, discriminator="kind"
        )
        schema = handler(documented)
        schema["title"] = cls.__name__
        schema["description"] = (
            "One record; `kind` decides the shape of `data`. Items are processed kind by kind in this order: "
            f"{', '.join(k.name for k in kinds)}; within a kind, in the phone's order. An unknown kind or "
            "invalid `data` rejects that item only (status `rejected`, with its index)."
        )
        return schema


_DOCUMENTED: dict[tuple[str, type[BaseModel], type[BaseModel] | None], type[BaseModel]] = {}


def _documented_item(kind: Kind) -> type[BaseModel]:
    """The item of one kind as openapi.json shows it (`kind` fixed, `data` the handler's model).
    Documentation only: requests are still validated as PushItemIn."""
    assert kind.data_model is not None
    key = (kind.name, kind.data_model, kind.edit_model)
    if key not in _DOCUMENTED:
        envelope = PushItemIn.model_fields
        name = "PushItem" + "".join(part.capitalize() for part in re.split(r"[^0-9A-Za-z]+", kind.name))
        data: Any = kind.data_model
        doc = f"A pushed {kind.name}: `data` is {kind.data_model.__name__}."
        if kind.edit_model is not None:
            data = kind.data_model | kind.edit_model
            doc = (f"A pushed {kind.name}: `data` is {kind.data_model.__name__} for a new record (`base_version` "
                   f"null), {kind.edit_model.__name__} for an edit (only the fields it changes).")
        _DOCUMENTED[key] = create_model(
            name,
            __config__=ConfigDict(extra="forbid"),
            __doc__=doc,
            # A Literal of a value known only at run time (the registry's kind name).
            kind=(cast(Any, Literal)[kind.name], Field(description=f"Always {kind.name!r}")),
            client_uuid=(UUID, envelope["client_uuid"]),
            base_version=(int | None, envelope["base_version"]),
            data=(data, ...),
        )
    return _DOCUMENTED[key]


class PushRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # At most MAX_PUSH_ITEMS, documented here but checked by the service: more is a 413 that tells
    # the phone to split the batch, not a 422.
    items: list[PushItemIn] = Field(json_schema_extra={"maxItems": MAX_PUSH_ITEMS})


class PushResultOut(BaseModel):
    index: int
    kind: str
    client_uuid: UUID
    status: ItemStatus
    record: dict[str, Any] | None = None
    problem: dict[str, Any] | None = None


class PushResponse(BaseModel):
    results: list[PushResultOut]
    counts: dict[str, int]
    server_time: str


class PullItem(BaseModel):
    kind: str = Field(
        description="household, person, template, assignment, visit, removal; more may be added: skip kinds "
                    "you do not know"
    )
    rev: int
    record: dict[str, Any]


class PullResponse(BaseModel):
    items: list[PullItem]
    next_cursor: str = Field(description="Store it; pass it back next time (also after the last page)")
    has_more: bool
    reset: bool = Field(description="True when the cursor no longer fits your jurisdiction: rebuild from these items")
