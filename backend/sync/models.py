"""The change counter behind pull cursors."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel


class SyncCounter(SQLModel, table=True):
    """One row (id 1). Writers bump it with UPDATE .. RETURNING and hold its row lock until commit,
    so revisions become visible in increasing order and a pull cursor never skips a change."""

    __tablename__ = "sync_counter"

    id: int = Field(primary_key=True)
    value: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
