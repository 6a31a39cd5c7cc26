"""Housekeeping of sign-in state."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, delete, exists, or_, select
from sqlmodel import Session, col

from backend.accounts.models import LoginThrottle, RefreshToken, SignIn
from backend.core import clock
from backend.core.config import get_settings
from backend.core.jobs import Job, register


def purge_stale_sign_in_state(session: Session) -> int:
    """Drop refresh tokens expired over a day ago, sign-ins left without tokens, and throttle rows
    that no longer matter."""
    now = clock.now()
    window = timedelta(minutes=get_settings().login_failure_window_minutes)
    removed = session.execute(
        delete(RefreshToken).where(col(RefreshToken.expires_at) < now - timedelta(days=1))
    ).rowcount  # type: ignore[attr-defined]
    # A sign-in with no refresh token left can issue no access token; the last one it issued expired
    # long ago (access tokens live minutes), and a missing sign-in refuses them anyway.
    removed += session.execute(
        delete(SignIn).where(
            col(SignIn.created_at) < now - timedelta(days=1),
            ~exists(select(col(RefreshToken.id)).where(col(RefreshToken.family_id) == col(SignIn.id))),
        )
    ).rowcount  # type: ignore[attr-defined]
    removed += session.execute(
        delete(LoginThrottle).where(
            col(LoginThrottle.window_started_at) < now - window,
            or_(col(LoginThrottle.locked_until).is_(None), and_(col(LoginThrottle.locked_until) < now)),
        )
    ).rowcount  # type: ignore[attr-defined]
    return int(removed)


register(Job(name="accounts.purge_stale_sign_in_state", every=timedelta(hours=1), run=purge_stale_sign_in_state))
