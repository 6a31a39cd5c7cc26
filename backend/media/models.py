"""Photos taken in the field: one row per client UUID, from the first received byte to the
processed derivatives (issue 4)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from sqlalchemy import Column, DateTime, Index, Uuid
from sqlmodel import Field, SQLModel

from backend.core import clock


class MediaState(StrEnum):
    receiving = "receiving"  # chunks still arriving (resumable upload in progress)
    received = "received"  # every byte stored and checked; waiting for the worker
    processing = "processing"  # the worker is reading EXIF and making derivatives
    ready = "ready"  # derivatives exist and may be downloaded
    rejected = "rejected"  # the worker could not decode it; see reject_code / reject_reason


class MediaItem(SQLModel, table=True):
    """A photo and everything the service knows about it. The original's GPS is kept here and in
    the original object; derivatives never carry it."""

    __tablename__ = "media_item"
    __table_args__ = (
        Index("ix_media_item_parent", "parent_kind", "parent_uuid"),
        Index("ix_media_item_state", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    client_uuid: UUID = Field(sa_column=Column(Uuid, nullable=False, unique=True))
    parent_kind: str = Field(max_length=20)
    parent_uuid: UUID = Field(sa_column=Column(Uuid, nullable=False))
    # The unit that governs access: the parent's once linked, the uploader's until then.
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    uploader_user_id: int = Field(foreign_key="app_user.id", index=True)
    uploader_org_unit_id: int = Field(foreign_key="org_unit.id")
    linked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    link_error: str | None = Field(default=None, max_length=60)
    link_checked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))

    state: str = Field(default=MediaState.receiving.value, max_length=16)
    reject_code: str | None = Field(default=None, max_length=40)
    reject_reason: str | None = Field(default=None, max_length=300)

    total_bytes: int
    received_bytes: int = 0
    sha256: str | None = Field(default=None, max_length=64)
    content_type: str | None = Field(default=None, max_length=40)
    width: int | None = None
    height: int | None = None
    original_key: str | None = Field(default=None, max_length=200)
    display_key: str | None = Field(default=None, max_length=200)
    thumbnail_key: str | None = Field(default=None, max_length=200)

    # From EXIF; None when absent or malformed.
    gps_lon: float | None = None
    gps_lat: float | None = None
    gps_alt_m: float | None = None
    gps_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    taken_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    orientation: int | None = None
    # Photo GPS against the parent's location; None when either is unknown.
    distance_m: float | None = None
    location_mismatch: bool | None = None

    created_at: datetime = Field(
        default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    # An upload still receiving after this instant is abandoned and cleaned up by the worker.
    expires_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    processing_started_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    processed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    attempts: int = 0
