"""Whether notifications reached their recipients, and how each push channel is doing (issue 19).

A coordinator must be able to tell that a 强制报告 hand-off reached the duty officer's phone, and an
administrator that a vendor channel (华为, 小米, 荣耀, OPPO, vivo) has stopped delivering. Both views
are bounded by the caller's jurisdiction: the notifications and devices of users whose unit lies in it.
Neither carries a notification's text or data, nor any phone number.

One overall status per notification, derived in one place (`delivery_status`, a SQL CASE used both
to filter and to answer), first match wins:

- `read`      the recipient opened it in the app;
- `sms_sent`  it fell back to SMS (短信兜底) and the gateway accepted the text, or an accepted SMS to
              the recipient sent after it existed covered it (短信合并: its own SMS row is
              `coalesced`, never sent);
- `delivered` a channel reported it on the phone (only some channels report delivery);
- `sent`      a channel accepted a push of it;
- `queued`    a push or its SMS is still waiting for an attempt;
- `failed`    every push failed or was dropped, and no SMS is known to have gone out (an SMS the
              gateway never answered is not known to: `sms.status` says `unconfirmed`);
- `no_device` the recipient had no registered phone when it was written, and no SMS is waiting.

Channel health over a window (default 24 h), per channel, from counts of the window's pushes:
`success_rate` = sent / (sent + failed) (a dropped push names a dead token or a removed device, not a
channel fault; nor is a capped, cancelled or coalesced SMS a gateway fault). An `unconfirmed` SMS (sent,
the gateway never answered) is counted apart, neither a success nor a failure; when more than
1 - DEGRADED_BELOW of the SMS attempts that ended (sent, failed, unconfirmed) are unconfirmed, an
`ok` or `idle` SMS health reads `degraded` (a gateway that stops answering must show). The label,
first match wins:

- `idle`      nothing queued or finished in the window;
- `failing`   success_rate below FAILING_BELOW, or nothing finished while a push has waited longer
              than STUCK_AFTER;
- `degraded`  success_rate below DEGRADED_BELOW, median time to send above SLOW_AFTER, or a push
              waiting longer than STUCK_AFTER;
- `ok`        otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, literal, or_, select
from sqlmodel import Session, col

from backend.accounts.models import Device, PushChannel, User
from backend.accounts.principal import Principal
from backend.core import clock
from backend.core.errors import NotFound
from backend.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, decode_cursor, encode_cursor
from backend.notifications.models import Notification, PushOutbox, PushStatus, SmsOutbox, SmsStatus
from backend.orgunits import service as orgunits

# Health thresholds (documented above and in the API description).
FAILING_BELOW = 0.50
DEGRADED_BELOW = 0.95
SLOW_AFTER_SECONDS = 60.0
STUCK_AFTER = timedelta(minutes=15)
MAX_WINDOW_HOURS = 24 * 30


class DeliveryStatus(StrEnum):
    read = "read"
    sms_sent = "sms_sent"
    delivered = "delivered"
    sent = "sent"
    queued = "queued"
    failed = "failed"
    no_device = "no_device"


class Health(StrEnum):
    ok = "ok"
    degraded = "degraded"
    failing = "failing"
    idle = "idle"


SMS_CHANNEL = "sms"


# ---------------------------------------------------------------- scope


def recipients(session: Session, principal: Principal, unit_id: int | None = None) -> Select[Any]:
    """SELECT of the ids of the users whose notifications the principal may look at: those of its
    jurisdiction, narrowed to the subtree of `unit_id` when given (404 when that unit is outside it)."""
    query = select(col(User.id)).where(orgunits.in_jurisdiction(principal, col(User.org_unit_id)))
    if unit_id is not None:
        path = orgunits.unit_path(session, unit_id)
        principal.ensure_covers(path)
        query = query.where(col(User.org_unit_id).in_(orgunits.subtree_unit_ids(path or "")))
    return query


def _ensure_recipient_visible(session: Session, principal: Principal, user_id: int) -> None:
    """404 for a user outside the jurisdiction, exactly as for one that does not exist."""
    found = session.execute(
        select(col(User.id)).where(col(User.id) == user_id, col(User.id).in_(recipients(session, principal)))
    ).scalar_one_or_none()
    if found is None:
        raise NotFound()


# ---------------------------------------------------------------- status of one notification


def delivery_status() -> ColumnElement[str]:
    """The overall delivery status of the Notification row in the query (see the module docstring):
    the one derivation, used to answer and to filter."""
    push = col(PushOutbox.notification_id) == col(Notification.id)
    sms = col(SmsOutbox.notification_id) == col(Notification.id)

    def pushes(*where: ColumnElement[bool]) -> ColumnElement[bool]:
        return exists().where(push, *where)

    def texts(*where: ColumnElement[bool]) -> ColumnElement[bool]:
        return exists().where(sms, *where)

    return case(
        (col(Notification.read_at).is_not(None), literal(DeliveryStatus.read.value)),
        (texts(col(SmsOutbox.status).in_([SmsStatus.sent.value, SmsStatus.coalesced.value])),
         literal(DeliveryStatus.sms_sent.value)),
        (or_(col(Notification.delivered_at).is_not(None), pushes(col(PushOutbox.delivered_at).is_not(None))),
         literal(DeliveryStatus.delivered.value)),
        (pushes(col(PushOutbox.status) == PushStatus.sent.value), literal(DeliveryStatus.sent.value)),
        (or_(pushes(col(PushOutbox.status) == PushStatus.pending.value),
             texts(col(SmsOutbox.status) == SmsStatus.pending.value)), literal(DeliveryStatus.queued.value)),
        (pushes(), literal(DeliveryStatus.failed.value)),
        else_=literal(DeliveryStatus.no_device.value),
    )


# A vendor's error text may quote what it was sent; only a short code of it leaves the server.
_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,39}$|^-?\d{1,10}$")
_KNOWN_ERRORS = (("device removed", "device_removed"), ("now another user", "device_removed"),
                 ("payload refused", "payload_refused"), ("not configured", "channel_not_configured"),
                 ("cannot build message", "message_invalid"), ("not sent", "not_sent"),
                 ("unreadable answer", "unreadable_answer"))
_CHANNEL_NAMES = frozenset(c.value for c in PushChannel) | {"fcm", "hms", "mipush"}


def error_code(last_error: str | None) -> str | None:
    """A short code for a push's last error (the vendor's error code, an HTTP status or one of ours),
    never its text."""
    if not last_error:
        return None
    lowered = last_error.lower()
    for marker, code in _KNOWN_ERRORS:
        if marker in lowered:
            return code
    tokens = [t for t in re.split(r"[:\s,;]+", last_error.strip()) if t]
    while tokens and tokens[0].lower() in _CHANNEL_NAMES:  # "oppo: 10000 ..." names the channel first
        tokens = tokens[1:]
    if len(tokens) >= 2 and tokens[0].upper() == "HTTP" and tokens[1].isdigit() and len(tokens[1]) == 3:
        # "HTTP 200 80300007: ..." (Huawei, Honor): the vendor's numeric code says more than the status.
        if len(tokens) >= 3 and tokens[2].lstrip("-").isdigit() and _CODE.match(tokens[2]):
            return tokens[2]
        return f"http_{tokens[1]}"
    return tokens[0] if tokens and _CODE.match(tokens[0]) else "error"


@dataclass(frozen=True)
class PushLine:
    channel: str
    status: str
    attempts: int
    sent_at: datetime | None
    delivered_at: datetime | None
    last_error_code: str | None


@dataclass(frozen=True)
class SmsLine:
    status: str
    sent_at: datetime | None


@dataclass(frozen=True)
class DeliveryLine:
    """Where one notification got to: no title, body or data, no phone number."""

    id: int
    kind: str
    user_id: int
    created_at: datetime
    critical: bool
    read_at: datetime | None
    delivered_at: datetime | None
    sms_due_at: datetime | None
    status: str
    pushes: list[PushLine]
    sms: SmsLine | None


def list_delivery(
    session: Session, principal: Principal, *, cursor: str | None = None, limit: int = DEFAULT_LIMIT,
    kind: str | None = None, critical: bool | None = None, status: DeliveryStatus | None = None,
    user_id: int | None = None, since: datetime | None = None, until: datetime | None = None,
) -> Page[DeliveryLine]:
    """The notifications of the principal's jurisdiction with where each got to, newest first."""
    limit = max(1, min(limit, MAX_LIMIT))
    if user_id is not None:
        _ensure_recipient_visible(session, principal, user_id)
    derived = delivery_status().label("delivery_status")
    query = select(Notification, derived).where(col(Notification.user_id).in_(recipients(session, principal)))
    if user_id is not None:
        query = query.where(col(Notification.user_id) == user_id)
    if kind is not None:
        query = query.where(col(Notification.kind) == kind)
    if critical is not None:
        query = query.where(col(Notification.critical).is_(critical))
    if since is not None:
        query = query.where(col(Notification.created_at) >= since)
    if until is not None:
        query = query.where(col(Notification.created_at) < until)
    if status is not None:
        query = query.where(delivery_status() == status.value)
    position = decode_cursor(cursor)
    if position is not None:
        query = query.where(col(Notification.id) < int(position.get("id", 0)))
    rows = session.execute(query.order_by(col(Notification.id).desc()).limit(limit + 1)).all()
    next_cursor = encode_cursor({"id": rows[limit - 1][0].id}) if len(rows) > limit else None
    rows = rows[:limit]
    ids = [int(r[0].id) for r in rows]
    pushes: dict[int, list[PushLine]] = {}
    texts: dict[int, SmsLine] = {}
    if ids:
        for p in session.execute(select(PushOutbox).where(col(PushOutbox.notification_id).in_(ids))
                                 .order_by(col(PushOutbox.id))).scalars():
            pushes.setdefault(p.notification_id, []).append(PushLine(
                p.channel, p.status, p.attempts, p.sent_at, p.delivered_at, error_code(p.last_error)))
        for nid, sms_status, sent_at in session.execute(
            select(col(SmsOutbox.notification_id), col(SmsOutbox.status), col(SmsOutbox.sent_at))
            .where(col(SmsOutbox.notification_id).in_(ids))
        ).all():
            texts[int(nid)] = SmsLine(str(sms_status), sent_at)
    items = [
        DeliveryLine(id=int(n.id), kind=n.kind, user_id=n.user_id, created_at=n.created_at, critical=n.critical,
                     read_at=n.read_at, delivered_at=n.delivered_at, sms_due_at=n.sms_due_at, status=str(derived_value),
                     pushes=pushes.get(int(n.id), []), sms=texts.get(int(n.id)))
        for n, derived_value in rows
    ]
    return Page[DeliveryLine](items=items, next_cursor=next_cursor)


