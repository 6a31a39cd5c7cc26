"""Late referrals (强制报告) for coordinators and police: which stage is late and since when."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.core.db import SessionDep
from backend.core.pagination import Page, Paging
from backend.escalations import service
from backend.incidents.schemas import LocalTime, LocalTimeOrNone

router = APIRouter(prefix="/escalations", tags=["escalations"])


class OverdueReferralPublic(BaseModel):
    referral_id: int
    stage: str
    due_at: LocalTime
    org_unit_id: int
    police_unit_id: int | None
    escalated_at: LocalTimeOrNone


@router.get("/referrals", response_model=list[OverdueReferralPublic] | Page[OverdueReferralPublic])
def overdue_referrals(principal: Annotated[Principal, requires(Action.referral_read)], session: SessionDep,
                      page: Paging) -> list[OverdueReferralPublic] | Page[OverdueReferralPublic]:
    """Referrals whose acknowledgement or handling is late, in the caller's jurisdiction."""
    late = [OverdueReferralPublic(referral_id=o.referral_id, stage=o.stage, due_at=o.due_at, org_unit_id=o.org_unit_id,
                                  police_unit_id=o.police_unit_id, escalated_at=o.escalated_at)
            for o in service.overdue_referrals(session, principal)]
    return page.answer(late, key=lambda o: (o.referral_id, o.stage))

