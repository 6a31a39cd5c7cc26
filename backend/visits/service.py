"""Visits: the batch write path behind sync push, the location check, risk and referrals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any, cast
from uuid import UUID

import orjson
from pydantic import ValidationError
from sqlalchemy import Table, and_, bindparam, literal_column, select, text
from sqlmodel import Session, col

from backend.accounts import scope
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.checklists import service as checklists
from backend.checklists.builtin import SIX_LOOKS_CODE, SIX_LOOKS_VERSION
from backend.checklists.models import ChecklistTemplate
from backend.core import clock, crypto, placement
from backend.core.config import get_settings
from backend.core.db import dialect_insert, one_of, one_of_param
from backend.core.errors import DomainError, InvalidInput, NotFound, validation_problem
from backend.core.geo import distances_m, to_wgs84
from backend.core.pagination import PageRequest
from backend.media import service as media
from backend.orgunits.models import OrgUnit
from backend.referrals import service as referrals
from backend.registry import service as registry
from backend.registry.models import Household, Person, PersonRole, risk_level_code, risk_reasons_public
from backend.sync import revisions, tombstones
from backend.sync.kinds import ItemResult, ItemStatus, PushItem
from backend.visits import risk_rules
from backend.visits.models import Visit
from backend.visits.schemas import AmendmentData, VisitData


class VisitNotFound(NotFound):
    code = "visit-not-found"
    title_zh = "走访记录不存在或不在您的辖区内"
    title_en = "Visit not found"


class AnswersInvalid(InvalidInput):
    code = "visit-answers-invalid"
    title_zh = "走访答案不完整或有误"
    title_en = "The visit's answers are incomplete or invalid"


VISIT_TABLE = cast(Table, Visit.__table__)  # type: ignore[attr-defined]
TEMPLATE_TABLE = cast(Table, ChecklistTemplate.__table__)  # type: ignore[attr-defined]
_HOUSEHOLD = cast(Table, Household.__table__)  # type: ignore[attr-defined]
_PERSON = cast(Table, Person.__table__)  # type: ignore[attr-defined]
_UNIT = cast(Table, OrgUnit.__table__)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class LocationCheck:
    lon: float | None
    lat: float | None
    distance_m: float | None
    mismatch: bool


def check_locations(visits: list[tuple[VisitData, float | None, float | None]]) -> list[LocationCheck]:
    """For each (visit, household lon, household lat): store the fix in WGS-84 and flag it when it is
    too far from the household or too inaccurate. A visit without a fix (or a household without a
    point) is flagged too: it cannot be checked. The distances of a whole batch are one call."""
    settings = get_settings()
    fixes = [to_wgs84(data.gps.lon, data.gps.lat, data.gps.crs) if data.gps else None for data, _, _ in visits]
    pairs = {
        n: (fix[0], fix[1], home_lon, home_lat)
        for n, (fix, (_, home_lon, home_lat)) in enumerate(zip(fixes, visits, strict=True))
        if fix is not None and home_lon is not None and home_lat is not None
    }
    distance = dict(zip(pairs, distances_m(list(pairs.values())), strict=True))
    checks = []
    for n, (fix, (data, _, _)) in enumerate(zip(fixes, visits, strict=True)):
        if data.gps is None or fix is None:
            checks.append(LocationCheck(None, None, None, True))
            continue
        dist = distance.get(n)
        inaccurate = data.gps.accuracy_m is not None and data.gps.accuracy_m > settings.visit_max_accuracy_m
        far = dist is None or dist > settings.visit_max_distance_m
        checks.append(LocationCheck(fix[0], fix[1], round(dist, 1) if dist is not None else None, far or inaccurate))
    return checks


@dataclass(frozen=True)
class TemplateIndex:
    """A template's items by id and its required items, worked out once per batch, not per visit."""

    items: dict[str, dict[str, Any]]
    required: list[str]

    @classmethod
    def of(cls, template: ChecklistTemplate) -> TemplateIndex:
        return cls.of_items(template.items)

    @classmethod
    def of_items(cls, items: list[dict[str, Any]]) -> TemplateIndex:
        return cls(
            items={item["id"]: item for item in items},
            required=[
                item["id"]
                for item in items
                if item.get("required") and item.get("answer_type", "yes_no_unknown") == "yes_no_unknown"
            ],
        )


