"""Worker jobs: propose helpers for children who need them, lapse unanswered offers (and propose
the next best), and remind helpers of overdue follow-ups."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from backend.core.jobs import Job, register
from backend.helpers import service


def propose_helpers(session: Session) -> int:
    """Proposals for every child at 较大/重大风险 or on 附件3 without enough helpers."""
    return len(service.propose(session))


def expire_unanswered_offers(session: Session) -> int:
    """Offers unanswered past the window lapse; the next best helper is proposed."""
    return len(service.expire_unanswered(session))


def remind_overdue_followups(session: Session) -> int:
    return service.remind_overdue_followups(session)


register(Job(name="helpers.propose", every=timedelta(minutes=10), run=propose_helpers))
register(Job(name="helpers.expire_unanswered", every=timedelta(minutes=5), run=expire_unanswered_offers))
register(Job(name="helpers.remind_followups", every=timedelta(hours=1), run=remind_overdue_followups))
