"""Mandatory reports (强制报告): police and coordinators only; for everyone else they do not exist
(reporters follow their own reports at /mandatory-reports: backend/referrals/mandatory_router.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.core.db import SessionDep
from backend.core.pagination import Page, Paging
from backend.referrals import service
from backend.referrals.models import ReferralStatus, ReportSource
from backend.referrals.schemas import ReceiveRequest

router = APIRouter(prefix="/referrals", tags=["referrals"])

Reader = Annotated[Principal, requires(Action.referral_read)]
Manager = Annotated[Principal, requires(Action.referral_manage)]


class HandleRequest(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


@router.get("")
def list_referrals(
    principal: Reader, session: SessionDep, page: Paging, status: ReferralStatus | None = None,
    source_kind: ReportSource | None = None,
    include_direct_reports: Annotated[bool, Query(description=(
        "true: also the reports filed directly (their `visit_id` and `household_id` are null); left out "
        "(and no `source_kind`), only the visits' clues, as in v1"))] = False,
) -> list[dict[str, Any]] | Page[dict[str, Any]]:
    """Referrals of your jurisdiction, newest first: the visits' clues and, when asked for, the reports
    filed directly. A v1 app reads `visit_id` and `household_id` as numbers, so it is given only the
    visits' clues (it is told of every new report by its notification)."""
    rows = service.list_referrals(session, principal, status=status, page=page, source_kind=source_kind,
                                  visits_only=not include_direct_reports and source_kind is None)
    return page.answer([service.public(r) for r in rows], key=lambda r: (r["id"],), descending=True)


@router.get("/{referral_id}")
def get_referral(referral_id: int, principal: Reader, session: SessionDep) -> dict[str, Any]:
    return service.public(service.get_referral(session, principal, referral_id))


@router.post("/{referral_id}/receive")
def receive(referral_id: int, principal: Manager, session: SessionDep,
            body: ReceiveRequest | None = None) -> dict[str, Any]:
    """The police station acknowledges the report (optionally linking a registered child of its
    jurisdiction); a direct report's children get their case (个案) now."""
    child_id = body.child_id if body is not None else None
    return service.public(service.advance(session, principal, referral_id, ReferralStatus.received, None,
                                          child_id=child_id))


@router.post("/{referral_id}/handle")
def handle(referral_id: int, body: HandleRequest, principal: Manager, session: SessionDep) -> dict[str, Any]:
    return service.public(service.advance(session, principal, referral_id, ReferralStatus.handled, body.note))