def check_answers(data: VisitData, template: ChecklistTemplate | TemplateIndex) -> None:
    """Answers name items of the template; every required item is answered when the door opened."""
    index = template if isinstance(template, TemplateIndex) else TemplateIndex.of(template)
    items = index.items
    if data.answers.keys() <= items.keys():
        unknown: list[str] = []
    else:
        unknown = sorted(set(data.answers) - set(items))
    if unknown:
        raise AnswersInvalid(
            f"模板中没有这些题目：{'、'.join(unknown)}", f"Not in the template: {', '.join(unknown)}", items=unknown
        )
    if data.outcome.value != "visited":
        return
    answers = data.answers
    missing = [i for i in index.required if i not in answers or answers[i].get("value") is None]
    if missing:
        labels = "、".join(f"{i}（{items[i]['label_zh']}）" for i in missing)
        raise AnswersInvalid(
            f"以下必答题未作答：{labels}", f"Required items not answered: {', '.join(missing)}", items=missing
        )


def visit_public(v: dict[str, Any]) -> dict[str, Any]:
    """A stored visit (row mapping) as the API returns it, declared to the request's audit entry."""
    disclosure.record(disclosure.VISIT, [v["id"]], unit_id=v["org_unit_id"])

    def iso(value: Any) -> str | None:
        return clock.as_utc(value).isoformat() if value is not None else None

    return {
        "id": v["id"],
        "client_uuid": str(v["client_uuid"]),
        "amends_id": v["amends_id"],
        "household_id": v["household_id"],
        "org_unit_id": v["org_unit_id"],
        "recorded_by": v["recorded_by"],
        "template_code": v["template_code"],
        "template_version": v["template_version"],
        "outcome": v["outcome"],
        "answers": v["answers"],
        "children_seen": v["children_seen"],
        "note": v["note"],
        "device_time": iso(v["device_time"]),
        "received_at": iso(v["received_at"]),
        "lon": v["lon"],
        "lat": v["lat"],
        "accuracy_m": v["accuracy_m"],
        "reported_crs": v["reported_crs"],
        "distance_m": v["distance_m"],
        "location_mismatch": bool(v["location_mismatch"]),
        "counted_at": iso(v["counted_at"]),
        "clock_suspect": bool(v["clock_suspect"]),
        "risk_level": v["risk_level"],
        "risk_level_code": risk_level_code(v["risk_level"]),
        "risk_reasons": risk_reasons_public(v["risk_reasons"]),
        # Review of field work (backend/reviews): pending, approved, has_issues or rejected.
        "review_state": v.get("review_state") or "pending",
    }


_ANSWER_DEFAULTS: dict[str, Any] = {"value": None, "note": None, "photos": ()}


@dataclass(frozen=True)
class _Lookups:
    """The push path's queries, built once per dialect (Core, not ORM: a push runs each per batch, and
    building a statement, or the ORM's per-statement work, costs more than running a cached one)."""

    households: Any
    template_items: Any

    @classmethod
    def build(cls, dialect_name: str) -> _Lookups:
        return cls(
            # Each household with its children, one row per child (or one without): one round trip.
            households=select(_HOUSEHOLD.c.id, _HOUSEHOLD.c.uuid, _HOUSEHOLD.c.org_unit_id, _HOUSEHOLD.c.lon,
                              _HOUSEHOLD.c.lat, _UNIT.c.path, _PERSON.c.id.label("child_id"),
                              _PERSON.c.uuid.label("child_uuid"), _PERSON.c.risk_level.label("child_risk_level"),
                              _PERSON.c.retired_at.label("child_retired_at"))
            .join(_UNIT, _UNIT.c.id == _HOUSEHOLD.c.org_unit_id)
            .outerjoin(_PERSON, and_(_PERSON.c.household_id == _HOUSEHOLD.c.id,
                                     _PERSON.c.role == PersonRole.child.value))
            .where(one_of_param(dialect_name, _HOUSEHOLD.c.uuid, "uuids")),
            template_items=select(TEMPLATE_TABLE.c["items"]).where(
                TEMPLATE_TABLE.c.code == bindparam("code"), TEMPLATE_TABLE.c.version == bindparam("version")
            ),
        )


