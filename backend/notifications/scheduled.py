"""Worker jobs: drain the push outbox; queue and send the SMS fallback of unread critical
notifications; forget finished pushes and SMS after a month."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import Session, col

from backend.core import clock
from backend.core.jobs import Job, register
from backend.notifications.delivery import deliver_pending
from backend.notifications.fallback import deliver_sms, schedule_sms_fallbacks
from backend.notifications.models import PushOutbox, PushStatus, SmsOutbox, SmsQuota, SmsStatus

OUTBOX_KEEP_DAYS = 30


def deliver(session: Session) -> int:
    """Send what is due in the outbox (bounded in time so other jobs get their turn)."""
    return deliver_pending(session, time_budget_seconds=50.0).sent


def send_sms(session: Session) -> int:
    """Send the due SMS fallbacks (bounded in time so other jobs get their turn)."""
    return deliver_sms(session, time_budget_seconds=50.0).sent


def purge_finished_pushes(session: Session) -> int:
    """Delete push and SMS outbox rows finished more than a month ago, and older SMS allowances
    (the inbox rows stay; fallback.LOOKBACK is shorter, so a purged SMS is never queued again)."""
    cutoff = clock.now() - timedelta(days=OUTBOX_KEEP_DAYS)
    pushes = int(session.execute(
        delete(PushOutbox).where(col(PushOutbox.status) != PushStatus.pending.value,
                                 col(PushOutbox.created_at) < cutoff)
    ).rowcount)  # type: ignore[attr-defined]
    sms = int(session.execute(
        delete(SmsOutbox).where(col(SmsOutbox.status) != SmsStatus.pending.value, col(SmsOutbox.created_at) < cutoff)
    ).rowcount)  # type: ignore[attr-defined]
    session.execute(delete(SmsQuota).where(col(SmsQuota.day) < clock.china_date(cutoff)))
    return pushes + sms


register(Job(name="notifications.deliver", every=timedelta(seconds=2), run=deliver))
register(Job(name="notifications.sms_fallback", every=timedelta(minutes=1), run=schedule_sms_fallbacks))
register(Job(name="notifications.sms_deliver", every=timedelta(seconds=5), run=send_sms))
register(Job(name="notifications.purge_outbox", every=timedelta(days=1), run=purge_finished_pushes))
