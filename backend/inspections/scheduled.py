"""The daily job that marks unrectified problems past their deadline as overdue."""

from __future__ import annotations

from datetime import timedelta

from backend.core.jobs import Job, register
from backend.inspections.service import mark_overdue

register(Job(name="inspections.mark_overdue", every=timedelta(hours=1), run=mark_overdue))
