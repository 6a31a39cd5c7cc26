"""Worker job of the audit log: signed checkpoints of the chain's head (backend/audit/checkpoints.py).

It runs every minute and writes a checkpoint once the newest checkpoint is at least
HULEI_AUDIT_CHECKPOINT_INTERVAL_MINUTES old, so the interval is a setting rather than the job's
schedule. An idle log gets checkpoints too (heartbeats of the same head): a steady series is what
lets `hulei audit verify` tell a stopped job, and entries cut while it was stopped, from a quiet log.
"""

from __future__ import annotations

from datetime import timedelta

from backend.audit.checkpoints import write_checkpoint
from backend.core.jobs import Job, register

JOB_NAME = "audit.checkpoint"

register(Job(name=JOB_NAME, every=timedelta(minutes=1), run=write_checkpoint))
