"""Push kind `activity` and what the pull kind `activity` sends (registered in backend/sync/pull.py).

Push: each item is stored by the same service function as POST /activities, in a savepoint of its own
(one bad item never fails the others): created, duplicate (same client UUID and content), conflict
(same UUID, other content; nothing overwritten) or rejected (invalid; `problem` says why).

Pull: a phone keeps the activities of its area (their place in its jurisdiction, and those it recorded)
held in the last PULL_DAYS days; activities are never edited or moved, so none is ever removed; a phone
drops those older than the window itself.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, select
from sqlmodel import Session, col

from backend.accounts.principal import Principal
from backend.prevention import service
from backend.prevention.models import Activity
from backend.prevention.schemas import ActivityData
from backend.sync.itemwise import in_savepoint, parse_data
from backend.sync.kinds import ItemResult, ItemStatus, PushItem, register_kind

KIND = "activity"
PULL_DAYS = 90


def handle_activities(session: Session, principal: Principal, items: list[PushItem], locale: str
                      ) -> list[ItemResult]:
    """One result per pushed activity, in order."""
    results: list[ItemResult] = []
    names: dict[str, Any] | None = None
    for item in items:
        parsed = parse_data(ActivityData, item.data, locale)
        if isinstance(parsed, ItemResult):
            results.append(parsed)
            continue

        def work(data: ActivityData = parsed, item: PushItem = item) -> ItemResult:
            nonlocal names
            try:
                recorded = service.record_activity(session, principal, item.client_uuid, data, via="sync")
            except service.ActivityConflict as exc:
                return ItemResult(ItemStatus.conflict, problem=exc.to_problem(locale))
            names = names or service.type_names(session)
            record = service.activity_public(recorded.activity, names) if recorded.shown else None
            return ItemResult(ItemStatus.created if recorded.created else ItemStatus.duplicate, record=record)

        results.append(in_savepoint(session, locale, work))
    return results


def pull_scope(principal: Principal) -> ColumnElement[bool]:
    """The activities a phone keeps: visible to its user and held within the window."""
    since = service.local_today() - timedelta(days=PULL_DAYS)
    return and_(col(Activity.held_date) >= since, service.visible(principal))


def load_page(session: Session, principal: Principal, after: int, cut: int) -> list[tuple[int, Any]]:
    """(rev, public record) of the page's activities, by revision."""
    rows = session.execute(
        select(service.ACTIVITY_TABLE)
        .where(col(Activity.rev) > after, col(Activity.rev) <= cut, pull_scope(principal))
        .order_by(col(Activity.rev))
    ).mappings().all()
    names = service.type_names(session) if rows else {}
    return [(int(r["rev"]), service.activity_public(dict(r), names)) for r in rows]


# After the institutions (none pushed yet) and visits: an activity names no other pushed record.
register_kind(KIND, handle_activities, order=250, data_model=ActivityData)
