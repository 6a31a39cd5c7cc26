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

from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.checklists import service as checklists
from backend.checklists.models import ChecklistTemplate
from backend.core import clock
from backend.core.config import get_settings
from backend.core.errors import InvalidInput
from backend.core.pagination import decode_cursor, encode_cursor
from backend.helpers import service as helpers
from backend.helpers.models import HOLDING, Assignment, AssignmentStatus, HelperProfile
from backend.orgunits import service as orgunits
from backend.registry import service as registry
from backend.registry.models import Household, Person
from backend.sync import revisions
from backend.sync.models import SyncRemoval
from backend.visits.models import Visit

DEFAULT_PULL_LIMIT = 1000
MAX_PULL_LIMIT = 5000

# Assignments a helper's phone keeps: offered (to answer) and accepted (to follow up).
HELPER_LIVE = (AssignmentStatus.offered.value, AssignmentStatus.accepted.value)


@dataclass(frozen=True)
class Row:
    """One changed record of a kind, as read for a page."""

    rev: int
    kind: str
    obj: Any


@dataclass(frozen=True)
class PullKind:
    name: str
    readable: Callable[[Principal], bool]
    # (session, principal, after, upto, limit) -> rows with after < rev <= upto the caller keeps, by rev
    changed: Callable[[Session, Principal, int, int, int], list[Row]]
    # the public records of a page's rows of this kind, in order
    records: Callable[[Session, list[Any]], list[dict[str, Any]]]
    # removals: which tombstones of this kind may concern the caller, and which keys the caller still sees
    audience: Callable[[Principal], ColumnElement[bool]] | None = None
    still_visible: Callable[[Session, Principal, list[SyncRemoval]], set[int]] | None = None


def _jurisdiction_audience(principal: Principal) -> ColumnElement[bool]:
    return orgunits.in_jurisdiction(principal, col(SyncRemoval.org_unit_id))


def _changed(model: Any, scope: Callable[[Principal], ColumnElement[bool]]) -> Callable[..., list[Row]]:
    def changed(session: Session, principal: Principal, after: int, upto: int, limit: int) -> list[Row]:
        rows = session.execute(
            select(model)
            .where(col(model.rev) > after, col(model.rev) <= upto, scope(principal))
            .order_by(col(model.rev))
            .limit(limit)
        ).scalars()
        return [Row(r.rev, "", r) for r in rows]

    return changed


def _visible_ids(model: Any, scope: Callable[[Principal], ColumnElement[bool]]) -> Callable[..., set[int]]:
    """Of the tombstones' records, the ids the caller still sees (moved within its view, or back)."""

    def still_visible(session: Session, principal: Principal, tombstones: list[SyncRemoval]) -> set[int]:
        ids = {t.record_id for t in tombstones}
        return set(
            session.execute(select(col(model.id)).where(col(model.id).in_(ids), scope(principal))).scalars()
        )

    return still_visible


# ---------------------------------------------------------------- the kinds


def _household_scope(principal: Principal) -> ColumnElement[bool]:
    return orgunits.in_jurisdiction(principal, col(Household.org_unit_id))


def _person_scope(principal: Principal) -> ColumnElement[bool]:
    return orgunits.in_jurisdiction(principal, col(Person.org_unit_id))


def _person_records(session: Session, people: list[Any]) -> list[dict[str, Any]]:
    guardians = registry.guardians_of(session, [p.id for p in people])
    return [registry.person_public(p, guardians.get(p.id)) for p in people]


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


def _assignment_records(session: Session, rows: list[Any]) -> list[dict[str, Any]]:
    return [a.model_dump(mode="json") for a in helpers.assignments_public(session, rows)]


def _template_records(_: Session, rows: list[Any]) -> list[dict[str, Any]]:
    return [checklists.template_public(t) for t in rows]


