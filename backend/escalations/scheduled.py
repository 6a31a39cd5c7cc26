"""Worker job: check referral deadlines every minute."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from backend.core.jobs import Job, register
from backend.escalations.service import check_referral_deadlines


def check_referrals(session: Session) -> int:
    """Escalate every late referral stage (once each)."""
    return len(check_referral_deadlines(session))


register(Job(name="escalations.check_referral_deadlines", every=timedelta(minutes=1), run=check_referrals))
