"""Reading and verifying the audit log (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import checkpoints, service
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
    """Walk the whole chain and report the first broken link; hold it to the signed checkpoints too
    when this process can read their storage and public keys (the same check as `hulei audit
    verify`), and say plainly when it cannot."""
    sources = checkpoints.checkpoint_sources()
    verdict = None
    if not isinstance(sources, str):
        store, keys = sources
        try:
            verdict = checkpoints.verify_log(session, store=store, keys=keys)
        except Exception as exc:  # a file or object unreadable mid-walk: said so, never a 500
            session.rollback()
            sources = f"the checkpoint storage {store.location} could not be read here: {type(exc).__name__}"
    if verdict is None:
        chain = service.verify_chain(session)
        return ChainVerdictPublic(ok=chain.ok, entries_checked=chain.entries_checked,
                                  first_broken_id=chain.first_broken_id, reason=chain.reason,
                                  checkpoints_note=f"checkpoints not checked: {sources}; run `hulei audit verify` "
                                                   "where they are readable")
    chain, first = verdict.chain, verdict.first_contradicted
    reason = chain.reason
    if reason is None and first is not None:
        reason = f"checkpoint {first.name} ({first.tree_size} entries): {first.reason}"
    if reason is None:
        reason = verdict.anchoring_stopped
    if verdict.newest is None:
        note = f"{verdict.checkpoints_checked} checkpoints in {verdict.location}; none vouches for the chain"
    else:
        note = (f"{verdict.checkpoints_checked} checkpoints in {verdict.location}; the newest covers "
                f"{verdict.newest.tree_size} entries, signed at {verdict.newest.signed_at.isoformat()}")
    return ChainVerdictPublic(ok=verdict.ok, entries_checked=chain.entries_checked,
                              first_broken_id=chain.first_broken_id, reason=reason,
                              checkpoints_checked=verdict.checkpoints_checked, anchored=verdict.anchored,
                              unanchored_entries=verdict.unanchored_entries, checkpoints_note=note)
