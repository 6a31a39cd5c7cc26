"""SMS fallback (短信兜底): a critical notification still unread at its `sms_due_at` is texted once.

- Scan (`schedule_sms_fallbacks`): one SmsOutbox row per due, unread critical notification,
  inserted with ON CONFLICT DO NOTHING on the unique notification id, so any number of scans on any
  number of workers queue it once.
- Drain (`deliver_sms`): claim rows with a lease exactly as the push outbox does (delivery.py),
  then per row, in its own short transaction: cancel it if the notification has been read or the
  recipient has no mainland mobile number; take one from the recipient's allowance for the China
  calendar day with one conditional UPDATE (`sent = sent + 1 WHERE sent < cap`), or mark it capped.
  Send outside any transaction, then record the result only if the row still carries the claim.
- The allowance counts SMS that may have reached the phone. An attempt gives its unit back
  (`sent = sent - 1`) only when the request certainly did not reach the gateway or the gateway
  refused it (connect error, pool timeout, 429, 4xx, a success field saying no). An ambiguous
  attempt (5xx, a connection dropped after sending, a read timeout, a provider that raised) keeps
  its unit, and a retry takes another: the cap bounds what may have arrived, never only what was
  confirmed. A worker killed between taking a unit and recording the send keeps that unit taken
  (the cap errs on the side of fewer SMS, never more).
- A read timeout (the gateway had the request and never answered) is not retried: the row ends
  `unconfirmed` (it may well have arrived; resending is how a slow gateway texted one person three
  times). 5xx is retried with backoff, as gateways mostly answer it without sending.
- After an attempt for user U ends in retry or `unconfirmed`, U's other pending rows due before
  the retry time are set aside to it (one attempt per person per pass): a gateway that sends and
  then answers 5xx cannot multiply texts within a pass.
- A row is only sent while its lease has room for a whole HTTP exchange; otherwise the claim is
  released unsent, so a lease never runs out under a send in flight and no SMS goes out twice.

Coalescing (短信合并, HULEI_SMS_COALESCE_MINUTES, default 60; 0 switches it off). The SMS only says
"open the app", so one SMS covers every unread critical notification its recipient already had when
it went out; a burst of reports must not spend a police officer's whole day's allowance. An SMS
never covers a notification written after it was sent (`sent_at` is when the request left): the
officer opening the app for the first may not be looking any more when the next arrives, and its
push may have failed.

- When an SMS to user U is accepted, every other pending row of U whose notification is still unread
  and existed when the SMS went out is folded into it in the same transaction: status `coalesced`,
  no allowance taken, never sent. Folding waits for the acceptance rather than the decision to
  send, so an SMS that fails for good does not take the other notifications down with it (the next
  of them gets its own SMS). An `unconfirmed` SMS folds nothing and covers nothing: in doubt, the
  next notification is texted (under the cap).
- A row that comes due later is `coalesced` without being sent only when U was sent an SMS at or
  after its notification's created_at, within the window, and has read no notification since that
  SMS. A notification written after U's last SMS, or once U read anything after it, or once the
  window has passed, is texted again (still within the daily cap).
- Every such decision for U (send, coalesce, fold, set aside) is taken while holding U's allowance
  row for the China day (`lock_recipient`: the row the conditional UPDATE of the cap takes), so two
  workers decide for one user one after the other. A worker that finds another of U's rows claimed
  by another worker (possibly on the wire, which a claim cannot tell from merely claimed) sets its
  own row aside for SET_ASIDE instead of sending: at most one SMS per user is in flight, and when
  the other is accepted it folds the row set aside. That costs at most a lease's delay when the
  other SMS fails. Residual races: the allowance row is per China day, so two decisions straddling
  Beijing midnight are not serialised against each other (both may send, each under its own day's
  cap); and a worker whose lease ran out under a send (prevented by LEASE_MARGIN, not excluded if
  the process stalls) no longer counts as in flight.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, exists, or_, select, update
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
# How long a row waits when another SMS to the same recipient may be on the wire (see above).
SET_ASIDE = timedelta(seconds=10)


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
    coalesced: int = 0  # claimed rows this worker found covered by an SMS already sent (短信合并)
    # Claimed rows put back: another SMS to the same person may be in flight, or the gateway just
    # failed that person's SMS in this pass (one attempt per person per pass).
    set_aside: int = 0
    unconfirmed: int = 0  # sent, no answer in time (read timeout): may have arrived, never resent

    def add(self, other: SmsReport) -> None:
        for name in ("claimed", "sent", "retried", "failed", "capped", "cancelled", "lost_claims", "released",
                     "coalesced", "set_aside", "unconfirmed"):
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


def lock_recipient(session: Session, user_id: int, day: date) -> None:
    """Hold the user's allowance row for `day` until the transaction ends, so that every decision on
    whether the user gets an SMS is taken by one worker at a time. On PostgreSQL the no-op UPDATE
    locks the row (READ COMMITTED: the statements after it see what the previous holder committed);
    SQLite runs one writer at a time already (BEGIN IMMEDIATE)."""
    insert = dialect_insert(session)
    session.execute(insert(SmsQuota).values(user_id=user_id, day=day, sent=0)
                    .on_conflict_do_nothing(index_elements=["user_id", "day"]))
    session.execute(
        update(SmsQuota).where(col(SmsQuota.user_id) == user_id, col(SmsQuota.day) == day)
        .values(sent=col(SmsQuota.sent)).execution_options(synchronize_session=False)
    )


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
    """Return a unit taken for an SMS that certainly did not reach the gateway (or that it refused)."""
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
    queued_at: datetime  # the row's created_at: part of the gateway request id


def _coalesce_window() -> timedelta | None:
    """How long an SMS covers its recipient's later critical notifications; None when switched off."""
    minutes = get_settings().sms_coalesce_minutes
    return timedelta(minutes=minutes) if minutes > 0 else None