_LOOKUPS: dict[str, _Lookups] = {}


def _lookups(session: Session) -> _Lookups:
    dialect_name = session.get_bind().dialect.name
    found = _LOOKUPS.get(dialect_name)
    if found is None:
        found = _LOOKUPS[dialect_name] = _Lookups.build(dialect_name)
    return found


def _template_items(session: Session, code: str, version: int) -> list[dict[str, Any]] | None:
    """A published template version's items."""
    items: list[dict[str, Any]] | None = session.execute(
        _lookups(session).template_items, {"code": code, "version": version}
    ).scalar_one_or_none()
    return items


def canonical_record(data: VisitData) -> dict[str, Any]:
    """What a visit (or amendment) says, in one JSON form: every member present (defaults filled in),
    the instant in UTC, UUIDs and enums as their canonical text, numbers as floats (8 and 8.0 are one
    number); answers without the members that hold nothing (a null note, no photos), and no answer
    that says nothing at all (no rule reads one: it is the same as none). Written out member by
    member: a push digests hundreds of visits, and a generic walk over the model costs four times as
    much. A test checks that every field of the models is here."""
    answers: dict[str, Any] = {}
    for item, answer in data.answers.items():
        if len(answer) == 1 and answer.get("value") is not None:  # the common case: a value only
            answers[item] = answer
            continue
        said = {key: value for key, value in answer.items() if value is not None and value != []}
        if said:  # an answer with nothing in it is no answer
            answers[item] = said
    gps = data.gps
    # UUIDs, enums and datetimes are left to orjson, which writes them in their canonical forms.
    record: dict[str, Any] = {
        "household_uuid": data.household_uuid,
        "template_code": data.template_code,
        "template_version": data.template_version,
        "device_time": data.device_time.astimezone(UTC),
        "outcome": data.outcome,
        "answers": answers,
        "children_seen": data.children_seen,
        # + 0.0: an integer sent for a float is already a float here; this also makes -0.0 0.0.
        "gps": None
        if gps is None
        else (
            gps.lon + 0.0,
            gps.lat + 0.0,
            None if gps.accuracy_m is None else gps.accuracy_m + 0.0,
            gps.crs.value,
        ),
        "note": data.note,
    }
    if isinstance(data, AmendmentData):
        record["amends_uuid"] = data.amends_uuid
    return record


def _digest(data: VisitData) -> str:
    """Keyed digest of what the visit says, not of how its JSON was written: any re-serialisation of
    the same record (8 or 8.0, a null or absent optional member, [] or no list, the same instant as
    Z, +00:00, +08:00 or with .000, keys in any order) has the same digest, so its resend is a
    duplicate; any change of content changes it."""
    return crypto.keyed_digest(orjson.dumps(canonical_record(data), option=orjson.OPT_SORT_KEYS))


def _digest_as_sent(data: dict[str, Any]) -> str:
    """The digest visits stored before 2026-11-29 carry: of the data exactly as the phone sent it.
    A phone resending such a visit byte for byte still gets `duplicate` (see push_visits)."""
    return crypto.keyed_digest(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))


@dataclass
class _Pending:
    pos: int
    item: PushItem
    data: VisitData
    digest: str
    row: dict[str, Any]
    assessment: risk_rules.Assessment
    child_ids: list[int]


def _reject(error: DomainError, locale: str) -> ItemResult:
    return ItemResult(ItemStatus.rejected, problem=error.to_problem(locale))


