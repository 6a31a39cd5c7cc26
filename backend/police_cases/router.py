"""The police case register (立案), its weekly new-case report and one-case-one-review (一案一倒查).
Police register and move cases; police and coordinators read them and review them. For everyone
else none of it exists (404)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlmodel import Session

from backend.accounts.deps import CurrentPrincipal, requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.core.db import SessionDep
from backend.core.pagination import Page, Paging
from backend.police_cases import reviews, service, weekly
from backend.police_cases.models import OFFENCE_LABELS, OffenceCategory, PoliceCaseStatus
from backend.police_cases.schemas import (
    WEEK_PATTERN,
    CategoryPublic,
    PoliceCaseCreate,
    PoliceCaseDetail,
    PoliceCasePublic,
    PoliceCaseTransition,
    PoliceCaseUpdate,
    ReviewCreate,
    ReviewFindingIn,
    ReviewPublic,
    ReviewUpdate,
    TaskDone,
    TaskIn,
    WeeklyFigures,
    WeeklyState,
    WeeklySubmissionPublic,
    WeeklySubmit,
)

router = APIRouter(prefix="/police-cases", tags=["police-cases"])
review_router = APIRouter(prefix="/case-reviews", tags=["case-reviews"])

Reader = Annotated[Principal, requires(Action.police_case_read)]
Manager = Annotated[Principal, requires(Action.police_case_manage)]
ReviewManager = Annotated[Principal, requires(Action.case_review_manage)]
_WEEK = Query(pattern=WEEK_PATTERN, description="ISO week, YYYY-Www (2026-W48): Monday to Sunday, China dates")
_WEEK_PATH = Path(pattern=WEEK_PATTERN, description="ISO week, YYYY-Www")
XLSX = weekly.XLSX_TYPE


def _review_reader(principal: CurrentPrincipal) -> Principal:
    """police_case.read or case_review.manage."""
    reviews._require_reader(principal)
    return principal


ReviewReader = Annotated[Principal, Depends(_review_reader)]


def _detail(session: Session, principal: Principal, case_id: int) -> PoliceCaseDetail:
    return service.detail(session, principal, service.get_case(session, principal, case_id))


# ---------------------------------------------------------------- categories and the weekly report


@router.get("/categories", response_model=list[CategoryPublic] | Page[CategoryPublic])
def categories(principal: Reader, page: Paging) -> list[CategoryPublic] | Page[CategoryPublic]:
    """The offence categories (codes with zh / en labels), in the order reports list them."""
    found = [CategoryPublic(code=c.value, label_zh=zh, label_en=en) for c, (zh, en) in OFFENCE_LABELS.items()]
    order = {c.code: n for n, c in enumerate(found)}
    return page.answer(found, key=lambda c: (order[c.code],))


@router.get("/weekly", response_model=WeeklyFigures)
def weekly_report(principal: Reader, session: SessionDep, week: Annotated[str, _WEEK],
                  unit_id: int | None = None) -> WeeklyFigures:
    """A station's new cases of the week, from the register, as they stand now (counts, no names)."""
    return weekly.report(session, principal, unit_id, week)


