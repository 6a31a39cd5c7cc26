"""Worker job: data minimisation over time (backend/registry/retention.py). Daily: children retire on
the first of a month, so a run at any hour of that day retires them on their day."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from backend.core.jobs import Job, register
from backend.registry import retention


def retire_and_anonymise(session: Session) -> dict[str, int]:
    """Retire grown-up children without an open case (and guardians left with no ward); anonymise
    those retired longer than the retention period."""
    return retention.run(session)


register(Job(name=retention.JOB_NAME, every=timedelta(days=1), run=retire_and_anonymise))
