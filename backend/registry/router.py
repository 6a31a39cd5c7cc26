"""Households, children and guardians, risk levels and the risk persons ledger (附件2)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from backend.accounts.deps import CurrentPrincipal, requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.core.db import SessionDep
from backend.core.errors import Conflict, Locale
from backend.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, Paging
from backend.registry import risk_persons, service
from backend.registry.schemas import (
    HouseholdCreate,
    HouseholdData,
    HouseholdPatch,
    HouseholdUpdate,
    PersonCreate,
    PersonData,
    PersonPatch,
    PersonUpdate,
    RiskOverride,
    RiskPersonData,
    RiskPersonPatch,
    RiskPersonUpdate,
)
from backend.sealing.schemas import OpenSealed

router = APIRouter(tags=["registry"])

HouseholdReader = Annotated[Principal, requires(Action.household_read)]
HouseholdWriter = Annotated[Principal, requires(Action.household_write)]
ChildReader = Annotated[Principal, requires(Action.child_read)]
ChildWriter = Annotated[Principal, requires(Action.child_write)]
RiskPersonReader = Annotated[Principal, requires(Action.risk_person_read)]
RiskPersonWriter = Annotated[Principal, requires(Action.risk_person_write)]
SealedOpener = Annotated[Principal, requires(Action.sealed_open)]


class RevealRequest(BaseModel):
    reason: str | None = Field(default=None, max_length=200)


def _stale(stored: dict[str, Any]) -> service.StaleEdit:
    return service.StaleEdit(
        "该记录已被他人修改，请查看最新内容后重新编辑",
        "The record changed since your copy; review the current version and edit again",
        current=stored,
    )


@router.get("/households", response_model=Page[dict[str, Any]])
def list_households(
    principal: HouseholdReader,
    session: SessionDep,
    unit_id: int | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[dict[str, Any]]:
    """Households in your jurisdiction (or in one unit of it)."""
    return service.list_households(session, principal, unit_id=unit_id, cursor=cursor, limit=limit)


@router.post("/households", status_code=201)
def create_household(body: HouseholdCreate, principal: HouseholdWriter, session: SessionDep) -> dict[str, Any]:
    """Register a household; its grid is found from its point unless given."""
    # device_time is not content (left out of dumps, see schemas.DeviceTime): carried over by hand.
    data = HouseholdData.model_validate({**body.model_dump(exclude={"uuid"}), "device_time": body.device_time})
    stored, status = service.save_household(session, principal, body.uuid or service.new_uuid(), None, data)
    if status == "conflict":
        raise Conflict(
            "该UUID已用于另一户", "This UUID belongs to another household", current=service.household_out(stored)
        )
    return service.household_out(stored, changed=status == "created")


@router.get("/households/{household_id}")
def get_household(household_id: int, principal: HouseholdReader, session: SessionDep) -> dict[str, Any]:
    return service.household_out(service.get_household(session, principal, household_id))


@router.put("/households/{household_id}")
def update_household(
    household_id: int, body: HouseholdUpdate, principal: HouseholdWriter, session: SessionDep, locale: Locale
) -> dict[str, Any]:
    """Edit a household made on `version` (fields left out keep their values); a stale version is 409
    with the current copy."""
    current = service.get_household(session, principal, household_id)
    patch = HouseholdPatch.model_validate(body.model_dump(exclude={"version"}, exclude_unset=True))
    stored, status = service.save_household(session, principal, current.uuid, body.version, patch, locale=locale)
    if status == "conflict":
        raise _stale(service.household_out(stored))
    return service.household_out(stored, changed=status == "updated")


@router.get("/households/{household_id}/members")
def household_members(
    household_id: int, principal: ChildReader, session: SessionDep, page: Paging
) -> list[dict[str, Any]] | Page[dict[str, Any]]:
    """Children and guardians of a household (ID numbers masked)."""
    return page.answer(service.household_members(session, principal, household_id), key=lambda p: (p["id"],))


@router.post("/persons", status_code=201)
def create_person(body: PersonCreate, principal: ChildWriter, session: SessionDep) -> dict[str, Any]:
    """Register a child or guardian; the ID number is checked, encrypted and masked in answers."""
    data = PersonData.model_validate({**body.model_dump(exclude={"uuid"}), "device_time": body.device_time})
    stored, status = service.save_person(session, principal, body.uuid or service.new_uuid(), None, data)
    if status == "conflict":
        current = service.person_out(session, principal, stored, guardians=False)
        raise Conflict("该UUID已用于另一人员", "This UUID belongs to another person", current=current)
    return service.person_out(session, principal, stored, changed=status == "created")


@router.get("/persons/{person_id}")
def get_person(person_id: int, principal: ChildReader, session: SessionDep) -> dict[str, Any]:
    """One child or guardian, ID number masked (the region, first 6, only); the exact birth date only for
    roles that may reveal ID numbers, the birth month for the others; the read is audited."""
    return service.person_detail(session, principal, person_id)


@router.put("/persons/{person_id}")
def update_person(
    person_id: int, body: PersonUpdate, principal: ChildWriter, session: SessionDep, locale: Locale
) -> dict[str, Any]:
    """Edit a person made on `version` (fields left out keep their values; the ID number is never erased
    by a role that cannot see it); a stale version is 409 with the current copy."""
    current = service.get_person(session, principal, person_id)
    patch = PersonPatch.model_validate(body.model_dump(exclude={"version"}, exclude_unset=True))
    stored, status = service.save_person(session, principal, current.uuid, body.version, patch, locale=locale)
    if status == "conflict":
        raise _stale(service.person_out(session, principal, stored, guardians=False))
    return service.person_out(session, principal, stored, changed=status == "updated")


@router.post("/persons/{person_id}/reveal-id")
def reveal_id(person_id: int, body: RevealRequest, principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    """The full ID number (police and coordinators; every reveal is audited)."""
    return {"id_number": service.reveal_id(session, principal, person_id, reason=body.reason)}


@router.get("/persons/{person_id}/risk-history")
def risk_history(
    person_id: int, principal: ChildReader, session: SessionDep, page: Paging
) -> list[dict[str, Any]] | Page[dict[str, Any]]:
    """Every change of the child's risk level, oldest first."""
    return page.answer(service.risk_history(session, principal, person_id), key=lambda c: (c["id"],))


