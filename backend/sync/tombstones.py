"""What the database's tombstones (sync_removal, migration 0009) say about a caller's past view."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.principal import Principal
from backend.core.db import one_of
from backend.orgunits import service as orgunits
from backend.sync.models import SyncRemoval


def left_view(session: Session, principal: Principal, kind: str, record_ids: list[int]) -> set[int]:
    """Of these records (outside the caller's view now), those that were in it once: a tombstone
    says they left a unit of the caller's jurisdiction. Work a phone recorded offline for them before
    it heard of the move is kept, not refused: nothing entered on a phone is lost."""
    if not record_ids:
        return set()
    return set(
        session.execute(
            select(col(SyncRemoval.record_id)).where(
                col(SyncRemoval.kind) == kind,
                one_of(session, col(SyncRemoval.record_id), record_ids),
                orgunits.in_jurisdiction(principal, col(SyncRemoval.org_unit_id)),
            )
        ).scalars()
    )