def push_visits(
    session: Session, principal: Principal, items: list[PushItem], locale: str, *, amendments: bool = False
) -> list[ItemResult]:
    """Store a batch of visits (or amendments) with one multi-row INSERT .. ON CONFLICT DO NOTHING.

    The unique client_uuid decides what is new; items whose UUID was already stored are compared
    by content digest: same content is a duplicate, other content a conflict. Lookups are one query
    per batch, never per item."""
    results: list[ItemResult | None] = [None] * len(items)
    try:
        principal.require(Action.visit_create)
    except DomainError as exc:
        return [_reject(exc, locale)] * len(items)
    model = AmendmentData if amendments else VisitData
    parsed: list[tuple[int, VisitData, str]] = []
    first_of: dict[UUID, int] = {}
    for i, item in enumerate(items):
        try:
            data = model.model_validate(item.data)
        except ValidationError as exc:
            results[i] = _reject(validation_problem([dict(e) for e in exc.errors()], locale), locale)
            continue
        parsed.append((i, data, _digest(data)))

    first_rev = 0
    if parsed:
        # The sync counter's row lock first: a coordinator moving a household takes it before moving
        # the household's visits, so the households read below are where they are now, and a move
        # after this waits for the push and then moves its visits too. Otherwise a visit could be
        # stored in the unit its household had just left. The batch's revisions (for phones' visit
        # history) come with the lock, one per parsed item: gaps left by rejected items and resends
        # are harmless, a second round trip is not.
        first_rev = revisions.allocate(session, len(parsed))
    # One query each: households (with their unit paths and their children), templates, originals.
    household_rows: dict[UUID, Any] = {}
    children: dict[int, list[tuple[int, UUID, str | None]]] = {}
    grown_up: set[int] = set()  # retired (backend/registry/retention.py): may be named, is not assessed
    if parsed:
        for home_row in session.execute(
            _lookups(session).households, {"uuids": list({d.household_uuid for _, d, _ in parsed})}
        ):
            household_rows.setdefault(home_row.uuid, home_row)
            if home_row.child_id is not None:
                children.setdefault(home_row.id, []).append(
                    (home_row.child_id, home_row.child_uuid, home_row.child_risk_level))
                if home_row.child_retired_at is not None:
                    grown_up.add(home_row.child_id)
    open_to = _households_open_to(session, principal, list(household_rows.values()))
    left_behind = tombstones.left_view_lately(
        session, principal, "household", [r.id for r in household_rows.values() if r.id not in open_to]
    )
    templates: dict[tuple[str, int], TemplateIndex | None] = {}
    for key in {(d.template_code, d.template_version) for _, d, _ in parsed}:
        template_items = _template_items(session, *key)
        if template_items is None and key == (SIX_LOOKS_CODE, SIX_LOOKS_VERSION):
            checklists.ensure_builtin(session)  # a new database: the built-in is made on first use
            template_items = _template_items(session, *key)
        templates[key] = TemplateIndex.of_items(template_items) if template_items is not None else None
    originals: dict[UUID, Any] = {}
    if amendments:
        wanted = {cast(AmendmentData, d).amends_uuid for _, d, _ in parsed}
        originals = (
            {
                row.client_uuid: row
                for row in session.execute(
                    select(col(Visit.id), col(Visit.client_uuid), col(Visit.household_id), col(Visit.amends_id)).where(
                        one_of(session, col(Visit.client_uuid), wanted)
                    )
                )
            }
            if wanted
            else {}
        )

    received_at = clock.now()
    placer = placement.Placer(received_at)
    pending: list[_Pending] = []
    located: list[tuple[dict[str, Any], tuple[VisitData, float | None, float | None]]] = []
    for i, data, digest in parsed:
        item = items[i]
        if item.client_uuid in first_of:
            pending.append(_Pending(i, item, data, digest, {}, risk_rules.NO_RISK, []))  # resolved after the insert
            continue
        first_of[item.client_uuid] = i
        try:
            home = household_rows.get(data.household_uuid)
            if home is None or not (home.id in open_to or home.id in left_behind):
                raise registry.HouseholdNotFound(
                    "该户不存在或不在您的辖区内，请先同步户信息或核对户",
                    "The household is unknown or outside your area",
                    field="household_uuid",
                )
            template = templates.get((data.template_code, data.template_version))
            if template is None:
                raise checklists.TemplateNotFound(
                    f"检查表模板{data.template_code}第{data.template_version}版不存在，请更新应用",
                    "The checklist template version does not exist; update the app",
                    field="template_version",
                )
            check_answers(data, template)
            amends_id = None
            if isinstance(data, AmendmentData):
                original = originals.get(data.amends_uuid)
                if original is None or original.household_id != home.id:
                    raise VisitNotFound(
                        "要更正的走访记录不存在，请先同步原记录", "The visit to amend is unknown", field="amends_uuid"
                    )
                # Every version names the first visit of its chain, whichever version the phone amended:
                # which version counts is read over the chain (backend/coverage EFFECTIVE_VISIT), and a
                # review may skip a version (a rejected amendment) without cutting the chain.
                amends_id = original.amends_id or original.id
            kids = children.get(home.id, [])
            by_uuid = {k[1]: k for k in kids}
            unknown_kids = [str(u) for u in data.children_seen if u not in by_uuid]
            if unknown_kids:
                raise registry.PersonNotFound(
                    "见到的儿童不属于该户，请先同步儿童信息",
                    "A child seen is not in this household",
                    field="children_seen",
                    children=unknown_kids,
                )
            seen = [by_uuid[u] for u in data.children_seen] if data.children_seen else kids
            seen = [k for k in seen if k[0] not in grown_up]
        except DomainError as exc:
            results[i] = _reject(exc, locale)
            del first_of[item.client_uuid]
            continue
        # Every stored answer has all three keys, whichever the phone sent (the row is serialised at
        # once, so the defaults' empty tuple is never mutated).
        answers = {k: {**_ANSWER_DEFAULTS, **a} for k, a in data.answers.items()}
        assessment = risk_rules.assess(data.outcome.value, answers)
        placed = placer.place(data.device_time)  # which period the visit counts in
        row = {
            "client_uuid": item.client_uuid,
            "content_hash": digest,
            "amends_id": amends_id,
            "household_id": home.id,
            "org_unit_id": home.org_unit_id,
            "recorded_by": principal.user_id,
            "template_code": data.template_code,
            "template_version": data.template_version,
            "outcome": data.outcome.value,
            "answers": answers,
            "children_seen": [str(u) for u in data.children_seen],
            "note": data.note,
            "device_time": clock.as_utc(data.device_time),  # SQLite keeps no offset: store UTC
            "received_at": received_at,
            "counted_at": placed.counted_at,
            "clock_suspect": placed.clock_suspect,
            "accuracy_m": data.gps.accuracy_m if data.gps else None,
            "reported_crs": data.gps.crs.value if data.gps else None,
            "risk_level": assessment.level.value if assessment.level else None,
            "risk_reasons": assessment.reasons,
        }
        pending.append(_Pending(i, item, data, digest, row, assessment, [k[0] for k in seen]))
        located.append((row, (data, home.lon, home.lat)))

    for (row, _), loc in zip(located, check_locations([visit for _, visit in located]), strict=True):
        row.update(lon=loc.lon, lat=loc.lat, distance_m=loc.distance_m, location_mismatch=loc.mismatch)
    rows = [p.row for p in pending if p.row]
    inserted: dict[UUID, int] = {}
    waited_for: set[UUID] = set()
    if rows:
        for n, new_row in enumerate(rows):
            new_row["rev"] = first_rev + n
        inserted, waited_for = _insert_new(session, rows)
    stored_uuids = [p.item.client_uuid for p in pending if p.item.client_uuid not in inserted]
    stored: dict[UUID, Any] = {}
    if stored_uuids:
        for found in session.execute(
            select(VISIT_TABLE, col(OrgUnit.path))
            .join(OrgUnit, col(OrgUnit.id) == VISIT_TABLE.c.org_unit_id)
            .where(one_of(session, VISIT_TABLE.c.client_uuid, stored_uuids))
        ).mappings():
            stored[found["client_uuid"]] = dict(found)

    readable = _visits_readable(session, principal, stored)
    for p in pending:
        index = p.pos
        uid = p.item.client_uuid
        if p.row and uid in inserted:
            # A slim record: the phone has everything else already (duplicates get the full copy).
            row = p.row
            record = {
                "id": inserted[uid],
                "client_uuid": str(uid),
                "household_id": row["household_id"],
                "org_unit_id": row["org_unit_id"],
                "received_at": received_at.isoformat(),
                "distance_m": row["distance_m"],
                "location_mismatch": row["location_mismatch"],
                "risk_level": row["risk_level"],
                "risk_level_code": risk_level_code(row["risk_level"]),
                "risk_reasons": risk_reasons_public(row["risk_reasons"]),
                "amends_id": row["amends_id"],
                "lon": row["lon"],
                "lat": row["lat"],
                "reported_crs": row["reported_crs"],
                "counted_at": row["counted_at"].isoformat(),
                "clock_suspect": row["clock_suspect"],
            }
            if row["household_id"] in left_behind:  # the family moved away: not where it lives now
                record.update(household_id=None, org_unit_id=None, lon=None, lat=None, distance_m=None,
                              amends_id=None)
            results[index] = ItemResult(ItemStatus.created, record=record)
            continue
        if not p.row and uid in inserted:
            # The same uuid again within this push, after the item that stored it: a resend like any
            # other (same content: duplicate; other content: conflict), with the stored copy.
            first = next(q for q in pending if q.row and q.item.client_uuid == uid)
            stored_first = results[first.pos]
            copy = stored_first.record if stored_first is not None else None
            same = p.digest == first.digest
            results[index] = ItemResult(ItemStatus.duplicate if same else ItemStatus.conflict, record=copy)
            continue
        existing = stored.get(uid)
        if existing is None:  # a repeat within the batch of an item that was rejected
            results[index] = ItemResult(ItemStatus.conflict)
            continue
        # Visits stored before digests were normalised carry the digest of the JSON as sent (it
        # cannot be recomputed from the stored columns: a GCJ-02 fix is stored converted).
        same = existing["content_hash"] == p.digest or existing["content_hash"] == _digest_as_sent(p.item.data)
        visible = uid in readable
        results[index] = ItemResult(
            ItemStatus.duplicate if same else ItemStatus.conflict, record=visit_public(existing) if visible else None
        )

    _apply_consequences(session, principal, [p for p in pending if p.row and p.item.client_uuid in inserted], inserted)
    # Photos that came before their visit (or amendment) are linked by this push, not by a later sweep.
    media.link_waiting_photos(session, "visit", waited_for)
    return [r if r is not None else ItemResult(ItemStatus.rejected) for r in results]


