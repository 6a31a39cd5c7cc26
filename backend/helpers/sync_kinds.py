"""The "followup" push kind: a helper's follow-up visits recorded offline arrive through the sync push
and are stored by the same service function as POST /helpers/assignments/{id}/followups, with the
same effects (the assignment's last follow-up, so the next one falls due from it; the phone pulls the
assignment again with it). Exactly once: the phone's UUID makes a resend a duplicate (the same
assignment, time and note) or a conflict (anything else), however many pushes race."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.core import clock, placement
from backend.core.errors import Conflict
from backend.helpers import service
from backend.helpers.models import FollowUp
from backend.helpers.schemas import FollowUpData, FollowUpPublic
from backend.sync import revisions
from backend.sync.itemwise import in_savepoint, parse_data
from backend.sync.kinds import ItemResult, ItemStatus, PushItem, register_kind

KIND = "followup"


class FollowUpConflict(Conflict):
    code = "followup-conflict"
    title_zh = "该随访记录已以不同内容保存"
    title_en = "A follow-up with this UUID is stored with other content"


def followup_record(f: FollowUp) -> dict[str, Any]:
    return FollowUpPublic(id=f.id or 0, assignment_id=f.assignment_id, visited_at=f.visited_at, note=f.note,
                          client_uuid=f.client_uuid, device_time=f.device_time,
                          clock_suspect=f.clock_suspect).model_dump(mode="json")


def _same(stored: FollowUp, data: FollowUpData) -> bool:
    """What the phone recorded: the assignment, the time it gave (the same instant in any offset) and the note."""
    given = stored.device_time or stored.visited_at
    return (stored.assignment_id == data.assignment_id
            and clock.as_utc(given) == clock.as_utc(data.visited_at)
            and (stored.note or None) == (data.note or None))


def _answer(session: Session, principal: Principal, stored: FollowUp, data: FollowUpData, locale: str) -> ItemResult:
    """A UUID already stored: duplicate when the content is the same, else conflict (with the stored copy
    only when it is the caller's own: another's follow-up is never shown)."""
    own = service.owns_followup(session, principal, stored)
    if own and _same(stored, data):
        disclosure.record(disclosure.ASSIGNMENT, [stored.assignment_id])
        return ItemResult(ItemStatus.duplicate, record=followup_record(stored))
    problem = FollowUpConflict(
        "该随访记录的标识已用于另一条记录，请勿修改已上传的随访",
        "This follow-up's UUID is stored with other content; a pushed follow-up cannot be changed",
    ).to_problem(locale)
    return ItemResult(ItemStatus.conflict, record=followup_record(stored) if own else None, problem=problem)


def push_followups(session: Session, principal: Principal, items: list[PushItem], locale: str) -> list[ItemResult]:
    """One result per pushed follow-up: created, duplicate, conflict or rejected (as the REST endpoint
    refuses: not the caller's own assignment answers as one that does not exist)."""
    placer = placement.Placer(clock.now())
    results: list[ItemResult] = []
    for item in items:
        parsed = parse_data(FollowUpData, item.data, locale)
        if isinstance(parsed, ItemResult):
            results.append(parsed)
            continue

        def work(item: PushItem = item, data: FollowUpData = parsed) -> ItemResult:
            # The counter's lock first: a push of the same UUID that is committing is seen once it has,
            # and the assignment is read after any change that was committing (revisions.hold).
            revisions.hold(session)
            stored = service.followup_by_uuid(session, item.client_uuid)
            if stored is not None:
                return _answer(session, principal, stored, data, locale)
            placed = placer.place(data.visited_at)
            attempt = session.begin_nested()
            try:
                row = service.record_followup(session, principal, data.assignment_id, visited_at=placed.counted_at,
                                              note=data.note, client_uuid=item.client_uuid,
                                              device_time=data.visited_at, clock_suspect=placed.clock_suspect)
            except IntegrityError:
                # The same UUID committed meanwhile by a concurrent push (PostgreSQL): answer as a resend.
                attempt.rollback()
                stored = service.followup_by_uuid(session, item.client_uuid)
                if stored is None:
                    raise
                return _answer(session, principal, stored, data, locale)
            except BaseException:
                attempt.rollback()
                raise
            attempt.commit()
            disclosure.changed(disclosure.ASSIGNMENT, [row.assignment_id])
            return ItemResult(ItemStatus.created, record=followup_record(row))

        results.append(in_savepoint(session, locale, work))
    return results


register_kind(KIND, push_followups, order=300, data_model=FollowUpData)
