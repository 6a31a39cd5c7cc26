"""Households, children, guardians, risk levels and the risk persons ledger, scoped to the caller."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from backend.accounts import scope
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.core import clock, crypto, placement
from backend.core.db import dialect_insert
from backend.core.errors import Conflict, InvalidInput, NotFound, validation_problem
from backend.core.geo import point, to_wgs84
from backend.core.pagination import Page, decode_cursor, encode_cursor
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.registry import duplicates, idnumber, risk_person_history
from backend.registry.models import (
    Guardianship,
    Household,
    Person,
    PersonRole,
    RiskLevel,
    RiskLevelChange,
    RiskPerson,
    risk_level_code,
    risk_reasons_public,
)
from backend.registry.schemas import HouseholdData, PersonData, RiskPersonData
from backend.sealing import service as sealing
from backend.sync import revisions


class HouseholdNotFound(NotFound):
    code = "household-not-found"
    title_zh = "该户不存在或不在您的辖区内"
    title_en = "Household not found"


class PersonNotFound(NotFound):
    code = "person-not-found"
    title_zh = "该人员不存在或不在您的辖区内"
    title_en = "Person not found"


class HouseholdStoredElsewhere(HouseholdNotFound):
    """The caller's own create, resent, was stored; the household has since left the caller's area.
    REST answers it as not found; a push answers `duplicate` without the record (sync.md)."""


class PersonStoredElsewhere(PersonNotFound):
    """The same for a child or guardian whose household has left the caller's area."""


class StaleEdit(Conflict):
    code = "stale-edit"
    title_zh = "该记录已被他人修改"
    title_en = "The record was changed by someone else"


class GridUnknown(InvalidInput):
    code = "household-grid-unknown"
    title_zh = "无法确定所属网格"
    title_en = "The household's grid cannot be determined"


def content_hash(payload: dict[str, Any]) -> str:
    """Keyed digest of a record's content as submitted (keyed: the content holds ID numbers)."""
    raw = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return crypto.keyed_digest(raw.encode())


def _placed(device_time: datetime | None, created_at: datetime) -> dict[str, Any]:
    """counted_at and clock_suspect of a record created now: decided once, on create; edits keep them."""
    placed = placement.place(device_time, created_at)
    return {"counted_at": placed.counted_at, "clock_suspect": placed.clock_suspect}


def _unit_path(session: Session, unit_id: int) -> str | None:
    return orgunits.unit_path(session, unit_id)


def _covered(session: Session, principal: Principal, unit_id: int) -> bool:
    """For writes (household.write, child.write): the jurisdiction is the whole scope there, since no
    role that reaches children by assignment may write them (tests/test_permission_matrix.py, the
    helper's actions). Reads go through accounts.scope."""
    path = _unit_path(session, unit_id)
    return path is not None and principal.covers(path)


# ---------------------------------------------------------------- households


def household_public(h: Household) -> dict[str, Any]:
    return {
        "id": h.id,
        "uuid": str(h.uuid),
        "org_unit_id": h.org_unit_id,
        "address": h.address,
        "head_name": h.head_name,
        "contact": h.contact,
        "lon": h.lon,
        "lat": h.lat,
        "note": h.note,
        "version": h.version,
        "updated_at": clock.as_utc(h.updated_at).isoformat(),
        "counted_at": clock.as_utc(h.counted_at).isoformat(),
        "clock_suspect": bool(h.clock_suspect),
    }


def _resolve_grid(
    session: Session, principal: Principal, data: HouseholdData
) -> tuple[int, float | None, float | None]:
    lon = lat = None
    if data.lon is not None and data.lat is not None:
        lon, lat = to_wgs84(data.lon, data.lat, data.crs)
    if data.grid_id is not None:
        unit = session.get(OrgUnit, data.grid_id)
        if unit is None or not principal.covers(unit.path) or unit.level != OrgLevel.grid.value:
            raise GridUnknown(
                "所选网格不存在或不在您的辖区内", "The grid does not exist or is outside your area", field="grid_id"
            )
        assert unit.id is not None
        return unit.id, lon, lat
    if lon is None or lat is None:
        raise GridUnknown("请填写位置或选择网格", "Give the household's location or its grid", field="lon")
    found = orgunits.locate(session, lon, lat, within_path=principal.org_path)
    if found is None or found.id is None:
        raise GridUnknown(
            "该位置不在您辖区内的任何网格中，请核对定位或选择网格",
            "The location is in none of your grids; check the fix or choose the grid",
            field="lon",
        )
    return found.id, lon, lat


def _household_values(data: HouseholdData, grid_id: int, lon: float | None, lat: float | None) -> dict[str, Any]:
    return {
        "org_unit_id": grid_id,
        "address": data.address,
        "head_name": data.head_name,
        "contact": data.contact,
        "lon": lon,
        "lat": lat,
        "location": point(lon, lat) if lon is not None and lat is not None else None,
        "note": data.note,
    }


def _household_by_uuid(session: Session, uid: UUID) -> Household | None:
    return session.execute(select(Household).where(col(Household.uuid) == uid)).scalar_one_or_none()


