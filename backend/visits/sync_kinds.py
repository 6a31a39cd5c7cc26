"""Push kinds "visit" and "amendment" (batch write path in backend/visits/service.py)."""

from __future__ import annotations

from uuid import UUID

from sqlmodel import Session

from backend.accounts.principal import Principal
from backend.sync.kinds import ItemResult, PushItem, register_kind
from backend.visits import service
from backend.visits.schemas import AmendmentData, VisitData


def push_visits(session: Session, principal: Principal, items: list[PushItem], locale: str) -> list[ItemResult]:
    return service.push_visits(session, principal, items, locale)


def push_amendments(session: Session, principal: Principal, items: list[PushItem], locale: str) -> list[ItemResult]:
    """Amendments in rounds: one that corrects an amendment earlier in the same push waits until that
    one is stored (a phone queues a correction of its own correction while offline). Each round
    stores every item whose original is not an earlier item still waiting, so the first waiting item
    always goes and the rounds end; the phone's order decides, so no cycle can form."""
    results: list[ItemResult | None] = [None] * len(items)
    waiting = list(range(len(items)))
    while waiting:
        earlier: set[str] = set()
        ready: list[int] = []
        for i in waiting:
            if _amends(items[i]) not in earlier:
                ready.append(i)
            earlier.add(str(items[i].client_uuid))
        for i, result in zip(ready, service.push_visits(session, principal, [items[i] for i in ready], locale,
                                                        amendments=True), strict=True):
            results[i] = result
        waiting = [i for i in waiting if i not in set(ready)]
    return [r for r in results if r is not None]


def _amends(item: PushItem) -> str | None:
    raw = item.data.get("amends_uuid") if isinstance(item.data, dict) else None
    try:
        return str(UUID(str(raw))) if raw is not None else None
    except ValueError:
        return None


register_kind("visit", push_visits, order=30, data_model=VisitData)
register_kind("amendment", push_amendments, order=40, data_model=AmendmentData)
