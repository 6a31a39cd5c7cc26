"""Worker job: tell the providing unit and the case's coordinators once when a service is overdue."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from backend.core.jobs import Job, register
from backend.service_plans import service


def notify_overdue_services(session: Session) -> int:
    return service.notify_overdue(session)


register(Job(name="service_plans.notify_overdue", every=timedelta(hours=1), run=notify_overdue_services))
