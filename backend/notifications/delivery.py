"""Draining the outbox: claim, send, record. Several workers may run this at once.

- Claim: PostgreSQL picks rows with SELECT ... FOR UPDATE SKIP LOCKED and stamps them with a
  claim token and a lease; SQLite (one writer at a time under BEGIN IMMEDIATE) does the same with
  one conditional UPDATE whose WHERE re-checks that each row is pending, due and unclaimed or
  its lease expired, then reads back the rows carrying its token.
- Send outside any transaction, then record each result only if the row still carries our claim.
- A worker killed after claiming loses nothing: when the lease runs out another worker takes the
  rows over. A row recorded as sent is never claimed again.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    String,
    Table,
    Text,
    Update,
    and_,
    any_,
    bindparam,
    cast,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, col

from backend.accounts.models import Device
from backend.core import clock
from backend.core.config import get_settings
from backend.core.db import one_of
from backend.notifications.models import Notification, PushOutbox, PushStatus, SmsOutbox
from backend.notifications.providers import (
    Outcome,
    PushMessage,
    PushProvider,
    PushResult,
    prepare_send,
    provider_for,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claimed:
    """One claimed row with what is needed to send it (device None: gone or moved to another user)."""

    outbox_id: int
    token: str | None
    platform: str
    data: dict[str, str]
    channel: str
    dedupe_id: str
    # Why the payload guard refuses this push (_row_refusal), None when it may go.
    refusal: str | None


@dataclass(frozen=True)
class Batch:
    """Rows claimed together under one claim token."""

    token: str
    items: list[Claimed]


@dataclass
class DeliveryReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    dropped: int = 0
    tokens_removed: int = 0
    lost_claims: int = 0
    batches: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: DeliveryReport) -> None:
        for name in ("claimed", "sent", "retried", "failed", "dropped", "tokens_removed", "lost_claims", "batches"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def new_worker_token() -> str:
    """Names this worker in the claims it makes (host and process id, so an operator can tell
    which process holds a claim), plus randomness in case a process id is reused."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def claim_due_rows(session: Session, outbox: type[PushOutbox] | type[SmsOutbox], *, token: str,
                   lease_until: datetime, limit: int) -> list[int]:
    """Stamp up to `limit` due rows of an outbox (push or SMS: the same claim columns) with `token`
    and a lease; their ids in order. Does not commit. One UPDATE .. RETURNING (_claiming)."""
    table = outbox.__table__  # type: ignore[union-attr]
    chosen = _claiming(table, session.get_bind().dialect.name, now=clock.now(), limit=limit)
    # Core, not ORM: at a batch API's rate the ORM's per-statement work was a visible share of a push.
    return sorted(int(i) for i in session.connection().execute(
        chosen.values(claimed_by=token, claimed_until=lease_until).returning(table.c.id)).scalars())


def _claiming(table: Table, dialect: str, *, now: Any, limit: Any) -> Update:
    """The UPDATE that claims up to `limit` due rows of an outbox table at `now` (values or bound
    parameters), still without its SET and RETURNING. PostgreSQL picks the rows with SELECT .. FOR
    UPDATE SKIP LOCKED inside it, so two workers never wait on or take each other's rows; SQLite (one
    writer under BEGIN IMMEDIATE) re-checks in the UPDATE's own WHERE that each row is pending, due
    and unclaimed or its lease expired. Due rows come in `next_attempt_at` order, the order of the
    index that finds them (ordering by id sorted the whole backlog on every claim)."""
    claimable = [
        table.c.status == "pending",
        table.c.next_attempt_at <= now,
        or_(table.c.claimed_until.is_(None), table.c.claimed_until < now),
    ]
    due = select(table.c.id).where(*claimable).order_by(table.c.next_attempt_at, table.c.id).limit(limit)
    if dialect == "sqlite":
        return update(table).where(table.c.id.in_(due.scalar_subquery()), *claimable)
    # MATERIALIZED: the locking SELECT runs once, never re-scanned per row the UPDATE visits. The
    # chosen ids as one array: the rows are then found by primary key, where `IN (SELECT ..)` was
    # planned as a hash join over a scan of the whole outbox.
    picked = due.with_for_update(skip_locked=True).cte("due_rows").prefix_with("MATERIALIZED")
    ids = cast(select(func.array_agg(picked.c.id)).scalar_subquery(), postgresql.ARRAY(table.c.id.type))
    return update(table).where(table.c.id == any_(ids))


