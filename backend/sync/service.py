"""Push (a batch of records, one result each) and pull (changes since a cursor, in revision order)."""

from __future__ import annotations

from collections import Counter
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.checklists import service as checklists
from backend.checklists.models import ChecklistTemplate
from backend.core import clock
from backend.core.errors import InvalidInput, PayloadTooLarge
from backend.core.pagination import decode_cursor, encode_cursor
from backend.helpers import service as helpers
from backend.helpers.models import Assignment
from backend.orgunits import service as orgunits
from backend.registry import service as registry
from backend.registry.models import Household, Person
from backend.sync.handlers import load_kinds
from backend.sync.kinds import KINDS, ItemResult, ItemStatus, PushItem
from backend.sync.schemas import MAX_PUSH_ITEMS, PushItemIn


class UnknownKind(InvalidInput):
    code = "sync-unknown-kind"
    title_zh = "不支持的记录类型"
    title_en = "Unknown record kind"


def push(session: Session, principal: Principal, raw_items: list[PushItemIn], locale: str) -> dict[str, Any]:
    """Hand each kind's items to its handler (kinds in their declared order), answer in input order."""
    if len(raw_items) > MAX_PUSH_ITEMS:
        raise PayloadTooLarge(
            f"每次最多同步{MAX_PUSH_ITEMS}条，请分批上传",
            f"At most {MAX_PUSH_ITEMS} items per push; split the batch",
            limit=MAX_PUSH_ITEMS,
        )
    load_kinds()
    results: list[ItemResult | None] = [None] * len(raw_items)
    by_kind: dict[str, list[int]] = {}
    for i, raw in enumerate(raw_items):
        if raw.kind not in KINDS:
            results[i] = ItemResult(
                ItemStatus.rejected,
                problem=UnknownKind(
                    f"不支持的记录类型“{raw.kind}”，请更新应用", f"Unknown kind '{raw.kind}'; update the app"
                ).to_problem(locale),
            )
            continue
        by_kind.setdefault(raw.kind, []).append(i)
    for kind in sorted(by_kind, key=lambda k: KINDS[k].order):
        positions = by_kind[kind]
        items = [
            PushItem(
                index=i,
                kind=kind,
                client_uuid=raw_items[i].client_uuid,
                base_version=raw_items[i].base_version,
                data=raw_items[i].data,
            )
            for i in positions
        ]
        for i, result in zip(positions, KINDS[kind].handle(session, principal, items, locale), strict=True):
            results[i] = result
    out = []
    counts: Counter[str] = Counter()
    for i, (raw, maybe) in enumerate(zip(raw_items, results, strict=True)):
        assert maybe is not None
        result = maybe
        counts[result.status.value] += 1
        out.append(
            {
                "index": i,
                "kind": raw.kind,
                "client_uuid": str(raw.client_uuid),
                "status": result.status.value,
                "record": result.record,
                "problem": result.problem,
            }
        )
    audit.record(
        session,
        actor=principal,
        action="sync.push",
        object_type="sync",
        org_unit_id=principal.org_unit_id,
        details={"items": len(raw_items), **counts},
    )
    return {"results": out, "counts": dict(counts), "server_time": clock.now().isoformat()}


DEFAULT_PULL_LIMIT = 1000
MAX_PULL_LIMIT = 5000


def pull(session: Session, principal: Principal, cursor: str | None, limit: int) -> dict[str, Any]:
    """Everything in the caller's jurisdiction with a revision above the cursor, lowest first.
    Revisions commit in order (see sync.revisions), so a stored cursor never skips a change."""
    principal.require(Action.household_read)
    position = decode_cursor(cursor) or {}
    after = int(position.get("r", 0))
    reset = bool(position) and position.get("p") != principal.org_path
    if reset:
        after = 0
    checklists.ensure_builtin(session)
    scope_h = orgunits.in_jurisdiction(principal, col(Household.org_unit_id))
    households = list(
        session.execute(
            select(Household).where(col(Household.rev) > after, scope_h).order_by(col(Household.rev)).limit(limit + 1)
        ).scalars()
    )
    people: list[Person] = []
    if principal.can(Action.child_read):
        people = list(
            session.execute(
                select(Person)
                .where(col(Person.rev) > after, orgunits.in_jurisdiction(principal, col(Person.org_unit_id)))
                .order_by(col(Person.rev))
                .limit(limit + 1)
            ).scalars()
        )
    templates = list(
        session.execute(
            select(ChecklistTemplate)
            .where(col(ChecklistTemplate.rev) > after)
            .order_by(col(ChecklistTemplate.rev))
            .limit(limit + 1)
        ).scalars()
    )
    assignments: list[Assignment] = []
    if principal.can(Action.assignment_read):
        assignments = helpers.assignments_changed(session, principal, after=after, limit=limit + 1)
    merged: list[tuple[int, str, Any]] = sorted(
        [(h.rev, "household", h) for h in households]
        + [(p.rev, "person", p) for p in people]
        + [(t.rev, "template", t) for t in templates]
        + [(a.rev, "assignment", a) for a in assignments],
        key=lambda e: e[0],
    )
    has_more = len(merged) > limit
    page = merged[:limit]
    guardians = registry.guardians_of(session, [p.id for _, kind, p in page if kind == "person" and p.id is not None])
    assignment_records = {
        a.id: a.model_dump(mode="json")
        for a in helpers.assignments_public(session, [obj for _, kind, obj in page if kind == "assignment"])
    }
    items: list[dict[str, Any]] = []
    for rev, kind, obj in page:
        if kind == "household":
            record = registry.household_public(obj)
        elif kind == "person":
            record = registry.person_public(obj, guardians.get(obj.id))
        elif kind == "assignment":
            record = assignment_records[obj.id]
        else:
            record = checklists.template_public(obj)
        items.append({"kind": kind, "rev": rev, "record": record})
    last = page[-1][0] if page else after
    if people:
        audit.record(
            session,
            actor=principal,
            action="sync.pull",
            object_type="sync",
            org_unit_id=principal.org_unit_id,
            details={"after": after, "persons": sum(1 for _, k, _ in page if k == "person")},
        )
    return {
        "items": items,
        "next_cursor": encode_cursor({"r": last, "p": principal.org_path}),
        "has_more": has_more,
        "reset": reset,
    }


def as_uuid(value: str) -> UUID:
    return UUID(value)
