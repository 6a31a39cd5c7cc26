"""Review of field work (审核): decisions on visits and inspections, the queue, the town's coverage rule.

A coordinator of the record's unit (town or county: `review.manage`) decides pending -> approved,
has_issues or rejected (the last two with a comment), and may revise a decision later by naming the
state it saw (`expected_state`): a decision taken on a state that changed meanwhile is a 409
`review-state-conflict` with the `current_status`, never a silent overwrite. Nothing goes back to
pending. "Has issues" reaches the recorder (a notification, and the sync pull kind `review`); the
recorder answers with an amendment of the visit (the phone's ordinary `amendment` push, whose new row
is pending and queues as `amended_waiting`) or, for an inspection, a response note
(POST /inspections/{id}/review/response). A has_issues record with its answer counts as answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.core import clock, text
from backend.core.db import dialect_insert
from backend.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from backend.core.pagination import PageRequest
from backend.inspections.models import Inspection, InspectionInspector
from backend.notifications import service as notifications
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.reviews.models import NEEDS_COMMENT, RecordKind, ReviewEvent, ReviewSetting, ReviewState
from backend.reviews.schemas import QueueItem, ReviewDecision, ReviewPublic, ReviewSettingPublic, ReviewSummary
from backend.sync import revisions
from backend.visits.models import Visit

# The flags that put a pending visit or inspection in the queue by themselves.
FLAGS = ("location_mismatch", "clock_suspect")


class ReviewRecordNotFound(NotFound):
    code = "review-record-not-found"
    title_zh = "未找到要审核的记录"
    title_en = "Record to review not found"


class ReviewStateConflict(Conflict):
    code = "review-state"
    title_zh = "审核状态已变化"
    title_en = "The review state has changed"


class ReviewCommentRequired(InvalidInput):
    code = "review-comment-required"
    title_zh = "须填写审核意见"
    title_en = "A comment is required"


class ReviewSettingUnitInvalid(InvalidInput):
    code = "review-setting-unit-invalid"
    title_zh = "审核计数规则按乡镇（街道）设置"
    title_en = "The counting rule is set per town"


class ReviewOwnRecord(Forbidden):
    """Four eyes: the person who recorded a visit or inspection never decides on it (a coordinator's own
    visits are reviewed by another coordinator of its area or the level above)."""

    code = "review-own-record"
    title_zh = "不能审核本人录入的记录"
    title_en = "You cannot review a record you made"


_MODELS: dict[RecordKind, Any] = {RecordKind.visit: Visit, RecordKind.inspection: Inspection}


@dataclass(frozen=True)
class _Record:
    kind: RecordKind
    id: int
    uuid: str
    org_unit_id: int
    recorded_by: int
    recorded_at: datetime
    state: str


def _read(session: Session, kind: RecordKind, record_id: int, *, lock: bool = False) -> _Record | None:
    model = _MODELS[kind]
    recorder = col(Visit.recorded_by) if kind is RecordKind.visit else col(Inspection.recorded_by_user_id)
    at = col(Visit.counted_at) if kind is RecordKind.visit else col(Inspection.counted_at)
    stmt = select(col(model.id), col(model.client_uuid), col(model.org_unit_id), recorder, at,
                  col(model.review_state)).where(col(model.id) == record_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = session.execute(stmt).first()
    if row is None:
        return None
    return _Record(kind, int(row[0]), str(row[1]), int(row[2]), int(row[3]), clock.as_utc(row[4]), str(row[5]))


def _visible(session: Session, principal: Principal, kind: RecordKind, record_id: int, *,
             lock: bool = False) -> _Record:
    """The record when it lies in the caller's jurisdiction; otherwise the same 404 as a missing id."""
    record = _read(session, kind, record_id, lock=lock)
    path = orgunits.unit_path(session, record.org_unit_id) if record is not None else None
    if record is None or path is None or not principal.covers(path):
        raise ReviewRecordNotFound()
    return record


def _audit(session: Session, principal: Principal, action: str, record: _Record, *, read: bool,
           details: dict[str, Any] | None = None) -> None:
    if record.kind is RecordKind.visit:
        (disclosure.record if read else disclosure.changed)(disclosure.VISIT, [record.id],
                                                             unit_id=record.org_unit_id)
    disclosure.event(session, action, actor=principal, object_type=record.kind.value, object_id=record.id,
                     org_unit_id=record.org_unit_id, details=details)


# ---------------------------------------------------------------- decisions


