"""Inspection, problem-ledger and penalty endpoints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from sqlalchemy import select
from sqlmodel import col

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.core.db import SessionDep
from backend.core.pagination import Page, PageRequest, Paging, page_request
from backend.inspections import checklist_templates, checklists, paperwork, service
from backend.inspections.models import Inspection, Penalty, ProblemStatus
from backend.inspections.schemas import (
    ChecklistItemPublic,
    ChecklistPublic,
    ChecklistPublish,
    InspectionPublic,
    InspectionSubmit,
    PenaltyCreate,
    PenaltyPublic,
    ProblemPublic,
    ProblemUpdate,
)
from backend.venues import service as venues
from backend.venues.models import VenueType

router = APIRouter(prefix="/inspections", tags=["inspections"])
checklist_router = APIRouter(prefix="/inspection-checklists", tags=["inspections"])
problem_router = APIRouter(prefix="/problems", tags=["problems"])
penalty_router = APIRouter(prefix="/penalties", tags=["problems"])

Reader = Annotated[Principal, requires(Action.inspection_read)]
Inspector = Annotated[Principal, requires(Action.inspection_create)]
ProblemEditor = Annotated[Principal, requires(Action.problem_update)]
VenueReader = Annotated[Principal, requires(Action.venue_read)]
ChecklistManager = Annotated[Principal, requires(Action.checklist_manage)]


def _checklist_public(c: checklists.Checklist, current: bool,
                      by_type: Mapping[VenueType, checklists.Checklist]) -> ChecklistPublic:
    return ChecklistPublic(
        code=c.code, version=c.version, title_zh=c.title_zh, title_en=c.title_en,
        venue_types=[t.value for t in c.venue_types], current=current,
        current_for=[t.value for t in c.venue_types if by_type.get(t) == c],
        items=[ChecklistItemPublic(code=i.code, text_zh=i.text_zh, text_en=i.text_en, default_measure_zh=i.measure_zh,
                                   deadline_days=i.deadline_days) for i in c.items],
        owner_unit_id=c.owner_unit_id, published_at=c.published_at,
    )


@checklist_router.get("", response_model=list[ChecklistPublic] | Page[ChecklistPublic])
def list_checklists(principal: VenueReader, session: SessionDep, page: Paging,
                    venue_type: VenueType | None = None) -> list[ChecklistPublic] | Page[ChecklistPublic]:
    """Every checklist version that concerns the caller (the national ones, its county's, those of the
    counties under it), or the current one for a venue type; `current` is in force at the caller's unit."""
    path = principal.org_path
    current = checklists.current_by_type(session, path)
    if venue_type is not None:
        found = [_checklist_public(checklists.current_for(session, venue_type, unit_path=path), True, current)]
    else:
        in_force = checklists.effective(session, path)
        found = [_checklist_public(c, in_force.get(c.code) == c and all(current[t] == c for t in c.venue_types),
                                   current)
                 for c in checklists.all_checklists(session, unit_path=path)]
    return page.answer(found, key=lambda c: (c.code, c.version))


@checklist_router.get("/{checklist_code}/{checklist_version}", response_model=ChecklistPublic)
def get_checklist(checklist_code: str, checklist_version: int, principal: VenueReader,
                  session: SessionDep) -> ChecklistPublic:
    """One published version (an older one too: what an inspection recorded against it is read with)."""
    found = checklists.get(session, checklist_code, checklist_version)
    if found is None or found not in checklists.all_checklists(session, unit_path=principal.org_path):
        raise checklist_templates.InspectionChecklistNotFound()
    current = checklists.effective(session, principal.org_path).get(found.code) == found
    return _checklist_public(found, current, checklists.current_by_type(session, principal.org_path))


@checklist_router.post("/{checklist_code}/versions", response_model=ChecklistPublic,
                       status_code=status.HTTP_201_CREATED,
                       responses={200: {"model": ChecklistPublic, "description": "dry_run: checked, not stored"}})
def publish_checklist(checklist_code: str, body: ChecklistPublish, principal: ChecklistManager,
                      session: SessionDep, response: Response) -> ChecklistPublic:
    """Publish a county's next version of a checklist (copy the one in force, edit, publish); the
    county's towns and phones use it from then on. Published versions never change (409)."""
    published = checklist_templates.publish(session, principal, checklist_code, body)
    if body.dry_run:
        response.status_code = status.HTTP_200_OK
    return _checklist_public(published, not body.dry_run,
                             checklists.current_by_type(session, principal.org_path) if not body.dry_run else {})


@router.post("", response_model=InspectionPublic, status_code=status.HTTP_201_CREATED,
             responses={200: {"model": InspectionPublic, "description": "Already stored (same client_uuid and body)"}})
def submit_inspection(payload: InspectionSubmit, principal: Inspector, session: SessionDep,
                      response: Response) -> InspectionPublic:
    """Record an inspection (idempotent by client_uuid; the same body again answers 200)."""
    result = service.record_inspection(session, principal, payload)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return service.inspection_public(session, result.inspection, replayed=not result.created)


@router.get("", response_model=list[InspectionPublic] | Page[InspectionPublic])
def list_inspections(
    principal: Reader, session: SessionDep, venue_id: int,
    page: Annotated[PageRequest, page_request(default=50, maximum=200, v1_limit=True)],
) -> list[InspectionPublic] | Page[InspectionPublic]:
    """A venue's inspections, newest first."""
    venues.get_venue(session, principal, venue_id)
    rows = session.execute(page.seek(select(Inspection).where(col(Inspection.venue_id) == venue_id),
                                     col(Inspection.started_at), col(Inspection.id), descending=True)).scalars().all()
    return page.answer([service.inspection_public(session, i) for i in rows], key=lambda i: (i.started_at, i.id),
                       descending=True)


