"""The inbox: every notification a user was sent, whether or not the push arrived."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.core.db import SessionDep
from backend.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from backend.notifications import service
from backend.notifications.schemas import NotificationPublic, UnreadCount

router = APIRouter(prefix="/notifications", tags=["notifications"])

Reader = Annotated[Principal, requires(Action.notification_read)]


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


@router.post("/{notification_id}/read", response_model=NotificationPublic)
def mark_read(notification_id: int, principal: Reader, session: SessionDep) -> NotificationPublic:
    """Mark one of the caller's notifications read (again is harmless); another user's is 404."""
    return NotificationPublic.model_validate(service.mark_read(session, principal, notification_id))