def retry_delay(attempts: int, base_seconds: float, max_seconds: float) -> timedelta:
    """Backoff before the next try: the base doubling with each failed attempt, up to the maximum."""
    return timedelta(seconds=min(base_seconds * (2 ** max(attempts - 1, 0)), max_seconds))


def claim_batch(session: Session, *, worker: str, limit: int) -> Batch:
    """Claim up to `limit` due rows for `worker` and commit the claim; return them with payloads.
    PostgreSQL claims and reads the payloads in one statement (_claim_and_read); SQLite claims
    (claim_due_rows) and then reads the claimed rows by primary key (_claimed_payloads)."""
    now = clock.now()
    lease_until = now + timedelta(seconds=get_settings().push_lease_seconds)
    token = f"{worker}:{uuid.uuid4().hex[:8]}"
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        rows = connection.execute(_claim_and_read(), {"now": now, "due_limit": limit, "claim_token": token,
                                                      "lease_until": lease_until}).all()
    else:
        ids = claim_due_rows(session, PushOutbox, token=token, lease_until=lease_until, limit=limit)
        rows = connection.execute(_claimed_payloads(), {"ids": json.dumps(ids)}).all() if ids else []
    # The device's channel now (a phone may re-register on another channel), else the one queued.
    # Plain rows, not Notification objects: building an ORM object per push cost more than the
    # rest of the claim at the rate of a batch API (OPPO's 1,000 per call).
    claimed = [Claimed(int(r[0]), r[8], r[9] or "",
                       _payload(r[1], r[2], r[3], r[4], r[5], r[6], _json_object(r[7])),
                       r[11] or r[10] or "fcm", dedupe_id(int(r[0]), r[12]), _row_refusal(*r[2:8]))
               for r in rows]
    session.commit()
    return Batch(token, claimed)


def _with_payloads(claimed: Any) -> Select[Any]:
    """The claimed rows (anything with the outbox's id, notification_id, device_id, user_id, channel
    and created_at columns) with what they are sent with, in id order. The notification's `data`
    comes as its JSON text (_json_object)."""
    note, device = _NOTIFICATION, _DEVICE
    return (
        select(claimed.c.id, note.c.id, note.c.kind, note.c.title_zh, note.c.title_en, note.c.body_zh,
               note.c.body_en, cast(note.c.data, Text), device.c.push_token, device.c.platform, claimed.c.channel,
               device.c.channel, claimed.c.created_at)
        .join(note, note.c.id == claimed.c.notification_id)
        .outerjoin(device, and_(device.c.id == claimed.c.device_id, device.c.user_id == claimed.c.user_id))
        .order_by(claimed.c.id)
    )


@lru_cache(maxsize=1)
def _claim_and_read() -> Select[Any]:
    """PostgreSQL: claim_due_rows and the read of the claimed rows' payloads as one statement, built
    once (`now`, `due_limit`, `claim_token`, `lease_until` bound at execution). The UPDATE's RETURNING
    feeds the joins, so the notifications and devices are found by primary key for the claimed rows
    only, in the claim's own round trip (measured 6 ms per 500 rows against 10 ms for the two
    statements)."""
    outbox = _OUTBOX
    claimed = (
        _claiming(outbox, "postgresql", now=bindparam("now", type_=outbox.c.next_attempt_at.type),
                  limit=bindparam("due_limit", type_=Integer))
        .values(claimed_by=bindparam("claim_token", type_=String),
                claimed_until=bindparam("lease_until", type_=outbox.c.claimed_until.type))
        .returning(outbox.c.id, outbox.c.notification_id, outbox.c.device_id, outbox.c.user_id, outbox.c.channel,
                   outbox.c.created_at)
        .cte("claimed")
    )
    return _with_payloads(claimed)


@lru_cache(maxsize=1)
def _claimed_payloads() -> Select[Any]:
    """SQLite: the payloads of the rows whose ids are bound as `ids` (a JSON array), found by primary
    key; one parameter, so the statement is built and compiled once, never rendered with a
    placeholder per row."""
    outbox = _OUTBOX
    listed = func.json_each(bindparam("ids", type_=String)).table_valued("value")
    return _with_payloads(outbox).where(outbox.c.id.in_(select(listed.c.value)))


