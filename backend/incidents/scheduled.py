"""Worker job: check the 2112 limits every minute."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from backend.core.jobs import Job, register
from backend.incidents.service import check_deadlines


def check_incident_deadlines(session: Session) -> int:
    """Escalate every missed limit (once each)."""
    return len(check_deadlines(session))


register(Job(name="incidents.check_deadlines", every=timedelta(minutes=1), run=check_incident_deadlines))
