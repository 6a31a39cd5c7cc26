"""Inbox rows and the push outbox. Both are written in the transaction of the event that causes
them; the worker drains the outbox."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Index, Integer
from sqlmodel import Field, SQLModel

from backend.core import clock


def _ts(nullable: bool = False) -> Any:
    return Column(DateTime(timezone=True), nullable=nullable)


class Notification(SQLModel, table=True):
    """One message in a user's inbox. Text is generic; `data` holds ids and codes only."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_user_id_id", "user_id", "id"),
                      Index("ix_notification_sms_due_at", "sms_due_at"))

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", ondelete="CASCADE")
    kind: str = Field(max_length=60)
    title_zh: str = Field(max_length=120)
    title_en: str = Field(max_length=120)
    body_zh: str = Field(max_length=500)
    body_en: str = Field(max_length=500)
    data: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    read_at: datetime | None = Field(default=None, sa_column=_ts(True))
    # Critical notifications (issue 19) fall back to one SMS when still unread at `sms_due_at`.
    critical: bool = False
    sms_due_at: datetime | None = Field(default=None, sa_column=_ts(True))
    # The first time any channel reported the push delivered to the phone (only some channels report it).
    delivered_at: datetime | None = Field(default=None, sa_column=_ts(True))


class PushStatus(StrEnum):
    pending = "pending"  # waiting for (another) attempt
    sent = "sent"  # the provider accepted it; never sent again
    failed = "failed"  # gave up (permanent error or attempts exhausted); the inbox still has it
    dropped = "dropped"  # the device is gone or now belongs to someone else


class PushOutbox(SQLModel, table=True):
    """One push of one notification to one device. A worker claims a row by setting
    `claimed_by`/`claimed_until`; a claim whose lease has run out may be taken over."""

    __tablename__ = "notification_outbox"
    __table_args__ = (Index("ix_notification_outbox_status_next_attempt_at", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    notification_id: int = Field(foreign_key="notification.id", index=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="app_user.id", ondelete="CASCADE")
    # SET NULL when the device row is removed (logout, unregistered token): the row is then dropped.
    device_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("device.id", ondelete="SET NULL"), nullable=True, index=True),
    )
    status: str = Field(default=PushStatus.pending.value, max_length=12)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    claimed_by: str | None = Field(default=None, max_length=80)
    claimed_until: datetime | None = Field(default=None, sa_column=_ts(True))
    sent_at: datetime | None = Field(default=None, sa_column=_ts(True))
    provider_message_id: str | None = Field(default=None, max_length=200)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    # The device's channel when the push was queued (kept when the device goes: channel health counts it).
    channel: str = Field(default="fcm", max_length=16)
    delivered_at: datetime | None = Field(default=None, sa_column=_ts(True))


class SmsStatus(StrEnum):
    pending = "pending"  # waiting for (another) attempt
    sent = "sent"  # the gateway accepted it; never sent again
    failed = "failed"  # gave up (permanent error or attempts exhausted)
    capped = "capped"  # the recipient had had the day's allowance of SMS (HULEI_SMS_DAILY_CAP)
    cancelled = "cancelled"  # read before it went out, or the recipient has no usable mobile number
    coalesced = "coalesced"  # covered by an SMS sent to the same recipient after it existed (短信合并); no allowance
    unconfirmed = "unconfirmed"  # sent, but the gateway never answered (read timeout): may have arrived; not resent


class SmsOutbox(SQLModel, table=True):
    """The one SMS that stands in for an unread critical notification (短信兜底). Unique per
    notification, so however often the fallback scan runs, a notification is texted at most once.
    The number is read from the recipient's account when it is sent, never copied here."""

    __tablename__ = "sms_outbox"
    __table_args__ = (Index("ix_sms_outbox_status_next_attempt_at", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    notification_id: int = Field(foreign_key="notification.id", unique=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="app_user.id", index=True, ondelete="CASCADE")
    status: str = Field(default=SmsStatus.pending.value, max_length=12)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    claimed_by: str | None = Field(default=None, max_length=80)
    claimed_until: datetime | None = Field(default=None, sa_column=_ts(True))
    sent_at: datetime | None = Field(default=None, sa_column=_ts(True))
    provider_message_id: str | None = Field(default=None, max_length=200)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=clock.now, sa_column=_ts())


class SmsQuota(SQLModel, table=True):
    """SMS sent to one user on one China calendar day; the daily cap is taken in one conditional
    UPDATE (sent = sent + 1 WHERE sent < cap), so two workers can never pass it together."""

    __tablename__ = "sms_quota"

    user_id: int = Field(foreign_key="app_user.id", primary_key=True, ondelete="CASCADE")
    day: date = Field(primary_key=True)
    sent: int = 0
