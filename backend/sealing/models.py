"""An opening of a sealed record: one police officer, one record, for a while."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, Index
from sqlmodel import Field, SQLModel


class SealedOpening(SQLModel, table=True):
    """A police officer opened a sealed record with a reason (the reason and the act are in the audit
    log, `sealed.open`). Until `expires_at` that officer, and nobody else, finds the record by its id
    and may correct it; lists, counts and exports never carry it."""

    __tablename__ = "sealed_opening"
    __table_args__ = (Index("ix_sealed_opening_record", "record_kind", "record_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    record_kind: str = Field(max_length=32)  # a key of sealing.service.SEALABLE
    record_id: int
    user_id: int = Field(foreign_key="app_user.id")
    opened_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
