"""The push registry: each record kind a phone may push maps to a batch handler.

A domain adds a kind by calling `register_kind` at import time, in a module listed in
backend/registries.py (which every process loads at start); the push code itself never changes.
Handlers receive every item of their kind in one call so they can write in bulk, and must return
one result per item, in order. They run in the request's transaction; a handler must never let
one bad item fail the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from sqlmodel import Session

from backend.accounts.principal import Principal


class ItemStatus(StrEnum):
    created = "created"  # stored now
    updated = "updated"  # an edit applied on the current version
    duplicate = "duplicate"  # same client UUID and same content already stored; nothing new
    conflict = "conflict"  # same UUID with other content, or a stale edit; nothing overwritten
    rejected = "rejected"  # invalid; `problem` says why in the phone's language


@dataclass(frozen=True)
class PushItem:
    index: int
    kind: str
    client_uuid: UUID
    base_version: int | None
    data: dict[str, Any]


@dataclass
class ItemResult:
    status: ItemStatus
    record: dict[str, Any] | None = None
    problem: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Session, Principal, list[PushItem], str], list[ItemResult]]


@dataclass(frozen=True)
class Kind:
    name: str
    handle: Handler
    order: int  # kinds run in this order within a batch (households before the visits that name them)
    # The shapes the handler validates `data` with (a new record; an edit, for kinds taking
    # `base_version`): openapi.json documents them per kind (sync/schemas.py).
    data_model: type[BaseModel] | None = None
    edit_model: type[BaseModel] | None = None


KINDS: dict[str, Kind] = {}


def register_kind(name: str, handle: Handler, *, order: int = 100, data_model: type[BaseModel] | None = None,
                  edit_model: type[BaseModel] | None = None) -> None:
    """Make `name` pushable. `data_model` is the schema its `data` is validated by (and documented
    with); `edit_model` that of an edit (`base_version` set), for kinds that take edits."""
    KINDS[name] = Kind(name=name, handle=handle, order=order, data_model=data_model, edit_model=edit_model)
