"""Revisions: one increasing number per change of anything a phone pulls."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text, update
from sqlalchemy.orm import Session

from backend.core.db import dialect_insert
from backend.sync.models import SyncCounter

_BUMP = text("UPDATE sync_counter SET value = value + :n WHERE id = 1 RETURNING value")


def allocate(session: Session, count: int = 1) -> int:
    """Reserve `count` consecutive revisions and return the first. The counter row stays locked
    until the caller's transaction ends, so changes commit in revision order."""
    last = session.execute(_BUMP, {"n": count}).scalar_one_or_none()
    if last is None:
        insert = dialect_insert(session)
        session.execute(insert(SyncCounter).values(id=1, value=0).on_conflict_do_nothing())
        last = session.execute(_BUMP, {"n": count}).scalar_one()
    return int(last) - count + 1


def hold(session: Session) -> None:
    """Take the counter row's lock now, before reading what a write derives from. A household's move
    takes it before it moves the household's members and visits; a write that places a record by its
    household's unit (a person, a visit) takes it first too, so it reads the household where it is
    after any move that was committing, and a move after it waits and then takes the new record
    along. Reading first and locking later let a member created or edited during a move stay in the
    unit its household had left (PostgreSQL; SQLite's writers queue from their first statement)."""
    allocate(session, 0)


def current(session: Session) -> int:
    """The newest revision handed out (0 when none)."""
    value = session.execute(text("SELECT value FROM sync_counter WHERE id = 1")).scalar_one_or_none()
    return int(value or 0)


def restamp(session: Session, model: Any, ids: list[int], **values: Any) -> None:
    """Give each of these rows a new revision (in id order), setting `values` too, so phones that
    keep them pull them again. Revisions are unique per row: a page cut never splits one."""
    if not ids:
        return
    first = allocate(session, len(ids))
    for n, row_id in enumerate(sorted(ids)):
        session.execute(
            update(model)
            .where(model.id == row_id)
            .values(rev=first + n, **values)
            .execution_options(synchronize_session=False)
        )
