"""Scheduled work of awareness surveys: the answering throttle's spent counters are dropped daily."""

from __future__ import annotations

from datetime import timedelta

from backend.awareness.service import purge_throttle
from backend.core.jobs import Job, register

register(Job(name="awareness.purge_throttle", every=timedelta(hours=6), run=purge_throttle))
