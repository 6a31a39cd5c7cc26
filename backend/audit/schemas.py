"""API shapes for the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEntryPublic(BaseModel):
    id: int
    occurred_at: datetime
    actor_user_id: int | None
    actor_roles: str
    action: str
    object_type: str
    object_id: str | None
    org_unit_id: int | None
    device_id: str | None
    ip: str | None
    details: dict[str, Any]
    entry_hash: str


class ChainVerdictPublic(BaseModel):
    ok: bool
    entries_checked: int
    first_broken_id: int | None
    reason: str | None
