"""API shapes for the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


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
    # Signed checkpoints outside the database (infra/README.md, "Audit checkpoints"), when this API
    # process can read their storage and public keys; null when they were not checked (see the note).
    checkpoints_checked: int | None = Field(
        default=None, description="Checkpoint files held against the chain; null: checkpoints were not checked.")
    anchored: bool | None = Field(
        default=None, description="The checkpoints vouch for the chain (at least one, none contradicted, anchoring "
                                  "not stopped); null: checkpoints were not checked.")
    unanchored_entries: int | None = Field(
        default=None, description="Entries after the newest checkpoint; null: checkpoints were not checked.")
    checkpoints_note: str | None = Field(
        default=None, description="What the checkpoints say, or why they were not checked (in English).")