def _gone(session: Session, outbox_id: int, report: SmsReport) -> None:
    """Count a claimed row this worker no longer holds: folded into another SMS, or the claim lost."""
    status = session.execute(select(col(SmsOutbox.status)).where(col(SmsOutbox.id) == outbox_id)).scalar_one_or_none()
    if status == SmsStatus.coalesced.value:
        report.coalesced += 1
    else:
        report.lost_claims += 1


def covering_sms(session: Session, user_id: int, now: datetime, window: timedelta,
                 created_at: datetime) -> int | None:
    """The SMS (outbox id) that already told the user about a notification written at `created_at`:
    their last SMS, if it went out at or after `created_at` (an SMS covers only what existed when it
    was sent), within `window` before `now`, with no notification of theirs read since. None when
    there is none: the notification gets its own SMS."""
    last = session.execute(
        select(col(SmsOutbox.id), col(SmsOutbox.sent_at))
        .where(col(SmsOutbox.user_id) == user_id, col(SmsOutbox.status) == SmsStatus.sent.value,
               col(SmsOutbox.sent_at).is_not(None))
        .order_by(col(SmsOutbox.sent_at).desc(), col(SmsOutbox.id).desc()).limit(1)
    ).first()
    if last is None or clock.as_utc(last[1]) <= now - window or clock.as_utc(last[1]) < clock.as_utc(created_at):
        return None
    # A read at the very instant of the SMS counts as after it: in doubt, text again (the cap still holds).
    read_since = session.execute(
        select(col(Notification.id)).where(col(Notification.user_id) == user_id,
                                           col(Notification.read_at) >= last[1]).limit(1)
    ).first()
    return None if read_since is not None else int(last[0])


def _claimed_elsewhere(session: Session, user_id: int, outbox_id: int, token: str, now: datetime) -> bool:
    """Whether another worker holds a live claim on another of the user's pending rows (its SMS may
    be on the wire)."""
    return session.execute(
        select(col(SmsOutbox.id)).where(
            col(SmsOutbox.user_id) == user_id, col(SmsOutbox.status) == SmsStatus.pending.value,
            col(SmsOutbox.id) != outbox_id, col(SmsOutbox.claimed_by).is_not(None),
            col(SmsOutbox.claimed_by) != token, col(SmsOutbox.claimed_until) > now,
        ).limit(1)
    ).first() is not None


