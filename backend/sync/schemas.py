"""The phone's sync envelope (see mobile_api_spec/sync.md)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from backend.sync.kinds import ItemStatus

MAX_PUSH_ITEMS = 500


class PushItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(max_length=40, description="visit, amendment, household, person (more kinds may be added)")
    client_uuid: UUID = Field(description="Made on the phone when the record was made; resending it is safe")
    base_version: int | None = Field(default=None, ge=1, description="Registry edits: the version edited; null = new")
    data: dict[str, Any]


class PushRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[PushItemIn]


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
        description="household, person, template, assignment; more may be added: skip kinds you do not know"
    )
    rev: int
    record: dict[str, Any]


class PullResponse(BaseModel):
    items: list[PullItem]
    next_cursor: str = Field(description="Store it; pass it back next time (also after the last page)")
    has_more: bool
    reset: bool = Field(description="True when the cursor no longer fits your jurisdiction: rebuild from these items")
