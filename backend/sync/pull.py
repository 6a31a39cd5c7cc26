"""GET /sync/pull: what changed in the caller's view since a cursor, as one consistent cut.

Two mechanisms make the phone's copy converge on the server's scoped view:

- **One watermark per page.** The pull first reads the newest committed revision W and reads every
  kind only up to W. Writers bump the one counter row and hold its lock until they commit
  (backend/sync/revisions.py), so every revision up to W is committed and visible, and nothing a
  later writer commits can land in this page beside a gap: a cursor never passes a change it did not
  deliver, however the statements of one pull interleave with pushes.
- **Removals.** A record that leaves a user's view (moved to another unit, its household moved,
  deleted, an assignment ended or given to another helper) leaves a tombstone written by a database
  trigger (`sync_removal`, migration 0009) with a revision of its own. A tombstone whose former
  audience includes the caller and whose record the caller no longer sees becomes a `removal` item.

Each kind a phone keeps is one `PullKind` below: who may read it, which rows the caller's phone
keeps (the same predicate for sending a record and for deciding a removal), and its public shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    and_,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from backend.accounts import scope
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.cases import service as cases
from backend.cases.models import Case
from backend.checklists import service as checklists
from backend.checklists.models import ChecklistTemplate
from backend.core import clock
from backend.core.config import get_settings
from backend.core.errors import InvalidInput
from backend.core.pagination import decode_cursor, encode_cursor
from backend.helpers import service as helpers
from backend.helpers.models import HOLDING, Assignment, AssignmentStatus, HelperProfile
from backend.orgunits import service as orgunits
from backend.prevention import sync_kinds as activities
from backend.prevention.models import Activity
from backend.registry import service as registry
from backend.registry.models import Guardianship, Household, Person, PersonRole, risk_level_code
from backend.reviews import service as reviews
from backend.reviews.models import ReviewEvent
from backend.service_plans import sync_kinds as service_steps
from backend.service_plans.models import CaseService
from backend.sync import pg_records, revisions
from backend.sync.models import SyncRemoval
from backend.visits.models import Visit

DEFAULT_PULL_LIMIT = 1000
MAX_PULL_LIMIT = 5000

# Assignments a helper's phone keeps: offered (to answer) and accepted (to follow up).
HELPER_LIVE = (AssignmentStatus.offered.value, AssignmentStatus.accepted.value)


Record = dict[str, Any] | orjson.Fragment  # a record, or its JSON already written by the database


@dataclass(frozen=True)
class PullKind:
    name: str
    readable: Callable[[Principal], bool]
    # (principal, after, upto, limit) -> SELECT of the first `limit` revisions in (after, upto] the
    # caller's phone keeps, ascending: cheap, it only finds where the page ends
    revs: Callable[[Principal, int, int, int], Select[Any]]
    # (session, principal, after, cut) -> (rev, public record) of the same rows in (after, cut]
    load: Callable[[Session, Principal, int, int], list[tuple[int, Record]]]
    # removals: which tombstones of this kind may concern the caller, and which of their records the
    # caller still sees (the same predicate as `revs` and `load`: what is sent is what is kept)
    audience: Callable[[Principal], ColumnElement[bool]] | None = None
    still_visible: Callable[[Session, Principal, set[int]], set[int]] | None = None
    # On PostgreSQL (backend/sync/pg_records.py): (principal, after, cut) -> SELECT rev, id, record of
    # the same rows as `load`, the record as JSON text written by the database; with the audit kind
    # the ids are declared as. Such kinds' items are joined into runs by the database (_written_runs).
    written: Callable[[Principal, int, int], Select[Any]] | None = None
    audited: str | None = None


Scope = Callable[[Principal], ColumnElement[bool]]


def _revs(model: Any, scope: Scope) -> Callable[[Principal, int, int, int], Select[Any]]:
    def revs(principal: Principal, after: int, upto: int, limit: int) -> Select[Any]:
        return (
            select(col(model.rev).label("rev"))
            .where(col(model.rev) > after, col(model.rev) <= upto, scope(principal))
            .order_by(col(model.rev))
            .limit(limit)
        )

    return revs


def _columns(model: Any, *leave_out: str) -> list[Any]:
    """A table's plain columns: rows come back as named tuples, not ORM objects (a town's first pull
    builds a hundred thousand of them), and never with what the phone must not get."""
    table = model.__table__
    return [c for c in table.c if c.name not in leave_out]


def _json_in_database(session: Session) -> bool:
    """PostgreSQL writes the big kinds' records itself (backend/sync/pg_records.py)."""
    return session.get_bind().dialect.name == "postgresql" and get_settings().sync_pull_json_in_database


