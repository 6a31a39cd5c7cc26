"""Scheduled jobs run once per interval however many workers there are."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from backend.core import clock
from backend.core.jobs import next_run, run_due_jobs


def test_a_due_job_runs_once_and_is_rescheduled(session: Session) -> None:
    first = run_due_jobs()
    assert "accounts.purge_stale_sign_in_state" in first
    # A second worker right after finds nothing due.
    assert "accounts.purge_stale_sign_in_state" not in run_due_jobs()
    due = next_run(session, "accounts.purge_stale_sign_in_state")
    assert due is not None and due > clock.now() + timedelta(minutes=59)
    clock.advance(timedelta(hours=1, minutes=1))
    assert "accounts.purge_stale_sign_in_state" in run_due_jobs()


def test_expired_refresh_tokens_are_purged(session: Session) -> None:
    from backend.accounts.models import RefreshToken
    from backend.accounts.permissions import Role
    from tests.factories import make_town, make_user

    town = make_town(session)
    user = make_user(session, town.town, Role.helper)
    session.add(RefreshToken(user_id=user.id or 0, family_id="f", token_hash="a" * 64,
                             expires_at=clock.now() - timedelta(days=2)))
    session.add(RefreshToken(user_id=user.id or 0, family_id="f", token_hash="b" * 64,
                             expires_at=clock.now() + timedelta(days=2)))
    session.commit()
    run_due_jobs()
    session.expire_all()
    left = [t.token_hash[0] for t in session.exec(select(RefreshToken)).all()]
    assert left == ["b"]
