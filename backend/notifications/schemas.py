"""Inbox shapes for the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, field_serializer

from backend.core import clock


class NotificationPublic(BaseModel):
    """One inbox entry. `data` holds ids and codes only; the app loads details through the API."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    title_zh: str
    title_en: str
    body_zh: str
    body_en: str
    data: dict[str, str]
    created_at: datetime
    read_at: datetime | None

    @field_serializer("created_at", "read_at")
    def _local(self, value: datetime | None) -> str | None:
        return clock.as_utc(value).astimezone(clock.SHANGHAI).isoformat() if value else None


class UnreadCount(BaseModel):
    unread: int