def _conflict(record: _Record, wanted: ReviewState, why_zh: str, why_en: str) -> ReviewStateConflict:
    return ReviewStateConflict(
        f"该记录当前审核状态为“{ReviewState(record.state).zh}”，{why_zh}",
        f"The record's review state is {record.state}; {why_en}",
        current_status=record.state, wanted=wanted.value)


def decide(session: Session, principal: Principal, kind: RecordKind, record_id: int,
           body: ReviewDecision) -> ReviewEvent:
    """Record a coordinator's decision on a visit or inspection (see the module's docstring)."""
    principal.require(Action.review_manage)
    wanted = body.state
    comment = (body.comment or "").strip() or None
    if comment is not None and not text.visible(comment):
        comment = None  # only invisible characters: no comment at all
    if wanted is ReviewState.pending:
        raise InvalidInput("审核结果应为通过、有问题或不予采信", "state must be approved, has_issues or rejected",
                           field="state")
    if wanted in NEEDS_COMMENT and comment is None:
        raise ReviewCommentRequired(f"“{wanted.zh}”须填写审核意见", f"A comment is required for {wanted.value}",
                                    field="comment")
    # The counter's lock first (the decision's revision), then the record's row (the lock order rule).
    revisions.hold(session)
    record = _visible(session, principal, kind, record_id, lock=True)
    took_part = kind is RecordKind.inspection and session.execute(select(col(InspectionInspector.inspection_id)).where(
        col(InspectionInspector.inspection_id) == record.id,
        col(InspectionInspector.user_id) == principal.user_id)).first() is not None
    if record.recorded_by == principal.user_id or took_part:
        raise ReviewOwnRecord("本人录入或参与的记录须由其他协调员审核",
                              "another coordinator reviews the records you made or took part in")
    expected = body.expected_state
    if expected is None and record.state != ReviewState.pending.value:
        # A first decision needs no expected state; revising one does, so a decision somebody else took
        # meanwhile is never overwritten unseen.
        raise _conflict(record, wanted, "修改审核结论时须提供 expected_state",
                        "revising a decision needs expected_state")
    if expected is not None and expected.value != record.state:
        raise _conflict(record, wanted, "已被他人修改，请刷新后再审核", "someone changed it meanwhile; reload")
    if wanted.value == record.state:
        raise _conflict(record, wanted, "无需重复审核", "it already is")
    model = _MODELS[kind]
    session.execute(update(model).where(col(model.id) == record.id).values(review_state=wanted.value)
                    .execution_options(synchronize_session=False))
    event = ReviewEvent(record_kind=kind.value, record_id=record.id, record_uuid=record.uuid,
                        org_unit_id=record.org_unit_id, recorded_by=record.recorded_by, from_state=record.state,
                        to_state=wanted.value, comment=comment, decided_by=principal.user_id,
                        decided_at=clock.now(), rev=revisions.allocate(session))
    session.add(event)
    session.flush()
    _audit(session, principal, "review.decide", record, read=False,
           details={"from": record.state, "to": wanted.value})
    if wanted is ReviewState.has_issues:
        _tell_recorder(session, record)
    return event


def _tell_recorder(session: Session, record: _Record) -> None:
    """The recorder's phone learns there is a review to read: the record's kind and id only."""
    what_zh, what_en = ("走访记录", "visit") if record.kind is RecordKind.visit else ("检查记录", "inspection")
    notifications.enqueue(
        session, user_ids=[record.recorded_by], kind="review.has_issues", title_zh=f"{what_zh}需要更正",
        title_en=f"{'An' if what_en[0] in 'aeiou' else 'A'} {what_en} needs your attention",
        body_zh=f"协调人审核您的一条{what_zh}时发现问题，请在应用中查看审核意见并更正。",
        body_en=f"A coordinator found issues in one of your {what_en}s. Read the review in the app and answer it.",
        data={"record_kind": record.kind.value, "record_id": str(record.id)})


