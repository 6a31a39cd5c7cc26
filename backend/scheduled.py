"""Imports each domain's scheduled.py so its jobs are registered with the worker."""

from __future__ import annotations

import backend.accounts.scheduled
import backend.coverage.scheduled
import backend.escalations.scheduled
import backend.helpers.scheduled
import backend.incidents.scheduled
import backend.inspections.scheduled
import backend.media.scheduled
import backend.notifications.scheduled  # noqa: F401