def _visit_changed(session: Session, principal: Principal, after: int, upto: int, limit: int) -> list[Row]:
    """Recent visits (the history window) in the caller's jurisdiction: who was visited, when, how."""
    since = clock.now() - timedelta(days=get_settings().sync_visit_history_days)
    original = aliased(Visit)
    rows = session.execute(
        select(
            col(Visit.rev),
            col(Visit.id),
            col(Visit.client_uuid),
            col(Visit.household_id),
            col(Household.uuid).label("household_uuid"),
            col(original.client_uuid).label("amends_uuid"),
            col(Visit.device_time),
            col(Visit.counted_at),
            col(Visit.clock_suspect),
            col(Visit.received_at),
            col(Visit.outcome),
            col(Visit.location_mismatch),
            col(Visit.risk_level),
        )
        .join(Household, col(Household.id) == col(Visit.household_id))
        .outerjoin(original, col(original.id) == col(Visit.amends_id))
        .where(
            col(Visit.rev) > after,
            col(Visit.rev) <= upto,
            col(Visit.counted_at) >= since,
            orgunits.in_jurisdiction(principal, col(Visit.org_unit_id)),
        )
        .order_by(col(Visit.rev))
        .limit(limit)
    ).mappings()
    return [Row(r["rev"], "", dict(r)) for r in rows]


def _visit_records(_: Session, rows: list[Any]) -> list[dict[str, Any]]:
    def iso(value: Any) -> str | None:
        return clock.as_utc(value).isoformat() if value is not None else None

    return [
        {
            "id": v["id"],
            "client_uuid": str(v["client_uuid"]),
            "household_id": v["household_id"],
            "household_uuid": str(v["household_uuid"]),
            "amends_uuid": str(v["amends_uuid"]) if v["amends_uuid"] is not None else None,
            "device_time": iso(v["device_time"]),
            "counted_at": iso(v["counted_at"]),
            "clock_suspect": bool(v["clock_suspect"]),
            "received_at": iso(v["received_at"]),
            "outcome": v["outcome"],
            "location_mismatch": bool(v["location_mismatch"]),
            "risk_level": v["risk_level"],
        }
        for v in rows
    ]


KINDS: Sequence[PullKind] = (
    PullKind(
        name="household",
        readable=lambda p: p.can(Action.household_read),
        changed=_changed(Household, _household_scope),
        records=lambda _, rows: [registry.household_public(h) for h in rows],
        audience=_jurisdiction_audience,
        still_visible=_visible_ids(Household, _household_scope),
    ),
    PullKind(
        name="person",
        readable=lambda p: p.can(Action.child_read),
        changed=_changed(Person, _person_scope),
        records=_person_records,
        audience=_jurisdiction_audience,
        still_visible=_visible_ids(Person, _person_scope),
    ),
    PullKind(
        name="template",
        readable=lambda p: True,
        changed=_changed(ChecklistTemplate, lambda p: true()),
        records=_template_records,
    ),
    PullKind(
        name="assignment",
        readable=lambda p: p.can(Action.assignment_read),
        changed=_changed(Assignment, _assignment_scope),
        records=_assignment_records,
        audience=_assignment_audience,
        still_visible=_visible_ids(Assignment, _assignment_scope),
    ),
    PullKind(
        name="visit",
        readable=lambda p: p.can(Action.visit_read),
        changed=_visit_changed,
        records=_visit_records,
    ),
)
BY_NAME = {k.name: k for k in KINDS}


# ---------------------------------------------------------------- the cursor


@dataclass(frozen=True)
class Position:
    after: int  # every change up to this revision was delivered
    path: str | None  # the jurisdiction the cursor was issued for


def _position(cursor: str | None) -> Position:
    raw = decode_cursor(cursor)
    if raw is None:
        return Position(0, None)
    after, path = raw.get("r"), raw.get("p")
    if type(after) is not int or after < 0 or not isinstance(path, str):
        raise InvalidInput("同步游标无效，请不带游标重新同步", "The cursor is not valid; pull again without one",
                           field="cursor")
    return Position(after, path)