def _rows(session: Session, model: Any, scope: Scope, principal: Principal, after: int, cut: int,
          *columns: Any) -> list[Any]:
    # Core, not ORM, execution: plain rows without the ORM's per-row loading work.
    # fetchall, not iteration: one driver call per page instead of one per row.
    return list(
        session.connection()
        .execute(
            select(*columns)
            .where(col(model.rev) > after, col(model.rev) <= cut, scope(principal))
            .order_by(col(model.rev))
        )
        .all()
    )


def _load(
    model: Any,
    scope: Scope,
    columns: list[Any],
    records: Callable[[Session, Principal, list[Any]], list[dict[str, Any]]],
    audited: str | None = None,
) -> Callable[[Session, Principal, int, int], list[tuple[int, Record]]]:
    """A kind's page loader: rows to records in Python. The records of an `audited` kind are declared
    to the request's audit entry (backend/audit/disclosure.py) by their ids."""

    def load(session: Session, principal: Principal, after: int, cut: int) -> list[tuple[int, Record]]:
        rows = _rows(session, model, scope, principal, after, cut, *columns)
        if audited is not None:
            disclosure.record(audited, (r.id for r in rows))
        return list(zip([r.rev for r in rows], records(session, principal, rows), strict=True))

    return load


def _written(model: Any, scope: Scope, record: Callable[[Principal], ColumnElement[Any]]
             ) -> Callable[[Principal, int, int], Select[Any]]:
    """A kind's rows of the page with their records as JSON text written by PostgreSQL."""

    def written(principal: Principal, after: int, cut: int) -> Select[Any]:
        columns: list[Any] = [col(model.rev).label("rev"), col(model.id).label("id"),
                              pg_records.as_text(record(principal)).label("record")]
        return select(*columns).where(col(model.rev) > after, col(model.rev) <= cut, scope(principal))

    return written


def _visible_ids(model: Any, scope: Scope) -> Callable[[Session, Principal, set[int]], set[int]]:
    """Of the tombstones' records, the ids the caller still sees (moved within its view, or back)."""

    def still_visible(session: Session, principal: Principal, ids: set[int]) -> set[int]:
        return set(
            session.execute(select(col(model.id)).where(col(model.id).in_(ids), scope(principal))).scalars()
        )

    return still_visible


def _jurisdiction_audience(principal: Principal) -> ColumnElement[bool]:
    return orgunits.in_jurisdiction(principal, col(SyncRemoval.org_unit_id))


# ---------------------------------------------------------------- the kinds


# The registry kinds are scoped by backend/accounts/scope.py, the condition every REST read uses too:
# the jurisdiction, and for a helper the children assigned to it, their households and those
# households' visits.


def _household_scope(principal: Principal) -> ColumnElement[bool]:
    return scope.visible(principal, Household)


def _person_scope(principal: Principal) -> ColumnElement[bool]:
    # A retired person (backend/registry/retention.py) left every phone: its tombstone becomes a removal.
    return and_(scope.visible(principal, Person), col(Person.retired_at).is_(None))


def _household_audience(principal: Principal) -> ColumnElement[bool]:
    """Tombstones of households that may concern the caller: those of a unit of its jurisdiction (a
    helper: of its children's households only), and those the database addressed to its user (the
    household of a child whose accepted assignment ended or went to another helper: migration 0016)."""
    return scope.tombstone_audience(principal, Household)


def _person_audience(principal: Principal) -> ColumnElement[bool]:
    return scope.tombstone_audience(principal, Person)