def fold_into(session: Session, user_id: int, sms_id: int, sent_at: datetime) -> int:
    """Mark every other pending row of the user whose notification is still unread and existed when
    the SMS `sms_id` went out (`sent_at`) as covered by it (coalesced: never sent, no allowance).
    Call holding `lock_recipient`; does not commit. How many rows were folded."""
    unread = select(col(Notification.id)).where(col(Notification.user_id) == user_id,
                                                col(Notification.read_at).is_(None),
                                                col(Notification.created_at) <= sent_at)
    return int(session.execute(
        update(SmsOutbox).where(
            col(SmsOutbox.user_id) == user_id, col(SmsOutbox.status) == SmsStatus.pending.value,
            col(SmsOutbox.id) != sms_id, col(SmsOutbox.notification_id).in_(unread),
        ).values(status=SmsStatus.coalesced.value, claimed_by=None, claimed_until=None,
                 last_error=f"covered by SMS {sms_id}").execution_options(synchronize_session=False)
    ).rowcount)  # type: ignore[attr-defined]


def _prepare(session: Session, outbox_id: int, token: str, report: SmsReport) -> _Ready | None:
    """Decide whether the claimed row is sent now; if so its allowance unit is taken. Commits."""
    settings = get_settings()
    window = _coalesce_window()
    now = clock.now()
    row = session.execute(
        select(col(SmsOutbox.user_id), col(SmsOutbox.attempts), col(Notification.read_at), col(User.phone),
               col(Notification.created_at), col(SmsOutbox.created_at))
        .join(Notification, col(Notification.id) == col(SmsOutbox.notification_id))
        .join(User, col(User.id) == col(SmsOutbox.user_id))
        .where(*_held(outbox_id, token))
    ).first()
    ready: _Ready | None = None
    if row is None:
        _gone(session, outbox_id, report)
    elif row[2] is not None:
        _finish(session, outbox_id, token, status=SmsStatus.cancelled.value, last_error="read before the SMS")
        report.cancelled += 1
    elif not is_mainland_mobile(row[3]):
        _finish(session, outbox_id, token, status=SmsStatus.cancelled.value, last_error="no mainland mobile number")
        report.cancelled += 1
    else:
        user_id = int(row[0])
        day = clock.china_date(now)  # the allowance resets at Beijing midnight
        if window is not None:
            lock_recipient(session, user_id, day)
        # Under the lock, what the previous holder committed is visible: our row may have been folded.
        if window is not None and session.execute(
                select(col(SmsOutbox.id)).where(*_held(outbox_id, token))).first() is None:
            _gone(session, outbox_id, report)
        elif window is not None and (covering := covering_sms(session, user_id, now, window, row[4])) is not None:
            _finish(session, outbox_id, token, status=SmsStatus.coalesced.value,
                    last_error=f"covered by SMS {covering}")
            report.coalesced += 1
        elif window is not None and _claimed_elsewhere(session, user_id, outbox_id, token, now):
            _finish(session, outbox_id, token, next_attempt_at=now + SET_ASIDE)
            report.set_aside += 1
            log.debug("sms outbox %s: set aside, another SMS to the same person may be in flight", outbox_id)
        elif take_allowance(session, user_id, day, settings.sms_daily_cap):
            ready = _Ready(outbox_id, user_id, str(row[3]), int(row[1]), day, row[5])
        else:
            _finish(session, outbox_id, token, status=SmsStatus.capped.value, last_error="daily SMS cap reached")
            report.capped += 1
    session.commit()
    return ready


def _set_aside_others(session: Session, ready: _Ready, token: str, until: datetime) -> list[int]:
    """Put the user's other pending rows due before `until` off to `until` (and hand back this
    worker's claims on them), after their SMS just ended in doubt or in trouble: one attempt per
    person per pass, so a gateway that sends and then answers 5xx cannot multiply texts. Rows another
    worker holds a live claim on are left alone. Does not commit; the ids set aside."""
    now = clock.now()
    return [int(i) for i in session.execute(
        update(SmsOutbox).where(
            col(SmsOutbox.user_id) == ready.user_id, col(SmsOutbox.status) == SmsStatus.pending.value,
            col(SmsOutbox.id) != ready.outbox_id, col(SmsOutbox.next_attempt_at) < until,
            or_(col(SmsOutbox.claimed_by).is_(None), col(SmsOutbox.claimed_by) == token,
                col(SmsOutbox.claimed_until) <= now),
        ).values(next_attempt_at=until, claimed_by=None, claimed_until=None)
        .returning(col(SmsOutbox.id)).execution_options(synchronize_session=False)
    ).scalars()]


