"""What a photo belongs to. Other domains register a resolver for their record kind; media never
imports them, so a photo can arrive before (or without) the code of its parent's domain.

Contract (used by backend/visits/media_parent.py and the venue domain):

    register_parent_kind("visit", resolve_visit)

where `resolve_visit(session, client_uuid)` returns a ParentRecord for the visit with that client
UUID, or None while it has not arrived. Coordinates are WGS-84 (lon, lat) or None when unknown.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

# The record kinds a photo may name. A kind is accepted before its resolver is registered: the
# photo then waits, unlinked, until the resolver exists and finds the record.
PARENT_KINDS: frozenset[str] = frozenset({"visit", "inspection", "problem", "rectification"})


@dataclass(frozen=True)
class ParentRecord:
    kind: str
    client_uuid: uuid.UUID
    org_unit_id: int
    lon: float | None
    lat: float | None
    # Who recorded it, where only its author takes its photos (an activity): a reader of the record, who
    # sees the photo ids it lists, must not upload under one of them and so take the author's photo slot.
    author_user_id: int | None = None


ParentResolver = Callable[[Session, uuid.UUID], ParentRecord | None]

_RESOLVERS: dict[str, ParentResolver] = {}


def register_parent_kind(kind: str, resolver: ParentResolver) -> None:
    """Declare how to find records of `kind` by client UUID (call at import time, from a module
    listed in backend/registries.py so that every process knows the kind)."""
    _RESOLVERS[kind] = resolver


def known_kinds() -> frozenset[str]:
    """Kinds a photo may name: the campaign's record kinds plus any registered one."""
    return PARENT_KINDS | frozenset(_RESOLVERS)


def resolve_parent(session: Session, kind: str, client_uuid: uuid.UUID) -> ParentRecord | None:
    """The parent record, or None when its kind has no resolver yet or it has not arrived."""
    resolver = _RESOLVERS.get(kind)
    if resolver is None:
        return None
    return resolver(session, client_uuid)
