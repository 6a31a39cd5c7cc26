"""Delivery receipts (回执) from the vendor push channels.

A channel posts what became of our pushes to the URL we gave it (providers.receipt_url): the push
reached the phone, or the token is dead. Nobody signs in to post them, so the key in the URL is the
only credential, and a receipt is trusted only about what that channel itself carried:

- `delivered` marks a push of that channel which its provider accepted, found by the outbox id the
  channel echoes; when the receipt names a token it must be the token of the push's device. A receipt
  never touches another channel's push or another phone's. The notification keeps the first time.
- `invalid_token` removes the device of that channel holding that token (its pending pushes are
  dropped), as the outbox does when a send answers so.

Repeats change nothing: a vendor may post the same receipt again.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence

from sqlalchemy import delete, select, update
from sqlmodel import Session, col

from backend.accounts.models import Device, PushChannel
from backend.core import clock
from backend.core.errors import BadRequest, NotFound
from backend.notifications import service as notifications
from backend.notifications.models import Notification, PushOutbox, PushStatus
from backend.notifications.providers import ReceiptEvent, receipt_key, receipt_parser

MAX_RECEIPT_BYTES = 64 * 1024

Parser = Callable[[bytes, str], list[ReceiptEvent]]


def check_key(channel: str, key: str) -> None:
    """404 unless `channel` is a push channel with receipts and `key` is its receipt key (the same
    answer for an unknown channel and a wrong key, so neither can be probed)."""
    if channel not in {c.value for c in PushChannel}:
        raise NotFound()
    if not hmac.compare_digest(key.encode("utf-8", "surrogatepass"), receipt_key(channel).encode()):
        raise NotFound()


def parser_for(channel: str) -> Parser:
    """The channel's receipt parser (providers.receipt_parser); 404 for a channel that does not post
    receipts. Only known channel names reach the import."""
    if channel not in {c.value for c in PushChannel}:
        raise NotFound()
    parse = receipt_parser(channel)
    if parse is None:
        raise NotFound()
    return parse


def parse(channel: str, body: bytes, content_type: str) -> list[ReceiptEvent]:
    """The events of a receipt body, by the channel's own parser; 400 for a body it cannot read."""
    parse_receipts = parser_for(channel)
    try:
        return list(parse_receipts(body, content_type))
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # RecursionError: JSON nested too deep
        raise BadRequest("回执格式无法识别", "The receipt body could not be read") from exc


def record_receipts(session: Session, channel: str, events: Sequence[ReceiptEvent]) -> int:
    """Apply a channel's receipts; the number of events that named a push or a device of ours on
    that channel. Flushes; the caller commits."""
    now = clock.now()
    accepted = 0
    # An id no row can have (a vendor's tag of something else) would overflow the query, not match.
    delivered = [e for e in events if e.outcome == "delivered" and e.outbox_id is not None
                 and 0 < e.outbox_id < 2**63]
    if delivered:
        rows = {
            int(row_id): (int(notification_id), token)
            for row_id, notification_id, token in session.execute(
                select(col(PushOutbox.id), col(PushOutbox.notification_id), Device.push_token)  # type: ignore[call-overload]
                .outerjoin(Device, col(Device.id) == col(PushOutbox.device_id))
                .where(col(PushOutbox.id).in_(sorted({int(e.outbox_id or 0) for e in delivered})),
                       col(PushOutbox.channel) == channel, col(PushOutbox.status) == PushStatus.sent.value)
            ).all()
        }
        matched: set[int] = set()
        for event in delivered:
            row = rows.get(int(event.outbox_id or 0))
            if row is None or (event.token is not None and row[1] != event.token):
                continue
            matched.add(int(event.outbox_id or 0))
            accepted += 1
        if matched:
            session.execute(update(PushOutbox)
                            .where(col(PushOutbox.id).in_(sorted(matched)), col(PushOutbox.delivered_at).is_(None))
                            .values(delivered_at=now).execution_options(synchronize_session=False))
            session.execute(update(Notification)
                            .where(col(Notification.id).in_(sorted({rows[i][0] for i in matched})),
                                   col(Notification.delivered_at).is_(None))
                            .values(delivered_at=now).execution_options(synchronize_session=False))
    dead = sorted({e.token for e in events if e.outcome == "invalid_token" and e.token})
    if dead:
        devices = [int(d) for d in session.execute(
            select(col(Device.id)).where(col(Device.push_token).in_(dead), col(Device.channel) == channel)
        ).scalars()]
        for device_id in devices:
            notifications.drop_pushes_of_device(session, device_id)
        if devices:
            session.execute(delete(Device).where(col(Device.id).in_(devices)))
        accepted += len(devices)
    session.flush()
    return accepted