# ---------------------------------------------------------------- channel health


@dataclass
class ChannelFigures:
    """One push channel's figures over the window."""

    channel: str
    devices: int = 0
    queued: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    success_rate: float | None = None
    median_seconds_to_send: float | None = None
    last_success_at: datetime | None = None
    health: str = Health.idle.value
    oldest_queued_at: datetime | None = None


@dataclass
class SmsFigures:
    """The SMS fallback's figures over the window."""

    channel: str = SMS_CHANNEL
    scheduled: int = 0
    sent: int = 0
    failed: int = 0
    capped: int = 0
    cancelled: int = 0
    coalesced: int = 0  # covered by another SMS to the same person: neither a success nor a failure
    unconfirmed: int = 0  # sent, never answered: may have arrived; neither, but many degrade health
    success_rate: float | None = None
    last_success_at: datetime | None = None
    health: str = Health.idle.value
    oldest_queued_at: datetime | None = None


@dataclass(frozen=True)
class HealthReport:
    hours: int
    since: datetime
    channels: list[ChannelFigures]
    sms: SmsFigures


def health_label(*, queued: int, sent: int, failed: int, median_seconds: float | None,
                 oldest_queued_at: datetime | None, now: datetime) -> Health:
    """The health label of a channel from its window's figures (thresholds in the module docstring)."""
    finished = sent + failed
    if finished == 0 and queued == 0:
        return Health.idle
    stuck = oldest_queued_at is not None and now - clock.as_utc(oldest_queued_at) > STUCK_AFTER
    rate = sent / finished if finished else None
    if (rate is not None and rate < FAILING_BELOW) or (finished == 0 and stuck):
        return Health.failing
    if (rate is not None and rate < DEGRADED_BELOW) or stuck or (
            median_seconds is not None and median_seconds > SLOW_AFTER_SECONDS):
        return Health.degraded
    return Health.ok