@router.get("/weekly.xlsx", response_class=Response, responses={200: {"content": {XLSX: {}}}})
def weekly_xlsx(principal: Reader, session: SessionDep, week: Annotated[str, _WEEK],
                unit_id: int | None = None) -> Response:
    """The same report as .xlsx (a summary sheet by category and a sheet of the cases)."""
    data, name = weekly.xlsx(session, principal, unit_id, week)
    return Response(data, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/weekly/status", response_model=list[WeeklyState] | Page[WeeklyState])
def weekly_status(principal: Reader, session: SessionDep, page: Paging, week: Annotated[str, _WEEK],
                  unit_id: int | None = None) -> list[WeeklyState] | Page[WeeklyState]:
    """For each station (town) at or under the unit (default: yours): submitted, late, missing or
    pending. Due the Monday after the week, 12:00 China time."""
    found = weekly.states(session, principal, unit_id, week)
    return page.answer(found, key=lambda s: (s.unit_code, s.unit_id))


@router.post("/weekly/{week}/submit", response_model=WeeklySubmissionPublic, status_code=201)
def weekly_submit(week: Annotated[str, _WEEK_PATH], principal: Manager, session: SessionDep,
                  body: WeeklySubmit | None = None) -> WeeklySubmissionPublic:
    """The station submits its week's report: the figures are frozen now; a resubmission keeps the
    earlier ones (`history`)."""
    return weekly.submit_way_up(session, principal, body.unit_id if body else None, week)


@router.get("/weekly/{week}/submissions",
            response_model=list[WeeklySubmissionPublic] | Page[WeeklySubmissionPublic])
def weekly_submissions(week: Annotated[str, _WEEK_PATH], principal: Reader, session: SessionDep, page: Paging,
                       unit_id: int | None = None) -> list[WeeklySubmissionPublic] | Page[WeeklySubmissionPublic]:
    """Every submission of a station's week, oldest first (the last is current), each with its frozen
    figures."""
    found = weekly.submissions(session, principal, unit_id, week)
    return page.answer(found, key=lambda s: (s.id,))


# ---------------------------------------------------------------- the register


@router.get("", response_model=list[PoliceCasePublic] | Page[PoliceCasePublic])
def list_cases(principal: Reader, session: SessionDep, page: Paging, unit_id: int | None = None,
               status: PoliceCaseStatus | None = None, category: OffenceCategory | None = None,
               filed_from: date | None = None, filed_to: date | None = None,
               ) -> list[PoliceCasePublic] | Page[PoliceCasePublic]:
    """Police cases of your jurisdiction (or of one unit of it), newest first."""
    rows = service.list_cases(session, principal, unit_id=unit_id, status=status, category=category,
                              filed_from=filed_from, filed_to=filed_to, page=page)
    return page.answer(service.public(session, principal, rows), key=lambda c: (c.id,), descending=True)


@router.post("", response_model=PoliceCaseDetail, status_code=201)
def register(body: PoliceCaseCreate, principal: Manager, session: SessionDep) -> PoliceCaseDetail:
    """Register a case the station filed (立案). 409 police-case-number-taken for a number the station
    already used."""
    case = service.register(session, principal, body)
    return service.detail(session, principal, case)


@router.get("/{police_case_id}", response_model=PoliceCaseDetail)
def get_case(police_case_id: int, principal: Reader, session: SessionDep) -> PoliceCaseDetail:
    """A police case with its history and its reviews."""
    case = service.get_case(session, principal, police_case_id)
    service.read_audited(session, principal, case)
    return service.detail(session, principal, case)


@router.patch("/{police_case_id}", response_model=PoliceCaseDetail)
def edit_case(police_case_id: int, body: PoliceCaseUpdate, principal: Manager, session: SessionDep
              ) -> PoliceCaseDetail:
    """Edit a case that is not closed: fields left out are kept, a list replaces the links of its kind."""
    case = service.update(session, principal, police_case_id, body)
    return service.detail(session, principal, case)


@router.post("/{police_case_id}/status", response_model=PoliceCaseDetail)
def move_case(police_case_id: int, body: PoliceCaseTransition, principal: Manager, session: SessionDep
              ) -> PoliceCaseDetail:
    """filed -> investigating -> transferred_for_prosecution; closed from any of them with a reason."""
    case = service.transition(session, principal, police_case_id, to=body.to, reason=body.reason, note=body.note)
    return service.detail(session, principal, case)


# ---------------------------------------------------------------- one-case-one-review


@review_router.post("", response_model=ReviewPublic, status_code=201)
def create_review(body: ReviewCreate, principal: ReviewManager, session: SessionDep) -> ReviewPublic:
    """Review a police case or a child case (exactly one): findings, analysis, rectification tasks. A
    task on a venue raises a problem of the problem ledger (GET /problems)."""
    return reviews.public(session, [reviews.create(session, principal, body)])[0]


@review_router.get("", response_model=list[ReviewPublic] | Page[ReviewPublic])
def list_reviews(principal: ReviewReader, session: SessionDep, page: Paging, police_case_id: int | None = None,
                 child_case_id: int | None = None) -> list[ReviewPublic] | Page[ReviewPublic]:
    """Reviews of your jurisdiction whose case you may see, newest first."""
    rows = reviews.list_reviews(session, principal, police_case_id=police_case_id, child_case_id=child_case_id,
                                page=page)
    return page.answer(reviews.public(session, rows), key=lambda r: (r.id,), descending=True)


@review_router.get("/{review_id}", response_model=ReviewPublic)
def get_review(review_id: int, principal: ReviewReader, session: SessionDep) -> ReviewPublic:
    review = reviews.get_review(session, principal, review_id)
    disclosure.event(session, "case_review.read", actor=principal, object_type="case_review", object_id=review.id,
                     org_unit_id=review.org_unit_id)
    return reviews.public(session, [review])[0]


@review_router.patch("/{review_id}", response_model=ReviewPublic)
def edit_review(review_id: int, body: ReviewUpdate, principal: ReviewManager, session: SessionDep) -> ReviewPublic:
    """Rewrite the analysis (剖析)."""
    return reviews.public(session, [reviews.update(session, principal, review_id, analysis=body.analysis)])[0]


@review_router.post("/{review_id}/findings", response_model=ReviewPublic, status_code=201)
def add_finding(review_id: int, body: ReviewFindingIn, principal: ReviewManager, session: SessionDep) -> ReviewPublic:
    """Add a finding (倒查): a venue, or a unit with its agency, and what was found."""
    return reviews.public(session, [reviews.add_finding(session, principal, review_id, body)])[0]


@review_router.post("/{review_id}/tasks", response_model=ReviewPublic, status_code=201)
def add_task(review_id: int, body: TaskIn, principal: ReviewManager, session: SessionDep) -> ReviewPublic:
    """Add a rectification task (整治); on a venue it raises a problem of the problem ledger."""
    return reviews.public(session, [reviews.add_task(session, principal, review_id, body)])[0]


@review_router.post("/{review_id}/tasks/{task_id}/done", response_model=ReviewPublic)
def task_done(review_id: int, task_id: int, body: TaskDone, principal: ReviewManager, session: SessionDep
              ) -> ReviewPublic:
    """Mark a unit's task done, with a note. A venue's task is done when a re-inspection verifies its
    problem (409 case-review-task-follows-problem here)."""
    return reviews.public(session, [reviews.task_done(session, principal, review_id, task_id, note=body.note)])[0]