# Kinds whose view a helper's right reaches by assignment only, with the right that reads each: the
# cursor says whether the phone's view of them was by assignment, so a user who gains or loses an
# area-wide role (a helper made a volunteer too) gets a phone rebuilt, not patched.
_BY_ASSIGNMENT = {"household": Action.household_read, "person": Action.child_read, "visit": Action.visit_read}


# Kinds whose view may be narrowed otherwise too (police: the referred cases), by their model.
_NARROWED: dict[str, Any] = {"case": Case, "service": CaseService}


def _kind_tag(kind: PullKind, principal: Principal) -> str:
    if kind.name in _NARROWED:
        how = scope.narrowed_by(principal, _NARROWED[kind.name])
        return f"{kind.name}@{how}" if how else kind.name
    right = _BY_ASSIGNMENT.get(kind.name)
    return f"{kind.name}@assigned" if right is not None and principal.by_assignment(right) else kind.name


def _person_records(session: Session, principal: Principal, people: list[Any]) -> list[dict[str, Any]]:
    # Only children have guardians; every person record carries the list (empty for a guardian).
    guardians = registry.guardians_of(session, [p.id for p in people if p.role == PersonRole.child.value])
    birth_date = registry.sees_birth_date(principal)
    return [registry.person_public(p, guardians.get(p.id, []), birth_date=birth_date) for p in people]


PERSON_COLUMNS = _columns(Person, "id_cipher", "id_key_id", "id_index")


def _own_assignment(principal: Principal) -> ColumnElement[bool]:
    return col(Assignment.helper_id).in_(
        select(col(HelperProfile.id)).where(col(HelperProfile.user_id) == principal.user_id)
    )


def _assignment_scope(principal: Principal) -> ColumnElement[bool]:
    """A helper's live assignments; a coordinator's phone also keeps the open ones in its jurisdiction."""
    own = and_(_own_assignment(principal), col(Assignment.status).in_(HELPER_LIVE))
    if principal.can(Action.assignment_confirm):
        return or_(
            own,
            and_(orgunits.in_jurisdiction(principal, col(Assignment.org_unit_id)), col(Assignment.status).in_(HOLDING)),
        )
    return own


def _assignment_audience(principal: Principal) -> ColumnElement[bool]:
    own = col(SyncRemoval.user_id) == principal.user_id
    if principal.can(Action.assignment_confirm):
        return or_(own, _jurisdiction_audience(principal))
    return own


def _page_objects(session: Session, model: Any, scope: ColumnElement[bool], after: int, cut: int) -> list[Any]:
    """ORM rows of `model` in the page (after, cut] within `scope`, by revision (small kinds only)."""
    return list(
        session.execute(
            select(model).where(col(model.rev) > after, col(model.rev) <= cut, scope).order_by(col(model.rev))
        ).scalars()
    )


def _load_assignments(session: Session, principal: Principal, after: int, cut: int) -> list[tuple[int, Record]]:
    rows = _page_objects(session, Assignment, _assignment_scope(principal), after, cut)
    public = helpers.assignments_public(session, rows)
    return [(a.rev, p.model_dump(mode="json")) for a, p in zip(rows, public, strict=True)]


def _visit_scope(principal: Principal) -> ColumnElement[bool]:
    """The recent history (the window) of the households the caller keeps: who was visited, when, how.
    History follows its household: a household that moves takes it along (its visits get new
    revisions), and a phone that gets a household's removal drops its history with it."""
    since = clock.now() - timedelta(days=get_settings().sync_visit_history_days)
    # A visit's unit is its household's (set when stored, moved with it: registry._move_dependents),
    # so the history is scoped by the visit's own unit, the one scope GET /visits uses too; a join
    # to the households would cost a lookup per visit on every page. A helper's history is that of
    # its assigned children's households (accounts.scope).
    return and_(col(Visit.counted_at) >= since, scope.visible(principal, Visit))


_ORIGINAL = aliased(Visit)  # the visit an amendment amends


