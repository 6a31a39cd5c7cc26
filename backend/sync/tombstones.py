"""What the database's tombstones (sync_removal, migration 0009) say about a caller's past view."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts import scope
from backend.accounts.principal import Principal
from backend.core import clock
from backend.core.config import get_settings
from backend.core.db import one_of
from backend.registry.models import Household, Person
from backend.sync.models import SyncRemoval

_MODELS = {"household": Household, "person": Person}


def left_view_lately(session: Session, principal: Principal, kind: str, record_ids: list[int]) -> set[int]:
    """Of these records (outside the caller's view now), those that left the caller's view within the
    grace period (a tombstone says so: they left a unit of its jurisdiction, or a helper's assignment
    ended). A visit a phone recorded offline for a household before it heard of the move is field work
    done, and is kept: nothing entered on a phone is lost. Past the grace period (a phone is not offline
    for a month) it is refused."""
    if not record_ids:
        return set()
    since = clock.now() - timedelta(days=get_settings().sync_moved_record_grace_days)
    return set(
        session.execute(
            select(col(SyncRemoval.record_id)).where(
                col(SyncRemoval.kind) == kind,
                one_of(session, col(SyncRemoval.record_id), record_ids),
                scope.tombstone_audience(principal, _MODELS[kind]),
                col(SyncRemoval.created_at) >= since,
            )
        ).scalars()
    )
