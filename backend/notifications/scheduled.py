"""Worker jobs: drain the push outbox; forget finished pushes after a month."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import Session, col

from backend.core import clock
from backend.core.jobs import Job, register
from backend.notifications.delivery import deliver_pending
from backend.notifications.models import PushOutbox, PushStatus

OUTBOX_KEEP_DAYS = 30


def deliver(session: Session) -> int:
    """Send what is due in the outbox (bounded in time so other jobs get their turn)."""
    return deliver_pending(session, time_budget_seconds=50.0).sent


def purge_finished_pushes(session: Session) -> int:
    """Delete outbox rows finished more than a month ago (the inbox rows stay)."""
    cutoff = clock.now() - timedelta(days=OUTBOX_KEEP_DAYS)
    return int(session.execute(
        delete(PushOutbox).where(col(PushOutbox.status) != PushStatus.pending.value,
                                 col(PushOutbox.created_at) < cutoff)
    ).rowcount)  # type: ignore[attr-defined]


register(Job(name="notifications.deliver", every=timedelta(seconds=2), run=deliver))
register(Job(name="notifications.purge_outbox", every=timedelta(days=1), run=purge_finished_pushes))
