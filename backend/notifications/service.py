"""Enqueue notifications in the caller's transaction; read and mark the inbox.

Everything a notification carries leaves the server on a push and sits on a phone's lock
screen, so it is generic text plus ids: never a child's name, ID number, phone or address.
`enqueue` refuses anything that does not look like an id or a code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from backend.accounts.models import Device
from backend.accounts.principal import Principal
from backend.core import clock
from backend.core.config import get_settings
from backend.core.errors import DomainError, NotFound
from backend.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, decode_cursor, encode_cursor
from backend.notifications.models import Notification, PushOutbox, PushStatus

# Keys and values of `data`: short identifiers and codes only (digits, ASCII letters, _ . : -).
DATA_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
DATA_VALUE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
MAX_DATA_ITEMS = 16
# Keys the push adds itself; callers may not override them.
RESERVED_KEYS = frozenset({"notification_id", "kind", "title_zh", "title_en", "body_zh", "body_en"})
KIND = re.compile(r"^[a-z][a-z0-9_.]{1,59}$")
# What personal data looks like when it slips into text: an 18-character resident ID, a mainland
# mobile number, or any run of 6+ digits (ID fragments, phone numbers, house numbers).
_RESIDENT_ID = re.compile(r"\d{17}[\dXx]")
_LONG_DIGITS = re.compile(r"\d{6,}")


class PayloadNotAllowed(DomainError):
    """A notification would carry something other than generic text and ids."""

    code = "notification-payload-not-allowed"
    status = 422
    title_zh = "通知内容不合规"
    title_en = "Notification payload not allowed"


def check_payload(*, kind: str, texts: Sequence[str], data: dict[str, str]) -> None:
    """Raise PayloadNotAllowed unless `data` holds ids/codes only and the texts carry no
    ID-number, phone or other long digit run."""
    if not KIND.match(kind):
        raise PayloadNotAllowed(f"通知类型无效：{kind!r}", f"Invalid notification kind {kind!r}")
    if len(data) > MAX_DATA_ITEMS:
        raise PayloadNotAllowed("通知附带字段过多", "Too many data fields")
    for key, value in data.items():
        if not isinstance(key, str) or not DATA_KEY.match(key) or key in RESERVED_KEYS:
            raise PayloadNotAllowed(f"通知字段名无效：{key!r}", f"Invalid data key {key!r}")
        if not isinstance(value, str) or not DATA_VALUE.match(value):
            raise PayloadNotAllowed(
                f"通知字段“{key}”只能是编号或代码，不能包含姓名、证件号、地址等个人信息",
                f"Data field '{key}' must be an id or a code, never a name, ID number or address",
                field=key,
            )
        if _RESIDENT_ID.search(value) or (value.isdigit() and len(value) == 11 and value.startswith("1")):
            raise PayloadNotAllowed(
                f"通知字段“{key}”疑似证件号或手机号", f"Data field '{key}' looks like an ID or phone number",
                field=key,
            )
    for text in texts:
        if _RESIDENT_ID.search(text) or _LONG_DIGITS.search(text):
            raise PayloadNotAllowed(
                "通知文字不能包含证件号、电话等个人信息", "Notification text must not carry ID or phone numbers"
            )


def enqueue(
    session: Session,
    *,
    user_ids: Sequence[int],
    kind: str,
    title_zh: str,
    title_en: str,
    body_zh: str,
    body_en: str,
    data: dict[str, str],
    critical: bool = False,
) -> list[Notification]:
    """Write an inbox row per user and an outbox row per registered device, in the caller's
    transaction (so the notification exists exactly when the event that caused it does).

    A `critical` notification (a mandatory report to police, a 2112 hand-off, an overdue referral or
    service, help offered for a 重大风险 child) is texted once when still unread after
    HULEI_SMS_FALLBACK_MINUTES (backend/notifications/fallback.py)."""
    check_payload(kind=kind, texts=(title_zh, title_en, body_zh, body_en), data=data)
    for text, limit in ((title_zh, 120), (title_en, 120), (body_zh, 500), (body_en, 500)):
        if not text or len(text) > limit:
            raise PayloadNotAllowed("通知标题或正文长度无效", "Notification title or body has an invalid length")
    now = clock.now()
    recipients = sorted(set(user_ids))
    sms_due_at = now + timedelta(minutes=get_settings().sms_fallback_minutes) if critical else None
    notifications = [
        Notification(user_id=uid, kind=kind, title_zh=title_zh, title_en=title_en, body_zh=body_zh,
                     body_en=body_en, data=dict(data), created_at=now, critical=critical, sms_due_at=sms_due_at)
        for uid in recipients
    ]
    session.add_all(notifications)
    session.flush()
    if not recipients:
        return notifications
    devices: dict[int, list[tuple[int, str]]] = {}
    for device_id, user_id, channel in session.execute(
        select(col(Device.id), col(Device.user_id), col(Device.channel)).where(col(Device.user_id).in_(recipients))
    ):
        devices.setdefault(int(user_id), []).append((int(device_id), str(channel)))
    session.add_all(
        PushOutbox(notification_id=n.id, user_id=n.user_id, device_id=device_id,  # type: ignore[arg-type]
                   channel=channel, next_attempt_at=now, created_at=now)
        for n in notifications
        for device_id, channel in devices.get(n.user_id, [])
    )
    session.flush()
    return notifications


def list_inbox(
    session: Session, principal: Principal, *, cursor: str | None, limit: int = DEFAULT_LIMIT,
    unread_only: bool = False,
) -> Page[Notification]:
    """The caller's own notifications, newest first."""
    limit = max(1, min(limit, MAX_LIMIT))
    query = select(Notification).where(col(Notification.user_id) == principal.user_id)
    if unread_only:
        query = query.where(col(Notification.read_at).is_(None))
    position = decode_cursor(cursor)
    if position is not None:
        query = query.where(col(Notification.id) < int(position.get("id", 0)))
    rows = list(session.execute(query.order_by(col(Notification.id).desc()).limit(limit + 1)).scalars())
    next_cursor = encode_cursor({"id": rows[limit - 1].id}) if len(rows) > limit else None
    return Page[Notification](items=rows[:limit], next_cursor=next_cursor)


