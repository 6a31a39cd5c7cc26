"""The job that escalates overdue supervised problems (挂牌督办), each unit told once."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from backend.core.jobs import Job, register
from backend.supervision.service import escalate_overdue


def escalate(session: Session) -> int:
    """Tell every unit due to know of an overdue supervised problem (once each)."""
    return len(escalate_overdue(session))


register(Job(name="supervision.escalate_overdue", every=timedelta(hours=1), run=escalate))
