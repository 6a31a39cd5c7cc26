"""Keeps the per-grid coverage summary of the standard periods fresh."""

from __future__ import annotations

from datetime import timedelta

from backend.core.jobs import Job, register
from backend.coverage.service import refresh_standard_summaries

register(Job("coverage.refresh", every=timedelta(minutes=10), run=refresh_standard_summaries))
