"""Mounts every domain router under /api/v1. Authentication is applied here, once: every router
requires a valid access token before its own checks run, except the few listed as public, which
carry their own authorisation (sign-in itself, signed photo links, per-officer calendar feeds,
and the dashboard's pre-sign-in settings)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from backend.accounts.deps import current_principal
from backend.accounts.router import auth_router, device_router
from backend.accounts.router import router as users_router
from backend.agency_referrals.router import router as agency_referrals_router
from backend.audit.router import router as audit_router
from backend.awareness.router import public_router as awareness_public_router
from backend.awareness.router import router as awareness_router
from backend.campaigns.router import router as campaigns_router
from backend.cases.router import router as cases_router
from backend.checklists.router import router as checklists_router
from backend.coverage.router import router as coverage_router
from backend.dashboard.router import config_router as dashboard_config_router
from backend.escalations.router import router as escalations_router
from backend.helpers.router import router as helpers_router
from backend.incidents.router import router as incidents_router
from backend.inspections.router import checklist_router as inspection_checklists_router
from backend.inspections.router import penalty_router, problem_router
from backend.inspections.router import router as inspections_router
from backend.institutions.router import router as institutions_router
from backend.ledgers.router import router as ledgers_router
from backend.media.router import files_router as media_files_router
from backend.media.router import router as media_router
from backend.notifications.router import receipt_router as push_receipt_router
from backend.notifications.router import router as notifications_router
from backend.orgunits.router import router as orgunits_router
from backend.police_cases.router import review_router as case_reviews_router
from backend.police_cases.router import router as police_cases_router
from backend.prevention.router import router as prevention_router
from backend.referrals.mandatory_router import router as mandatory_reports_router
from backend.referrals.router import router as referrals_router
from backend.registry.risk_person_router import router as risk_person_router
from backend.registry.router import router as registry_router
from backend.report_submissions.router import router as report_submissions_router
from backend.reports.router import router as reports_router
from backend.reviews.router import record_router as review_records_router
from backend.reviews.router import router as reviews_router
from backend.schedules.router import calendar_router
from backend.schedules.router import router as schedules_router
from backend.service_plans.router import kinds_router as service_kinds_router
from backend.service_plans.router import router as services_router
from backend.staff_checks.router import router as staff_checks_router
from backend.supervision.router import notice_router
from backend.supervision.router import router as supervision_router
from backend.sync.router import router as sync_router
from backend.venues.router import router as venues_router
from backend.visits.router import router as visits_router

API_PREFIX = "/api/v1"

PUBLIC_ROUTERS: tuple[APIRouter, ...] = (
    auth_router,  # sign-in, refresh, logout
    media_files_router,  # short-lived signed photo links are their own authorisation
    calendar_router,  # each officer's .ics feed carries its own secret token
    dashboard_config_router,  # map settings the dashboard reads before sign-in
    awareness_public_router,  # anonymous survey answering: the round's unguessable code is the credential
    push_receipt_router,  # push channels' delivery receipts: the key in the URL, derived from the master secret
)

AUTHENTICATED_ROUTERS: tuple[APIRouter, ...] = (
    # Foundation
    users_router, device_router, orgunits_router, audit_router,
    # Registry, visits, offline sync, referrals, ledgers
    # (risk persons' control first: /risk-persons/overdue is not an entry's id)
    risk_person_router, registry_router, checklists_router, visits_router, referrals_router,
    mandatory_reports_router, sync_router, ledgers_router,
    # Photos
    media_router,
    # Venues, inspections, problems, weekly plans
    venues_router, inspections_router, inspection_checklists_router, problem_router, penalty_router,
    schedules_router,
    # Helpers, cases (个案), notifications, 2112 incidents, deadline escalations
    helpers_router, cases_router, notifications_router, incidents_router, escalations_router,
    # The police case register (立案), its weekly report, one-case-one-review (一案一倒查)
    police_cases_router, case_reviews_router,
    # Service plans of cases and referrals between units (issue 16)
    service_kinds_router, services_router, agency_referrals_router,
    # Coverage, campaigns, monthly reports
    coverage_router, campaigns_router, reports_router, report_submissions_router,
    # Review of field work (审核, issue 17)
    reviews_router, review_records_router,
    # Awareness surveys (知晓率, issue 18)
    awareness_router,
    # Institutions in close contact with minors (issue 18)
    institutions_router, staff_checks_router,
    # Prevention and education activities (宣传教育, issue 18)
    prevention_router,
    # Supervision of any unit (督办, 挂牌督办) and typical-case notices (典型案例通报, issue 18)
    supervision_router, notice_router,
)


def build_api_router() -> APIRouter:
    api = APIRouter(prefix=API_PREFIX)
    for router in PUBLIC_ROUTERS:
        api.include_router(router)
    for router in AUTHENTICATED_ROUTERS:
        api.include_router(router, dependencies=[Depends(current_principal)])
    return api