def unread_count(session: Session, principal: Principal) -> int:
    """How many of the caller's notifications are unread."""
    return int(
        session.execute(
            select(func.count()).select_from(Notification).where(
                col(Notification.user_id) == principal.user_id, col(Notification.read_at).is_(None)
            )
        ).scalar_one()
    )


def mark_read(session: Session, principal: Principal, notification_id: int) -> Notification:
    """Mark one of the caller's notifications read (idempotent); someone else's is 404."""
    notification = session.get(Notification, notification_id)
    if notification is None or notification.user_id != principal.user_id:
        raise NotFound()
    if notification.read_at is None:
        notification.read_at = clock.now()
        session.add(notification)
        session.flush()
    return notification


def pending_pushes(session: Session, notification_id: int) -> int:
    """How many pushes of a notification still wait for delivery (for tests and diagnostics)."""
    return len(
        session.execute(
            select(col(PushOutbox.id)).where(
                col(PushOutbox.notification_id) == notification_id, col(PushOutbox.status) == PushStatus.pending.value
            )
        ).all()
    )


def drop_pushes_of_device(session: Session, device_id: int) -> int:
    """Drop pending pushes to a device that is going away."""
    return int(
        session.execute(
            update(PushOutbox)
            .where(col(PushOutbox.device_id) == device_id, col(PushOutbox.status) == PushStatus.pending.value)
            .values(status=PushStatus.dropped.value, last_error="device removed", claimed_by=None, claimed_until=None)
        ).rowcount  # type: ignore[attr-defined]
    )
