"""Referrals between units (转介): send from a case, list incoming and outgoing, answer. The receiving
unit sees only the fields a referral shares; every read is audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from sqlmodel import Session

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.agency_referrals import service
from backend.agency_referrals.models import AgencyReferral, AgencyReferralStatus
from backend.agency_referrals.schemas import (
    AgencyReferralCreate,
    AgencyReferralPublic,
    ReferralComplete,
    ReferralDecline,
    ReferralNote,
)
from backend.core.db import SessionDep
from backend.core.pagination import Page, Paging

router = APIRouter(tags=["agency-referrals"])

Reader = Annotated[Principal, requires(Action.service_read)]
Handler = Annotated[Principal, requires(Action.service_handle)]


def _public(session: Session, principal: Principal, r: AgencyReferral) -> AgencyReferralPublic:
    return AgencyReferralPublic(
        id=r.id or 0, case_id=r.case_id, service_id=r.service_id, from_unit_id=r.from_unit_id,
        from_agency=r.from_agency, from_user_id=r.from_user_id, to_unit_id=r.to_unit_id, to_agency=r.to_agency,
        shared_fields=list(r.shared_fields or []), shared=service.shared_view(session, principal, r), message=r.message,
        status=r.status, sent_at=r.sent_at, answered_at=r.answered_at, answered_by=r.answered_by,
        decline_reason=r.decline_reason, completed_at=r.completed_at, completed_by=r.completed_by, outcome=r.outcome,
        updated_at=r.updated_at, allowed=service.allowed_answers(session, principal, r),
    )


@router.post("/cases/{case_id}/referrals", response_model=AgencyReferralPublic, status_code=201)
def send(case_id: int, body: AgencyReferralCreate, principal: Handler, session: SessionDep) -> AgencyReferralPublic:
    """Refer the case (coordinators) or one of its services (coordinators, or the service's current
    provider) to another unit, sharing the fields chosen (the minimum necessary)."""
    made = service.send(session, principal, case_id, to_unit_id=body.to_unit_id, to_agency=body.to_agency,
                        service_id=body.service_id, shared_fields=body.shared_fields, message=body.message)
    return _public(session, principal, made)


@router.get("/agency-referrals", response_model=list[AgencyReferralPublic] | Page[AgencyReferralPublic])
def list_referrals(principal: Reader, session: SessionDep, page: Paging,
                   direction: service.Direction | None = None, status: AgencyReferralStatus | None = None,
                   case_id: int | None = None) -> list[AgencyReferralPublic] | Page[AgencyReferralPublic]:
    """Referrals you may see, newest first: `incoming` to your unit, `outgoing` from it, or all (coordinators:
    those of the cases of their jurisdiction)."""
    rows = service.list_referrals(session, principal, direction=direction, status=status, case_id=case_id, page=page)
    return page.answer([_public(session, principal, r) for r in rows], key=lambda r: (r.id,), descending=True)


@router.get("/agency-referrals/{agency_referral_id}", response_model=AgencyReferralPublic)
def get_referral(agency_referral_id: int, principal: Reader, session: SessionDep) -> AgencyReferralPublic:
    """A referral with the fields it shares (audited)."""
    return _public(session, principal, service.get(session, principal, agency_referral_id))


@router.post("/agency-referrals/{agency_referral_id}/accept", response_model=AgencyReferralPublic)
def accept(agency_referral_id: int, principal: Handler, session: SessionDep,
           body: ReferralNote | None = None) -> AgencyReferralPublic:
    """sent -> accepted (the receiving unit); a referred service goes in progress."""
    made = service.accept(session, principal, agency_referral_id, note=body.note if body else None)
    return _public(session, principal, made)


@router.post("/agency-referrals/{agency_referral_id}/decline", response_model=AgencyReferralPublic)
def decline(agency_referral_id: int, body: ReferralDecline, principal: Handler,
            session: SessionDep) -> AgencyReferralPublic:
    """sent -> declined with a reason; a referred service goes back to planned with its former provider."""
    return _public(session, principal, service.decline(session, principal, agency_referral_id, reason=body.reason))


@router.post("/agency-referrals/{agency_referral_id}/complete", response_model=AgencyReferralPublic)
def complete(agency_referral_id: int, body: ReferralComplete, principal: Handler, session: SessionDep
             ) -> AgencyReferralPublic:
    """accepted -> completed with an outcome; the referred service is done with it."""
    return _public(session, principal, service.complete(session, principal, agency_referral_id, outcome=body.outcome))
