"""Every table module, imported in one place so metadata is complete for Alembic and tests."""

from __future__ import annotations


def import_all_models() -> None:
    """Import each domain's models module (registration is a side effect of import)."""
    import backend.accounts.models
    import backend.agency_referrals.models
    import backend.audit.models
    import backend.awareness.models
    import backend.campaigns.models
    import backend.cases.models
    import backend.checklists.models
    import backend.core.jobs
    import backend.coverage.models
    import backend.escalations.models
    import backend.helpers.models
    import backend.incidents.models
    import backend.inspections.models
    import backend.institutions.models
    import backend.media.models
    import backend.notifications.models
    import backend.orgunits.models
    import backend.police_cases.models
    import backend.prevention.models
    import backend.referrals.models
    import backend.registry.models
    import backend.report_submissions.models
    import backend.reports.models
    import backend.reviews.models
    import backend.schedules.models
    import backend.sealing.models
    import backend.service_plans.models
    import backend.staff_checks.models
    import backend.supervision.models
    import backend.sync.models
    import backend.venues.models
    import backend.visits.models  # noqa: F401
