"""Writing and verifying the hash-chained audit log."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col

from backend.accounts.principal import Principal
from backend.audit.models import GENESIS_HASH, AuditChainHead, AuditEntry
from backend.core import clock

_HEAD: Table = AuditChainHead.__table__  # type: ignore[attr-defined]
_ENTRY: Table = AuditEntry.__table__  # type: ignore[attr-defined]
# Built once: every audited request runs these three, and building a statement costs more than
# running a cached one.
_LOCK_HEAD = select(_HEAD.c.last_entry_id, _HEAD.c.last_hash).where(_HEAD.c.id == 1).with_for_update()
_APPEND = insert(_ENTRY)
_MOVE_HEAD = (update(_HEAD).where(_HEAD.c.id == 1)
              .values(last_entry_id=bindparam("entry_id"), last_hash=bindparam("entry_hash")))


def _canonical_time(value: datetime) -> str:
    return clock.as_utc(value).isoformat(timespec="microseconds")


def entry_digest(entry: AuditEntry) -> str:
    """SHA-256 over the entry's content and its predecessor's hash."""
    body = {
        "id": entry.id,
        "occurred_at": _canonical_time(entry.occurred_at),
        "actor_user_id": entry.actor_user_id,
        "actor_roles": entry.actor_roles,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "org_unit_id": entry.org_unit_id,
        "device_id": entry.device_id,
        "ip": entry.ip,
        "details": entry.details,
        "prev_hash": entry.prev_hash,
    }
    raw = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def record(
    session: Session,
    *,
    actor: Principal | None,
    action: str,
    object_type: str,
    object_id: str | int | None = None,
    org_unit_id: int | None = None,
    details: dict[str, Any] | None = None,
    actor_user_id: int | None = None,
    ip: str | None = None,
    device_id: str | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction: it is kept exactly when the action is.

    Three Core statements (lock the head, insert, move the head), not ORM objects: every audited
    request pays for this, and a unit-of-work flush costs more than the statements themselves."""
    last_entry_id, last_hash = session.execute(_LOCK_HEAD).one()
    # Round-trip through JSON so what we hash is exactly what the database will give back.
    clean_details = json.loads(json.dumps(details or {}, ensure_ascii=False, default=str))
    entry = AuditEntry(
        id=last_entry_id + 1,
        occurred_at=clock.now(),
        actor_user_id=actor.user_id if actor else actor_user_id,
        actor_roles=",".join(actor.role_names) if actor else "",
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        org_unit_id=org_unit_id,
        device_id=actor.device_id if actor else device_id,
        ip=actor.ip if actor else ip,
        details=clean_details,
        prev_hash=last_hash,
        entry_hash="",
    )
    entry.entry_hash = entry_digest(entry)
    session.execute(_APPEND, {c.name: getattr(entry, c.name) for c in _ENTRY.columns})
    session.execute(_MOVE_HEAD, {"entry_id": entry.id, "entry_hash": entry.entry_hash})
    # A head loaded as an object earlier in this session (verification does) must not be read stale.
    loaded = session.identity_map.get(identity_key(AuditChainHead, 1))
    if loaded is not None:
        session.expire(loaded)
    return entry


@dataclass(frozen=True)
class ChainVerdict:
    """Result of walking the chain."""

    ok: bool
    entries_checked: int
    first_broken_id: int | None = None
    reason: str | None = None
    # The chain's hash after each asked-for number of entries, for those the intact walk reached
    # (signed checkpoints are compared with them: backend/audit/checkpoints.py).
    hashes_at: dict[int, str] = field(default_factory=dict)


def verify_chain(session: Session, batch: int = 2000, *, positions: Collection[int] = ()) -> ChainVerdict:
    """Walk every entry in order; report the first one whose link or content does not hold."""
    wanted = set(positions)
    hashes_at: dict[int, str] = {}
    expected_prev = GENESIS_HASH
    expected_id = 1
    checked = 0
    last_id = 0
    while True:
        rows = session.execute(
            select(AuditEntry).where(col(AuditEntry.id) > last_id).order_by(col(AuditEntry.id)).limit(batch)
        ).scalars().all()
        if not rows:
            break
        for entry in rows:
            if entry.id != expected_id:
                return ChainVerdict(False, checked, expected_id, f"entry {expected_id} is missing", hashes_at)
            if entry.prev_hash != expected_prev:
                return ChainVerdict(False, checked, entry.id, "link to the previous entry is broken", hashes_at)
            if entry_digest(entry) != entry.entry_hash:
                return ChainVerdict(False, checked, entry.id, "content does not match its hash", hashes_at)
            if entry.id in wanted:
                hashes_at[entry.id] = entry.entry_hash
            expected_prev = entry.entry_hash
            expected_id += 1
            checked += 1
            last_id = entry.id
        session.expunge_all()
    head = session.get(AuditChainHead, 1)
    if head is None:
        return ChainVerdict(False, checked, None, "chain head is missing", hashes_at)
    if head.last_entry_id != last_id or head.last_hash != expected_prev:
        return ChainVerdict(False, checked, last_id + 1, "entries after the last one found were removed", hashes_at)
    return ChainVerdict(True, checked, hashes_at=hashes_at)


def list_entries(
    session: Session, principal: Principal, *, after_id: int, limit: int, action: str | None = None
) -> list[AuditEntry]:
    """Entries about the caller's jurisdiction, oldest first. Entries with no unit (failed
    sign-ins of unknown numbers, say) are shown only to a caller at the root of the tree."""
    from sqlalchemy import or_

    from backend.orgunits.service import in_jurisdiction

    at_root = principal.org_path.count("/") == 2
    where = in_jurisdiction(principal, col(AuditEntry.org_unit_id))
    if at_root:
        where = or_(where, col(AuditEntry.org_unit_id).is_(None))
    q = select(AuditEntry).where(where, col(AuditEntry.id) > after_id)
    if action:
        q = q.where(col(AuditEntry.action) == action)
    return list(session.execute(q.order_by(col(AuditEntry.id)).limit(limit)).scalars())