def _visit_fields() -> dict[str, Any]:
    return {
        "id": col(Visit.id),
        "client_uuid": col(Visit.client_uuid),
        "household_id": col(Visit.household_id),
        "household_uuid": col(Household.uuid),
        "amends_uuid": col(_ORIGINAL.client_uuid),
        "device_time": col(Visit.device_time),
        "counted_at": col(Visit.counted_at),
        "clock_suspect": col(Visit.clock_suspect),
        "received_at": col(Visit.received_at),
        "outcome": col(Visit.outcome),
        "location_mismatch": col(Visit.location_mismatch),
        "risk_level": col(Visit.risk_level),
    }


def _page_visits(principal: Principal, after: int, cut: int, *columns: Any) -> Select[Any]:
    return (
        select(*columns)
        .join(Household, col(Household.id) == col(Visit.household_id))
        .outerjoin(_ORIGINAL, col(_ORIGINAL.id) == col(Visit.amends_id))
        .where(col(Visit.rev) > after, col(Visit.rev) <= cut, _visit_scope(principal))
    )


def _written_visits(principal: Principal, after: int, cut: int) -> Select[Any]:
    times = ("device_time", "counted_at", "received_at")
    flags = ("clock_suspect", "location_mismatch")
    record = pg_records.json_object({
        **{name: pg_records.iso_utc(c) if name in times else func.coalesce(c, False) if name in flags else c
           for name, c in _visit_fields().items()},
        "risk_level_code": pg_records.risk_level_code(col(Visit.risk_level)),
    })
    return _page_visits(principal, after, cut, col(Visit.rev).label("rev"), col(Visit.id).label("id"),
                        pg_records.as_text(record).label("record"))


def _load_visits(session: Session, principal: Principal, after: int, cut: int) -> list[tuple[int, Record]]:
    columns = [col(Visit.rev), *(c.label(name) for name, c in _visit_fields().items())]
    rows: Sequence[Any] = session.connection().execute(
        _page_visits(principal, after, cut, *columns).order_by(col(Visit.rev))
    ).all()
    disclosure.record(disclosure.VISIT, (row.id for row in rows))

    def iso(value: Any) -> str | None:
        return clock.as_utc(value).isoformat() if value is not None else None

    return [
        (
            v.rev,
            {
                "id": v.id,
                "client_uuid": str(v.client_uuid),
                "household_id": v.household_id,
                "household_uuid": str(v.household_uuid),
                "amends_uuid": str(v.amends_uuid) if v.amends_uuid is not None else None,
                "device_time": iso(v.device_time),
                "counted_at": iso(v.counted_at),
                "clock_suspect": bool(v.clock_suspect),
                "received_at": iso(v.received_at),
                "outcome": v.outcome,
                "location_mismatch": bool(v.location_mismatch),
                "risk_level": v.risk_level,
                "risk_level_code": risk_level_code(v.risk_level),
            },
        )
        for v in rows
    ]


# Cases (个案): those the caller may see by the one scope (a helper: its accepted children's; police:
# the referred ones; a coordinator: its jurisdiction's), closed ones too (their status says so). A
# case leaves a helper's phone when the help ends: the database addresses tombstones of the child's
# cases to the helper's user (migration 0024), as it does for the child (0016).


def _case_scope(principal: Principal) -> ColumnElement[bool]:
    return scope.visible(principal, Case)


def _narrowed_audience(model: Any) -> Callable[[Principal], ColumnElement[bool]]:
    """Tombstones of `model` (cases, services) that may concern the caller: those addressed to its user
    (a helper's help ended), and those of a unit of its jurisdiction (deleted or moved); for a narrowed
    view, of the records it reaches only (it never held the others, and must not learn their ids)."""

    def audience(principal: Principal) -> ColumnElement[bool]:
        area = _jurisdiction_audience(principal)
        reach = scope.reach(principal, model)
        if reach is not None:
            area = and_(area, col(SyncRemoval.record_id).in_(select(col(model.id)).where(reach)))
        return or_(area, col(SyncRemoval.user_id) == principal.user_id)

    return audience


def _load_cases(session: Session, principal: Principal, after: int, cut: int) -> list[tuple[int, Record]]:
    rows = _page_objects(session, Case, _case_scope(principal), after, cut)
    disclosure.record(disclosure.CASE, [c.id for c in rows])
    disclosure.record(disclosure.PERSON, [c.child_id for c in rows])  # a case names its child
    return [(c.rev, cases.case_public(c).model_dump(mode="json")) for c in rows]


