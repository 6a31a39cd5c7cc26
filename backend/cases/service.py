"""Cases (个案): opening (by hand, from a referral, for a helper), open -> active -> closed with a
reason a coordinator approves, reopening, and the history of every transition. Closing ends every
help of the case that holds a helper's place. Reads and changes go through the one scope mechanism
(backend/accounts/scope.py) and the structural audit (backend/audit/disclosure.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from backend.accounts import scope
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.audit import service as audit
from backend.cases.models import NOT_CLOSED, Case, CaseAction, CaseEvent, CaseSource, CaseStatus, CloseReason
from backend.cases.schemas import CasePublic, ClosurePending
from backend.core import clock
from backend.core.errors import Conflict, InvalidInput, NotFound
from backend.core.pagination import PageRequest
from backend.helpers.models import HOLDING, Assignment, AssignmentStatus, EndReason
from backend.registry.models import Household, Person, PersonRole
from backend.sync import revisions


class CaseNotFound(NotFound):
    code = "case-not-found"
    title_zh = "未找到个案"
    title_en = "Case not found"


class CaseTransitionInvalid(Conflict):
    code = "case-transition-invalid"
    title_zh = "个案当前状态不允许此操作"
    title_en = "The case's state does not allow this"


class CaseAlreadyOpen(Conflict):
    code = "case-already-open"
    title_zh = "该儿童已有未结案的个案"
    title_en = "The child already has a case that is not closed"


class ClosureReasonInvalid(InvalidInput):
    code = "closure-reason-invalid"
    title_zh = "结案原因无效"
    title_en = "Invalid closure reason"


class CaseChildInvalid(InvalidInput):
    code = "case-child-invalid"
    title_zh = "个案对象应为辖区内登记的儿童"
    title_en = "A case is opened for a registered child of your jurisdiction"


# ---------------------------------------------------------------- transitions


def allowed_transitions(case: Case) -> list[str]:
    """What may happen to the case now (the names of the transition endpoints)."""
    if case.status == CaseStatus.closed.value:
        return ["reopen"]
    out = ["activate"] if case.status == CaseStatus.open.value else []
    if case.closure_reason is None:
        out += ["propose_closure", "close"]
    else:
        out += ["approve_closure", "reject_closure", "close"]
    return out


def _refuse(case: Case, what: str) -> CaseTransitionInvalid:
    allowed = allowed_transitions(case)
    return CaseTransitionInvalid(
        f"个案状态为{case.status}，不能执行{what}；可执行：{'、'.join(allowed)}",
        f"A case in status {case.status} cannot {what}; allowed: {', '.join(allowed)}",
        current_status=case.status, allowed=allowed, closure_pending=case.closure_reason is not None,
    )


def _reason(reason: str, note: str | None) -> tuple[str, str | None]:
    """A closure reason from the fixed list; `other` needs a note."""
    allowed = [r.value for r in CloseReason]
    if reason not in allowed:
        raise ClosureReasonInvalid(f"结案原因应为：{'、'.join(allowed)}", f"reason must be one of {', '.join(allowed)}",
                                   field="reason", allowed=allowed)
    note = (note or "").strip() or None
    if reason == CloseReason.other.value and note is None:
        raise ClosureReasonInvalid("原因为“其他”时须填写说明", "A note is required when the reason is other",
                                   field="note", allowed=allowed)
    return reason, note


def _fits(session: Session, case: Case, reason: str) -> None:
    """`turned_18` closes the case of a child who is 18 (by the registered birth date, China date);
    a child whose birth date is not known may be closed so on the coordinator's word."""
    if reason != CloseReason.turned_18.value:
        return
    child = session.get(Person, case.child_id)
    born = child.birth_date if child is not None else None
    today = clock.china_date(clock.now())
    if born is not None and (today.year - born.year - ((today.month, today.day) < (born.month, born.day))) < 18:
        raise ClosureReasonInvalid("该儿童尚未年满18周岁，不能以“年满18周岁”结案",
                                   "The child is not 18 yet: the case cannot close as turned_18",
                                   field="reason",
                                   allowed=[r.value for r in CloseReason if r is not CloseReason.turned_18])


def _event(session: Session, case: Case, action: CaseAction, *, actor_user_id: int | None, from_status: str | None,
           reason: str | None = None, note: str | None = None, source: str | None = None,
           source_id: int | None = None) -> None:
    session.add(CaseEvent(case_id=case.id or 0, action=action.value, from_status=from_status, to_status=case.status,
                          actor_user_id=actor_user_id, at=clock.now(), reason=reason, note=note, source=source,
                          source_id=source_id))


