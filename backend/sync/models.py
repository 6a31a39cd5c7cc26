"""The change counter behind pull cursors."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, Column, DateTime, Uuid
from sqlmodel import Field, SQLModel


class SyncCounter(SQLModel, table=True):
    """One row (id 1). Writers bump it with UPDATE .. RETURNING and hold its row lock until commit,
    so revisions become visible in increasing order and a pull cursor never skips a change."""

    __tablename__ = "sync_counter"

    id: int = Field(primary_key=True)
    value: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class SyncRemoval(SQLModel, table=True):
    """A record left the audience it had (moved to another unit, deleted, an assignment ended or
    given to another helper). Written only by database triggers (migration 0009), never by code, so
    no path can forget it; pull turns it into a `removal` item for the phones that may hold it."""

    __tablename__ = "sync_removal"

    id: int | None = Field(default=None, primary_key=True)
    rev: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True, index=True))
    kind: str = Field(max_length=20)  # household | person | assignment | case (migration 0024)
    record_uuid: UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    record_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    org_unit_id: int | None = None  # the unit the record was in before it left
    user_id: int | None = None  # for assignments: the helper's user before it left
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
