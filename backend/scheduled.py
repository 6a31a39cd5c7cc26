"""Imports each domain's scheduled.py so its jobs are registered with the worker."""

from __future__ import annotations

import backend.accounts.scheduled  # noqa: F401
