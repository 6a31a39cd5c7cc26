"""Reading visits (they are written through sync push)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.core.db import SessionDep
from backend.core.pagination import Page, PageRequest, page_request
from backend.visits import service

router = APIRouter(prefix="/visits", tags=["visits"])

Reader = Annotated[Principal, requires(Action.visit_read)]


@router.get("")
def list_visits(
    principal: Reader,
    session: SessionDep,
    page: Annotated[PageRequest, page_request(v1_limit=True)],
    household_id: int | None = None,
    location_mismatch: bool = False,
    clock_suspect: Annotated[
        bool, Query(description="only visits whose phone clock was implausible (placed by receipt time)")
    ] = False,
) -> list[dict[str, Any]] | Page[dict[str, Any]]:
    """Visits in your jurisdiction, newest first; `location_mismatch=true` or `clock_suspect=true` lists
    flagged ones."""
    visits = service.list_visits(
        session,
        principal,
        household_id=household_id,
        mismatch_only=location_mismatch,
        page=page,
        clock_suspect_only=clock_suspect,
    )
    return page.answer(visits, key=lambda v: (v["id"],), descending=True)


@router.get("/{visit_id}")
def get_visit(visit_id: int, principal: Reader, session: SessionDep) -> dict[str, Any]:
    return service.get_visit(session, principal, visit_id)
