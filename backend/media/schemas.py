"""API shapes for photos."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from backend.media.models import MediaItem

Variant = Literal["display", "thumbnail"]


class MediaItemPublic(BaseModel):
    """A photo as the phone and the web see it. The GPS position itself is never shown (it is the
    child's home); `has_gps`, `distance_m` and `location_mismatch` say what the check found."""

    client_uuid: UUID
    parent_kind: str
    parent_uuid: UUID
    linked: bool
    state: str
    reject_code: str | None
    reject_reason: str | None
    content_type: str | None
    total_bytes: int
    received_bytes: int
    sha256: str | None
    width: int | None
    height: int | None
    taken_at: datetime | None
    gps_at: datetime | None
    has_gps: bool
    distance_m: float | None
    location_mismatch: bool | None
    created_at: datetime
    processed_at: datetime | None

    @classmethod
    def of(cls, item: MediaItem) -> MediaItemPublic:
        return cls(
            client_uuid=item.client_uuid,
            parent_kind=item.parent_kind,
            parent_uuid=item.parent_uuid,
            linked=item.linked_at is not None,
            state=item.state,
            reject_code=item.reject_code,
            reject_reason=item.reject_reason,
            content_type=item.content_type,
            total_bytes=item.total_bytes,
            received_bytes=item.received_bytes,
            sha256=item.sha256,
            width=item.width,
            height=item.height,
            taken_at=item.taken_at,
            gps_at=item.gps_at,
            has_gps=item.gps_lat is not None,
            distance_m=round(item.distance_m, 1) if item.distance_m is not None else None,
            location_mismatch=item.location_mismatch,
            created_at=item.created_at,
            processed_at=item.processed_at,
        )


class UploadStatus(BaseModel):
    """How much of an upload the server holds: continue from `received_bytes`."""

    client_uuid: UUID
    state: str
    received_bytes: int
    total_bytes: int
    expires_at: datetime | None


class SignedLink(BaseModel):
    """A short-lived URL for one derivative. Relative URLs are resolved against the API's origin."""

    url: str
    variant: Variant
    content_type: str
    expires_at: datetime