def _json_object(text: str | None) -> dict[str, object] | None:
    """A notification's stored `data`. orjson, at a batch API's rate the stdlib's parser was a
    visible share of a claim; what orjson refuses and the stdlib reads (NaN, a lone surrogate's
    escape, an integer over 64 bits) is read by the stdlib, as the ORM would."""
    if text is None:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = json.loads(text)
    return value if isinstance(value, dict) else None


def dedupe_id(outbox_id: int, queued_at: datetime) -> str:
    """The id a channel that drops resends sees for every attempt of one outbox row (PushMessage.dedupe_id)."""
    return f"{outbox_id}-{int(queued_at.timestamp() * 1000):x}"


# The tables behind the models, for the Core statements of the hot path.
_OUTBOX: Table = PushOutbox.__table__  # type: ignore[attr-defined]
_NOTIFICATION: Table = Notification.__table__  # type: ignore[attr-defined]
_DEVICE: Table = Device.__table__  # type: ignore[attr-defined]


def push_data(n: Notification) -> dict[str, str]:
    """The data payload of a push: the notification's ids and generic text, nothing else."""
    return _payload(n.id, n.kind, n.title_zh, n.title_en, n.body_zh, n.body_en, n.data)


def _payload(notification_id: object, kind: str, title_zh: str, title_en: str, body_zh: str, body_en: str,
             data: Mapping[str, object] | None) -> dict[str, str]:
    return {
        "notification_id": str(notification_id),
        "kind": kind,
        "title_zh": title_zh,
        "title_en": title_en,
        "body_zh": body_zh,
        "body_en": body_en,
        **{k: str(v) for k, v in (data or {}).items()},
    }


def _backoff(attempts: int) -> timedelta:
    s = get_settings()
    return retry_delay(attempts, s.push_retry_base_seconds, s.push_retry_max_seconds)


def record_results(session: Session, batch: Batch, results: dict[int, PushResult]) -> DeliveryReport:
    """Write each outcome, but only onto rows this claim still holds (a row whose lease ran out and
    was taken over belongs to the other worker, whose record wins); commit."""
    report = DeliveryReport()
    now = clock.now()
    sent = {item.outbox_id: results[item.outbox_id].message_id for item in batch.items
            if results[item.outbox_id].outcome is Outcome.sent}
    if sent:
        report.sent = _record_sent(session, batch.token, sent, now)
    unsent = [item for item in batch.items if item.outbox_id not in sent]
    held = _held_attempts(session, batch.token, [item.outbox_id for item in unsent]) if unsent else {}
    report.lost_claims = len(batch.items) - report.sent - len(held)
    if report.lost_claims:
        log.warning("%d outbox rows: claim lost before the result was recorded", report.lost_claims)
    max_attempts = get_settings().push_max_attempts
    dead_tokens: set[str] = set()
    for item in unsent:
        if item.outbox_id not in held:
            continue
        result = results[item.outbox_id]
        values: dict[str, object] = {"claimed_by": None, "claimed_until": None, "last_error": result.error}
        if result.outcome is Outcome.retry:
            attempts = held[item.outbox_id] + 1
            values["attempts"] = attempts
            if attempts >= max_attempts:
                values["status"] = PushStatus.failed.value
                report.failed += 1
            else:
                values["next_attempt_at"] = now + _backoff(attempts)
                report.retried += 1
        elif result.outcome is Outcome.invalid_token or item.token is None:
            values["status"] = PushStatus.dropped.value
            if item.token and result.outcome is Outcome.invalid_token:
                dead_tokens.add(item.token)
            report.dropped += 1
        else:
            values["status"] = PushStatus.failed.value
            report.failed += 1
        session.execute(update(PushOutbox).where(col(PushOutbox.id) == item.outbox_id).values(**values)
                        .execution_options(synchronize_session=False))
    if dead_tokens:
        # Pending pushes to the same device lose their device (FK SET NULL) and are dropped when claimed.
        report.tokens_removed = int(session.execute(
            delete(Device).where(col(Device.push_token).in_(sorted(dead_tokens)))
        ).rowcount)  # type: ignore[attr-defined]
    session.commit()
    return report


_MESSAGE_ID_MAX = 200  # notification_outbox.provider_message_id