def _changed(session: Session, case: Case, principal: Principal | None, action: str,
             details: dict[str, Any] | None = None, *, named: bool = True) -> None:
    """Declare the change to the request's audit entry, named after it (or appended at once outside a
    request). A change made along another act (a referral, a helper's answer) is declared and gets an
    entry of its own, leaving the request's name to that act."""
    case.updated_at = clock.now()
    session.add(case)
    session.flush()
    disclosure.changed(disclosure.CASE, [case.id], unit_id=case.org_unit_id)
    if named:
        disclosure.event(session, action, actor=principal, object_type="case", object_id=case.id,
                         org_unit_id=case.org_unit_id, details={**(details or {}), "child_id": case.child_id})
    else:
        audit.record(session, actor=principal, action=action, object_type="case", object_id=case.id,
                     org_unit_id=case.org_unit_id, details={**(details or {}), "child_id": case.child_id})


# ---------------------------------------------------------------- opening


def _child_unit(session: Session, child_id: int) -> int | None:
    """The unit of the child's household (the child's own unit when it has none); None for no child."""
    row = session.execute(
        select(col(Person.org_unit_id), col(Household.org_unit_id))
        .outerjoin(Household, col(Household.id) == col(Person.household_id))
        .where(col(Person.id) == child_id, col(Person.role) == PersonRole.child.value,
               col(Person.retired_at).is_(None))
    ).first()
    if row is None:
        return None
    return int(row[1] if row[1] is not None else row[0])


def open_case(session: Session, *, child_id: int, source: CaseSource, source_id: int | None = None,
              actor: Principal | None, note: str | None = None, named: bool = False) -> tuple[Case, bool]:
    """The child's case that is not closed, opened now if there is none (race-safe: one INSERT ... ON
    CONFLICT on the partial unique index); whether it was opened now. A new source of an existing case
    joins its history. The caller has checked the child may be reached."""
    # The sync counter first, as a case's transitions take it before its row: an opening racing a
    # reopening of the child's closed case waits for it (then joins the case it reopened) instead of
    # deadlocking on the partial unique index.
    revisions.hold(session)
    unit = _child_unit(session, child_id)
    if unit is None:
        raise CaseChildInvalid(field="child_id")
    now = clock.now()
    referred = source in (CaseSource.referral, CaseSource.mandatory_report)
    values = {"child_id": child_id, "org_unit_id": unit, "status": CaseStatus.open.value,
              "opened_from": source.value, "source_id": source_id, "referred": referred, "opened_at": now,
              "opened_by": actor.user_id if actor else None, "updated_at": now}
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Case).values(**values)
    statement = insert.on_conflict_do_nothing(index_elements=["child_id"], index_where=text(NOT_CLOSED))
    new_id = session.execute(statement.returning(col(Case.id))).scalar_one_or_none()
    actor_id = actor.user_id if actor else None
    if new_id is not None:
        case = session.get(Case, new_id)
        assert case is not None
        _event(session, case, CaseAction.open, actor_user_id=actor_id, from_status=None, source=source.value,
               source_id=source_id, note=note)
        _changed(session, case, actor, "case.open", {"opened_from": source.value}, named=named)
        return case, True
    case = session.execute(
        select(Case).where(col(Case.child_id) == child_id, col(Case.status) != CaseStatus.closed.value)
    ).scalar_one()
    if referred and not case.referred:
        case.referred = True
    _event(session, case, CaseAction.source, actor_user_id=actor_id, from_status=case.status, source=source.value,
           source_id=source_id, note=note)
    _changed(session, case, actor, "case.source", {"source": source.value}, named=named)
    return case, False


def open_by_hand(session: Session, principal: Principal, *, child_id: int, reason: str) -> tuple[Case, bool]:
    """A coordinator opens a case for a child of its jurisdiction (or is given the one already open)."""
    principal.require(Action.case_manage)
    visible = session.execute(
        select(col(Person.id)).where(col(Person.id) == child_id, scope.visible(principal, Person))
    ).first()
    if visible is None:
        raise CaseChildInvalid(field="child_id")
    return open_case(session, child_id=child_id, source=CaseSource.by_hand, actor=principal, note=reason, named=True)


def open_for_referral(session: Session, *, referral_id: int, child_ids: Sequence[int],
                      actor: Principal | None) -> list[Case]:
    """A visit opened a referral: a case for each child it names (source: the referral)."""
    cases = []
    for child_id in sorted(set(child_ids)):
        if _child_unit(session, child_id) is None:
            continue
        cases.append(open_case(session, child_id=child_id, source=CaseSource.referral, source_id=referral_id,
                               actor=actor)[0])
    return cases


