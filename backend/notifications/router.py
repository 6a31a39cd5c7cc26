"""The inbox: every notification a user was sent, whether or not the push arrived."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.core.db import SessionDep
from backend.core.errors import PayloadTooLarge
from backend.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from backend.notifications import receipts, service, status
from backend.notifications.schemas import (
    ChannelsHealth,
    NotificationDelivery,
    NotificationPublic,
    ReceiptsAccepted,
    UnreadCount,
)

router = APIRouter(prefix="/notifications", tags=["notifications"])
# Public: the vendor push channels post delivery receipts here; the key in the URL is the credential.
receipt_router = APIRouter(prefix="/push-receipts", tags=["notifications"])

Reader = Annotated[Principal, requires(Action.notification_read)]
DeliveryReader = Annotated[Principal, requires(Action.notification_delivery_read)]
HealthReader = Annotated[Principal, requires(Action.notification_health_read)]


@router.get("", response_model=Page[NotificationPublic])
def list_notifications(
    principal: Reader,
    session: SessionDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    unread_only: bool = False,
) -> Page[NotificationPublic]:
    """The caller's own notifications, newest first."""
    page = service.list_inbox(session, principal, cursor=cursor, limit=limit, unread_only=unread_only)
    return Page[NotificationPublic](items=[NotificationPublic.model_validate(n) for n in page.items],
                                    next_cursor=page.next_cursor)


@router.get("/unread-count", response_model=UnreadCount)
def unread_count(principal: Reader, session: SessionDep) -> UnreadCount:
    """How many of the caller's notifications are unread (for the app badge)."""
    return UnreadCount(unread=service.unread_count(session, principal))


@router.get("/delivery", response_model=Page[NotificationDelivery])
def list_delivery(
    principal: DeliveryReader,
    session: SessionDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    kind: Annotated[str | None, Query(max_length=60)] = None,
    critical: bool | None = None,
    delivery_status: Annotated[status.DeliveryStatus | None, Query(alias="status")] = None,
    user_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    since: Annotated[datetime | None, Query(description="created at or after")] = None,
    until: Annotated[datetime | None, Query(description="created before")] = None,
) -> Page[NotificationDelivery]:
    """Where the notifications of the caller's jurisdiction got to, newest first: each push's channel
    and state, the SMS fallback, and one overall status (read > sms_sent > delivered > sent > queued >
    failed | no_device). No title, body or data. A `user_id` outside the jurisdiction is 404."""
    page = status.list_delivery(session, principal, cursor=cursor, limit=limit, kind=kind, critical=critical,
                                status=delivery_status, user_id=user_id, since=since, until=until)
    return Page[NotificationDelivery](items=[NotificationDelivery.model_validate(asdict(line)) for line in page.items],
                                      next_cursor=page.next_cursor)


@router.get("/channels/health", response_model=ChannelsHealth)
def channels_health(
    principal: HealthReader,
    session: SessionDep,
    hours: Annotated[int, Query(ge=1, le=status.MAX_WINDOW_HOURS)] = 24,
    unit_id: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="a unit of the jurisdiction "
                                                                          "(default: all of it)")] = None,
) -> ChannelsHealth:
    """Per push channel (fcm, huawei, xiaomi, honor, oppo, vivo) and for SMS, over the last `hours`:
    devices, pushes queued/sent/delivered/failed/dropped, success rate, median seconds to send, last
    success and a health label (idle, failing below 50 % or stuck 15 min, degraded below 95 % or a
    median over 60 s, else ok), counted for the recipients of the caller's jurisdiction."""
    report = status.channel_health(session, principal, hours=hours, unit_id=unit_id)
    return ChannelsHealth.model_validate(asdict(report))


@router.post("/{notification_id}/read", response_model=NotificationPublic)
def mark_read(notification_id: int, principal: Reader, session: SessionDep) -> NotificationPublic:
    """Mark one of the caller's notifications read (again is harmless); another user's is 404."""
    return NotificationPublic.model_validate(service.mark_read(session, principal, notification_id))


async def receipt_body(
    request: Request,
    channel: Annotated[str, Path(max_length=16)],
    key: Annotated[str, Path(max_length=64)],
) -> bytes:
    """The receipt body, once the URL's key is checked (404 for a wrong key or an unknown channel)
    and the body is within MAX_RECEIPT_BYTES (413 beyond)."""
    receipts.check_key(channel, key)
    limit = receipts.MAX_RECEIPT_BYTES
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"回执不得超过{limit}字节", f"A receipt body is at most {limit} bytes", limit=limit)
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(f"回执不得超过{limit}字节", f"A receipt body is at most {limit} bytes", limit=limit)
    return body


@receipt_router.post("/{channel}/{key}", response_model=ReceiptsAccepted)
def post_receipts(channel: str, request: Request, session: SessionDep,
                  body: Annotated[bytes, Depends(receipt_body)]) -> ReceiptsAccepted:
    """A push channel's delivery receipts (回执), at the URL given to it (providers.receipt_url): no sign-in,
    the key in the URL is the credential. 404 for a wrong key, an unknown channel or one without
    receipts; 413 beyond 64 KiB. Repeats change nothing."""
    events = receipts.parse(channel, body, request.headers.get("content-type", ""))
    return ReceiptsAccepted(accepted=receipts.record_receipts(session, channel, events))
