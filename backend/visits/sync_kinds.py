"""Push kinds "visit" and "amendment" (batch write path in backend/visits/service.py)."""

from __future__ import annotations

from sqlmodel import Session

from backend.accounts.principal import Principal
from backend.sync.kinds import ItemResult, PushItem, register_kind
from backend.visits import service
from backend.visits.schemas import AmendmentData, VisitData


def push_visits(session: Session, principal: Principal, items: list[PushItem], locale: str) -> list[ItemResult]:
    return service.push_visits(session, principal, items, locale)


def push_amendments(session: Session, principal: Principal, items: list[PushItem], locale: str) -> list[ItemResult]:
    return service.push_visits(session, principal, items, locale, amendments=True)


register_kind("visit", push_visits, order=30, data_model=VisitData)
register_kind("amendment", push_amendments, order=40, data_model=AmendmentData)
