"""Push kinds "household" and "person": registry edits carrying the version they were made on."""

from __future__ import annotations

from pydantic import BaseModel
from sqlmodel import Session

from backend.accounts.principal import Principal
from backend.registry import service
from backend.registry.schemas import HouseholdData, HouseholdPatch, PersonData, PersonPatch
from backend.sync.itemwise import in_savepoint, parse_data
from backend.sync.kinds import ItemResult, ItemStatus, PushItem, register_kind

# A resend of one's own create, stored, whose record has since left one's area (a coordinator moved the
# household): nothing is new and nothing of the record may be shown.
STORED_ELSEWHERE = ItemResult(ItemStatus.duplicate, record=None)


def push_households(session: Session, principal: Principal, items: list[PushItem], locale: str) -> list[ItemResult]:
    """Create or edit households one by one (each in a savepoint)."""
    results: list[ItemResult] = []
    for item in items:
        # An edit names only what it changes (sync.md, "Editing a record"); a new record is whole.
        data = parse_data(HouseholdData if item.base_version is None else HouseholdPatch, item.data, locale)
        if isinstance(data, ItemResult):
            results.append(data)
            continue

        def work(item: PushItem = item, data: BaseModel = data) -> ItemResult:
            try:
                stored, status = service.save_household(
                    session, principal, item.client_uuid, item.base_version, data, locale=locale
                )
            except service.HouseholdStoredElsewhere:
                return STORED_ELSEWHERE
            return ItemResult(ItemStatus(status), record=service.household_out(stored))

        results.append(in_savepoint(session, locale, work))
    return results


def push_persons(session: Session, principal: Principal, items: list[PushItem], locale: str) -> list[ItemResult]:
    """Create or edit children and guardians; an invalid ID number rejects that item only."""
    results: list[ItemResult] = []
    for item in items:
        data = parse_data(PersonData if item.base_version is None else PersonPatch, item.data, locale)
        if isinstance(data, ItemResult):
            results.append(data)
            continue

        def work(item: PushItem = item, data: BaseModel = data) -> ItemResult:
            try:
                stored, status = service.save_person(
                    session, principal, item.client_uuid, item.base_version, data, locale=locale
                )
            except service.PersonStoredElsewhere:
                return STORED_ELSEWHERE
            return ItemResult(ItemStatus(status), record=service.person_out(session, principal, stored))

        results.append(in_savepoint(session, locale, work))
    return results


register_kind("household", push_households, order=10, data_model=HouseholdData, edit_model=HouseholdPatch)
# Items of one kind keep the phone's order: push a guardian before the child that names it.
register_kind("person", push_persons, order=20, data_model=PersonData, edit_model=PersonPatch)