# Services of cases: those the caller may see by the one scope (they follow their case; a helper's
# leave its phone with the case, migration 0024).


def _service_scope(principal: Principal) -> ColumnElement[bool]:
    return scope.visible(principal, CaseService)


def _load_services(session: Session, principal: Principal, after: int, cut: int) -> list[tuple[int, Record]]:
    rows = _page_objects(session, CaseService, _service_scope(principal), after, cut)
    disclosure.record(disclosure.SERVICE, [s.id for s in rows])
    return [(s.rev, service_steps.service_record(s)) for s in rows]


# Reviews (审核, issue 17): every decision a coordinator took on a visit or inspection the caller
# recorded, with the answer it gave; the newest by revision is the record's current state.


def _review_scope(principal: Principal) -> ColumnElement[bool]:
    return col(ReviewEvent.recorded_by) == principal.user_id


def _load_reviews(session: Session, principal: Principal, after: int, cut: int) -> list[tuple[int, Record]]:
    rows = _page_objects(session, ReviewEvent, _review_scope(principal), after, cut)
    disclosure.record(disclosure.VISIT, [e.record_id for e in rows if e.record_kind == "visit"])
    return [(e.rev, reviews.review_record(e)) for e in rows]


KINDS: Sequence[PullKind] = (
    PullKind(
        name="household",
        readable=lambda p: p.can(Action.household_read),
        revs=_revs(Household, _household_scope),
        load=_load(Household, _household_scope, _columns(Household, "location"),
                   lambda _, __, rows: [registry.household_public(h) for h in rows], disclosure.HOUSEHOLD),
        audience=_household_audience,
        still_visible=_visible_ids(Household, _household_scope),
        written=_written(Household, _household_scope, lambda _: pg_records.household_json()),
        audited=disclosure.HOUSEHOLD,
    ),
    PullKind(
        name="person",
        readable=lambda p: p.can(Action.child_read),
        revs=_revs(Person, _person_scope),
        load=_load(Person, _person_scope, PERSON_COLUMNS, _person_records, disclosure.PERSON),
        audience=_person_audience,
        still_visible=_visible_ids(Person, _person_scope),
        written=_written(Person, _person_scope,
                         lambda p: pg_records.person_json(birth_date=registry.sees_birth_date(p))),
        audited=disclosure.PERSON,
    ),
    PullKind(
        name="template",
        readable=lambda p: True,
        revs=_revs(ChecklistTemplate, lambda p: true()),
        load=_load(ChecklistTemplate, lambda p: true(), _columns(ChecklistTemplate),
                   lambda _, __, rows: [checklists.template_public(t) for t in rows]),
    ),
    PullKind(
        name="assignment",
        readable=lambda p: p.can(Action.assignment_read),
        revs=_revs(Assignment, _assignment_scope),
        load=_load_assignments,
        audience=_assignment_audience,
        still_visible=_visible_ids(Assignment, _assignment_scope),
    ),
    PullKind(
        name="visit",
        readable=lambda p: p.can(Action.visit_read),
        revs=_revs(Visit, _visit_scope),
        load=_load_visits,
        written=_written_visits,
        audited=disclosure.VISIT,
    ),
    PullKind(
        name="case",
        readable=lambda p: p.can(Action.case_read),
        revs=_revs(Case, _case_scope),
        load=_load_cases,
        audience=_narrowed_audience(Case),
        still_visible=_visible_ids(Case, _case_scope),
    ),
    PullKind(
        name="service",
        readable=lambda p: p.can(Action.service_read),
        revs=_revs(CaseService, _service_scope),
        load=_load_services,
        audience=_narrowed_audience(CaseService),
        still_visible=_visible_ids(CaseService, _service_scope),
    ),
    PullKind(
        name="review",
        readable=lambda p: p.can(Action.visit_create) or p.can(Action.inspection_create),
        revs=_revs(ReviewEvent, _review_scope),
        load=_load_reviews,
    ),
    # Prevention activities (宣传教育, issue 18): those of the area held in a recent window; never
    # edited or moved, so never removed (backend/prevention/sync_kinds.py).
    PullKind(
        name="activity",
        readable=lambda p: p.can(Action.activity_read),
        revs=_revs(Activity, activities.pull_scope),
        load=activities.load_page,
    ),
)