@router.get("/{inspection_id}", response_model=InspectionPublic)
def get_inspection(inspection_id: int, principal: Reader, session: SessionDep) -> InspectionPublic:
    """One inspection with its answers, problems opened and verified, and penalties."""
    return service.inspection_public(session, service.get_inspection(session, principal, inspection_id))


_PDF: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {}}, "description": "The PDF (Chinese font embedded)"}}


@router.get("/{inspection_id}/record.pdf", response_class=Response, responses=_PDF)
def inspection_record_pdf(inspection_id: int, principal: Reader, session: SessionDep) -> Response:
    """The printable inspection record (检查记录): venue, officers, every answer, problems, penalties, photos."""
    data, name = paperwork.document(session, principal, inspection_id, "record")
    return Response(data, media_type=paperwork.PDF_TYPE,
                    headers={"Content-Disposition": f'inline; filename="{name}"', "Cache-Control": "no-store"})


@router.get("/{inspection_id}/rectification-notice.pdf", response_class=Response, responses=_PDF)
def rectification_notice_pdf(inspection_id: int, principal: Reader, session: SessionDep) -> Response:
    """The rectification notice (责令整改通知书) for the inspection's open problems; 409 when it has none."""
    data, name = paperwork.document(session, principal, inspection_id, "rectification_notice")
    return Response(data, media_type=paperwork.PDF_TYPE,
                    headers={"Content-Disposition": f'inline; filename="{name}"', "Cache-Control": "no-store"})


# v1 apps read `found_in_inspection_id` as a number: a problem a case review raised (it has none) is
# listed only to apps that ask for it, so an older app never meets the null (mobile_api_spec/README.md).
IncludeReviewProblems = Annotated[bool, Query(description=(
    "true: also list the problems a case review (一案一整治) raised, whose `found_in_inspection_id` is null; "
    "left out, the list holds only problems found by inspections, as in v1"))]


@problem_router.get("", response_model=list[ProblemPublic] | Page[ProblemPublic])
def list_problems(principal: Reader, session: SessionDep,
                  page: Annotated[PageRequest, page_request(default=200, maximum=500, v1_limit=True)],
                  venue_id: int | None = None, org_unit_id: int | None = None,
                  problem_status: Annotated[ProblemStatus | None, Query(alias="status")] = None,
                  include_review_problems: IncludeReviewProblems = False,
                  ) -> list[ProblemPublic] | Page[ProblemPublic]:
    """The problem ledger (问题清单) of the caller's jurisdiction or of one venue, newest first (overdue
    ones: oldest deadline first)."""
    rows = service.list_problems(session, principal, venue_id=venue_id, org_unit_id=org_unit_id,
                                 status=problem_status, page=page, include_review_problems=include_review_problems)
    found = service.problems_public(session, rows)
    if problem_status is ProblemStatus.overdue:  # the service orders these as the overdue list
        return page.answer(found, key=lambda p: (p.deadline_date, p.id))
    return page.answer(found, key=lambda p: (p.id,), descending=True)


@problem_router.get("/overdue", response_model=list[ProblemPublic] | Page[ProblemPublic])
def overdue_problems(principal: Reader, session: SessionDep,
                     page: Annotated[PageRequest, page_request(default=500, maximum=500, v1_limit=True)],
                     org_unit_id: int | None = None,
                     include_review_problems: IncludeReviewProblems = False,
                     ) -> list[ProblemPublic] | Page[ProblemPublic]:
    """Problems past their deadline and not rectified, oldest deadline first (for coordinators)."""
    rows = service.list_problems(session, principal, org_unit_id=org_unit_id, overdue_only=True, page=page,
                                 include_review_problems=include_review_problems)
    return page.answer(service.problems_public(session, rows), key=lambda p: (p.deadline_date, p.id))


@problem_router.get("/{problem_id}", response_model=ProblemPublic)
def get_problem(problem_id: int, principal: Reader, session: SessionDep) -> ProblemPublic:
    return service.problems_public(session, [service.get_problem(session, principal, problem_id)])[0]


@problem_router.patch("/{problem_id}", response_model=ProblemPublic)
def update_problem(problem_id: int, data: ProblemUpdate, principal: ProblemEditor,
                   session: SessionDep) -> ProblemPublic:
    """Record rectification progress (rectifying, submitted), measure, responsible party or deadline.
    Setting "verified" is refused: only a re-inspection closes a problem."""
    return service.problems_public(session, [service.update_problem(session, principal, problem_id, data)])[0]


@penalty_router.post("", response_model=PenaltyPublic, status_code=status.HTTP_201_CREATED)
def record_penalty(data: PenaltyCreate, principal: Inspector, session: SessionDep) -> PenaltyPublic:
    """Record a penalty decided against a venue."""
    return service.penalty_public(service.record_penalty(session, principal, data))


@penalty_router.get("", response_model=list[PenaltyPublic] | Page[PenaltyPublic])
def list_penalties(principal: Reader, session: SessionDep, venue_id: int,
                   page: Paging) -> list[PenaltyPublic] | Page[PenaltyPublic]:
    """A venue's penalties, newest first."""
    venues.get_venue(session, principal, venue_id)
    rows = session.execute(page.seek(select(Penalty).where(col(Penalty.venue_id) == venue_id), col(Penalty.id),
                                     descending=True)).scalars().all()
    return page.answer([service.penalty_public(p) for p in rows], key=lambda p: (p.id,), descending=True)