def case_for_assignment(session: Session, *, child_id: int, actor: Principal | None) -> int:
    """The id of the child's case that is not closed, opened for a helper proposal if none
    (source: visit_risk, the risk level or 附件3 that brought the child to the matcher)."""
    case, _ = open_case(session, child_id=child_id, source=CaseSource.visit_risk, actor=actor)
    return case.id or 0


def closed_children() -> Any:
    """SELECT of the children whose cases are all closed (at least one): the matcher leaves them
    alone until a new case opens (by hand, a referral) or the case is reopened."""
    still_open = select(col(Case.child_id)).where(col(Case.status) != CaseStatus.closed.value)
    return select(col(Case.child_id)).where(col(Case.status) == CaseStatus.closed.value,
                                            col(Case.child_id).not_in(still_open))


def children_with_open_cases() -> Any:
    """SELECT of the children with a case that is not closed: a child at risk or a victim the case
    was opened for (a mandatory report, a referral, by hand) gets a helper proposed whatever its risk
    level says (seeds 001/002: 一对一 help for each)."""
    return select(col(Case.child_id)).where(col(Case.status) != CaseStatus.closed.value)


# ---------------------------------------------------------------- reading


def case_public(case: Case) -> CasePublic:
    """The one public shape of a case, for the cases API and the sync pull alike."""
    pending = None
    if case.closure_reason is not None and case.closure_proposed_at is not None:
        pending = ClosurePending(reason=case.closure_reason, note=case.closure_note,
                                 proposed_by=case.closure_proposed_by, proposed_at=case.closure_proposed_at)
    return CasePublic(
        id=case.id or 0, child_id=case.child_id, org_unit_id=case.org_unit_id, status=case.status,
        opened_from=case.opened_from, source_id=case.source_id, referred=case.referred, opened_at=case.opened_at,
        opened_by=case.opened_by, activated_at=case.activated_at, closure_pending=pending, closed_at=case.closed_at,
        closed_by=case.closed_by, close_reason=case.close_reason, close_note=case.close_note,
        updated_at=case.updated_at, allowed=allowed_transitions(case),
    )


def get_case(session: Session, principal: Principal, case_id: int, *, action: Action = Action.case_read) -> Case:
    """A case the caller may see (404 case-not-found otherwise, as for an id that does not exist)."""
    principal.require(action)
    return scope.get_visible(session, principal, Case, case_id, action=Action.case_read, not_found=CaseNotFound)


def locked_case(session: Session, principal: Principal, case_id: int, action: Action) -> Case:
    """The case as it is now, locked until the transaction ends: for a change that depends on its
    state (planning a service needs it open), so that change and a closing are one after the other."""
    return _locked(session, principal, case_id, action)


def _locked(session: Session, principal: Principal, case_id: int, action: Action) -> Case:
    """The case for a transition, read again under a row lock (PostgreSQL; SQLite serialises writers)."""
    case = get_case(session, principal, case_id, action=action)
    # The sync counter first, as every writer of cases and assignments takes it (their revisions):
    # a case lock taken before it would deadlock with a helper's acceptance, which holds the counter
    # when it restamps the child's cases (migration 0024).
    revisions.hold(session)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(col(Case.id)).where(col(Case.id) == case.id).with_for_update())
        session.refresh(case)
    return case


def list_cases(session: Session, principal: Principal, *, status: CaseStatus | None = None,
               child_id: int | None = None, page: PageRequest = PageRequest()) -> list[Case]:
    """Cases the caller may see, newest first (the bare list: the newest 500)."""
    principal.require(Action.case_read)
    query = select(Case).where(scope.visible(principal, Case))
    if status is not None:
        query = query.where(col(Case.status) == status.value)
    if child_id is not None:
        query = query.where(col(Case.child_id) == child_id)
    return list(session.execute(page.seek(query, col(Case.id), descending=True, bare_limit=500)).scalars())


def history(session: Session, case_ids: Sequence[int]) -> dict[int, list[CaseEvent]]:
    """The transitions of these cases, oldest first."""
    out: dict[int, list[CaseEvent]] = {i: [] for i in case_ids}
    if not case_ids:
        return out
    for event in session.execute(
        select(CaseEvent).where(col(CaseEvent.case_id).in_(case_ids)).order_by(col(CaseEvent.id))
    ).scalars():
        out[event.case_id].append(event)
    return out


