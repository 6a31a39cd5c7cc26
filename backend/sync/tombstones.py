"""What the database's tombstones (sync_removal, migration 0009) say about a caller's past view."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.principal import Principal
from backend.core import clock
from backend.core.config import get_settings
from backend.core.db import one_of
from backend.orgunits import service as orgunits
from backend.sync.models import SyncRemoval


def left_view_lately(session: Session, principal: Principal, kind: str, record_ids: list[int]) -> set[int]:
    """Of these records (outside the caller's view now), those that left a unit of the caller's
    jurisdiction within the grace period (a tombstone says so). A visit a phone recorded offline for
    a household before it heard of the move is field work done, and is kept: nothing entered on a
    phone is lost. Past the grace period (a phone is not offline for a month) it is refused."""
    if not record_ids:
        return set()
    since = clock.now() - timedelta(days=get_settings().sync_moved_record_grace_days)
    return set(
        session.execute(
            select(col(SyncRemoval.record_id)).where(
                col(SyncRemoval.kind) == kind,
                one_of(session, col(SyncRemoval.record_id), record_ids),
                orgunits.in_jurisdiction(principal, col(SyncRemoval.org_unit_id)),
                col(SyncRemoval.created_at) >= since,
            )
        ).scalars()
    )