# ---------------------------------------------------------------- the cursor


@dataclass(frozen=True)
class Position:
    after: int  # every change up to this revision was delivered
    path: str | None  # the jurisdiction the cursor was issued for
    kinds: str | None  # the kinds the caller could read then (None: a cursor from before 2026-11-29)


def _position(cursor: str | None) -> Position:
    raw = decode_cursor(cursor)
    if raw is None:
        return Position(0, None, None)
    after, path, kinds = raw.get("r"), raw.get("p"), raw.get("k")
    if type(after) is not int or after < 0 or not isinstance(path, str) or not isinstance(kinds, str | None):
        raise InvalidInput("同步游标无效，请不带游标重新同步", "The cursor is not valid; pull again without one",
                           field="cursor")
    return Position(after, path, kinds)


# ---------------------------------------------------------------- the pull


def _removal_scope(principal: Principal) -> ColumnElement[bool]:
    """Tombstones whose former audience includes the caller, of kinds it may read."""
    audiences = [
        and_(col(SyncRemoval.kind) == k.name, k.audience(principal))
        for k in KINDS
        if k.audience is not None and k.readable(principal)
    ]
    return or_(false(), *audiences)


def _removal_record(t: SyncRemoval) -> dict[str, Any]:
    return {"kind": t.kind, "uuid": str(t.record_uuid) if t.record_uuid else None, "id": t.record_id}


def _load_removals(session: Session, principal: Principal, after: int, cut: int) -> list[tuple[int, Record]]:
    """The page's removals, less those whose record the caller still sees (a move within its view)."""
    tombstones = _page_objects(session, SyncRemoval, _removal_scope(principal), after, cut)
    visible: dict[str, set[int]] = {}
    for kind in KINDS:
        ids = {t.record_id for t in tombstones if t.kind == kind.name}
        if ids and kind.still_visible is not None:
            visible[kind.name] = kind.still_visible(session, principal, ids)
    return [(t.rev, _removal_record(t)) for t in tombstones if t.record_id not in visible.get(t.kind, set())]


REMOVALS = PullKind(
    name="removal",
    readable=lambda p: True,
    revs=_revs(SyncRemoval, _removal_scope),
    load=_load_removals,
)


def _declare_guardians(session: Session, principal: Principal, after: int, cut: int) -> None:
    """A child's record names its guardians (name, contact): they are disclosed with it, even when
    the guardian's own record is not in the page. The page's children by the page's own condition."""
    if disclosure.current() is None:
        return
    children = select(col(Person.id)).where(col(Person.rev) > after, col(Person.rev) <= cut, _person_scope(principal))
    disclosure.record(disclosure.PERSON, session.execute(
        select(col(Guardianship.guardian_id)).where(col(Guardianship.child_id).in_(children))).scalars())


def _page_end(session: Session, revs: list[Select[Any]], limit: int, upto: int) -> tuple[int, bool]:
    """The page's last revision and whether more follow: the `limit`-th and the next of all kinds'
    revisions together, found by the database (each kind gives its first limit + 1; revisions are
    unique, one counter hands them all out, so a cut never splits a revision)."""
    merged = union_all(*(select(q.subquery().c.rev) for q in revs)).subquery()
    ends = list(
        session.connection()
        .execute(select(merged.c.rev).order_by(merged.c.rev).offset(limit - 1).limit(2))
        .scalars()
    )
    if len(ends) == 2:
        return ends[0], True
    return upto, False