def assignments_of(session: Session, case_ids: Sequence[int]) -> dict[int, list[Assignment]]:
    """The help that belongs to these cases, oldest first."""
    out: dict[int, list[Assignment]] = {i: [] for i in case_ids}
    if not case_ids:
        return out
    for a in session.execute(
        select(Assignment).where(col(Assignment.case_id).in_(case_ids)).order_by(col(Assignment.id))
    ).scalars():
        out[a.case_id or 0].append(a)
    return out


def read_audited(session: Session, principal: Principal, case: Case) -> None:
    disclosure.event(session, "case.read", actor=principal, object_type="case", object_id=case.id,
                     org_unit_id=case.org_unit_id)


# ---------------------------------------------------------------- transitions


def activate(session: Session, principal: Principal, case_id: int, *, note: str | None = None) -> Case:
    """A coordinator marks an open case active."""
    case = _locked(session, principal, case_id, Action.case_manage)
    if case.status != CaseStatus.open.value:
        raise _refuse(case, "activate")
    _activate(session, case, principal, note=note)
    return case


def _activate(session: Session, case: Case, actor: Principal | None, *, note: str | None = None,
              named: bool = True) -> None:
    case.status, case.activated_at = CaseStatus.active.value, clock.now()
    _event(session, case, CaseAction.activate, actor_user_id=actor.user_id if actor else None,
           from_status=CaseStatus.open.value, note=note)
    _changed(session, case, actor, "case.activate", named=named)


def on_assignment_accepted(session: Session, assignment: Assignment, actor: Principal) -> None:
    """A helper accepted: the help joins the child's case (opened if none) and an open case becomes active."""
    if assignment.case_id is None:
        assignment.case_id = case_for_assignment(session, child_id=assignment.child_id, actor=actor)
        session.add(assignment)
    case = session.get(Case, assignment.case_id)
    if case is not None and case.status == CaseStatus.open.value:
        _activate(session, case, actor, note=f"assignment {assignment.id} accepted", named=False)


def propose_closure(session: Session, principal: Principal, case_id: int, *, reason: str,
                    note: str | None) -> Case:
    """Anyone who works on the case (sees it) proposes to close it; the status stays until a
    coordinator approves."""
    case = _locked(session, principal, case_id, Action.case_read)
    reason, note = _reason(reason, note)
    if case.status == CaseStatus.closed.value or case.closure_reason is not None:
        raise _refuse(case, "propose_closure")
    _fits(session, case, reason)
    case.closure_reason, case.closure_note = reason, note
    case.closure_proposed_by, case.closure_proposed_at = principal.user_id, clock.now()
    _event(session, case, CaseAction.propose_closure, actor_user_id=principal.user_id, from_status=case.status,
           reason=reason, note=note)
    _changed(session, case, principal, "case.propose_closure", {"reason": reason})
    return case


def reject_closure(session: Session, principal: Principal, case_id: int, *, note: str) -> Case:
    """A coordinator turns a proposed closure down (with a note); the case goes on."""
    case = _locked(session, principal, case_id, Action.case_manage)
    if case.status == CaseStatus.closed.value or case.closure_reason is None:
        raise _refuse(case, "reject_closure")
    reason = case.closure_reason
    _clear_closure(case)
    _event(session, case, CaseAction.reject_closure, actor_user_id=principal.user_id, from_status=case.status,
           reason=reason, note=note)
    _changed(session, case, principal, "case.reject_closure")
    return case


def approve_closure(session: Session, principal: Principal, case_id: int, *, note: str | None = None) -> Case:
    """A coordinator approves the proposed closure: the case closes with the proposed reason."""
    case = _locked(session, principal, case_id, Action.case_manage)
    if case.status == CaseStatus.closed.value or case.closure_reason is None:
        raise _refuse(case, "approve_closure")
    _close(session, principal, case, case.closure_reason, note or case.closure_note)
    return case


def close(session: Session, principal: Principal, case_id: int, *, reason: str, note: str | None) -> Case:
    """A coordinator closes the case at once (proposal and approval in one)."""
    case = _locked(session, principal, case_id, Action.case_manage)
    reason, note = _reason(reason, note)
    if case.status == CaseStatus.closed.value:
        raise _refuse(case, "close")
    _fits(session, case, reason)
    _close(session, principal, case, reason, note)
    return case


def _clear_closure(case: Case) -> None:
    case.closure_reason = case.closure_note = None
    case.closure_proposed_by = case.closure_proposed_at = None


