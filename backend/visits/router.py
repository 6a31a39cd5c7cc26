"""Reading visits (they are written through sync push)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.core.db import SessionDep
from backend.visits import service

router = APIRouter(prefix="/visits", tags=["visits"])

Reader = Annotated[Principal, requires(Action.visit_read)]


@router.get("")
def list_visits(
    principal: Reader,
    session: SessionDep,
    household_id: int | None = None,
    location_mismatch: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    """Visits in your jurisdiction, newest first; `location_mismatch=true` lists flagged ones."""
    return service.list_visits(
        session, principal, household_id=household_id, mismatch_only=location_mismatch, limit=limit
    )


@router.get("/{visit_id}")
def get_visit(visit_id: int, principal: Reader, session: SessionDep) -> dict[str, Any]:
    return service.get_visit(session, principal, visit_id)
