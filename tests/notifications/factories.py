"""Devices and notifications for the notification tests."""

from __future__ import annotations

from sqlmodel import Session

from backend.accounts.models import Device, User
from backend.notifications import service as notifications
from backend.notifications.models import Notification


def add_device(session: Session, user: User, token: str, platform: str = "android", channel: str = "fcm") -> Device:
    """A committed push registration of `user` on a push channel (fcm, huawei, xiaomi, honor, oppo, vivo)."""
    assert user.id is not None
    device = Device(user_id=user.id, platform=platform, push_token=token, channel=channel)
    session.add(device)
    session.commit()
    return device


def notify(session: Session, *users: User, kind: str = "test.ping", data: dict[str, str] | None = None,
           critical: bool = False) -> list[Notification]:
    """Enqueue a generic notification to `users` and commit."""
    rows = notifications.enqueue(
        session, user_ids=[u.id for u in users if u.id is not None], kind=kind,
        title_zh="新的帮扶任务", title_en="New assignment", body_zh="请打开应用查看", body_en="Open the app to see it",
        data=data if data is not None else {"assignment_id": "17"}, critical=critical,
    )
    session.commit()
    return rows


def headers_for(session: Session, user: User) -> dict[str, str]:
    """Bearer headers for `user`, issued now (by the clock) without the slow password round trip."""
    from sqlalchemy import select
    from sqlmodel import col

    from backend.accounts.models import UserRole
    from backend.core.security import issue_access_token

    assert user.id is not None
    roles = [str(r) for r in session.execute(select(col(UserRole.role)).where(col(UserRole.user_id) == user.id))
             .scalars()]
    token, _ = issue_access_token(user.id, roles, user.org_unit_id)
    return {"Authorization": f"Bearer {token}"}