def _record_sent(session: Session, token: str, sent: dict[int, str | None], now: datetime) -> int:
    """Mark the rows sent, with each provider message id, in one UPDATE whose WHERE keeps only rows
    this claim still holds; how many it marked. The ids and message ids travel as one JSON value,
    read by the database (jsonb_each_text, json_each/json_extract), so a batch of a thousand is one
    statement with three parameters rather than a thousand executions."""
    outbox = _OUTBOX
    # Cut to the column's width: a vendor's overlong id must not fail the record of a whole batch
    # (its rows would be sent again when the lease ran out).
    ids_and_messages = bindparam("sent", json.dumps({str(k): v[:_MESSAGE_ID_MAX] if v else None
                                                     for k, v in sent.items()}), type_=String)
    values: dict[str, object] = {"status": PushStatus.sent.value, "sent_at": now, "claimed_by": None,
                                 "claimed_until": None, "last_error": None}
    held = [outbox.c.claimed_by == token, outbox.c.status == PushStatus.pending.value]
    if session.get_bind().dialect.name == "postgresql":
        listed = func.jsonb_each_text(cast(ids_and_messages, postgresql.JSONB)).table_valued("key", "value")
        marked = update(outbox).where(outbox.c.id == cast(listed.c.key, BigInteger), *held).values(
            provider_message_id=listed.c.value, **values)
    else:
        # Not UPDATE .. FROM: SQLite's plan for it scans the outbox per JSON row. The ids select the
        # rows by primary key; each reads its message id from the (cached) parse of the same value.
        listed = func.json_each(ids_and_messages).table_valued("key")
        marked = update(outbox).where(outbox.c.id.in_(select(cast(listed.c.key, Integer))), *held).values(
            provider_message_id=func.json_extract(ids_and_messages, func.printf('$."%d"', outbox.c.id)), **values)
    return int(session.connection().execute(marked).rowcount)


def _held_attempts(session: Session, token: str, ids: list[int]) -> dict[int, int]:
    """Of `ids`, the rows this claim still holds, with their attempts so far (locked on PostgreSQL;
    SQLite holds the write lock for the whole transaction)."""
    outbox = _OUTBOX
    query = select(outbox.c.id, outbox.c.attempts).where(
        one_of(session, outbox.c.id, ids), outbox.c.claimed_by == token,
        outbox.c.status == PushStatus.pending.value)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return {int(i): int(n) for i, n in session.connection().execute(query).all()}


@lru_cache(maxsize=4096)
def _row_refusal(kind: str, title_zh: str, title_en: str, body_zh: str, body_en: str,
                 data_text: str | None) -> str | None:
    """The enqueue guard again, at the door of every channel: whatever a provider builds its message
    from is ids and generic text, or it is not sent. Checked on the payload a claimed row is sent
    with (_payload), cached by the stored values it is built from: a notification fanned out to many
    phones is one check (its patterns cost as much as a batch API's send), and the key is six strings
    from the row. The notification id, the one part that differs per row, is a reserved key and never
    checked."""
    from backend.notifications.service import RESERVED_KEYS, PayloadNotAllowed, check_payload

    payload = _payload(0, kind, title_zh, title_en, body_zh, body_en, _json_object(data_text))
    try:
        check_payload(kind=payload.get("kind", ""), texts=[payload.get(k, "") for k in _TEXT_KEYS],
                      data=dict(sorted((k, v) for k, v in payload.items() if k not in RESERVED_KEYS)))
    except PayloadNotAllowed as exc:
        return f"payload refused: {exc.detail_en}"[:500]
    return None


_TEXT_KEYS = ("title_zh", "title_en", "body_zh", "body_en")


def send_claimed(provider: PushProvider | None, claimed: list[Claimed]) -> dict[int, PushResult]:
    """Send every claimed row that still has its device, each through its channel's provider (or all
    through `provider` when one is given: tests and the benchmark); rows without a device are
    answered 'failed'."""
    return prepare_claimed(provider, claimed)()