def _written_runs(session: Session, principal: Principal, kinds: Sequence[PullKind], others: list[int],
                  after: int, cut: int) -> tuple[dict[int, orjson.Fragment], int]:
    """The page's items of the kinds PostgreSQL writes, as runs of ready JSON: run i holds, in
    revision order and comma-separated, those items whose revision lies between the (i-1)-th and the
    i-th of `others` (the revisions of the page's other items, ascending). A first pull of a town is
    a hundred thousand such items; joined by the database, each page costs Python one string, not a
    row, a tuple and a record per item. The items' ids are declared to the audit entry; the number of
    persons among them is returned."""
    written = union_all(*(
        select(literal(kind.name).label("kind"), q.c.rev, q.c.id, q.c.record)
        for kind in kinds
        for q in [kind.written(principal, after, cut).subquery()]  # type: ignore[misc]
    )).subquery()
    run = func.width_bucket(written.c.rev, postgresql.array(others, type_=BigInteger)) if others else literal(0)
    item = func.concat('{"kind":"', written.c.kind, '","rev":', written.c.rev, ',"record":', written.c.record, "}")
    ids = {kind.name: func.array_agg(written.c.id).filter(written.c.kind == kind.name).label(kind.name)
           for kind in kinds if kind.audited is not None}
    joined = func.string_agg(item, postgresql.aggregate_order_by(literal_column("','"), written.c.rev))
    rows = session.connection().execute(
        select(run.label("run"), joined.label("items"), *ids.values()).group_by(run)
    ).all()
    persons = 0
    for row in rows:
        for kind in kinds:
            declared = getattr(row, kind.name, None) if kind.audited is not None else None
            if declared:
                disclosure.record(kind.audited or "", declared)
                persons += len(declared) if kind.name == "person" else 0
    return {row.run: orjson.Fragment(row.items) for row in rows}, persons


def pull(session: Session, principal: Principal, cursor: str | None, limit: int) -> dict[str, Any]:
    """Everything the caller's phone keeps that changed after the cursor, lowest revision first,
    cut at one watermark; records that left the caller's view come as `removal` items.

    On PostgreSQL, `items` holds runs of items written by the database (orjson fragments, each one
    or more comma-separated items) between the items built here; serialised, it is the same array."""
    principal.require(Action.household_read)
    position = _position(cursor)
    checklists.ensure_builtin(session)  # before the watermark: a template made now is in this cut
    upto = revisions.current(session)
    readable = [k for k in KINDS if k.readable(principal)]
    kinds = ",".join(_kind_tag(k, principal) for k in readable)
    # Another jurisdiction, other roles, or a cursor ahead of the server (a database restored from a
    # backup): the phone's copy cannot be patched, it is rebuilt.
    reset = position.path is not None and (
        position.path != principal.org_path
        or (position.kinds is not None and position.kinds != kinds)
        or position.after > upto
    )
    after = 0 if reset else position.after

    # Where the page ends, from revision numbers alone; then only the page's rows are loaded.
    sources = [*readable, REMOVALS]
    cut, has_more = _page_end(session, [kind.revs(principal, after, upto, limit + 1) for kind in sources], limit, upto)
    by_database = [k for k in sources if k.written is not None] if _json_in_database(session) else []
    page: list[tuple[int, str, Record]] = []
    for kind in sources:
        if kind not in by_database:
            page += [(rev, kind.name, record) for rev, record in kind.load(session, principal, after, cut)]
    page.sort(key=lambda entry: entry[0])
    items: list[Any] = [{"kind": kind, "rev": rev, "record": record} for rev, kind, record in page]
    persons = sum(1 for _, kind, _ in page if kind == "person")
    if by_database:
        runs, written_persons = _written_runs(session, principal, by_database, [rev for rev, _, _ in page], after, cut)
        persons += written_persons
        merged: list[Any] = []
        for i, item in enumerate(items):
            if i in runs:
                merged.append(runs[i])
            merged.append(item)
        if len(items) in runs:
            merged.append(runs[len(items)])
        items = merged

    if persons:
        _declare_guardians(session, principal, after, cut)
        disclosure.event(session, "sync.pull", actor=principal, object_type="sync",
                         org_unit_id=principal.org_unit_id, details={"after": after, "persons": persons})
    return {
        "items": items,
        "next_cursor": encode_cursor({"r": cut, "p": principal.org_path, "k": kinds}),
        "has_more": has_more,
        "reset": reset,
    }