def _households_open_to(session: Session, principal: Principal, rows: list[Any]) -> set[int]:
    """Of the batch's households (rows with id and unit path), those the caller may record visits for:
    its jurisdiction, or (a helper) the households of the children assigned to it (accounts.scope)."""
    if not principal.by_assignment(Action.visit_create):
        return {r.id for r in rows if principal.covers(r.path)}
    if not rows:
        return set()
    return set(session.execute(
        select(col(Household.id)).where(one_of(session, col(Household.id), [r.id for r in rows]),
                                        scope.visible(principal, Household, action=Action.visit_create))
    ).scalars())


def _visits_readable(session: Session, principal: Principal, stored: dict[UUID, Any]) -> set[UUID]:
    """Of the visits stored before (resends, conflicts), those the caller may read: their copy comes
    back in the answer, the others' does not."""
    if not principal.by_assignment(Action.visit_read):
        return {uid for uid, row in stored.items() if principal.covers(row["path"])}
    if not stored:
        return set()
    return set(session.execute(
        select(col(Visit.client_uuid)).where(one_of(session, col(Visit.client_uuid), list(stored)),
                                             scope.visible(principal, Visit))
    ).scalars())


def _apply_consequences(session: Session, principal: Principal, new: list[_Pending], ids: dict[UUID, int]) -> None:
    """Raise risk levels (history kept) and open referrals for the visits just stored."""
    levels: dict[int, str | None] = {}
    for p in new:
        if p.assessment.level is None:
            continue
        if not levels:
            wanted = {cid for q in new for cid in q.child_ids}
            levels = (
                {
                    pid: level
                    for pid, level in session.execute(
                        select(col(Person.id), col(Person.risk_level)).where(col(Person.id).in_(wanted))
                    )
                }
                if wanted
                else {}
            )
        visit_id = ids[p.item.client_uuid]
        for child_id in p.child_ids:
            new_level = risk_rules.raised(levels.get(child_id), p.assessment.level)
            if new_level is not None:
                registry.set_risk_level(
                    session,
                    person_id=child_id,
                    previous=levels.get(child_id),
                    level=new_level,
                    reasons=p.assessment.reasons,
                    source="visit",
                    visit_id=visit_id,
                    actor_user_id=principal.user_id,
                )
                levels[child_id] = new_level.value
        if p.assessment.referral:
            referrals.create_from_visit(
                session,
                visit_id=visit_id,
                household_id=p.row["household_id"],
                org_unit_id=p.row["org_unit_id"],
                child_ids=p.child_ids,
                reasons=[r for r in p.assessment.reasons if r["rule"] == "abuse_signs"],
                actor=principal,
            )