def respond(session: Session, principal: Principal, inspection_id: int, note: str) -> ReviewEvent:
    """The inspector answers "has issues" on an inspection it recorded, with a note. Sending the same
    answer again returns the answered review (a phone's retry); another answer to it is a 409."""
    principal.require(Action.inspection_create)
    note = note.strip()
    if not text.visible(note):
        raise InvalidInput("请填写答复", "A note is required", field="note")
    revisions.hold(session)
    record = _visible(session, principal, RecordKind.inspection, inspection_id, lock=True)
    if record.recorded_by != principal.user_id:
        raise ReviewRecordNotFound()  # only its recorder answers; nobody else learns more
    last = _latest(session, record)
    if record.state != ReviewState.has_issues.value or last is None:
        raise _conflict(record, ReviewState.has_issues, "无需答复", "there is nothing to answer")
    if last.answered_at is not None:
        if last.answer_note == note:
            return last
        raise _conflict(record, ReviewState.has_issues, "已答复过", "it was answered already")
    last.answer_note, last.answered_at, last.rev = note, clock.now(), revisions.allocate(session)
    session.add(last)
    session.flush()
    _audit(session, principal, "review.respond", record, read=False)
    return last


def _latest(session: Session, record: _Record) -> ReviewEvent | None:
    return session.execute(
        select(ReviewEvent).where(col(ReviewEvent.record_kind) == record.kind.value,
                                  col(ReviewEvent.record_id) == record.id)
        .order_by(col(ReviewEvent.id).desc()).limit(1)).scalar_one_or_none()


def history(session: Session, principal: Principal, kind: RecordKind, record_id: int) -> list[ReviewPublic]:
    """Every decision on the record, oldest first (audited): for review.read holders, and for whoever
    recorded it (a market officer's phone has no sync pull: it reads its inspection's review here)."""
    if not principal.can(Action.review_read):
        mine = _read(session, kind, record_id)
        if mine is None or mine.recorded_by != principal.user_id:
            principal.require(Action.review_read)  # the same refusal as for any record
    record = _visible(session, principal, kind, record_id)
    events = session.execute(
        select(ReviewEvent).where(col(ReviewEvent.record_kind) == kind.value, col(ReviewEvent.record_id) == record.id)
        .order_by(col(ReviewEvent.id))).scalars().all()
    _audit(session, principal, "review.read", record, read=True, details={"count": len(events)})
    return [review_public(e) for e in events]


def review_public(e: ReviewEvent) -> ReviewPublic:
    return ReviewPublic(id=e.id or 0, record_kind=e.record_kind, record_id=e.record_id, from_state=e.from_state,
                        review_state=e.to_state, comment=e.comment, decided_by=e.decided_by,
                        decided_at=clock.as_utc(e.decided_at), answer_note=e.answer_note,
                        answered_at=clock.as_utc(e.answered_at) if e.answered_at else None)


def review_record(e: ReviewEvent) -> dict[str, Any]:
    """The pull item `review` (mobile_api_spec/sync.md): one decision on one of the phone's records."""
    return {**review_public(e).model_dump(mode="json"), "record_uuid": e.record_uuid}


# ---------------------------------------------------------------- the queue


def _unit(session: Session, principal: Principal, unit_id: int | None) -> OrgUnit:
    return orgunits.get_visible_unit(session, principal, unit_id if unit_id is not None else principal.org_unit_id)


def _amends_decided(visit: Any) -> ColumnElement[bool]:
    """The visit is an amendment of a visit a coordinator already decided on (approved, has issues or
    rejected), or of one an earlier decided amendment replaced: an answer to "has issues", or a
    correction of an approved visit, which must not wait unseen among every pending visit (in a town
    counting approved visits only the approved version counts until the amendment is decided)."""
    earlier = aliased(Visit)
    return and_(col(visit.amends_id).is_not(None), exists().where(
        or_(col(earlier.id) == visit.amends_id,
            and_(col(earlier.amends_id) == visit.amends_id, col(earlier.id) < visit.id)),
        col(earlier.review_state) != "pending"))


def _answered_visit(visit: Any) -> ColumnElement[bool]:
    """A later version replaces the visit (an amendment of it, or a later one of the same first visit)."""
    later = aliased(Visit)
    return exists().where(col(later.id) > visit.id, or_(
        col(later.amends_id) == visit.id,
        and_(col(visit.amends_id).is_not(None), col(later.amends_id) == visit.amends_id)))


def _answered_inspection(model: Any) -> ColumnElement[bool]:
    return exists().where(col(ReviewEvent.record_kind) == "inspection", col(ReviewEvent.record_id) == model.id,
                          col(ReviewEvent.to_state) == "has_issues", col(ReviewEvent.answered_at).is_not(None))


