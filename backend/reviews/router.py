"""Review of field work (审核): decide on visits and inspections, the queue, the town's counting rule."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from backend.accounts.deps import CurrentPrincipal, requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.core.db import SessionDep
from backend.core.pagination import Page, Paging
from backend.reviews import service
from backend.reviews.models import RecordKind, ReviewState
from backend.reviews.schemas import (
    QueueItem,
    ReviewDecision,
    ReviewPublic,
    ReviewResponse,
    ReviewSettingPublic,
    ReviewSettingUpdate,
    ReviewSummary,
)

router = APIRouter(prefix="/reviews", tags=["reviews"])
record_router = APIRouter(tags=["reviews"])

Reader = Annotated[Principal, requires(Action.review_read)]
Manager = Annotated[Principal, requires(Action.review_manage)]
Recorder = Annotated[Principal, requires(Action.inspection_create)]


@record_router.post("/visits/{visit_id}/review", response_model=ReviewPublic, status_code=201)
def review_visit(visit_id: int, body: ReviewDecision, principal: Manager, session: SessionDep) -> ReviewPublic:
    """Decide on a visit: approved, has_issues or rejected (with a comment). 409 review-state with
    `current_status` when the state is not the one expected (`expected_state`, or pending)."""
    return service.review_public(service.decide(session, principal, RecordKind.visit, visit_id, body))


@record_router.get("/visits/{visit_id}/reviews", response_model=list[ReviewPublic] | Page[ReviewPublic])
def visit_reviews(visit_id: int, principal: CurrentPrincipal, session: SessionDep,
                  page: Paging) -> list[ReviewPublic] | Page[ReviewPublic]:
    """Every decision on a visit, oldest first (review.read, or the volunteer who recorded it)."""
    return page.answer(service.history(session, principal, RecordKind.visit, visit_id), key=lambda r: (r.id,))


@record_router.post("/inspections/{inspection_id}/review", response_model=ReviewPublic, status_code=201)
def review_inspection(inspection_id: int, body: ReviewDecision, principal: Manager,
                      session: SessionDep) -> ReviewPublic:
    """Decide on an inspection, as on a visit."""
    return service.review_public(service.decide(session, principal, RecordKind.inspection, inspection_id, body))


@record_router.get("/inspections/{inspection_id}/reviews", response_model=list[ReviewPublic] | Page[ReviewPublic])
def inspection_reviews(inspection_id: int, principal: CurrentPrincipal, session: SessionDep,
                       page: Paging) -> list[ReviewPublic] | Page[ReviewPublic]:
    """Every decision on an inspection, oldest first (review.read, or the officer who recorded it)."""
    return page.answer(service.history(session, principal, RecordKind.inspection, inspection_id),
                       key=lambda r: (r.id,))


@record_router.post("/inspections/{inspection_id}/review/response", response_model=ReviewPublic)
def respond_inspection(inspection_id: int, body: ReviewResponse, principal: Recorder,
                       session: SessionDep) -> ReviewPublic:
    """The inspector who recorded the inspection answers has_issues with a note; it then waits for a
    decision (amended_waiting). The same note again returns the answered review."""
    return service.review_public(service.respond(session, principal, inspection_id, body.note))


@router.get("/queue", response_model=list[QueueItem] | Page[QueueItem])
def review_queue(principal: Reader, session: SessionDep, page: Paging, unit_id: int | None = None,
                 state: ReviewState | None = None,
                 flag: Annotated[Literal["location_mismatch", "clock_suspect"] | None, Query()] = None,
                 record_kind: RecordKind | None = None) -> list[QueueItem] | Page[QueueItem]:
    """Records of the unit's subtree waiting for review: pending visits and inspections flagged
    location_mismatch or clock_suspect, and answers to has_issues (amendments, responses); with
    `state`, every record in that state. Visits first, each kind by id."""
    found = service.queue(session, principal, page, unit_id=unit_id, state=state, flag=flag,
                          record_kind=record_kind)
    order = list(RecordKind)
    return page.answer(found, key=lambda i: (order.index(RecordKind(i.record_kind)), i.record_id))


@router.get("/summary", response_model=ReviewSummary)
def review_summary(principal: Reader, session: SessionDep, unit_id: int | None = None) -> ReviewSummary:
    """Counts for the dashboard: pending_flagged, has_issues, amended_waiting, rejected, approved."""
    return service.summary(session, principal, unit_id)


@router.get("/settings", response_model=ReviewSettingPublic)
def get_review_settings(principal: Reader, session: SessionDep, unit_id: int | None = None) -> ReviewSettingPublic:
    """A town's counting rule for coverage: all visits, or approved ones only."""
    return service.get_setting(session, principal, unit_id)


@router.put("/settings", response_model=ReviewSettingPublic)
def put_review_settings(body: ReviewSettingUpdate, principal: Manager, session: SessionDep,
                 unit_id: int | None = None) -> ReviewSettingPublic:
    """Set a town's counting rule; every coverage figure says which rule it used (`counting`)."""
    return service.put_setting(session, principal, unit_id, body.approved_only)
