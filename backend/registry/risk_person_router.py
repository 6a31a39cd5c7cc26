"""附件2 risk persons under control: check-ins, the overdue list, the household a person lives in.

Mounted before the registry's router: `/risk-persons/overdue` must not be read as an entry's id.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.core.db import SessionDep
from backend.core.pagination import Page, Paging
from backend.registry import risk_persons
from backend.registry.schemas import CheckInCreate, HouseholdLinkCreate

router = APIRouter(tags=["registry"])

RiskPersonReader = Annotated[Principal, requires(Action.risk_person_read)]
RiskPersonWriter = Annotated[Principal, requires(Action.risk_person_write)]


@router.get("/risk-persons/overdue")
def overdue_check_ins(
    principal: RiskPersonReader, session: SessionDep, page: Paging, unit_id: int | None = None
) -> list[dict[str, Any]] | Page[dict[str, Any]]:
    """附件2 entries of your jurisdiction (or one unit of it) under control whose check-in is overdue, most
    overdue first; each with `control` (last check-in, next due, days overdue)."""
    found = risk_persons.overdue(session, principal, unit_id=unit_id)
    # Paged before the entries are built: the audit entry names the page sent, not the whole list.
    rows = page.answer(found, key=lambda o: (o.due_at, o.person.id or 0))
    if isinstance(rows, Page):
        return Page(items=[risk_persons.overdue_public(o) for o in rows.items], next_cursor=rows.next_cursor)
    return [risk_persons.overdue_public(o) for o in rows]


@router.post("/risk-persons/{risk_person_id}/check-ins", status_code=201)
def record_check_in(
    risk_person_id: int, body: CheckInCreate, principal: RiskPersonReader, session: SessionDep
) -> dict[str, Any]:
    """A police control check-in (管控): when, how, where, what was found. The next falls due from the
    latest check-in by the person's risk level. Police only (403 for coordinators, 404 for others)."""
    r = risk_persons.record_check_in(session, principal, risk_person_id, body)
    return risk_persons.detail(session, r)


@router.post("/risk-persons/{risk_person_id}/household-link")
def link_household(
    risk_person_id: int, body: HouseholdLinkCreate, principal: RiskPersonWriter, session: SessionDep
) -> dict[str, Any]:
    """Link the person to the household they live in (in your jurisdiction; 404 otherwise). The same
    household again changes nothing; another while one is current is 409 (unlink first). A new link
    raises the household's children for review and tells their coordinators, once."""
    r = risk_persons.link_household(session, principal, risk_person_id, body.household_id)
    return risk_persons.detail(session, r)


@router.delete("/risk-persons/{risk_person_id}/household-link")
def unlink_household(risk_person_id: int, principal: RiskPersonWriter, session: SessionDep) -> dict[str, Any]:
    """End the current household link (kept in `household_links`); children's levels stay."""
    r = risk_persons.unlink_household(session, principal, risk_person_id)
    return risk_persons.detail(session, r)
