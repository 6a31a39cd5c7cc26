"""Housekeeping of sign-in state."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, delete, or_
from sqlmodel import Session, col

from backend.accounts.models import LoginThrottle, RefreshToken
from backend.core import clock
from backend.core.config import get_settings
from backend.core.jobs import Job, register


def purge_stale_sign_in_state(session: Session) -> int:
    """Drop refresh tokens expired over a day ago and throttle rows that no longer matter."""
    now = clock.now()
    window = timedelta(minutes=get_settings().login_failure_window_minutes)
    removed = session.execute(
        delete(RefreshToken).where(col(RefreshToken.expires_at) < now - timedelta(days=1))
    ).rowcount  # type: ignore[attr-defined]
    removed += session.execute(
        delete(LoginThrottle).where(
            col(LoginThrottle.window_started_at) < now - window,
            or_(col(LoginThrottle.locked_until).is_(None), and_(col(LoginThrottle.locked_until) < now)),
        )
    ).rowcount  # type: ignore[attr-defined]
    return int(removed)


register(Job(name="accounts.purge_stale_sign_in_state", every=timedelta(hours=1), run=purge_stale_sign_in_state))