def _terms(kind: RecordKind) -> tuple[ColumnElement[bool], ColumnElement[bool], ColumnElement[bool]]:
    """(pending, answered, waiting) of a record of `kind`, the queue's and the summary's one reading.
    pending: nothing decided (a visit an amendment replaced is not pending: it waits as its amendment);
    answered: has_issues was answered (an amendment, or the inspector's note); waiting: an answer or
    correction waiting for a decision."""
    model = _MODELS[kind]
    pending = col(model.review_state) == "pending"
    if kind is RecordKind.visit:
        answered = _answered_visit(Visit)
        pending = and_(pending, ~answered)
        return pending, answered, and_(pending, _amends_decided(Visit))
    answered = _answered_inspection(model)
    return pending, answered, and_(col(model.review_state) == "has_issues", answered)


def _flagged(kind: RecordKind, flags: Sequence[str] = FLAGS) -> ColumnElement[bool]:
    model = _MODELS[kind]
    return or_(*(col(getattr(model, f)).is_(True) for f in flags))


def _conditions(kind: RecordKind, state: ReviewState | None, flag: str | None) -> list[ColumnElement[bool]]:
    """What puts a record of `kind` in the queue: by default, pending and flagged, or an answer to
    has_issues waiting for a decision; with `state`, every record in that state."""
    model = _MODELS[kind]
    flagged = _flagged(kind, (flag,) if flag else FLAGS)
    if state is not None:
        return [col(model.review_state) == state.value, *([flagged] if flag else [])]
    pending, _, waiting = _terms(kind)
    return [or_(and_(pending, flagged), waiting) if not flag else and_(pending, flagged)]


def queue(session: Session, principal: Principal, page: PageRequest, *, unit_id: int | None,
          state: ReviewState | None, flag: str | None, record_kind: RecordKind | None) -> list[QueueItem]:
    """The records waiting for review in the unit's subtree (see `_conditions`), visits first, each kind
    by id; at most a page (the paged form continues after its cursor). No names, no answers."""
    principal.require(Action.review_read)
    unit = _unit(session, principal, unit_id)
    if flag is not None and flag not in FLAGS:
        raise InvalidInput(f"flag 应为：{'、'.join(FLAGS)}", f"flag must be one of {', '.join(FLAGS)}", field="flag")
    raw = page.after(int, int) if page.paged else None
    after = (int(str(raw[0])), int(str(raw[1]))) if raw is not None else None
    wanted = page.limit + 1
    items: list[QueueItem] = []
    for rank, kind in enumerate(RecordKind):
        if (record_kind is not None and kind is not record_kind) or len(items) >= wanted:
            continue
        if after is not None and after[0] > rank:
            continue
        model = _MODELS[kind]
        stmt = select(model).where(col(model.org_unit_id).in_(orgunits.subtree_unit_ids(unit.path)),
                                   *_conditions(kind, state, flag))
        if after is not None and after[0] == rank:
            stmt = stmt.where(col(model.id) > after[1])
        rows = session.execute(stmt.order_by(col(model.id)).limit(wanted - len(items))).scalars().all()
        items += _items(session, kind, rows)
    visits = [i.record_id for i in items if i.record_kind == RecordKind.visit.value]
    disclosure.record(disclosure.VISIT, visits)
    disclosure.event(session, "review.queue.read", actor=principal, object_type="org_unit", object_id=unit.id,
                     org_unit_id=unit.id, details={"count": len(items), "state": state.value if state else None})
    return items


def _items(session: Session, kind: RecordKind, rows: Sequence[Any]) -> list[QueueItem]:
    if not rows:
        return []
    ids = [r.id for r in rows]
    # The newest decision of each record, and for an amendment the decision it answers.
    answers: dict[int, int] = {}
    if kind is RecordKind.visit:
        answers = {r.id: r.amends_id for r in rows if r.amends_id is not None}
    latest = _latest_events(session, kind, ids)
    answered = _latest_events(session, kind, list(set(answers.values()))) if answers else {}
    out = []
    for r in rows:
        flags = [f for f in FLAGS if getattr(r, f)]
        last = latest.get(r.id)
        answered_review = answered.get(answers.get(r.id, -1))
        recorder = r.recorded_by if kind is RecordKind.visit else r.recorded_by_user_id
        comment = last.comment if last is not None else (answered_review.comment if answered_review else None)
        out.append(QueueItem(
            record_kind=kind.value, record_id=r.id, review_state=r.review_state, flags=flags,
            org_unit_id=r.org_unit_id, recorded_by=recorder, recorded_at=clock.as_utc(r.counted_at),
            comment=comment, amends_id=getattr(r, "amends_id", None),
            answers_review_id=answered_review.id if answered_review is not None
            and answered_review.to_state == "has_issues" else None,
            answer_note=last.answer_note if last is not None else None))
    return out


