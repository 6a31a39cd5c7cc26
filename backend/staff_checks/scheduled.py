"""The staff-check reminder (从业查询到期提醒): hourly, each due date told once."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from backend.core.jobs import Job, register
from backend.staff_checks import service


def notify_due_checks(session: Session) -> int:
    return service.notify_due(session)


register(Job(name="staff_checks.notify_due", every=timedelta(hours=1), run=notify_due_checks))
