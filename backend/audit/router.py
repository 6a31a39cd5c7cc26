"""Reading and verifying the audit log (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import service
from backend.audit.schemas import AuditEntryPublic, ChainVerdictPublic
from backend.core.db import SessionDep
from backend.core.pagination import MAX_LIMIT

router = APIRouter(prefix="/audit", tags=["audit"])

Auditor = Annotated[Principal, requires(Action.audit_read)]


@router.get("", response_model=list[AuditEntryPublic])
def list_entries(
    principal: Auditor,
    session: SessionDep,
    after_id: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    action: str | None = None,
) -> list[AuditEntryPublic]:
    """Entries after `after_id`, oldest first (pass the last id back for the next page)."""
    rows = service.list_entries(session, principal, after_id=after_id, limit=limit, action=action)
    return [AuditEntryPublic.model_validate(r, from_attributes=True) for r in rows]


@router.get("/verify", response_model=ChainVerdictPublic)
def verify(principal: Auditor, session: SessionDep) -> ChainVerdictPublic:
    """Walk the whole chain and report the first broken link."""
    verdict = service.verify_chain(session)
    return ChainVerdictPublic(ok=verdict.ok, entries_checked=verdict.entries_checked,
                              first_broken_id=verdict.first_broken_id, reason=verdict.reason)
