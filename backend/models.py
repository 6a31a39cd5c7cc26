"""Every table module, imported in one place so metadata is complete for Alembic and tests."""

from __future__ import annotations


def import_all_models() -> None:
    """Import each domain's models module (registration is a side effect of import)."""
    import backend.accounts.models
    import backend.audit.models
    import backend.core.jobs
    import backend.orgunits.models  # noqa: F401
