"""Every module that registers a push kind, imported in one place (add a line for a new kind)."""

from __future__ import annotations


def load_kinds() -> None:
    """Import each domain's push handlers (registration is a side effect of import)."""
    import backend.inspections.sync_kinds
    import backend.registry.sync_kinds
    import backend.visits.sync_kinds  # noqa: F401