@router.post("/persons/{person_id}/risk-level")
def override_risk(
    person_id: int, body: RiskOverride, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    """A coordinator sets the level with a reason; the history keeps the computed one too."""
    stored = service.override_risk(session, principal, person_id, body.level, body.reason)
    return service.person_out(session, principal, stored, guardians=False)


@router.get("/risk-persons")
def list_risk_persons(
    principal: RiskPersonReader, session: SessionDep, page: Paging
) -> list[dict[str, Any]] | Page[dict[str, Any]]:
    """附件2 entries in your jurisdiction (police and coordinators only)."""
    # Paged before the entries are built: the audit entry names the page sent, not the whole ledger.
    rows = page.answer(service.list_risk_persons(session, principal), key=lambda r: (r.id or 0,))
    if isinstance(rows, Page):
        return Page(items=[service.risk_person_public(r) for r in rows.items], next_cursor=rows.next_cursor)
    return [service.risk_person_public(r) for r in rows]


@router.post("/risk-persons", status_code=201)
def create_risk_person(body: RiskPersonData, principal: RiskPersonWriter, session: SessionDep) -> dict[str, Any]:
    return service.risk_person_public(service.create_risk_person(session, principal, body))


@router.get("/risk-persons/{risk_person_id}")
def get_risk_person(risk_person_id: int, principal: RiskPersonReader, session: SessionDep) -> dict[str, Any]:
    """One 附件2 entry with its control state (`control`), check-ins, household links and edit history
    (`history`: each changed field, who, when, before and after); a sealed one is 404 like an id that
    does not exist, except to the police officer who opened it, for `sealed_opening_minutes`."""
    return risk_persons.detail(session, service.get_risk_person(session, principal, risk_person_id))


@router.put("/risk-persons/{risk_person_id}")
def update_risk_person(
    risk_person_id: int, body: RiskPersonUpdate, principal: RiskPersonWriter, session: SessionDep, locale: Locale
) -> dict[str, Any]:
    """Edit an entry made on `version` (fields left out keep their values); a new ID number or birth date
    is judged again for sealing. Every changed field is appended to the entry's history. A stale version is
    409 with the current copy; a sealed entry is 404 except to the police officer who opened it."""
    patch = RiskPersonPatch.model_validate(body.model_dump(exclude={"version"}, exclude_unset=True))
    stored, status = service.update_risk_person(session, principal, risk_person_id, body.version, patch,
                                                locale=locale)
    if status == "conflict":
        raise _stale(service.risk_person_public(stored))
    return risk_persons.detail(session, stored)


@router.post("/risk-persons/{risk_person_id}/open-sealed")
def open_sealed_risk_person(
    risk_person_id: int, body: OpenSealed, principal: SealedOpener, session: SessionDep
) -> dict[str, Any]:
    """Open a sealed entry (犯罪记录封存; police only, with a reason): the entry, and `opened_until`, until
    when this officer finds it by id and may correct it. Every opening is audited (`sealed.open`, with the
    reason). 404 for everyone else and for an entry that is not sealed."""
    return service.open_sealed_risk_person(session, principal, risk_person_id, body.reason)
