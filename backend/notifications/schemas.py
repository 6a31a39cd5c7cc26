"""Inbox shapes for the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_serializer

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


def _shanghai(value: datetime | None) -> str | None:
    return clock.as_utc(value).astimezone(clock.SHANGHAI).isoformat() if value else None


class PushDelivery(BaseModel):
    """One push of a notification to one phone: its channel and where it got to."""

    model_config = ConfigDict(from_attributes=True)

    channel: str
    status: str = Field(description="pending | sent | failed | dropped")
    attempts: int
    sent_at: datetime | None
    delivered_at: datetime | None = Field(description="when the channel reported it on the phone (some do)")
    last_error_code: str | None = Field(description="a short error code (the vendor's or ours), never its text")

    @field_serializer("sent_at", "delivered_at")
    def _local(self, value: datetime | None) -> str | None:
        return _shanghai(value)


class SmsDelivery(BaseModel):
    """The SMS that stood in for an unread critical notification (短信兜底)."""

    model_config = ConfigDict(from_attributes=True)

    status: str = Field(description="pending | sent | failed | capped | cancelled | coalesced "
                        "(covered by an SMS sent after it existed) | unconfirmed (sent, the gateway never "
                        "answered: it may have arrived; never resent)")
    sent_at: datetime | None

    @field_serializer("sent_at")
    def _local(self, value: datetime | None) -> str | None:
        return _shanghai(value)


class NotificationDelivery(BaseModel):
    """Where one notification got to. No title, body or data, never a phone number."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    user_id: int
    created_at: datetime
    critical: bool
    read_at: datetime | None
    delivered_at: datetime | None
    sms_due_at: datetime | None
    status: str = Field(description="read > sms_sent > delivered > sent > queued > failed | no_device "
                                    "(the first that holds)")
    pushes: list[PushDelivery]
    sms: SmsDelivery | None

    @field_serializer("created_at", "read_at", "delivered_at", "sms_due_at")
    def _local(self, value: datetime | None) -> str | None:
        return _shanghai(value)


class ChannelHealth(BaseModel):
    """One push channel over the window, for the recipients of the caller's jurisdiction."""

    model_config = ConfigDict(from_attributes=True)

    channel: str
    devices: int = Field(description="phones registered on the channel now")
    queued: int
    sent: int
    delivered: int = Field(description="pushes the channel reported on the phone (only some channels report)")
    failed: int
    dropped: int = Field(description="pushes dropped: dead tokens pruned, devices removed")
    success_rate: float | None = Field(description="sent / (sent + failed); null when none finished")
    median_seconds_to_send: float | None
    last_success_at: datetime | None
    health: str = Field(description="idle | failing | degraded | ok (thresholds: backend/notifications/status.py)")

    @field_serializer("last_success_at")
    def _local(self, value: datetime | None) -> str | None:
        return _shanghai(value)


class SmsHealth(BaseModel):
    """The SMS fallback over the window, for the recipients of the caller's jurisdiction."""

    model_config = ConfigDict(from_attributes=True)

    channel: str = "sms"
    scheduled: int
    sent: int
    failed: int
    capped: int
    cancelled: int
    coalesced: int = Field(0, description="covered by an SMS sent to the same person after it existed (短信合并)")
    unconfirmed: int = Field(0, description="sent but never answered (read timeout): may have arrived, never "
                                            "resent; neither a success nor a failure, many of them degrade health")
    success_rate: float | None
    last_success_at: datetime | None
    health: str

    @field_serializer("last_success_at")
    def _local(self, value: datetime | None) -> str | None:
        return _shanghai(value)


class ChannelsHealth(BaseModel):
    hours: int
    since: datetime
    channels: list[ChannelHealth]
    sms: SmsHealth

    @field_serializer("since")
    def _local(self, value: datetime) -> str | None:
        return _shanghai(value)


class ReceiptsAccepted(BaseModel):
    accepted: int