# Column types of the visit rows as PostgreSQL reads them from one JSON parameter.
_PG_RECORD = (
    "client_uuid uuid, content_hash text, amends_id integer, household_id integer, org_unit_id integer, "
    "recorded_by integer, template_code text, template_version integer, outcome text, answers json, "
    "children_seen json, note text, device_time timestamptz, received_at timestamptz, lon float8, lat float8, "
    "accuracy_m float8, reported_crs text, distance_m float8, location_mismatch boolean, risk_level text, "
    "risk_reasons json, rev int8, counted_at timestamptz, clock_suspect boolean"
)
_COLUMNS = [c.split()[0] for c in _PG_RECORD.split(", ")]


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> tuple[dict[UUID, int], set[UUID]]:
    """INSERT .. ON CONFLICT (client_uuid) DO NOTHING for the whole batch in one statement; returns
    the ids of the rows that were new, and those of them a photo waits for (sent before its visit).
    The unique constraint, not a prior SELECT, decides.

    PostgreSQL gets the rows as one JSON parameter (jsonb_to_recordset): a short, cached statement
    instead of thousands of bind parameters to render and parse per batch. SQLite gets an
    executemany of the same INSERT."""
    insert = dialect_insert(session)
    returning = (VISIT_TABLE.c.id, VISIT_TABLE.c.client_uuid,
                 media.photos_waiting("visit", VISIT_TABLE.c.client_uuid).label("photos_waiting"))
    if session.get_bind().dialect.name == "postgresql":
        source: Any = select(*[literal_column(f"r.{c}") for c in _COLUMNS]).select_from(
            text(f"json_to_recordset(CAST(:rows AS json)) AS r({_PG_RECORD})")
        )
        stmt = (
            insert(VISIT_TABLE)
            .from_select(_COLUMNS, source)
            .on_conflict_do_nothing(index_elements=["client_uuid"])
            .returning(*returning)
        )
        result = session.execute(stmt, {"rows": orjson.dumps(rows, default=str).decode()})
    else:
        stmt = insert(VISIT_TABLE).on_conflict_do_nothing(index_elements=["client_uuid"]).returning(*returning)
        result = session.execute(stmt, rows)
    inserted: dict[UUID, int] = {}
    waited_for: set[UUID] = set()
    for visit_id, client_uuid, waited in result:
        inserted[client_uuid] = visit_id
        if waited:
            waited_for.add(client_uuid)
    return inserted, waited_for