def _close(session: Session, principal: Principal, case: Case, reason: str, note: str | None) -> None:
    before, now = case.status, clock.now()
    case.status, case.closed_at, case.closed_by = CaseStatus.closed.value, now, principal.user_id
    case.close_reason, case.close_note = reason, note
    _clear_closure(case)
    _event(session, case, CaseAction.close, actor_user_id=principal.user_id, from_status=before, reason=reason,
           note=note)
    ended = end_help_of(session, case, principal)
    # Its services still open are declined (case_closed), and its open referrals with them.
    from backend.service_plans import service as service_plans

    declined = service_plans.on_case_closed(session, case, principal)
    _changed(session, case, principal, "case.close", {"reason": reason, "assignments_ended": len(ended),
                                                      "services_declined": len(declined)})


def end_help_of(session: Session, case: Case, principal: Principal) -> list[Assignment]:
    """Every help of the case that holds a helper's place ends (`case_closed`): the helper's place is
    free, follow-ups stop falling due, and the child leaves the helper's view and phone (migration 0016)."""
    holding = list(session.execute(
        select(Assignment).where(col(Assignment.case_id) == case.id, col(Assignment.status).in_(HOLDING))
        .order_by(col(Assignment.id))
    ).scalars())
    now = clock.now()
    for a in holding:
        a.status, a.ended_at = AssignmentStatus.ended.value, now
        a.end_reason, a.end_note = EndReason.case_closed.value, None
        session.add(a)
    session.flush()
    for a in holding:
        audit.record(session, actor=principal, action="assignment.end", object_type="helper_assignment",
                     object_id=a.id, org_unit_id=a.org_unit_id,
                     details={"reason": EndReason.case_closed.value, "case_id": case.id})
    disclosure.changed(disclosure.ASSIGNMENT, [a.id for a in holding])
    return holding


def reopen(session: Session, principal: Principal, case_id: int, *, reason: str) -> Case:
    """A coordinator reopens a closed case (with a reason): open again. Refused while the child has
    another case that is not closed (409 case-already-open, naming it)."""
    case = _locked(session, principal, case_id, Action.case_manage)
    if case.status != CaseStatus.closed.value:
        raise _refuse(case, "reopen")
    other = session.execute(
        select(col(Case.id)).where(col(Case.child_id) == case.child_id, col(Case.status) != CaseStatus.closed.value)
    ).scalar_one_or_none()
    if other is not None:
        raise CaseAlreadyOpen(f"该儿童已有未结案的个案 {other}", f"The child already has case {other} open",
                              case_id=other)
    # Conditional: of two reopenings at once, one wins; the partial unique index stops a case opened
    # meanwhile for the same child (PostgreSQL; SQLite serialises writers).
    moved = session.execute(
        update(Case).where(col(Case.id) == case.id, col(Case.status) == CaseStatus.closed.value)
        .values(status=CaseStatus.open.value, closed_at=None, closed_by=None, close_reason=None, close_note=None,
                activated_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    session.refresh(case)
    if moved != 1:
        raise _refuse(case, "reopen")
    _event(session, case, CaseAction.reopen, actor_user_id=principal.user_id, from_status=CaseStatus.closed.value,
           note=reason)
    _changed(session, case, principal, "case.reopen")
    return case



# ---------------------------------------------------------------- moves


def follow_children(session: Session, child_ids: Sequence[int], unit_id: int) -> None:
    """A child's case file lives where the child lives: when its household moves, every case of the
    child, the case's services and referrals, and the help given to the child move to the new unit,
    so its coordinator takes them over and the unit left reads them no more. Rows phones keep get new
    revisions (the database leaves the unit left a tombstone: migration 0024)."""
    from backend.agency_referrals.models import AgencyReferral  # cases' services build on cases
    from backend.service_plans.models import CaseService

    if not child_ids:
        return
    case_ids = list(session.execute(
        select(col(Case.id)).where(col(Case.child_id).in_(child_ids), col(Case.org_unit_id) != unit_id)
    ).scalars())
    helps = list(session.execute(
        select(col(Assignment.id)).where(col(Assignment.child_id).in_(child_ids),
                                         col(Assignment.org_unit_id) != unit_id)
    ).scalars())
    if case_ids:
        services = list(session.execute(
            select(col(CaseService.id)).where(col(CaseService.case_id).in_(case_ids))
        ).scalars())
        revisions.restamp(session, Case, case_ids, org_unit_id=unit_id, updated_at=clock.now())
        revisions.restamp(session, CaseService, services, org_unit_id=unit_id)
        session.execute(update(AgencyReferral).where(col(AgencyReferral.case_id).in_(case_ids))
                        .values(org_unit_id=unit_id).execution_options(synchronize_session=False))
    revisions.restamp(session, Assignment, helps, org_unit_id=unit_id)