def _latest_events(session: Session, kind: RecordKind, ids: Sequence[int]) -> dict[int, ReviewEvent]:
    if not ids:
        return {}
    newest = (select(func.max(col(ReviewEvent.id))).where(col(ReviewEvent.record_kind) == kind.value,
                                                          col(ReviewEvent.record_id).in_(ids))
              .group_by(col(ReviewEvent.record_id)))
    return {e.record_id: e for e in session.execute(
        select(ReviewEvent).where(col(ReviewEvent.id).in_(newest))).scalars()}


def summary(session: Session, principal: Principal, unit_id: int | None) -> ReviewSummary:
    """The counts the dashboard shows for the unit's subtree (audited, counts only)."""
    principal.require(Action.review_read)
    unit = _unit(session, principal, unit_id)
    counts = dict.fromkeys(("pending_flagged", "has_issues", "amended_waiting", "rejected", "approved"), 0)
    for kind in RecordKind:
        model = _MODELS[kind]
        pending, answered, waiting = _terms(kind)
        measures = {
            "pending_flagged": and_(pending, _flagged(kind), ~waiting),
            "has_issues": and_(col(model.review_state) == "has_issues", ~answered),
            "amended_waiting": waiting,
            "rejected": col(model.review_state) == "rejected",
            "approved": col(model.review_state) == "approved",
        }
        # One pass over the unit's records of the kind, each figure a filtered count.
        row = session.execute(
            select(*(func.count().filter(condition) for condition in measures.values()))
            .select_from(model).where(col(model.org_unit_id).in_(orgunits.subtree_unit_ids(unit.path)))
        ).one()
        for name, value in zip(measures, row, strict=True):
            counts[name] += int(value)
    disclosure.event(session, "review.summary.read", actor=principal, object_type="org_unit", object_id=unit.id,
                     org_unit_id=unit.id)
    return ReviewSummary(unit_id=unit.id or 0, **counts)


# ---------------------------------------------------------------- the town's counting rule


def _town(session: Session, principal: Principal, unit_id: int | None) -> OrgUnit:
    unit = _unit(session, principal, unit_id)
    if unit.level != OrgLevel.town.value:
        raise ReviewSettingUnitInvalid("请选择一个乡镇（街道）", "unit_id must be a town", field="unit_id")
    return unit


def get_setting(session: Session, principal: Principal, unit_id: int | None) -> ReviewSettingPublic:
    """A town's counting rule (all visits unless it chose approved only)."""
    principal.require(Action.review_read)
    town = _town(session, principal, unit_id)
    row = session.get(ReviewSetting, town.id)
    disclosure.event(session, "review.setting.read", actor=principal, object_type="org_unit", object_id=town.id,
                     org_unit_id=town.id)
    return _setting_public(town, row)


def put_setting(session: Session, principal: Principal, unit_id: int | None,
                approved_only: bool) -> ReviewSettingPublic:
    """Set a town's counting rule; coverage applies it at once (live and summary figures)."""
    principal.require(Action.review_manage)
    town = _town(session, principal, unit_id)
    assert town.id is not None
    old = session.get(ReviewSetting, town.id)
    before = bool(old.approved_only) if old is not None else False
    values = {"approved_only": approved_only, "set_by": principal.user_id, "set_at": clock.now()}
    # One statement whoever sets it at the same moment (the last one wins, both audited).
    insert = dialect_insert(session)
    session.execute(insert(ReviewSetting).values(org_unit_id=town.id, **values)
                    .on_conflict_do_update(index_elements=["org_unit_id"], set_=values))
    row = session.get(ReviewSetting, town.id, populate_existing=True)
    disclosure.event(session, "review.setting.change", actor=principal, object_type="org_unit", object_id=town.id,
                     org_unit_id=town.id, details={"from": before, "to": approved_only})
    return _setting_public(town, row)


def _setting_public(town: OrgUnit, row: ReviewSetting | None) -> ReviewSettingPublic:
    approved_only = bool(row.approved_only) if row is not None else False
    return ReviewSettingPublic(
        unit_id=town.id or 0, approved_only=approved_only,
        counting="approved_only" if approved_only else "all",
        set_by=row.set_by if row is not None else None,
        set_at=clock.as_utc(row.set_at) if row is not None else None)