def get_visit(session: Session, principal: Principal, visit_id: int) -> dict[str, Any]:
    """One visit the caller may see (its jurisdiction; a helper's: of a household of a child assigned
    to it), else 404."""
    principal.require(Action.visit_read)
    row = (
        session.execute(select(VISIT_TABLE).where(VISIT_TABLE.c.id == visit_id, scope.visible(principal, Visit)))
        .mappings()
        .first()
    )
    if row is None:
        raise VisitNotFound()
    return visit_public(dict(row))


def list_visits(
    session: Session,
    principal: Principal,
    *,
    household_id: int | None,
    mismatch_only: bool,
    page: PageRequest,
    clock_suspect_only: bool = False,
) -> list[dict[str, Any]]:
    """Visits the caller may see, newest first; coordinators filter location mismatches and visits
    placed by receipt time because the phone's clock was implausible."""
    principal.require(Action.visit_read)
    query = select(VISIT_TABLE).where(scope.visible(principal, Visit))
    if household_id is not None:
        registry.get_household(session, principal, household_id)
        query = query.where(VISIT_TABLE.c.household_id == household_id)
    if mismatch_only:
        query = query.where(VISIT_TABLE.c.location_mismatch.is_(True))
    if clock_suspect_only:
        query = query.where(VISIT_TABLE.c.clock_suspect.is_(True))
    rows = session.execute(page.seek(query, VISIT_TABLE.c.id, descending=True)).mappings()
    return [visit_public(dict(r)) for r in rows]
