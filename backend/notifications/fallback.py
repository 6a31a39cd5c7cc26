"""SMS fallback (短信兜底): a critical notification still unread at its `sms_due_at` is texted once.

- Scan (`schedule_sms_fallbacks`): one SmsOutbox row per due, unread critical notification,
  inserted with ON CONFLICT DO NOTHING on the unique notification id, so any number of scans on any
  number of workers queue it once.
- Drain (`deliver_sms`): claim rows with a lease exactly as the push outbox does (delivery.py),
  then per row, in its own short transaction: cancel it if the notification has been read or the
  recipient has no mainland mobile number; take one from the recipient's allowance for the China
  calendar day with one conditional UPDATE (`sent = sent + 1 WHERE sent < cap`), or mark it capped.
  Send outside any transaction, then record the result only if the row still carries the claim.
- The allowance counts SMS the platform accepted: an attempt that does not end in `sent` (retried
  later or failed for good) gives its unit back (`sent = sent - 1`), so failures and retries never
  eat a user's allowance and a retried SMS takes its unit again when it is next tried. A worker
  killed between taking a unit and recording the send keeps that unit taken (the cap errs on the
  side of fewer SMS, never more).
- A row is only sent while its lease has room for a whole HTTP exchange; otherwise the claim is
  released unsent, so a lease never runs out under a send in flight and no SMS goes out twice.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, exists, select, update
from sqlmodel import Session, col

from backend.accounts.models import User
from backend.core import clock
from backend.core.config import get_settings
from backend.core.db import dialect_insert
from backend.notifications.delivery import claim_due_rows, new_worker_token, retry_delay
from backend.notifications.models import Notification, SmsOutbox, SmsQuota, SmsStatus
from backend.notifications.sms import (
    SmsMessage,
    SmsOutcome,
    SmsProvider,
    SmsResult,
    get_sms_provider,
    is_mainland_mobile,
)

log = logging.getLogger(__name__)

# Notifications due longer ago than this are not texted any more (a worker down for a week does not
# wake everyone with week-old alerts); shorter than the SMS outbox is kept (scheduled.OUTBOX_KEEP_DAYS),
# so a purged row is never queued again.
LOOKBACK = timedelta(days=7)
SCAN_CHUNK = 500
CLAIM_LIMIT = 20
# Room left on the lease beyond the HTTP timeouts before a send may start.
LEASE_MARGIN = timedelta(seconds=5)


@dataclass
class SmsReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    capped: int = 0
    cancelled: int = 0
    lost_claims: int = 0
    released: int = 0

    def add(self, other: SmsReport) -> None:
        for name in ("claimed", "sent", "retried", "failed", "capped", "cancelled", "lost_claims", "released"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def schedule_sms_fallbacks(session: Session) -> int:
    """Queue one SMS for every critical notification unread past its SMS due time; commit. Returns
    how many were queued by this call."""
    now = clock.now()
    insert = dialect_insert(session)
    queued = 0
    while True:
        due = session.execute(
            select(col(Notification.id), col(Notification.user_id)).where(
                col(Notification.critical).is_(True), col(Notification.read_at).is_(None),
                col(Notification.sms_due_at) <= now, col(Notification.sms_due_at) > now - LOOKBACK,
                ~exists().where(col(SmsOutbox.notification_id) == col(Notification.id)),
            ).order_by(col(Notification.id)).limit(SCAN_CHUNK)
        ).all()
        if not due:
            break
        inserted = session.execute(
            insert(SmsOutbox).values([
                {"notification_id": int(nid), "user_id": int(uid), "status": SmsStatus.pending.value,
                 "attempts": 0, "next_attempt_at": now, "created_at": now}
                for nid, uid in due
            ]).on_conflict_do_nothing(index_elements=["notification_id"]).returning(col(SmsOutbox.id))
        ).all()
        session.commit()
        queued += len(inserted)
        if len(due) < SCAN_CHUNK:
            break
    session.commit()
    return queued


def claim_sms(session: Session, *, worker: str, limit: int) -> tuple[str, datetime, list[int]]:
    """Claim up to `limit` due SMS rows for `worker` and commit; the claim token, lease end and ids."""
    lease_until = clock.now() + timedelta(seconds=get_settings().push_lease_seconds)
    token = f"{worker}:{uuid.uuid4().hex[:8]}"
    ids = claim_due_rows(session, SmsOutbox, token=token, lease_until=lease_until, limit=limit)
    session.commit()
    return token, lease_until, ids


def _held(outbox_id: int, token: str) -> list[ColumnElement[bool]]:
    return [col(SmsOutbox.id) == outbox_id, col(SmsOutbox.claimed_by) == token,
            col(SmsOutbox.status) == SmsStatus.pending.value]


def _finish(session: Session, outbox_id: int, token: str, **values: object) -> bool:
    """Write onto the row only while this claim still holds it; whether it did."""
    values.setdefault("claimed_by", None)
    values.setdefault("claimed_until", None)
    return bool(session.execute(
        update(SmsOutbox).where(*_held(outbox_id, token)).values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount)  # type: ignore[attr-defined]


def take_allowance(session: Session, user_id: int, day: date, cap: int) -> bool:
    """Take one SMS from the user's allowance for `day`; False when the day's cap is reached."""
    insert = dialect_insert(session)
    session.execute(insert(SmsQuota).values(user_id=user_id, day=day, sent=0)
                    .on_conflict_do_nothing(index_elements=["user_id", "day"]))
    return bool(session.execute(
        update(SmsQuota).where(col(SmsQuota.user_id) == user_id, col(SmsQuota.day) == day, col(SmsQuota.sent) < cap)
        .values(sent=col(SmsQuota.sent) + 1).execution_options(synchronize_session=False)
    ).rowcount)  # type: ignore[attr-defined]


def give_back_allowance(session: Session, user_id: int, day: date) -> None:
    """Return a unit taken for an SMS that was not sent."""
    session.execute(
        update(SmsQuota).where(col(SmsQuota.user_id) == user_id, col(SmsQuota.day) == day, col(SmsQuota.sent) > 0)
        .values(sent=col(SmsQuota.sent) - 1).execution_options(synchronize_session=False)
    )


def _backoff(attempts: int) -> timedelta:
    s = get_settings()
    return retry_delay(attempts, s.sms_retry_base_seconds, s.sms_retry_max_seconds)


@dataclass(frozen=True)
class _Ready:
    outbox_id: int
    user_id: int
    phone: str
    attempts: int
    day: date


def _prepare(session: Session, outbox_id: int, token: str, report: SmsReport) -> _Ready | None:
    """Decide whether the claimed row is sent now; if so its allowance unit is taken. Commits."""
    settings = get_settings()
    row = session.execute(
        select(col(SmsOutbox.user_id), col(SmsOutbox.attempts), col(Notification.read_at), col(User.phone))
        .join(Notification, col(Notification.id) == col(SmsOutbox.notification_id))
        .join(User, col(User.id) == col(SmsOutbox.user_id))
        .where(*_held(outbox_id, token))
    ).first()
    ready: _Ready | None = None
    if row is None:
        report.lost_claims += 1
    elif row[2] is not None:
        _finish(session, outbox_id, token, status=SmsStatus.cancelled.value, last_error="read before the SMS")
        report.cancelled += 1
    elif not is_mainland_mobile(row[3]):
        _finish(session, outbox_id, token, status=SmsStatus.cancelled.value, last_error="no mainland mobile number")
        report.cancelled += 1
    else:
        day = clock.china_date(clock.now())  # the allowance resets at Beijing midnight
        if take_allowance(session, int(row[0]), day, settings.sms_daily_cap):
            ready = _Ready(outbox_id, int(row[0]), str(row[3]), int(row[1]), day)
        else:
            _finish(session, outbox_id, token, status=SmsStatus.capped.value, last_error="daily SMS cap reached")
            report.capped += 1
    session.commit()
    return ready


def _record(session: Session, ready: _Ready, token: str, result: SmsResult, report: SmsReport) -> None:
    """Write the result onto the row if the claim still holds it; give the unit back unless sent. Commits."""
    now = clock.now()
    if result.outcome is SmsOutcome.sent:
        held = _finish(session, ready.outbox_id, token, status=SmsStatus.sent.value, sent_at=now,
                       provider_message_id=result.message_id, last_error=None)
        report.sent += 1
    else:
        give_back_allowance(session, ready.user_id, ready.day)
        attempts = ready.attempts + 1
        if result.outcome is SmsOutcome.retry and attempts < get_settings().sms_max_attempts:
            held = _finish(session, ready.outbox_id, token, attempts=attempts, next_attempt_at=now + _backoff(attempts),
                           last_error=result.error)
            report.retried += 1
        else:
            held = _finish(session, ready.outbox_id, token, attempts=attempts, status=SmsStatus.failed.value,
                           last_error=result.error)
            report.failed += 1
    if not held:
        report.lost_claims += 1
        log.warning("sms outbox %s: claim lost before the result was recorded", ready.outbox_id)
    session.commit()


def _release(session: Session, ids: list[int], token: str) -> int:
    """Hand back claimed rows unsent (no time left on the lease for a safe send)."""
    released = int(session.execute(
        update(SmsOutbox).where(col(SmsOutbox.id).in_(ids), col(SmsOutbox.claimed_by) == token)
        .values(claimed_by=None, claimed_until=None).execution_options(synchronize_session=False)
    ).rowcount)  # type: ignore[attr-defined]
    session.commit()
    return released


def deliver_sms_once(session: Session, *, provider: SmsProvider | None = None, worker: str | None = None,
                     limit: int = CLAIM_LIMIT) -> SmsReport:
    """Claim one batch of due SMS and send each that should still go out."""
    sender = provider or get_sms_provider()
    settings = get_settings()
    text, template_id = settings.sms_text_zh, settings.sms_template_id
    # httpx applies the timeout to connecting and to reading separately: an exchange may take both.
    send_window = 2 * timedelta(seconds=settings.push_http_timeout_seconds) + LEASE_MARGIN
    token, lease_until, ids = claim_sms(session, worker=worker or new_worker_token(), limit=limit)
    report = SmsReport(claimed=len(ids))
    for index, outbox_id in enumerate(ids):
        if clock.now() + send_window > lease_until:
            report.released += _release(session, ids[index:], token)
            break
        ready = _prepare(session, outbox_id, token, report)
        if ready is None:
            continue
        try:
            [result] = sender.send([SmsMessage(outbox_id, ready.phone, text, template_id)])
        except Exception as exc:  # a provider bug must not leave the unit taken and the row stuck
            log.exception("sms outbox %s: provider raised", outbox_id)
            result = SmsResult(SmsOutcome.retry, error=f"{type(exc).__name__}"[:500])
        _record(session, ready, token, result, report)
    return report


def deliver_sms(session: Session, *, provider: SmsProvider | None = None, worker: str | None = None,
                time_budget_seconds: float = 50.0, limit: int = CLAIM_LIMIT) -> SmsReport:
    """Drain the due SMS, batch after batch, until nothing is left or the time budget is spent."""
    worker = worker or new_worker_token()
    total = SmsReport()
    started = time.monotonic()
    while True:
        report = deliver_sms_once(session, provider=provider, worker=worker, limit=limit)
        total.add(report)
        # Released rows mean the lease is too short for a send: wait for the next run, do not spin.
        if report.claimed == 0 or report.released or time.monotonic() - started > time_budget_seconds:
            return total
