"""Mandatory reports (强制报告): police and coordinators only; for everyone else they do not exist."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.core.db import SessionDep
from backend.core.pagination import Page, Paging
from backend.referrals import service
from backend.referrals.models import ReferralStatus

router = APIRouter(prefix="/referrals", tags=["referrals"])

Reader = Annotated[Principal, requires(Action.referral_read)]
Manager = Annotated[Principal, requires(Action.referral_manage)]


class HandleRequest(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


@router.get("")
def list_referrals(
    principal: Reader, session: SessionDep, page: Paging, status: ReferralStatus | None = None
) -> list[dict[str, Any]] | Page[dict[str, Any]]:
    """Referrals of your jurisdiction, newest first."""
    rows = service.list_referrals(session, principal, status=status, page=page)
    return page.answer([service.public(r) for r in rows], key=lambda r: (r["id"],), descending=True)


@router.get("/{referral_id}")
def get_referral(referral_id: int, principal: Reader, session: SessionDep) -> dict[str, Any]:
    return service.public(service.get_referral(session, principal, referral_id))


@router.post("/{referral_id}/receive")
def receive(referral_id: int, principal: Manager, session: SessionDep) -> dict[str, Any]:
    """The police station acknowledges the report."""
    return service.public(service.advance(session, principal, referral_id, ReferralStatus.received, None))


@router.post("/{referral_id}/handle")
def handle(referral_id: int, body: HandleRequest, principal: Manager, session: SessionDep) -> dict[str, Any]:
    return service.public(service.advance(session, principal, referral_id, ReferralStatus.handled, body.note))