# ---------------------------------------------------------------- the pull


def _removals(session: Session, principal: Principal, after: int, upto: int, limit: int) -> list[Row]:
    """Tombstones in (after, upto] whose former audience includes the caller, kinds it may read."""
    audiences = [
        and_(col(SyncRemoval.kind) == k.name, k.audience(principal))
        for k in KINDS
        if k.audience is not None and k.readable(principal)
    ]
    rows = session.execute(
        select(SyncRemoval)
        .where(col(SyncRemoval.rev) > after, col(SyncRemoval.rev) <= upto, or_(false(), *audiences))
        .order_by(col(SyncRemoval.rev))
        .limit(limit)
    ).scalars()
    return [Row(t.rev, "removal", t) for t in rows]


def _removal_record(t: SyncRemoval) -> dict[str, Any]:
    return {"kind": t.kind, "uuid": str(t.record_uuid) if t.record_uuid else None, "id": t.record_id}


def pull(session: Session, principal: Principal, cursor: str | None, limit: int) -> dict[str, Any]:
    """Everything the caller's phone keeps that changed after the cursor, lowest revision first,
    cut at one watermark; records that left the caller's view come as `removal` items."""
    principal.require(Action.household_read)
    position = _position(cursor)
    checklists.ensure_builtin(session)  # before the watermark: a template made now is in this cut
    upto = revisions.current(session)
    # Another jurisdiction, or a cursor ahead of the server (a database restored from a backup):
    # the phone's copy cannot be patched, it is rebuilt.
    reset = position.path is not None and (position.path != principal.org_path or position.after > upto)
    after = 0 if reset else position.after

    readable = [k for k in KINDS if k.readable(principal)]
    raw: list[Row] = []
    for kind in readable:
        raw += [Row(r.rev, kind.name, r.obj) for r in kind.changed(session, principal, after, upto, limit + 1)]
    raw += _removals(session, principal, after, upto, limit + 1)
    raw.sort(key=lambda r: r.rev)  # revisions are unique across kinds: one counter hands them all out
    has_more = len(raw) > limit
    page = raw[:limit]

    # A tombstone is news only to a caller who no longer sees the record (not one it moved within).
    tombstones = [r.obj for r in page if r.kind == "removal"]
    visible: dict[str, set[int]] = {}
    for kind in readable:
        if kind.still_visible is not None:
            of_kind = [t for t in tombstones if t.kind == kind.name]
            visible[kind.name] = kind.still_visible(session, principal, of_kind) if of_kind else set()
    records: dict[tuple[str, int], dict[str, Any]] = {}
    for kind in readable:
        objs = [r.obj for r in page if r.kind == kind.name]
        if objs:
            for r, record in zip([r for r in page if r.kind == kind.name], kind.records(session, objs), strict=True):
                records[(kind.name, r.rev)] = record
    items: list[dict[str, Any]] = []
    for r in page:
        if r.kind == "removal":
            if r.obj.record_id in visible.get(r.obj.kind, set()):
                continue
            items.append({"kind": "removal", "rev": r.rev, "record": _removal_record(r.obj)})
        else:
            items.append({"kind": r.kind, "rev": r.rev, "record": records[(r.kind, r.rev)]})

    persons = sum(1 for r in page if r.kind == "person")
    if persons:
        audit.record(
            session,
            actor=principal,
            action="sync.pull",
            object_type="sync",
            org_unit_id=principal.org_unit_id,
            details={"after": after, "persons": persons},
        )
    # A short page delivered everything up to the watermark; a full one resumes after its last row.
    last = page[-1].rev if has_more else upto
    return {
        "items": items,
        "next_cursor": encode_cursor({"r": last, "p": principal.org_path}),
        "has_more": has_more,
        "reset": reset,
    }