def _seconds_between(session: Session, start: Any, end: Any) -> Any:
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return func.extract("epoch", end - start)


def channel_health(session: Session, principal: Principal, *, hours: int = 24,
                   unit_id: int | None = None) -> HealthReport:
    """Per push channel and for SMS: the window's figures for the recipients of the principal's
    jurisdiction (of `unit_id`'s subtree when given). One query per figure group."""
    now = clock.now()
    hours = max(1, min(hours, MAX_WINDOW_HOURS))
    since = now - timedelta(hours=hours)
    users = recipients(session, principal, unit_id)
    figures = {c.value: ChannelFigures(c.value) for c in PushChannel}

    def figure(channel: str) -> ChannelFigures:
        # A row of a channel this build no longer knows is still counted, under its own name.
        return figures.setdefault(channel, ChannelFigures(channel))

    for channel, count in session.execute(
        select(col(Device.channel), func.count()).where(col(Device.user_id).in_(users)).group_by(col(Device.channel))
    ).all():
        figure(str(channel)).devices = int(count)

    in_window = and_(col(PushOutbox.user_id).in_(users), col(PushOutbox.created_at) >= since)
    for channel, push_status, count, delivered, oldest in session.execute(
        select(col(PushOutbox.channel), col(PushOutbox.status), func.count(), func.count(col(PushOutbox.delivered_at)),
               func.min(col(PushOutbox.created_at)))
        .where(in_window).group_by(col(PushOutbox.channel), col(PushOutbox.status))
    ).all():
        f = figure(str(channel))
        f.delivered += int(delivered)
        if push_status == PushStatus.pending.value:
            f.queued, f.oldest_queued_at = int(count), oldest
        elif push_status == PushStatus.sent.value:
            f.sent = int(count)
        elif push_status == PushStatus.failed.value:
            f.failed = int(count)
        elif push_status == PushStatus.dropped.value:
            f.dropped = int(count)

    # The median time from enqueue to sent, per channel, in one query: rank each sent push's time
    # within its channel and average the middle one or two.
    seconds = _seconds_between(session, col(PushOutbox.created_at), col(PushOutbox.sent_at))
    ranked = (
        select(col(PushOutbox.channel).label("channel"), seconds.label("seconds"),
               func.row_number().over(partition_by=col(PushOutbox.channel), order_by=seconds).label("rn"),
               func.count().over(partition_by=col(PushOutbox.channel)).label("n"))
        .where(in_window, col(PushOutbox.status) == PushStatus.sent.value, col(PushOutbox.sent_at).is_not(None))
        .subquery()
    )
    for channel, median in session.execute(
        select(ranked.c.channel, func.avg(ranked.c.seconds))
        .where(or_(ranked.c.rn == (ranked.c.n + 1) / 2, ranked.c.rn == (ranked.c.n + 2) / 2))
        .group_by(ranked.c.channel)
    ).all():
        figure(str(channel)).median_seconds_to_send = round(float(median), 3) if median is not None else None

    # The last success is not bounded by the window: "last sent three days ago" is the news.
    for channel, last in session.execute(
        select(col(PushOutbox.channel), func.max(col(PushOutbox.sent_at)))
        .where(col(PushOutbox.user_id).in_(users), col(PushOutbox.status) == PushStatus.sent.value)
        .group_by(col(PushOutbox.channel))
    ).all():
        figure(str(channel)).last_success_at = last

    for f in figures.values():
        finished = f.sent + f.failed
        f.success_rate = round(f.sent / finished, 4) if finished else None
        f.health = health_label(queued=f.queued, sent=f.sent, failed=f.failed, median_seconds=f.median_seconds_to_send,
                                oldest_queued_at=f.oldest_queued_at, now=now).value

    sms = SmsFigures()
    for sms_status, count, oldest in session.execute(
        select(col(SmsOutbox.status), func.count(), func.min(col(SmsOutbox.created_at)))
        .where(col(SmsOutbox.user_id).in_(users), col(SmsOutbox.created_at) >= since)
        .group_by(col(SmsOutbox.status))
    ).all():
        if sms_status == SmsStatus.pending.value:
            sms.scheduled, sms.oldest_queued_at = int(count), oldest
        elif sms_status in (SmsStatus.sent.value, SmsStatus.failed.value, SmsStatus.capped.value,
                            SmsStatus.cancelled.value, SmsStatus.coalesced.value, SmsStatus.unconfirmed.value):
            setattr(sms, str(sms_status), int(count))
    sms.last_success_at = session.execute(
        select(func.max(col(SmsOutbox.sent_at)))
        .where(col(SmsOutbox.user_id).in_(users), col(SmsOutbox.status) == SmsStatus.sent.value)
    ).scalar_one_or_none()
    finished = sms.sent + sms.failed
    sms.success_rate = round(sms.sent / finished, 4) if finished else None
    sms.health = health_label(queued=sms.scheduled, sent=sms.sent, failed=sms.failed, median_seconds=None,
                              oldest_queued_at=sms.oldest_queued_at, now=now).value
    if sms.unconfirmed and sms.health in (Health.ok.value, Health.idle.value) and (
            sms.unconfirmed / (finished + sms.unconfirmed) > 1 - DEGRADED_BELOW):
        sms.health = Health.degraded.value
    order = [c.value for c in PushChannel]
    channels = sorted(figures.values(), key=lambda f: (order.index(f.channel) if f.channel in order else 99, f.channel))
    return HealthReport(hours, since, channels, sms)