def prepare_claimed(provider: PushProvider | None,
                    claimed: list[Claimed]) -> Callable[[], dict[int, PushResult]]:
    """send_claimed in two steps: everything but the network now (the payload check, the grouping
    by channel, whatever encoding the providers do ahead: prepare_send), the sends when the
    returned call is made (on the send thread of deliver_pending)."""
    results: dict[int, PushResult] = {}
    by_channel: dict[str, list[Claimed]] = {}
    for c in claimed:
        if not c.token:
            results[c.outbox_id] = PushResult(Outcome.failed, error="device removed or now another user's")
        elif c.refusal is not None:
            results[c.outbox_id] = PushResult(Outcome.failed, error=c.refusal)
        else:
            by_channel.setdefault(c.channel, []).append(c)
    # Per channel, its chunks in order.
    sends: dict[str, list[tuple[list[Claimed], Callable[[], list[PushResult]]]]] = {}
    for channel, sendable in by_channel.items():
        sender = provider or provider_for(channel)
        for start in range(0, len(sendable), sender.max_batch):
            chunk = sendable[start:start + sender.max_batch]
            sends.setdefault(channel, []).append((chunk, prepare_send(sender, [
                PushMessage(c.outbox_id, c.token or "", c.platform, c.data, c.channel, c.dedupe_id) for c in chunk])))

    def send_channel(chunks: list[tuple[list[Claimed], Callable[[], list[PushResult]]]]
                     ) -> list[tuple[int, PushResult]]:
        return [(c.outbox_id, answer) for chunk, send in chunks for c, answer in zip(chunk, send(), strict=True)]

    def send_now() -> dict[int, PushResult]:
        # The channels at once: a vendor that stops answering holds up its own pushes for its
        # timeout, never another vendor's (outside test: a hung Huawei delayed every other channel).
        if len(sends) <= 1:
            answered = [send_channel(chunks) for chunks in sends.values()]
        else:
            with ThreadPoolExecutor(max_workers=len(sends), thread_name_prefix="push-channel") as channels:
                answered = list(channels.map(send_channel, sends.values()))
        for pairs in answered:
            results.update(pairs)
        return results

    return send_now


def _batch_size(provider: PushProvider | None, limit: int | None) -> int:
    # Without a fixed provider each channel's provider splits the batch by its own limit (send_claimed).
    size = limit or get_settings().push_batch_size
    return min(size, provider.max_batch) if provider else size


def deliver_once(session: Session, *, provider: PushProvider | None = None, worker: str | None = None,
                 limit: int | None = None) -> DeliveryReport:
    """Claim one batch, send it, record the results."""
    worker = worker or new_worker_token()
    batch = claim_batch(session, worker=worker, limit=_batch_size(provider, limit))
    report = DeliveryReport(claimed=len(batch.items))
    if not batch.items:
        return report
    results = send_claimed(provider, batch.items)
    report.add(record_results(session, batch, results))
    report.batches = 1
    return report


def deliver_pending(session: Session, *, provider: PushProvider | None = None, worker: str | None = None,
                    time_budget_seconds: float = 50.0, limit: int | None = None) -> DeliveryReport:
    """Drain what is due, batch after batch, until nothing is left or the time budget is spent.

    While one batch is on the wire the one before it is recorded and the next claimed and prepared
    (prepare_claimed: encoded, where a provider encodes ahead): the database work overlaps the
    channel's answer instead of adding to it (a batch API such as OPPO's answers 1,000 pushes faster
    than the outbox could claim and record them one step after the other), and the send thread goes
    straight to the network instead of competing with that work for the interpreter. An answer waits
    at most one batch's time for its record, well within the claim's lease. Every claimed batch is
    sent and recorded before this returns."""
    worker = worker or new_worker_token()
    size = _batch_size(provider, limit)
    total = DeliveryReport()
    started = time.monotonic()
    answered: tuple[Batch, dict[int, PushResult]] | None = None
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="push-send") as sender:
            batch = claim_batch(session, worker=worker, limit=size)
            prepared = prepare_claimed(provider, batch.items)
            while batch.items:
                total.claimed += len(batch.items)
                in_flight = sender.submit(prepared)
                try:
                    if answered is not None:
                        previous, answered = answered, None
                        total.add(record_results(session, *previous))
                        total.batches += 1
                    following = Batch("", [])
                    if time.monotonic() - started <= time_budget_seconds:
                        following = claim_batch(session, worker=worker, limit=size)
                    prepared = prepare_claimed(provider, following.items)
                finally:
                    # Whatever failed meanwhile, the batch on the wire is answered and recorded: a
                    # sent push left unrecorded would be sent again when its lease ran out.
                    answered = (batch, in_flight.result())
                batch = following
    finally:
        if answered is not None:
            session.rollback()  # nothing when all went well; after a database error, a usable session
            total.add(record_results(session, *answered))
            total.batches += 1
    return total
