"""Worker jobs for photos: process received uploads, expire abandoned ones, link late parents.

Each photo is its own transaction, so one bad file or a crash loses at most that photo's step.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlmodel import Session

from backend.core import clock
from backend.core.config import get_settings
from backend.core.jobs import Job, register
from backend.media import service

log = logging.getLogger(__name__)

PROCESS_BATCH = 20
PROCESS_BUDGET_SECONDS = 50.0
EXPIRE_BATCH = 500
LINK_BATCH = 500


def process_received(session: Session) -> int:
    """Make derivatives for the photos waiting, batch after batch until none is left or the time
    budget is spent (a busy day's backlog drains in one run, not twenty photos per interval)."""
    handled = 0
    started = time.monotonic()
    while time.monotonic() - started < PROCESS_BUDGET_SECONDS:
        due = service.due_for_processing(session, PROCESS_BATCH)
        if not due:
            break
        for item_id in due:
            item = service.start_processing(session, item_id)
            session.commit()  # others see "processing" while the heavy work runs
            if item is None:
                continue
            try:
                service.process(session, item)
                session.commit()
            except Exception as exc:  # storage or database trouble: retry later, up to a limit
                session.rollback()
                log.exception("processing media %s failed", item_id)
                service.give_up_processing(session, item_id, f"{type(exc).__name__}: {exc}")
                session.commit()
            handled += 1
    return handled


def expire_uploads(session: Session) -> int:
    """Forget every unfinished upload past its expiry (row and staged chunks, a batch per
    transaction) and sweep orphaned staging files."""
    forgotten = 0
    while expired := service.expired_uploads(session, EXPIRE_BATCH):
        for item in expired:
            service.discard_upload(session, item)
        session.commit()
        forgotten += len(expired)
    session.commit()
    hours = get_settings().media_upload_expiry_hours
    swept = service.sweep_staging(session, clock.now() - timedelta(hours=hours))
    return forgotten + swept


def link_late_parents(session: Session) -> int:
    """Link photos whose parent record has arrived since; return how many were linked."""
    linked = 0
    for item in service.unlinked(session, LINK_BATCH):
        if service.link_parent(session, item):
            linked += 1
    session.commit()
    return linked


# Every worker may process photos at once: each photo is claimed on its own (start_processing).
register(Job("media.process", timedelta(seconds=10), process_received, exclusive=False))
register(Job("media.expire_uploads", timedelta(hours=1), expire_uploads))
register(Job("media.link_parents", timedelta(minutes=5), link_late_parents))
