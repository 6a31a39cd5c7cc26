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
from backend.core.pagination import Page, PageRequest, page_request

router = APIRouter(prefix="/audit", tags=["audit"])

Auditor = Annotated[Principal, requires(Action.audit_read)]


@router.get("", response_model=list[AuditEntryPublic] | Page[AuditEntryPublic])
def list_entries(
    principal: Auditor,
    session: SessionDep,
    page: Annotated[PageRequest, page_request(v1_limit=True)],
    after_id: Annotated[int, Query(ge=0)] = 0,
    action: str | None = None,
) -> list[AuditEntryPublic] | Page[AuditEntryPublic]:
    """Entries after `after_id`, oldest first (pass the last id back for the next page)."""
    after = page.after(int)
    start = max(after_id, after[0]) if after and isinstance(after[0], int) else after_id
    rows = service.list_entries(session, principal, after_id=start, limit=page.fetch, action=action)
    return page.answer([AuditEntryPublic.model_validate(r, from_attributes=True) for r in rows], key=lambda e: (e.id,))


@router.get("/verify", response_model=ChainVerdictPublic)
def verify(principal: Auditor, session: SessionDep) -> ChainVerdictPublic:
    """Walk the whole chain and report the first broken link."""
    verdict = service.verify_chain(session)
    return ChainVerdictPublic(ok=verdict.ok, entries_checked=verdict.entries_checked,
                              first_broken_id=verdict.first_broken_id, reason=verdict.reason)
