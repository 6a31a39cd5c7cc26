"""Every module that fills a registry when imported, loaded in one place.

Domains declare things by calling a registry at import time: tables (SQLModel metadata, listed in
backend/models.py), push kinds (backend/sync/kinds.py `register_kind`), the record kinds a photo
may belong to (backend/media/parents.py `register_parent_kind`) and scheduled jobs
(backend/core/jobs.py `register`). What a process can do must not depend on which modules it
happened to import before a request arrived, so every entry point (the app factory, the worker,
each CLI command) calls `load_all()` first. A new registering module gets a line here;
tests/test_registries.py fails until it does.
"""

from __future__ import annotations

import importlib

from backend.models import import_all_models

REGISTERING_MODULES: tuple[str, ...] = (
    # Push kinds, in no particular order (each declares its own processing order).
    "backend.registry.sync_kinds",
    "backend.visits.sync_kinds",
    "backend.inspections.sync_kinds",
    "backend.referrals.sync_kinds",
    "backend.helpers.sync_kinds",
    "backend.service_plans.sync_kinds",
    "backend.prevention.sync_kinds",
    # What a photo may belong to.
    "backend.visits.media_parent",
    "backend.inspections.media_parent",
    "backend.prevention.media_parent",
    # Scheduled jobs.
    "backend.accounts.scheduled",
    "backend.audit.scheduled",
    "backend.awareness.scheduled",
    "backend.coverage.scheduled",
    "backend.escalations.scheduled",
    "backend.helpers.scheduled",
    "backend.incidents.scheduled",
    "backend.inspections.scheduled",
    "backend.media.scheduled",
    "backend.notifications.scheduled",
    "backend.registry.scheduled",
    "backend.service_plans.scheduled",
    "backend.supervision.scheduled",
    "backend.staff_checks.scheduled",
)


def load_all() -> None:
    """Fill every registry (idempotent: a module already imported is not run again)."""
    import_all_models()
    for name in REGISTERING_MODULES:
        importlib.import_module(name)
