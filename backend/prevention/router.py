"""Prevention and education activities (宣传教育): types, activities, and the places without any."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from backend.accounts.deps import CurrentPrincipal, requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.core.db import SessionDep
from backend.core.pagination import CURSOR_HELP, DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest, Paging
from backend.prevention import service
from backend.prevention.schemas import (
    ActivityPublic,
    ActivitySubmit,
    ActivityTypeCreate,
    ActivityTypePublic,
    CoverageAnswer,
    PlaceWithout,
)

router = APIRouter(tags=["prevention"])

Reader = Annotated[Principal, requires(Action.activity_read)]
Recorder = Annotated[Principal, requires(Action.activity_record)]
Cursor = Annotated[str | None, Query(max_length=512, description=CURSOR_HELP)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]


def _page(cursor: str | None, limit: int) -> PageRequest:
    return PageRequest(paged=True, limit=limit, cursor=cursor)


@router.get("/activity-types", response_model=list[ActivityTypePublic] | Page[ActivityTypePublic])
def list_activity_types(principal: Reader, session: SessionDep, page: Paging
                        ) -> list[dict[str, Any]] | Page[dict[str, Any]]:
    """The national activity types and those of the units above you and in your jurisdiction."""
    return page.answer(service.list_types(session, principal), key=lambda t: (t["code"],))


@router.post("/activity-types", response_model=ActivityTypePublic, status_code=status.HTTP_201_CREATED)
def create_activity_type(body: ActivityTypeCreate, principal: CurrentPrincipal, session: SessionDep
                         ) -> dict[str, Any]:
    """A county's (or a unit above it) own activity type (checklist.manage); codes are unique."""
    return service.create_type(session, principal, body)


@router.post("/activities", response_model=ActivityPublic, status_code=status.HTTP_201_CREATED,
             responses={200: {"description": "A resend of the same activity (same client UUID and content)"}})
def record_activity(body: ActivitySubmit, principal: Recorder, session: SessionDep, response: Response
                    ) -> dict[str, Any]:
    """Record an activity, exactly once by `client_uuid` (201; a resend of the same content 200; of
    other content 409 `activity-conflict`)."""
    recorded = service.record_activity(session, principal, body.client_uuid, body, via="rest")
    if not recorded.created:
        response.status_code = status.HTTP_200_OK
        if not recorded.shown:
            raise service.ActivityNotFound()
    return service.activity_public(recorded.activity, service.type_names(session))


@router.get("/activities", response_model=Page[ActivityPublic])
def list_activities(
    principal: Reader,
    session: SessionDep,
    unit_id: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    type_code: Annotated[str | None, Query(max_length=40)] = None,
    institution_id: int | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[dict[str, Any]]:
    """Activities of your area (their place in your jurisdiction, and your own), newest first."""
    page = _page(cursor, limit)
    rows = service.list_activities(session, principal, page=page, unit_id=unit_id, date_from=date_from,
                                   date_to=date_to, type_code=type_code, institution_id=institution_id)
    answer = page.answer(rows, key=lambda a: (a["id"],), descending=True)
    assert isinstance(answer, Page)
    return answer


@router.get("/activities/{activity_id}", response_model=ActivityPublic)
def get_activity(activity_id: int, principal: Reader, session: SessionDep) -> dict[str, Any]:
    return service.get_activity(session, principal, activity_id)


@router.get("/prevention/coverage", response_model=CoverageAnswer)
def prevention_coverage(principal: Reader, session: SessionDep, unit_id: int | None = None,
                        date_from: date | None = None, date_to: date | None = None) -> dict[str, Any]:
    """Activities, audience, and the schools and villages reached in a period (default: this year),
    under a unit (default: yours) and per child unit."""
    return service.coverage(session, principal, unit_id=unit_id, date_from=date_from, date_to=date_to)


class PlaceKindFilter(StrEnum):
    school = "school"
    village = "village"


@router.get("/prevention/without-activity", response_model=Page[PlaceWithout])
def places_without_activity(
    principal: Reader,
    session: SessionDep,
    kind: PlaceKindFilter,
    unit_id: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[dict[str, Any]]:
    """The schools (or villages) under a unit with no activity held in the period, by id."""
    page = _page(cursor, limit)
    rows = service.without_activity(session, principal, kind=kind.value, page=page, unit_id=unit_id,
                                    date_from=date_from, date_to=date_to)
    answer = page.answer(rows, key=lambda p: (p["id"],))
    assert isinstance(answer, Page)
    return answer