def save_household(
    session: Session,
    principal: Principal,
    uid: UUID,
    base_version: int | None,
    data: HouseholdData | BaseModel,
    *,
    locale: str = "zh",
) -> tuple[Household, str]:
    """Create (base_version None, `data` a HouseholdData) or edit a household (`data` a HouseholdPatch:
    fields left out keep their stored values). Returns the stored row and one of created, updated,
    duplicate or conflict. A create races safely: the unique uuid decides."""
    principal.require(Action.household_write)
    if base_version is None:
        assert isinstance(data, HouseholdData)
        return _create_household(session, principal, uid, data)
    given = data.model_dump(mode="json", exclude_unset=True)
    digest = content_hash(given)
    current = _household_by_uuid(session, uid)
    if current is None or not _covered(session, principal, current.org_unit_id):
        raise HouseholdNotFound()
    if current.content_hash == digest and current.version >= base_version:
        return current, "duplicate"
    if ("lon" in given) != ("lat" in given):  # half a point would keep the stored other half
        missing = "lon" if "lat" in given else "lat"
        raise InvalidInput("经度和纬度须同时填写", "Give lon and lat together", field=missing)
    merged = _validated(HouseholdData, {**_household_as_data(current), **given}, locale)
    grid_id, lon, lat = _edited_place(session, principal, current, merged, given)
    moved = grid_id != current.org_unit_id  # read now: `current` is reloaded below
    result = session.execute(
        update(Household)
        .where(col(Household.uuid) == uid, col(Household.version) == base_version)
        .values(
            version=base_version + 1,
            content_hash=digest,
            rev=revisions.allocate(session),
            updated_at=clock.now(),
            **_household_values(merged, grid_id, lon, lat),
        )
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    stored = _household_by_uuid(session, uid)
    assert stored is not None
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return stored, "conflict"
    if moved:
        _move_dependents(session, stored)
    return stored, "updated"


def _create_household(
    session: Session, principal: Principal, uid: UUID, data: HouseholdData
) -> tuple[Household, str]:
    digest = content_hash(data.model_dump(mode="json"))
    resent = _resent_create(session, principal, _household_by_uuid(session, uid), digest)
    if resent is not None:
        return resent, "duplicate"
    grid_id, lon, lat = _resolve_grid(session, principal, data)
    now = clock.now()
    insert = dialect_insert(session)
    inserted = session.execute(
        insert(Household)
        .values(
            uuid=uid,
            version=1,
            content_hash=digest,
            created_hash=digest,
            rev=revisions.allocate(session),
            created_by=principal.user_id,
            created_at=now,
            updated_at=now,
            **_placed(data.device_time, now),
            **_household_values(data, grid_id, lon, lat),
        )
        .on_conflict_do_nothing()
        .returning(col(Household.id))
    ).scalar_one_or_none()
    stored = _household_by_uuid(session, uid)
    assert stored is not None
    if not _covered(session, principal, stored.org_unit_id):
        raise HouseholdNotFound()
    if inserted is not None:
        return stored, "created"
    return stored, "duplicate" if stored.content_hash == digest else "conflict"


def _edited_place(
    session: Session, principal: Principal, current: Household, merged: HouseholdData, given: dict[str, Any]
) -> tuple[int, float | None, float | None]:
    """Grid and point after an edit. The grid changes only for a new `grid_id` or a point that really
    moved: a phone sending back the point it holds (or editing a household a coordinator placed by
    grid) keeps the household where it is."""
    if merged.grid_id is not None and merged.grid_id != current.org_unit_id:
        return _resolve_grid(session, principal, merged)
    lon, lat = current.lon, current.lat
    if "lon" in given or "lat" in given:
        lon = lat = None
        if merged.lon is not None and merged.lat is not None:
            lon, lat = to_wgs84(merged.lon, merged.lat, merged.crs)
    moved = (
        lon is not None and lat is not None and (current.lon is None or current.lat is None
                                                 or abs(lon - current.lon) > 1e-9 or abs(lat - current.lat) > 1e-9)
    )
    if moved and merged.grid_id is None:
        return _resolve_grid(session, principal, merged)
    return current.org_unit_id, lon, lat


def _household_as_data(h: Household) -> dict[str, Any]:
    """A stored household in the fields of HouseholdData (its point in WGS-84), for merging an edit."""
    return {"address": h.address, "head_name": h.head_name, "contact": h.contact, "lon": h.lon, "lat": h.lat,
            "crs": "wgs84", "note": h.note}


def _move_dependents(session: Session, household: Household) -> None:
    """Children and guardians of a household live where it lives, and its visits go with it: a move
    takes them along. The database leaves each member a tombstone, so the phones of the unit they
    left drop them; the visits move to the new unit (the old one reads them no more) with new
    revisions, so the phones of the new unit receive the history."""
    from backend.visits.models import Visit  # the visits domain builds on the registry, not the reverse

    members = list(session.execute(
        select(col(Person.id)).where(
            col(Person.household_id) == household.id, col(Person.org_unit_id) != household.org_unit_id
        )
    ).scalars())
    visits = list(session.execute(select(col(Visit.id)).where(col(Visit.household_id) == household.id)).scalars())
    now = clock.now()
    revisions.restamp(session, Person, members, org_unit_id=household.org_unit_id, updated_at=now)
    # The visit's answers (六看六问) are about the family: they are read where the family lives now.
    revisions.restamp(session, Visit, visits, org_unit_id=household.org_unit_id)
    # The children's cases (个案), their services and the help given to them go along too.
    from backend.cases.service import follow_children

    follow_children(session, members, household.org_unit_id)
    session.expire_all()


def _touch_wards(session: Session, guardian_id: int) -> None:
    """A child's record carries its guardians' names and numbers: a guardian's edit is news for the
    phones that hold the child, so each ward gets a new revision."""
    wards = list(session.execute(
        select(col(Guardianship.child_id)).where(col(Guardianship.guardian_id) == guardian_id)
    ).scalars())
    revisions.restamp(session, Person, wards)


M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], merged: dict[str, Any], locale: str) -> M:
    """The merged record checked as a whole (an edit may null out a required field)."""
    try:
        return model.model_validate(merged)
    except ValidationError as exc:
        raise validation_problem([dict(e) for e in exc.errors()], locale) from exc