def _record(session: Session, ready: _Ready, token: str, result: SmsResult, report: SmsReport,
            sending_at: datetime) -> list[int]:
    """Write the result onto the row if the claim still holds it; give the unit back only when the
    request certainly did not reach the gateway. Commits. The user's other rows set aside (see
    `_set_aside_others`)."""
    now = clock.now()
    set_aside: list[int] = []
    if _coalesce_window() is not None:  # before touching any outbox row: the same lock order as _prepare
        lock_recipient(session, ready.user_id, ready.day)
    if result.outcome is SmsOutcome.sent:
        # sent_at is when the request left: the SMS covers what existed then, nothing written later.
        held = _finish(session, ready.outbox_id, token, status=SmsStatus.sent.value, sent_at=sending_at,
                       provider_message_id=result.message_id, last_error=None)
        if held and _coalesce_window() is not None and (
                folded := fold_into(session, ready.user_id, ready.outbox_id, sending_at)):
            log.debug("sms outbox %s: covers %s other unread notifications", ready.outbox_id, folded)
        report.sent += 1
    else:
        # An attempt that may have reached the gateway keeps its unit: the cap bounds what may have
        # arrived on the phone, so ambiguous attempts can never add up past it.
        if not result.may_have_arrived:
            give_back_allowance(session, ready.user_id, ready.day)
        attempts = ready.attempts + 1
        next_attempt_at = now + _backoff(attempts)
        if result.outcome is SmsOutcome.unconfirmed:
            # Never resent: the person may already have it. Counts neither as sent nor as failed.
            held = _finish(session, ready.outbox_id, token, attempts=attempts, status=SmsStatus.unconfirmed.value,
                           last_error=result.error)
            report.unconfirmed += 1
            set_aside = _set_aside_others(session, ready, token, next_attempt_at)
        elif result.outcome is SmsOutcome.retry and attempts < get_settings().sms_max_attempts:
            held = _finish(session, ready.outbox_id, token, attempts=attempts, next_attempt_at=next_attempt_at,
                           last_error=result.error)
            report.retried += 1
            set_aside = _set_aside_others(session, ready, token, next_attempt_at)
        else:
            held = _finish(session, ready.outbox_id, token, attempts=attempts, status=SmsStatus.failed.value,
                           last_error=result.error)
            report.failed += 1
    if not held:
        report.lost_claims += 1
        log.warning("sms outbox %s: claim lost before the result was recorded", ready.outbox_id)
    session.commit()
    return set_aside


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
    send_window = 2 * timedelta(seconds=settings.sms_http_timeout_seconds) + LEASE_MARGIN
    token, lease_until, ids = claim_sms(session, worker=worker or new_worker_token(), limit=limit)
    report = SmsReport(claimed=len(ids))
    set_aside: set[int] = set()
    for index, outbox_id in enumerate(ids):
        if outbox_id in set_aside:  # the person's SMS just ended in trouble: wait with it
            report.set_aside += 1
            continue
        if clock.now() + send_window > lease_until:
            report.released += _release(session, ids[index:], token)
            break
        ready = _prepare(session, outbox_id, token, report)
        if ready is None:
            continue
        sending_at = clock.now()
        try:
            [result] = sender.send([SmsMessage(outbox_id, ready.phone, text, template_id, queued_at=ready.queued_at)])
        except Exception as exc:  # a provider bug must not leave the row stuck
            log.exception("sms outbox %s: provider raised", outbox_id)
            # It may have sent before raising: keep the unit (the cap errs on the side of fewer SMS).
            result = SmsResult(SmsOutcome.retry, error=f"{type(exc).__name__}"[:500], may_have_arrived=True)
        set_aside.update(_record(session, ready, token, result, report, sending_at))
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
