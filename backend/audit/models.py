"""The audit log: append-only and hash-chained (审计日志)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, DateTime, Integer
from sqlmodel import Field, SQLModel

from backend.core import clock


class AuditEntry(SQLModel, table=True):
    """Who did what to which object, when, from which device and address. Each entry's hash
    covers its content and the previous entry's hash, so editing or removing any row breaks
    the chain from that row on."""

    __tablename__ = "audit_entry"

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )
    occurred_at: datetime = Field(
        default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    actor_user_id: int | None = Field(default=None, index=True)
    actor_roles: str = Field(default="", max_length=200)
    action: str = Field(max_length=64, index=True)
    object_type: str = Field(max_length=40)
    object_id: str | None = Field(default=None, max_length=64)
    org_unit_id: int | None = None
    device_id: str | None = Field(default=None, max_length=120)
    ip: str | None = Field(default=None, max_length=64)
    details: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    entry_hash: str = Field(max_length=64, unique=True)


class AuditChainHead(SQLModel, table=True):
    """The single row that names the newest entry. Writers lock it to append in order, and
    verification compares it with the last row so a deleted tail is noticed too."""

    __tablename__ = "audit_chain_head"

    id: int = Field(default=1, primary_key=True)
    last_entry_id: int = 0
    last_hash: str = Field(max_length=64)


GENESIS_HASH = "0" * 64