def get_household(session: Session, principal: Principal, household_id: int) -> Household:
    """A household the caller may see (its jurisdiction; a helper's: of a child assigned to it), else 404."""
    principal.require(Action.household_read)
    return scope.get_visible(session, principal, Household, household_id, not_found=HouseholdNotFound)


def list_households(
    session: Session, principal: Principal, *, unit_id: int | None, cursor: str | None, limit: int
) -> Page[dict[str, Any]]:
    """Households the caller may see (in its jurisdiction, or a unit inside it), by id."""
    principal.require(Action.household_read)
    query = select(Household).where(scope.visible(principal, Household))
    if unit_id is not None:
        unit = orgunits.get_visible_unit(session, principal, unit_id)
        query = query.where(col(Household.org_unit_id).in_(orgunits.subtree_unit_ids(unit.path)))
    position = decode_cursor(cursor)
    if position:
        query = query.where(col(Household.id) > int(position.get("id", 0)))
    rows = list(session.execute(query.order_by(col(Household.id)).limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(
        items=[household_out(h) for h in rows],
        next_cursor=encode_cursor({"id": rows[-1].id}) if more and rows else None,
    )


# ---------------------------------------------------------------- records as answers (audited)
# Every answer that carries a household or a person is built here, and says so to the request's
# audit entry (backend/audit/disclosure.py): the records, the guardians named inside them, and
# whether the request wrote them.


def household_out(h: Household, *, changed: bool = False) -> dict[str, Any]:
    """household_public of a household an answer carries, declared to the request's audit entry."""
    declare = disclosure.changed if changed else disclosure.record
    declare(disclosure.HOUSEHOLD, [h.id], unit_id=h.org_unit_id)
    return household_public(h)


def persons_out(
    session: Session, principal: Principal, people: list[Person], *, changed: bool = False, guardians: bool = True
) -> list[dict[str, Any]]:
    """person_public of each person (with their guardians unless `guardians` is false), as the caller
    may see them; the people and the guardians named inside them are declared to the request's audit
    entry."""
    ids = [p.id for p in people if p.id is not None]
    if not ids:
        return []
    declare = disclosure.changed if changed else disclosure.record
    declare(disclosure.PERSON, ids, unit_id=people[0].org_unit_id if len(people) == 1 else None)
    dated = sees_birth_date(principal)
    if not guardians:
        return [person_public(p, birth_date=dated) for p in people]
    named = guardians_of(session, ids)
    disclosure.record(disclosure.PERSON, session.execute(
        select(col(Guardianship.guardian_id)).where(col(Guardianship.child_id).in_(ids))).scalars())
    return [person_public(p, named.get(p.id or 0, []), birth_date=dated) for p in people]


def person_out(
    session: Session, principal: Principal, p: Person, *, changed: bool = False, guardians: bool = True
) -> dict[str, Any]:
    """One person as `persons_out` gives them."""
    return persons_out(session, principal, [p], changed=changed, guardians=guardians)[0]


# ---------------------------------------------------------------- persons


@dataclass(frozen=True)
class SealedId:
    cipher: str
    key_id: str
    index: str
    masked: str


def seal_id(value: str) -> SealedId:
    sealed = crypto.encrypt(value)
    return SealedId(sealed.token, sealed.key_id, crypto.blind_index(value), idnumber.mask(value))


def sees_birth_date(principal: Principal) -> bool:
    """Whether the caller receives a person's exact birth date. The masked ID number keeps the region
    only, and everyone else gets the birth month: with the date, the sequence digits of the number are
    all that is missing, and only roles that may reveal the number anyway (every read audited) get it
    (README, "What each role sees")."""
    return principal.can(Action.child_reveal_id)


def person_public(
    p: Person, guardians: list[dict[str, Any]] | None = None, *, birth_date: bool = False
) -> dict[str, Any]:
    """A person as the API shows it; `birth_date` (sees_birth_date of the caller) adds the exact date,
    otherwise it is null and only `birth_month` is given."""
    out: dict[str, Any] = {
        "id": p.id,
        "uuid": str(p.uuid),
        "role": p.role,
        "household_id": p.household_id,
        "org_unit_id": p.org_unit_id,
        "name": p.name,
        "id_number_masked": p.id_masked,
        "sex": p.sex,
        "birth_date": p.birth_date.isoformat() if p.birth_date and birth_date else None,
        "birth_month": p.birth_date.isoformat()[:7] if p.birth_date else None,
        "hukou_place": p.hukou_place,
        "residence": p.residence,
        "in_school": p.in_school,
        "contact": p.contact,
        "categories": p.categories,
        "groups": p.groups,
        "signs": p.signs,
        "task_force": p.task_force,
        "assistance": p.assistance,
        "key_minor": p.key_minor,
        "vulnerable": p.vulnerable,
        "risk_level": p.risk_level,
        "risk_level_code": risk_level_code(p.risk_level),
        "risk_reasons": risk_reasons_public(p.risk_reasons),
        "version": p.version,
        "updated_at": clock.as_utc(p.updated_at).isoformat(),
        "counted_at": clock.as_utc(p.counted_at).isoformat(),
        "clock_suspect": bool(p.clock_suspect),
    }
    if guardians is not None:
        out["guardians"] = guardians
    return out


def _person_by_uuid(session: Session, uid: UUID) -> Person | None:
    return session.execute(select(Person).where(col(Person.uuid) == uid)).scalar_one_or_none()


def _checked_id(data: PersonData, today: date) -> idnumber.IdNumber | None:
    if not data.id_number:
        return None
    return idnumber.parse_for_person(
        data.id_number, today=today, sex=data.sex, birth_date=data.birth_date, minor=data.role is PersonRole.child
    )


def _person_values(
    session: Session, principal: Principal, data: PersonData, parsed: idnumber.IdNumber | None
) -> dict[str, Any]:
    household_id: int | None = None
    if data.household_uuid is not None:
        h = _household_by_uuid(session, data.household_uuid)
        if h is None or not _covered(session, principal, h.org_unit_id):
            raise HouseholdNotFound(
                "所属户不存在或不在您的辖区内，请先同步该户",
                "The household is unknown or outside your area",
                field="household_uuid",
            )
        household_id, unit_id = h.id, h.org_unit_id
    elif data.org_unit_id is not None:
        unit = orgunits.get_visible_unit(session, principal, data.org_unit_id)
        assert unit.id is not None
        unit_id = unit.id
    else:
        unit_id = principal.org_unit_id
    if data.role is PersonRole.child and parsed is None and data.birth_date is not None:
        today = clock.now().date()
        age = (
            today.year
            - data.birth_date.year
            - ((today.month, today.day) < (data.birth_date.month, data.birth_date.day))
        )
        if age >= 18:
            raise idnumber.InvalidIdNumber(
                "出生日期显示已满18周岁，不是未成年人", "The birth date says 18 or older", field="birth_date"
            )
    values: dict[str, Any] = {
        "role": data.role.value,
        "household_id": household_id,
        "org_unit_id": unit_id,
        "name": data.name,
        "sex": (parsed.sex.value if parsed else (data.sex.value if data.sex else None)),
        "birth_date": parsed.birth_date if parsed else data.birth_date,
        "hukou_place": data.hukou_place,
        "residence": data.residence,
        "in_school": data.in_school,
        "contact": data.contact,
        "categories": [c.value for c in data.categories],
        "groups": [g.value for g in data.groups],
        "signs": data.signs,
        "task_force": data.task_force,
        "assistance": data.assistance,
        "key_minor": data.key_minor or bool(data.categories),
        "vulnerable": data.vulnerable,
    }
    if parsed is not None:
        sealed = seal_id(parsed.value)
        values.update(id_cipher=sealed.cipher, id_key_id=sealed.key_id, id_index=sealed.index, id_masked=sealed.masked)
    else:
        values.update(id_cipher=None, id_key_id=None, id_index=None, id_masked=None)
    return values


def _set_guardians(session: Session, principal: Principal, child: Person, data: PersonData) -> None:
    assert child.id is not None
    session.execute(delete(Guardianship).where(col(Guardianship.child_id) == child.id))
    for link in data.guardians:
        guardian = _person_by_uuid(session, link.uuid)
        if (guardian is None or guardian.retired_at is not None  # retired: backend/registry/retention.py
                or not _covered(session, principal, guardian.org_unit_id)):
            raise PersonNotFound(
                "监护人不存在，请先同步监护人信息",
                "The guardian is unknown; push the guardian first",
                field="guardians",
            )
        if guardian.id == child.id or guardian.role != PersonRole.guardian.value:
            raise InvalidInput(
                "监护人须为登记为监护人的另一人员", "A guardian is another person, registered as a guardian",
                field="guardians",
            )
        session.add(Guardianship(child_id=child.id, guardian_id=guardian.id or 0, relation=link.relation))
    session.flush()


def save_person(
    session: Session,
    principal: Principal,
    uid: UUID,
    base_version: int | None,
    data: PersonData | BaseModel,
    *,
    locale: str = "zh",
) -> tuple[Person, str]:
    """Create (base_version None, `data` a PersonData) or edit a child or guardian (`data` a
    PersonPatch: fields left out keep their stored values, and the ID number is never erased by
    someone who cannot see it); the ID number is validated; same statuses as households."""
    principal.require(Action.child_write)
    revisions.hold(session)  # before the household is read: see revisions.hold
    if base_version is None:
        assert isinstance(data, PersonData)
        return _create_person(session, principal, uid, data)
    given = data.model_dump(mode="json", exclude_unset=True)
    digest = _person_digest(principal, given)
    current = _person_by_uuid(session, uid)
    if current is None or current.retired_at is not None or not _covered(session, principal, current.org_unit_id):
        raise PersonNotFound()
    if _resent(principal, current, digest, given) and current.version >= base_version:
        return current, "duplicate"
    new_id = given.pop("id_number", _ABSENT)
    keep_id = _keeps_id_number(principal, current, new_id)
    if not sees_birth_date(principal) and (given.get("birth_date") is None or current.id_cipher is not None):
        # The caller was given the birth month, not the date: a null it sends back keeps the date, and
        # where an ID number fixes the date its guess is ignored, not checked (a check would tell it
        # which day is right, and with the day the number's sequence is all that stays hidden).
        given.pop("birth_date", None)
    merged_fields = {**_person_as_data(session, current), **{k: v for k, v in given.items() if k != "guardians"}}
    merged_fields["id_number"] = None if keep_id else new_id
    if not keep_id and not sees_birth_date(principal) and "birth_date" not in given:
        # A new number from a role that got the month: the number decides the date. Checked against
        # the stored date, "does not match" for each wrong day would give the day away.
        merged_fields["birth_date"] = None
    merged_fields["guardians"] = given.get("guardians") or []
    merged = _validated(PersonData, merged_fields, locale)
    parsed = None if keep_id else _checked_id(merged, clock.now().date())
    values = _person_values(session, principal, merged, parsed)
    if keep_id:
        for column in ("id_cipher", "id_key_id", "id_index", "id_masked"):
            del values[column]
        if current.id_cipher is not None:
            _check_against_kept_id(current, merged)
            values.update(sex=current.sex, birth_date=current.birth_date)
    elif values["id_index"] is not None:
        holder = session.execute(select(col(Person.uuid)).where(col(Person.id_index) == values["id_index"])).scalar()
        if holder is not None and holder != uid:
            raise duplicates.refused(session, principal, Person, values["id_index"], unit_id=values["org_unit_id"],
                                     operation="update")
    statement = (
        update(Person)
        .where(col(Person.uuid) == uid, col(Person.version) == base_version)
        .values(
            version=base_version + 1,
            content_hash=digest,
            rev=revisions.allocate(session),
            updated_at=clock.now(),
            **values,
        )
        .execution_options(synchronize_session=False)
    )
    if values.get("id_index") is None:
        result = session.execute(statement)
    else:
        try:
            with session.begin_nested():  # a racing write of the same number loses on the unique index
                result = session.execute(statement)
        except IntegrityError:
            raise duplicates.refused(session, principal, Person, values["id_index"], unit_id=values["org_unit_id"],
                                     operation="update") from None
    session.expire_all()
    stored = _person_by_uuid(session, uid)
    assert stored is not None
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return stored, "conflict"
    if "guardians" in given:
        _set_guardians(session, principal, stored, merged)
    assert stored.id is not None
    _touch_wards(session, stored.id)
    return stored, "updated"


_ABSENT: Any = object()


def _keeps_id_number(principal: Principal, current: Person, sent: Any) -> bool:
    """Whether an edit leaves the stored ID number as it is: the field left out, sent back in a
    masked form the caller holds (today's or an older one), or nulled by a role that may not see the
    number (and so cannot mean to erase it)."""
    if sent is _ABSENT:
        return True
    if sent is None:
        return not principal.can(Action.child_reveal_id)
    return current.id_masked is not None and idnumber.is_masked(str(sent))


def _check_against_kept_id(current: Person, merged: PersonData) -> None:
    """Sex and birth date come from a stored ID number; an edit cannot contradict it."""
    if merged.sex is not None and merged.sex.value != current.sex:
        raise idnumber.InvalidIdNumber("性别与身份证号码不符", "The sex does not match the ID number", field="sex")
    if merged.birth_date is not None and merged.birth_date != current.birth_date:
        raise idnumber.InvalidIdNumber(
            "出生日期与身份证号码不符", "The birth date does not match the ID number", field="birth_date"
        )


def _person_as_data(session: Session, p: Person) -> dict[str, Any]:
    """A stored person in the fields of PersonData (without the ID number), for merging an edit."""
    household_uuid = (
        session.execute(select(col(Household.uuid)).where(col(Household.id) == p.household_id)).scalar_one()
        if p.household_id is not None
        else None
    )
    return {
        "role": p.role,
        "household_uuid": str(household_uuid) if household_uuid is not None else None,
        "name": p.name,
        "sex": p.sex,
        "birth_date": p.birth_date.isoformat() if p.birth_date else None,
        "hukou_place": p.hukou_place,
        "residence": p.residence,
        "in_school": p.in_school,
        "contact": p.contact,
        "categories": list(p.categories),
        "groups": list(p.groups),
        "signs": p.signs,
        "task_force": p.task_force,
        "assistance": p.assistance,
        "key_minor": p.key_minor,
        "vulnerable": p.vulnerable,
        "org_unit_id": p.org_unit_id if p.household_id is None else None,
    }


def _create_person(session: Session, principal: Principal, uid: UUID, data: PersonData) -> tuple[Person, str]:
    parsed = _checked_id(data, clock.now().date())
    digest = _person_digest(principal, data.model_dump(mode="json"))
    resent = _resent_create(session, principal, _person_by_uuid(session, uid), digest)
    if resent is not None:
        return resent, "duplicate"
    values = _person_values(session, principal, data, parsed)
    now = clock.now()
    insert = dialect_insert(session)
    inserted = session.execute(
        insert(Person)
        .values(
            uuid=uid,
            version=1,
            content_hash=digest,
            created_hash=digest,
            rev=revisions.allocate(session),
            risk_reasons=[],
            created_by=principal.user_id,
            created_at=now,
            updated_at=now,
            **_placed(data.device_time, now),
            **values,
        )
        .on_conflict_do_nothing()
        .returning(col(Person.id))
    ).scalar_one_or_none()
    stored = _person_by_uuid(session, uid)
    if stored is None:  # not inserted, and the uuid is not ours: the ID number is held
        raise duplicates.refused(session, principal, Person, values["id_index"], unit_id=values["org_unit_id"],
                                 operation="create")
    if not _covered(session, principal, stored.org_unit_id):
        raise PersonNotFound()
    if inserted is None:
        return stored, "duplicate" if _resent(principal, stored, digest, data.model_dump(mode="json")) else "conflict"
    _set_guardians(session, principal, stored, data)
    return stored, "created"


RecordT = TypeVar("RecordT", Household, Person)


def _resent_create(session: Session, principal: Principal, stored: RecordT | None, digest: str) -> RecordT | None:
    """The record, when this create is its creator's resend of the create as first stored (the phone
    lost the answer): a duplicate, even after others edited or moved the record meanwhile. Its stored
    copy goes back only while the caller still covers it; otherwise the resend is known to be stored
    and nothing of the record is shown (`...StoredElsewhere`). None: not such a resend."""
    if stored is None or stored.created_hash != digest or stored.created_by != principal.user_id:
        return None
    if isinstance(stored, Person) and stored.retired_at is not None:
        return None
    if not _covered(session, principal, stored.org_unit_id):
        raise HouseholdStoredElsewhere() if isinstance(stored, Household) else PersonStoredElsewhere()
    return stored


def _person_digest(principal: Principal, body: dict[str, Any]) -> str:
    """The digest a person's resend is recognised by: its content and its writer. A person's record
    holds what most callers are not shown (the ID number; the birth date for roles that get the
    month), so `duplicate` for a resend of anyone else's write would confirm a guessed number or
    date: another caller's resend is never a duplicate, whatever it holds (it is a `conflict`)."""
    return content_hash({"writer": principal.user_id, "record": body})


def _resent(principal: Principal, stored: Person, digest: str, body: dict[str, Any]) -> bool:
    # Records written before 2026-11-30 carry the digest of the content alone: their resend is
    # recognised from the user who created them only.
    return stored.content_hash == digest or (
        stored.created_by == principal.user_id and stored.content_hash == content_hash(body)
    )


def get_person(session: Session, principal: Principal, person_id: int) -> Person:
    """A person the caller may see (its jurisdiction; a helper's: a child assigned to it), else 404 (also
    for roles that may not see children)."""
    principal.require(Action.child_read)
    p = scope.get_visible(session, principal, Person, person_id, not_found=PersonNotFound)
    if p.retired_at is not None:  # left the active registry (backend/registry/retention.py)
        raise PersonNotFound()
    return p


def guardians_of(session: Session, child_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Guardians (name, contact, relation) per child id."""
    out: dict[int, list[dict[str, Any]]] = {cid: [] for cid in child_ids}
    if not child_ids:
        return out
    rows = session.execute(
        select(
            col(Guardianship.child_id),
            col(Guardianship.relation),
            col(Person.uuid),
            col(Person.name),
            col(Person.contact),
        )
        .join(Person, col(Person.id) == col(Guardianship.guardian_id))
        .where(col(Guardianship.child_id).in_(child_ids))
        .order_by(col(Guardianship.child_id), col(Person.id))
    )
    for child_id, relation, uid, name, contact in rows.all():
        out[child_id].append({"uuid": str(uid), "name": name, "contact": contact, "relation": relation})
    return out


def person_detail(session: Session, principal: Principal, person_id: int) -> dict[str, Any]:
    """A person with guardians, ID masked; the read is audited."""
    p = get_person(session, principal, person_id)
    disclosure.event(session, "child.read", actor=principal, object_type="person", object_id=p.id,
                     org_unit_id=p.org_unit_id)
    return person_out(session, principal, p)


def household_members(session: Session, principal: Principal, household_id: int) -> list[dict[str, Any]]:
    h = get_household(session, principal, household_id)
    principal.require(Action.child_read)
    people = list(
        session.execute(select(Person).where(col(Person.household_id) == h.id, col(Person.retired_at).is_(None),
                                             scope.visible(principal, Person))
                        .order_by(col(Person.id))).scalars()
    )
    disclosure.record(disclosure.HOUSEHOLD, [h.id], unit_id=h.org_unit_id)
    return persons_out(session, principal, people)


def reveal_id(session: Session, principal: Principal, person_id: int, *, reason: str | None) -> str | None:
    """The full ID number, for roles that may reveal it; every reveal is audited."""
    principal.require(Action.child_reveal_id)
    p = get_person(session, principal, person_id)
    disclosure.event(session, "child.reveal_id", actor=principal, object_type="person", object_id=p.id,
                     org_unit_id=p.org_unit_id, details={"reason": reason})
    disclosure.record(disclosure.PERSON, [p.id], unit_id=p.org_unit_id)
    return crypto.decrypt(p.id_cipher) if p.id_cipher else None


def find_by_id_number(session: Session, principal: Principal, value: str) -> Person | None:
    """Exact lookup through the blind index, among the persons the caller may see."""
    principal.require(Action.child_read)
    p = session.execute(
        select(Person).where(col(Person.id_index) == crypto.blind_index(idnumber.normalise(value)),
                             scope.visible(principal, Person))
    ).scalar_one_or_none()
    return p if isinstance(p, Person) else None


# ---------------------------------------------------------------- risk levels


def set_risk_level(
    session: Session,
    *,
    person_id: int,
    previous: str | None,
    level: RiskLevel,
    reasons: list[dict[str, Any]],
    source: str,
    visit_id: int | None = None,
    actor_user_id: int | None = None,
) -> None:
    """Record a new level in the person's row and the history (the previous level is kept there)."""
    now = clock.now()
    disclosure.changed(disclosure.PERSON, [person_id])
    session.execute(
        update(Person)
        .where(col(Person.id) == person_id)
        .values(risk_level=level.value, risk_reasons=reasons, rev=revisions.allocate(session), updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.add(
        RiskLevelChange(
            person_id=person_id,
            previous_level=previous,
            level=level.value,
            source=source,
            reasons=reasons,
            visit_id=visit_id,
            actor_user_id=actor_user_id,
            created_at=now,
        )
    )


def override_risk(session: Session, principal: Principal, person_id: int, level: RiskLevel, reason: str) -> Person:
    """A coordinator's judgement replaces the computed level; the history keeps both."""
    principal.require(Action.risk_override)
    p = get_person(session, principal, person_id)
    assert p.id is not None
    reasons = [{"rule": "override", "reason_zh": reason, "reason_en": reason}]
    set_risk_level(
        session,
        person_id=p.id,
        previous=p.risk_level,
        level=level,
        reasons=reasons,
        source="override",
        actor_user_id=principal.user_id,
    )
    disclosure.event(session, "risk.override", actor=principal, object_type="person", object_id=p.id,
                     org_unit_id=p.org_unit_id, details={"from": p.risk_level, "to": level.value, "reason": reason})
    session.flush()
    session.refresh(p)
    return p


def risk_history(session: Session, principal: Principal, person_id: int) -> list[dict[str, Any]]:
    p = get_person(session, principal, person_id)
    disclosure.record(disclosure.PERSON, [p.id], unit_id=p.org_unit_id)
    rows = session.execute(
        select(RiskLevelChange).where(col(RiskLevelChange.person_id) == p.id).order_by(col(RiskLevelChange.id))
    ).scalars()
    return [
        {
            "id": r.id,
            "previous_level": r.previous_level,
            "previous_level_code": risk_level_code(r.previous_level),
            "level": r.level,
            "level_code": risk_level_code(r.level),
            "source": r.source,
            "reasons": risk_reasons_public(r.reasons),
            "visit_id": r.visit_id,
            "actor_user_id": r.actor_user_id,
            "created_at": clock.as_utc(r.created_at).isoformat(),
        }
        for r in rows
    ]


# ---------------------------------------------------------------- risk persons (附件2)


def risk_person_public(r: RiskPerson) -> dict[str, Any]:
    """A 附件2 entry as answers carry it, declared to the request's audit entry."""
    disclosure.record(disclosure.RISK_PERSON, [r.id], unit_id=r.org_unit_id)
    return {
        "id": r.id,
        "org_unit_id": r.org_unit_id,
        "name": r.name,
        "id_number_masked": r.id_masked,
        "sex": r.sex,
        "hukou_place": r.hukou_place,
        "residence": r.residence,
        "contact": r.contact,
        "categories": r.categories,
        "risk_level": r.risk_level,
        "risk_level_code": risk_level_code(r.risk_level),
        "control_measures": r.control_measures,
        "note": r.note,
        "control_status": r.control_status,
        "last_check_in_at": clock.as_utc(r.last_check_in_at).isoformat() if r.last_check_in_at else None,
        # True only in the answers of the police who opened it and of the write that sealed it.
        "sealed": bool(r.sealed),
        "version": r.version,
    }


def _checked_birth_date(value: date | None) -> date | None:
    if value is not None and not date(1900, 1, 1) <= value <= clock.china_date(clock.now()):
        raise InvalidInput("出生日期不合理", "The birth date is not plausible", field="birth_date")
    return value


def risk_person_values(
    session: Session,
    principal: Principal,
    data: RiskPersonData,
    *,
    record_at: datetime | None = None,
    sealed_if_unknown: bool = False,
) -> dict[str, Any]:
    """The stored fields of a 附件2 entry, `sealed` judged on the birth date the ID number (or, without
    one, `birth_date`) gives and the entry's day `record_at` (now for a new entry); without a birth
    date the entry keeps `sealed_if_unknown`."""
    birth = _checked_birth_date(data.birth_date)
    parsed = (
        idnumber.parse_for_person(data.id_number, today=clock.now().date(), sex=data.sex, birth_date=birth)
        if data.id_number
        else None
    )
    unit_id = principal.org_unit_id
    if data.org_unit_id is not None:
        unit = orgunits.get_visible_unit(session, principal, data.org_unit_id)
        unit_id = unit.id or unit_id
    values: dict[str, Any] = {
        "org_unit_id": unit_id,
        "name": data.name,
        "sex": parsed.sex.value if parsed else (data.sex.value if data.sex else None),
        "hukou_place": data.hukou_place,
        "residence": data.residence,
        "contact": data.contact,
        "categories": [c.value for c in data.categories],
        "risk_level": data.risk_level.value if data.risk_level else None,
        "control_measures": data.control_measures,
        "id_cipher": None,
        "id_key_id": None,
        "id_index": None,
        "id_masked": None,
        "sealed": sealing.judge(parsed.birth_date if parsed else birth, record_at or clock.now(),
                                unknown=sealed_if_unknown),
    }
    if parsed is not None:
        sealed = seal_id(parsed.value)
        values.update(id_cipher=sealed.cipher, id_key_id=sealed.key_id, id_index=sealed.index, id_masked=sealed.masked)
    return values


def _visible_id_holder(session: Session, index: str | None, *, other_than: int | None = None) -> bool:
    """Whether a visible 附件2 entry (other than `other_than`) holds the blind index. Sealed entries are
    not asked: a refusal would tell the caller that one exists."""
    if index is None:
        return False
    query = select(col(RiskPerson.id)).where(col(RiskPerson.id_index) == index, sealing.unsealed(RiskPerson))
    if other_than is not None:
        query = query.where(col(RiskPerson.id) != other_than)
    return session.execute(query).first() is not None


def create_risk_person(session: Session, principal: Principal, data: RiskPersonData) -> RiskPerson:
    principal.require(Action.risk_person_write)
    values = risk_person_values(session, principal, data)
    index = values["id_index"]
    if not values["sealed"] and _visible_id_holder(session, index):
        raise duplicates.refused(session, principal, RiskPerson, index, unit_id=values["org_unit_id"],
                                 operation="create")
    r = RiskPerson(created_by=principal.user_id, note=data.note, control_status=data.control_status.value, **values)
    try:
        with session.begin_nested():  # a racing insert of the same number loses on the unique index
            session.add(r)
            session.flush()
    except IntegrityError:
        if index is None:
            raise
        raise duplicates.refused(session, principal, RiskPerson, index, unit_id=values["org_unit_id"],
                                 operation="create") from None
    disclosure.changed(disclosure.RISK_PERSON, [r.id], unit_id=r.org_unit_id)
    disclosure.event(session, "risk_person.create", actor=principal, object_type="risk_person", object_id=r.id,
                     org_unit_id=r.org_unit_id)
    return r


def _visible_risk_person(session: Session, principal: Principal, risk_person_id: int, *,
                         for_update: bool = False) -> RiskPerson:
    """An entry of the caller's jurisdiction that is not sealed or that the caller has opened; else the
    404 of an id that does not exist. `for_update`: read as it is now and locked until the transaction
    ends, for a change that checks its state first (two edits on one version: one wins, one conflicts;
    two unlinks: one 409), after the sync counter's lock like every registry write."""
    query = select(RiskPerson).where(
        col(RiskPerson.id) == risk_person_id,
        orgunits.in_jurisdiction(principal, col(RiskPerson.org_unit_id)),
        sealing.visible_to(principal, "risk_person", RiskPerson),
    )
    if for_update:
        revisions.hold(session)
        query = query.with_for_update().execution_options(populate_existing=True)
    found = session.execute(query).scalar_one_or_none()
    if not isinstance(found, RiskPerson):
        raise NotFound()
    return found


def locked_risk_person(session: Session, principal: Principal, risk_person_id: int) -> RiskPerson:
    """`visible_risk_person`, read as it is now and locked for a change that depends on its state."""
    return _visible_risk_person(session, principal, risk_person_id, for_update=True)


def visible_risk_person(session: Session, principal: Principal, risk_person_id: int) -> RiskPerson:
    """An entry the caller may act on (its jurisdiction; sealed only if it opened it), unaudited: for
    writes that audit themselves (backend/registry/risk_persons.py)."""
    return _visible_risk_person(session, principal, risk_person_id)


def get_risk_person(session: Session, principal: Principal, risk_person_id: int) -> RiskPerson:
    principal.require(Action.risk_person_read)
    r = _visible_risk_person(session, principal, risk_person_id)
    disclosure.event(session, "risk_person.read", actor=principal, object_type="risk_person", object_id=r.id,
                     org_unit_id=r.org_unit_id, details={"sealed": True} if r.sealed else None)
    return r


def list_risk_persons(session: Session, principal: Principal) -> list[RiskPerson]:
    principal.require(Action.risk_person_read)
    return list(
        session.execute(
            select(RiskPerson)
            .where(orgunits.in_jurisdiction(principal, col(RiskPerson.org_unit_id)), sealing.unsealed(RiskPerson))
            .order_by(col(RiskPerson.id))
        ).scalars()
    )


def _risk_person_as_data(r: RiskPerson) -> dict[str, Any]:
    """The stored entry as RiskPersonData fields (the ID number decrypted; the birth date is not kept)."""
    return {
        "name": r.name,
        "id_number": crypto.decrypt(r.id_cipher) if r.id_cipher else None,
        "sex": r.sex,
        "hukou_place": r.hukou_place,
        "residence": r.residence,
        "contact": r.contact,
        "categories": r.categories,
        "risk_level": r.risk_level,
        "control_measures": r.control_measures,
        "org_unit_id": r.org_unit_id,
        "note": r.note,
        "control_status": r.control_status,
    }


def update_risk_person(
    session: Session, principal: Principal, risk_person_id: int, version: int, patch: BaseModel, *, locale: str = "zh"
) -> tuple[RiskPerson, str]:
    """Edit an entry made on `version` (fields left out keep their values; the masked number sent back
    keeps the number). The seal is judged again against the entry's own day; a sealed entry is edited
    only by police who opened it. ("updated" | "conflict", with the stored entry.)"""
    principal.require(Action.risk_person_write)
    r = _visible_risk_person(session, principal, risk_person_id, for_update=True)
    if r.version != version:
        return r, "conflict"
    given = patch.model_dump(exclude_unset=True)
    merged = _risk_person_as_data(r)
    sent_id = given.pop("id_number", _ABSENT)
    if sent_id is not _ABSENT and not (sent_id is not None and r.id_masked and idnumber.is_masked(str(sent_id))):
        merged["id_number"] = sent_id
        if "sex" not in given:
            merged["sex"] = None  # the new number says it
    merged.update(given)
    data = _validated(RiskPersonData, merged, locale)
    values = risk_person_values(session, principal, data, record_at=r.created_at, sealed_if_unknown=r.sealed)
    index = values["id_index"]
    if not values["sealed"] and _visible_id_holder(session, index, other_than=r.id):
        raise duplicates.refused(session, principal, RiskPerson, index, unit_id=values["org_unit_id"],
                                 operation="update")
    before = risk_person_history.snapshot(r)
    for key, value in {**values, "note": data.note, "control_status": data.control_status.value}.items():
        setattr(r, key, value)
    r.version += 1
    r.updated_at = clock.now()
    try:
        with session.begin_nested():  # a racing write of the same number loses on the unique index
            session.add(r)
            session.flush()
    except IntegrityError:
        raise duplicates.refused(session, principal, RiskPerson, index or "", unit_id=values["org_unit_id"],
                                 operation="update") from None
    changed = risk_person_history.record(session, r, before, actor_user_id=principal.user_id)
    disclosure.changed(disclosure.RISK_PERSON, [r.id], unit_id=r.org_unit_id)
    disclosure.event(session, "risk_person.update", actor=principal, object_type="risk_person", object_id=r.id,
                     org_unit_id=r.org_unit_id, details={"sealed": bool(r.sealed), "fields": changed})
    return r, "updated"


def open_sealed_risk_person(session: Session, principal: Principal, risk_person_id: int, reason: str) -> dict[str, Any]:
    """A sealed entry opened by police with a reason (backend/sealing/service.py `open_record`): the entry
    and `opened_until`, until when that officer finds it by id and may correct it."""
    r, until = sealing.open_record(session, principal, "risk_person", risk_person_id, reason)
    return {**risk_person_public(r), "opened_until": clock.as_utc(until).isoformat()}


def new_uuid() -> UUID:
    return uuid4()
