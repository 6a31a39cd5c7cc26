"""Worker job of the audit log: signed checkpoints of the chain's head (backend/audit/checkpoints.py).

It runs every minute and writes a checkpoint when the chain has grown and the newest checkpoint is
at least HULEI_AUDIT_CHECKPOINT_INTERVAL_MINUTES old, so the interval is a setting rather than the
job's schedule, and an idle log gets no checkpoints (a checkpoint of the same head says nothing new).
"""

from __future__ import annotations

from datetime import timedelta

from backend.audit.checkpoints import write_checkpoint
from backend.core.jobs import Job, register

JOB_NAME = "audit.checkpoint"

register(Job(name=JOB_NAME, every=timedelta(minutes=1), run=write_checkpoint))
