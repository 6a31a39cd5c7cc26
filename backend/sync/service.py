"""Push (a batch of records, one result each); pull is in backend/sync/pull.py."""

from __future__ import annotations

from collections import Counter
from typing import Any
from uuid import UUID

from sqlmodel import Session

from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.core import clock, integers, text
from backend.core.errors import InvalidInput, PayloadTooLarge
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
    results: list[ItemResult | None] = [None] * len(raw_items)
    by_kind: dict[str, list[int]] = {}
    # Text no backend can store rejects its item here, before any handler sees it, so every kind is
    # covered and both backends answer alike (backend/core/text.py). One check of the whole batch
    # first: items are looked at one by one only when some text is suspect.
    suspect = text.holds_unstorable([raw.data for raw in raw_items])
    # The same for integers no column holds (backend/core/integers.py): one look at the batch first.
    long_numbers = bool(integers.find_out_of_range([raw.data for raw in raw_items]))
    for i, raw in enumerate(raw_items):
        unstorable = text.find_unstorable(raw.data) if suspect else []
        if unstorable:
            problem = text.unstorable_problem(unstorable, locale).to_problem(locale)
            results[i] = ItemResult(ItemStatus.rejected, problem=problem)
            continue
        # So are integers no column holds: both backends refuse the item alike (backend/core/integers.py).
        out_of_range = integers.find_out_of_range(raw.data) if long_numbers else []
        if raw.base_version is not None and not integers.SMALLEST <= raw.base_version <= integers.LARGEST:
            out_of_range.insert(0, "base_version")
        if out_of_range:
            problem = integers.out_of_range_problem(out_of_range).to_problem(locale)
            results[i] = ItemResult(ItemStatus.rejected, problem=problem)
            continue
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
    _declare(raw_items, results)
    disclosure.event(session, "sync.push", actor=principal, object_type="sync", org_unit_id=principal.org_unit_id,
                     details={"items": len(raw_items), **counts})
    return {"results": out, "counts": dict(counts), "server_time": clock.now().isoformat()}


# Push kinds whose records are about people, by the kind of audited record they are.
PERSON_BEARING = {"household": disclosure.HOUSEHOLD, "person": disclosure.PERSON, "visit": disclosure.VISIT,
                  "amendment": disclosure.VISIT,
                  # A mandatory report describes a child (and may name a registered one): a referral.
                  "mandatory_report": disclosure.REFERRAL}


def _declare(raw_items: list[PushItemIn], results: list[ItemResult | None]) -> None:
    """The records this push created or changed, and those it answered with (a duplicate's or a
    conflict's stored copy), for the request's audit entry."""
    for raw, result in zip(raw_items, results, strict=True):
        kind = PERSON_BEARING.get(raw.kind)
        if kind is None or result is None or not result.record or not isinstance(result.record.get("id"), int):
            continue
        wrote = result.status in (ItemStatus.created, ItemStatus.updated)
        (disclosure.changed if wrote else disclosure.record)(kind, [result.record["id"]])


def as_uuid(value: str) -> UUID:
    return UUID(value)
