"""Supervision of any unit (督办, issue 18): the one problem loop for any subject, 挂牌督办 with its
escalation, and typical-case notices (典型案例通报) with read receipts.

The problems are those of the problem ledger (backend/inspections `Problem`): a venue's, as before,
and now an institution's or a unit's (org unit + optional agency: a village committee, a
department). A supervising unit (supervision.manage) raises one from an unannounced check (明察暗访)
or a report, with a measure and a deadline; the responsible unit reports its rectification
(supervision.rectify); the raising side, or a unit above it, verifies: passed closes it, failed sends
it back (failed_rechecks counts). A venue's problem keeps its rule: only an officer's re-inspection
closes it (POST /inspections with rechecks).

Who sees which problem: the caller's jurisdiction; member-unit staff (permissions.ADDRESSED_ONLY)
only what is addressed to their unit: a non-venue problem of their own unit without an agency, or
one of their area whose responsible agency is theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlmodel import Session, col

from backend.accounts import grants
from backend.accounts.models import Agency, User, UserRole
from backend.accounts.permissions import ADDRESSED_ONLY, PERMISSIONS, Action, Role
from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.core import clock
from backend.core import text as texts
from backend.core.db import dialect_insert
from backend.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from backend.core.pagination import PageRequest
from backend.inspections.models import OPEN_STATUSES, Problem, ProblemStatus, ProblemSubject
from backend.inspections.service import ProblemTransitionRefused, check_new_deadline, effective_status
from backend.institutions import service as institutions
from backend.institutions.models import Institution
from backend.notifications import service as notifications
from backend.notifications.recipients import coordinators_of_unit
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgUnit
from backend.registry import personal_text
from backend.supervision.models import Notice, NoticeReceipt, NoticeRecipient, ProblemEscalation
from backend.supervision.schemas import (
    EscalationPublic,
    NoticeListed,
    NoticePublic,
    NoticePublish,
    NoticeReceipts,
    NoticeWarning,
    ProblemRaise,
    ReceiptPublic,
    RecipientPublic,
    SubjectCounts,
    SupervisedProblemPublic,
    SupervisionSummary,
)
from backend.venues import service as venues
from backend.venues.models import Venue

# A supervised problem overdue is told to its supervising unit on its first overdue day, then to the
# unit above every this many days more (step k on day 1 + (k - 1) * interval), up to the root.
ESCALATION_INTERVAL_DAYS = 7


class SupervisionProblemNotFound(NotFound):
    code = "supervision-problem-not-found"
    title_zh = "未找到督办问题"
    title_en = "Problem not found"


class SupervisionSubjectInvalid(InvalidInput):
    code = "supervision-subject-invalid"
    title_zh = "督办对象不完整或不存在"
    title_en = "The subject named is incomplete or does not exist"


class SupervisionNotAbove(Conflict):
    code = "supervision-not-above"
    title_zh = "挂牌督办须由问题所在单位的上级单位进行"
    title_en = "A problem is supervised by a unit above its own (and above the unit supervising it now)"


class VerifyOwnRectification(Forbidden):
    code = "verify-own-rectification"
    title_zh = "不能复查自己上报的整改情况"
    title_en = "The user who reported a rectification does not verify it"


class VerifyBySupervisingUnit(Forbidden):
    code = "verify-by-supervising-unit"
    title_zh = "挂牌督办问题须由督办单位或其上级复查销号"
    title_en = "A supervised problem is verified by the supervising unit or a unit above it"


class RectifyNotResponsible(Forbidden):
    code = "rectify-not-responsible"
    title_zh = "只有责任单位或其上级可以上报整改情况"
    title_en = "Only the responsible unit (or a unit above it) reports the rectification"


class NoticeNotFound(NotFound):
    code = "notice-not-found"
    title_zh = "未找到通报"
    title_en = "Notice not found"


class NoticeNotAddressed(Conflict):
    code = "notice-not-addressed"
    title_zh = "该通报未发给您所在单位"
    title_en = "The notice is not addressed to your unit"


class NoticePersonalData(personal_text.TextPersonalData):
    code = "notice-personal-data"
    title_zh = "通报不能含有个人信息"
    title_en = "A notice must not carry personal data"


# ---------------------------------------------------------------- who sees which problem


def _addressed_only(principal: Principal, action: Action) -> bool:
    granting = {r for r in principal.roles if action in PERMISSIONS[r]}
    return bool(granting) and granting <= ADDRESSED_ONLY


def visible(principal: Principal, action: Action = Action.supervision_read) -> ColumnElement[bool]:
    """SQL condition: the problems the principal sees with `action` (see the module docstring)."""
    area = orgunits.in_jurisdiction(principal, col(Problem.org_unit_id))
    if not _addressed_only(principal, action):
        return area
    own_unit = and_(col(Problem.org_unit_id) == principal.org_unit_id, col(Problem.responsible_agency).is_(None),
                    col(Problem.subject) != ProblemSubject.venue.value)
    if principal.agency is None:
        return own_unit
    return or_(own_unit, and_(area, col(Problem.responsible_agency) == principal.agency))


def get_problem(session: Session, principal: Principal, problem_id: int,
                action: Action = Action.supervision_read, *, lock: bool = False) -> Problem:
    """A problem the caller sees with `action` (404 otherwise, like one that does not exist)."""
    principal.require(action)
    stmt = select(Problem).where(col(Problem.id) == problem_id, visible(principal, action))
    if lock:
        # Verdicts and reports on one problem at once are taken one after the other (PostgreSQL: FOR
        # UPDATE, re-read as committed; SQLite's writers are serialised already).
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    problem: Problem | None = session.execute(stmt).scalar_one_or_none()
    if problem is None:
        raise SupervisionProblemNotFound()
    return problem


def list_problems(session: Session, principal: Principal, *, unit_id: int | None = None,
                  subject: ProblemSubject | None = None, status: ProblemStatus | None = None,
                  supervised: bool | None = None, page: PageRequest = PageRequest(limit=500)) -> list[Problem]:
    """Problems of every subject the caller sees, newest first (`status` as of today)."""
    principal.require(Action.supervision_read)
    stmt = select(Problem).where(visible(principal))
    if unit_id is not None:
        unit = orgunits.get_visible_unit(session, principal, unit_id)
        stmt = stmt.where(col(Problem.org_unit_id).in_(orgunits.subtree_unit_ids(unit.path)))
    if subject is not None:
        stmt = stmt.where(col(Problem.subject) == subject.value)
    if supervised is not None:
        stmt = stmt.where(col(Problem.supervised_unit_id).is_not(None) if supervised
                          else col(Problem.supervised_unit_id).is_(None))
    if status is not None:
        stmt = stmt.where(_status_is(status, clock.china_date(clock.now())))
    return list(session.execute(page.seek(stmt, col(Problem.id), descending=True, bare_limit=500)).scalars())


def _status_is(status: ProblemStatus, today: date) -> ColumnElement[bool]:
    late = [ProblemStatus.open.value, ProblemStatus.rectifying.value, ProblemStatus.overdue.value]
    if status is ProblemStatus.overdue:
        return and_(col(Problem.status).in_(late), col(Problem.deadline_date) < today)
    if status in (ProblemStatus.open, ProblemStatus.rectifying):
        return and_(col(Problem.status) == status.value, col(Problem.deadline_date) >= today)
    return col(Problem.status) == status.value


# ---------------------------------------------------------------- the loop


def _text(value: str, name: str) -> str:
    value = value.strip()
    if not texts.visible(value):
        raise InvalidInput(f"“{name}”不能为空", f"'{name}' is empty", field=name)
    return value


@dataclass(frozen=True)
class _Subject:
    kind: ProblemSubject
    org_unit_id: int
    name: str
    venue_id: int | None = None
    institution_id: int | None = None
    agency: str | None = None


def _subject(session: Session, principal: Principal, body: ProblemRaise) -> _Subject:
    s = body.subject
    named = {"venue_id": s.venue_id, "institution_id": s.institution_id, "org_unit_id": s.org_unit_id}
    wanted = {ProblemSubject.venue: "venue_id", ProblemSubject.institution: "institution_id",
              ProblemSubject.unit: "org_unit_id"}[s.kind]
    extra = [k for k, v in named.items() if v is not None and k != wanted]
    if named[wanted] is None or extra or (s.agency is not None and s.kind is not ProblemSubject.unit):
        raise SupervisionSubjectInvalid(f"{s.kind.zh}须且只须填写 {wanted}", f"a {s.kind.value} names {wanted} only",
                                        field=f"subject.{wanted}")
    if s.kind is ProblemSubject.venue:
        venue = venues.get_venue(session, principal, s.venue_id or 0)
        return _Subject(s.kind, venue.org_unit_id, venue.name, venue_id=venue.id)
    if s.kind is ProblemSubject.institution:
        inst = institutions.get_visible(session, principal, s.institution_id or 0)
        return _Subject(s.kind, inst.org_unit_id, inst.name, institution_id=inst.id, agency=inst.supervising_agency)
    unit = orgunits.get_visible_unit(session, principal, s.org_unit_id or 0)
    agency = s.agency.value if s.agency is not None else None
    name = unit.name + (grants.AGENCY_ZH[Agency(agency)] if agency else "")
    return _Subject(s.kind, unit.id or 0, name, agency=agency)


def raise_problem(session: Session, principal: Principal, body: ProblemRaise) -> Problem:
    """A problem a supervising unit found (明察暗访, a report) on a venue, an institution or a unit of
    its area, with a measure and a deadline (today to 365 days ahead, China date: 422
    deadline-out-of-range); free text with personal data is refused (422 text-personal-data)."""
    principal.require(Action.supervision_manage)
    subject = _subject(session, principal, body)
    description, measure = _text(body.description, "description"), _text(body.measure, "measure")
    personal_text.refuse_personal_data(session, principal, {"description": description, "measure": measure,
                                                            "note": body.note}, record="problem")
    now = clock.now()
    # Without its deadline yet: it is set below through the validator every later move goes through.
    problem = Problem(  # type: ignore[call-arg]
        subject=subject.kind.value, venue_id=subject.venue_id, institution_id=subject.institution_id,
        org_unit_id=subject.org_unit_id, responsible_agency=subject.agency, source=body.source,
        description=description, measure=measure,
        responsible_party=(body.responsible_party.strip() or subject.name)[:120],
        note=body.note.strip(), raised_by_user_id=principal.user_id, raised_unit_id=principal.org_unit_id,
        created_at=now, updated_at=now)
    # Between today and a year ahead (a deadline in 2199 would never fall due, never escalate).
    check_new_deadline(session, principal, problem, body.deadline_date, clock.china_date(now),
                       field_name="deadline_date")
    problem.deadline_date = body.deadline_date
    session.add(problem)
    session.flush()
    audit.record(session, actor=principal, action="supervision.raise", object_type="problem", object_id=problem.id,
                 org_unit_id=problem.org_unit_id,
                 details={"subject": problem.subject, "source": problem.source, "venue_id": problem.venue_id,
                          "institution_id": problem.institution_id, "deadline_date": problem.deadline_date})
    return problem


def _responsible(session: Session, principal: Principal, problem: Problem) -> bool:
    """Whether the caller reports for the problem's responsible unit (责任单位): a user of the subject's
    unit (of its responsible agency, when the problem names one), or of a unit above it acting for that
    agency or for the government (乡镇政府 over its village committees); another agency at or above
    the unit (the police for a village committee) does not."""
    agency = problem.responsible_agency
    if principal.org_unit_id == problem.org_unit_id:
        return agency is None or principal.agency == agency
    path = orgunits.unit_path(session, problem.org_unit_id)
    if path is None or not principal.covers(path):
        return False
    return agency is None or principal.agency in (None, agency, Agency.government.value)


def report_rectification(session: Session, principal: Principal, problem_id: int, report: str) -> Problem:
    """The responsible unit reports its rectification: the problem awaits verification (待复查)."""
    problem = get_problem(session, principal, problem_id, Action.supervision_rectify, lock=True)
    if not _responsible(session, principal, problem):
        raise RectifyNotResponsible(org_unit_id=problem.org_unit_id, responsible_agency=problem.responsible_agency)
    current = effective_status(problem, clock.china_date(clock.now()))
    if current is ProblemStatus.verified:
        raise ProblemTransitionRefused("问题已销号", "the problem is already verified and closed")
    if current is ProblemStatus.submitted:
        raise ProblemTransitionRefused("整改情况已提交，待复查", "the rectification is already reported, "
                                       "awaiting verification")
    rectification = _text(report, "report")
    personal_text.refuse_personal_data(session, principal, {"report": rectification}, record="problem")
    now = clock.now()
    problem.rectification = rectification
    problem.status, problem.submitted_at, problem.rectified_by_user_id = ProblemStatus.submitted.value, now, \
        principal.user_id
    problem.updated_at = now
    session.add(problem)
    session.flush()
    audit.record(session, actor=principal, action="supervision.rectify", object_type="problem", object_id=problem.id,
                 org_unit_id=problem.org_unit_id, details={"from": current.value})
    return problem


def verify(session: Session, principal: Principal, problem_id: int, *, passed: bool, note: str,
           new_deadline_date: date | None) -> Problem:
    """The raising side's verdict (复查) on a reported rectification: passed closes the problem, failed
    sends it back (overdue at once when its deadline has passed and none is given). Never by the user
    who reported the rectification; a 挂牌督办 problem only by the supervising unit or one above it."""
    problem = get_problem(session, principal, problem_id, Action.supervision_manage, lock=True)
    if problem.subject == ProblemSubject.venue.value:
        raise ProblemTransitionRefused("场所问题须经执法人员复查销号", "only a re-inspection by an officer verifies a "
                                       "venue's problem", hint="POST /api/v1/inspections with rechecks")
    raising = orgunits.unit_path(session, problem.raised_unit_id or problem.org_unit_id)
    if raising is None or not principal.covers(raising):
        raise ProblemTransitionRefused("只有提出问题的单位或其上级可以复查", "only the raising unit or a unit above "
                                       "it verifies the problem", raised_unit_id=problem.raised_unit_id)
    if problem.supervised_unit_id is not None:
        supervising = orgunits.unit_path(session, problem.supervised_unit_id)
        if supervising is None or not principal.covers(supervising):
            raise VerifyBySupervisingUnit(supervised_unit_id=problem.supervised_unit_id)
    today = clock.china_date(clock.now())
    current = effective_status(problem, today)
    if current is not ProblemStatus.submitted:
        raise ProblemTransitionRefused(f"问题状态为“{current.zh}”，尚未提交整改情况",
                                       f"the problem is {current.value}: no rectification awaits verification")
    if problem.rectified_by_user_id == principal.user_id:
        raise VerifyOwnRectification()
    personal_text.refuse_personal_data(session, principal, {"note": note}, record="problem")
    if new_deadline_date is not None and not passed:
        check_new_deadline(session, principal, problem, new_deadline_date, today, field_name="new_deadline_date")
    now = clock.now()
    if passed:
        problem.status, problem.verified_at, problem.verified_by_user_id = ProblemStatus.verified.value, now, \
            principal.user_id
    else:
        problem.failed_rechecks += 1
        if new_deadline_date is not None:
            problem.deadline_date = new_deadline_date
        problem.status = (ProblemStatus.overdue.value if problem.deadline_date < today
                          else ProblemStatus.rectifying.value)
    if note.strip():
        problem.note = note.strip()
    problem.updated_at = now
    session.add(problem)
    session.flush()
    audit.record(session, actor=principal, action="supervision.verify", object_type="problem", object_id=problem.id,
                 org_unit_id=problem.org_unit_id,
                 details={"passed": passed, "failed_rechecks": problem.failed_rechecks,
                          "deadline_date": problem.deadline_date})
    return problem


def move_deadline(session: Session, principal: Principal, problem_id: int, deadline_date: date) -> Problem:
    """Move the deadline of an institution's or a unit's problem (a venue's moves in the v1 ledger,
    PATCH /problems/{id}): by the raising unit or a unit above it (409 otherwise, as its verification),
    within the one validator's range (422 deadline-out-of-range), and on a 挂牌督办 problem only by the
    supervising unit or a unit above it (403 deadline-set-by-supervising-unit). Audited with both dates."""
    problem = get_problem(session, principal, problem_id, Action.supervision_manage, lock=True)
    if problem.subject == ProblemSubject.venue.value:
        raise ProblemTransitionRefused("场所问题的整改期限在问题清单中调整", "a venue's problem moves its deadline in "
                                       "the problem ledger", hint="PATCH /api/v1/problems/{id}")
    raising = orgunits.unit_path(session, problem.raised_unit_id or problem.org_unit_id)
    if raising is None or not principal.covers(raising):
        raise ProblemTransitionRefused("只有提出问题的单位或其上级可以调整整改期限", "only the raising unit or a unit "
                                       "above it moves the deadline", raised_unit_id=problem.raised_unit_id)
    today = clock.china_date(clock.now())
    current = effective_status(problem, today)
    if current is ProblemStatus.verified:
        raise ProblemTransitionRefused("问题已销号", "the problem is already verified and closed")
    check_new_deadline(session, principal, problem, deadline_date, today, field_name="deadline_date")
    before = problem.deadline_date
    problem.deadline_date = deadline_date
    if problem.status == ProblemStatus.overdue.value and deadline_date >= today:
        problem.status = ProblemStatus.rectifying.value
    problem.updated_at = clock.now()
    session.add(problem)
    session.flush()
    audit.record(session, actor=principal, action="supervision.deadline", object_type="problem",
                 object_id=problem.id, org_unit_id=problem.org_unit_id,
                 details={"from": before, "to": deadline_date, "supervised_unit_id": problem.supervised_unit_id})
    return problem


def supervise(session: Session, principal: Principal, problem_id: int, unit_id: int | None) -> Problem:
    """挂牌督办: a unit above the problem's unit (the caller's own, or one above the problem inside the
    caller's area) supervises it; a unit above the one supervising it may take it over (升级督办)."""
    problem = get_problem(session, principal, problem_id, Action.supervision_manage, lock=True)
    if effective_status(problem, clock.china_date(clock.now())) is ProblemStatus.verified:
        raise ProblemTransitionRefused("问题已销号", "the problem is already verified and closed")
    unit = orgunits.get_visible_unit(session, principal, unit_id if unit_id is not None else principal.org_unit_id)
    problem_path = orgunits.unit_path(session, problem.org_unit_id) or ""
    if not (problem_path.startswith(unit.path) and problem_path != unit.path):
        raise SupervisionNotAbove(f"{unit.name}不是问题所在单位的上级", "the unit is not above the problem's unit",
                                  unit_id=unit.id)
    if problem.supervised_unit_id is not None:
        current = orgunits.unit_path(session, problem.supervised_unit_id) or ""
        if not (current.startswith(unit.path) and current != unit.path):
            raise SupervisionNotAbove("该问题已由同级或更高级单位挂牌督办",
                                      "the problem is supervised by this unit or one above it already",
                                      supervised_unit_id=problem.supervised_unit_id)
    now = clock.now()
    problem.supervised_unit_id, problem.supervised_level = unit.id, unit.level
    problem.supervised_at, problem.supervised_by_user_id, problem.updated_at = now, principal.user_id, now
    session.add(problem)
    session.flush()
    # The problem's own unit learns it is supervised (ids only: the outbox carries no names).
    told = coordinators_of_unit(session, problem.org_unit_id)
    if told:
        notifications.enqueue(
            session, user_ids=told, kind="supervision.supervised", title_zh="问题已被挂牌督办",
            title_en="A problem is under supervision", body_zh=f"问题{problem.id}已被上级挂牌督办，请按期整改。",
            body_en=f"Problem {problem.id} is supervised from above: rectify in time.",
            data={"problem_id": str(problem.id), "supervised_unit_id": str(unit.id)})
    audit.record(session, actor=principal, action="supervision.supervise", object_type="problem",
                 object_id=problem.id, org_unit_id=problem.org_unit_id,
                 details={"supervised_unit_id": unit.id, "level": unit.level, "notified": len(told)})
    return problem


def escalation_steps(days_overdue: int, chain_length: int) -> int:
    """How many units should know of a supervised problem `days_overdue` days overdue, the supervising
    unit first and then each unit above it: one on the first day, one more every interval, at most the
    units there are."""
    if days_overdue < 1:
        return 0
    return min(chain_length, 1 + (days_overdue - 1) // ESCALATION_INTERVAL_DAYS)


def escalate_overdue(session: Session) -> list[tuple[int, int]]:
    """Tell each unit due to know of an overdue supervised problem, once: the unique (problem, unit)
    row is inserted with ON CONFLICT DO NOTHING and only its inserter notifies (scheduled job)."""
    today = clock.china_date(clock.now())
    insert = dialect_insert(session)
    told: list[tuple[int, int]] = []
    rows = session.execute(select(Problem, OrgUnit).join(OrgUnit, col(OrgUnit.id) == col(Problem.supervised_unit_id))
                           .where(_status_is(ProblemStatus.overdue, today))
                           .order_by(col(Problem.id))).all()
    for problem, unit in rows:
        assert problem.id is not None
        chain = [int(p) for p in unit.path.strip("/").split("/") if p][::-1]  # the unit, its parent, ...
        days = (today - problem.deadline_date).days
        for step in range(1, escalation_steps(days, len(chain)) + 1):
            target = chain[step - 1]
            inserted = session.execute(
                insert(ProblemEscalation)
                .values(problem_id=problem.id, step=step, notified_unit_id=target, days_overdue=days,
                        escalated_at=clock.now())
                .on_conflict_do_nothing(index_elements=["problem_id", "notified_unit_id"])
                .returning(col(ProblemEscalation.id))
            ).scalar_one_or_none()
            if inserted is None:  # told before, or by another worker just now
                continue
            users = coordinators_of_unit(session, target)
            if users:
                notifications.enqueue(
                    session, user_ids=users, kind="supervision.overdue", title_zh="挂牌督办问题逾期未整改",
                    title_en="A supervised problem is overdue",
                    body_zh=f"挂牌督办问题{problem.id}已逾期{days}天未整改，请督促。",
                    body_en=f"Supervised problem {problem.id} is {days} days overdue.",
                    data={"problem_id": str(problem.id), "step": str(step)})
            audit.record(session, actor=None, action="supervision.escalate", object_type="problem",
                         object_id=problem.id, org_unit_id=problem.org_unit_id,
                         details={"step": step, "notified_unit_id": target, "days_overdue": days,
                                  "notified": len(users)})
            told.append((problem.id, target))
    session.flush()
    return told


# ---------------------------------------------------------------- shaping


def problems_public(session: Session, problems: Sequence[Problem]) -> list[SupervisedProblemPublic]:
    """The problems with their subject's name and escalation steps."""
    today = clock.china_date(clock.now())
    ids = [p.id for p in problems if p.id is not None]
    venue_names = _names(session, Venue, {p.venue_id for p in problems if p.venue_id is not None})
    inst_names = _names(session, Institution, {p.institution_id for p in problems if p.institution_id is not None})
    unit_names = _names(session, OrgUnit, {p.org_unit_id for p in problems if p.subject == ProblemSubject.unit.value})
    steps: dict[int, list[EscalationPublic]] = {i: [] for i in ids}
    if ids:
        for e in session.execute(select(ProblemEscalation).where(col(ProblemEscalation.problem_id).in_(ids))
                                 .order_by(col(ProblemEscalation.step))).scalars():
            steps[e.problem_id].append(EscalationPublic(step=e.step, notified_unit_id=e.notified_unit_id,
                                                        days_overdue=e.days_overdue,
                                                        escalated_at=clock.as_utc(e.escalated_at)))
    out = []
    for p in problems:
        assert p.id is not None
        subject = ProblemSubject(p.subject)
        status = effective_status(p, today)
        if subject is ProblemSubject.venue:
            name = venue_names.get(p.venue_id or 0, "")
        elif subject is ProblemSubject.institution:
            name = inst_names.get(p.institution_id or 0, "")
        else:
            name = unit_names.get(p.org_unit_id, "") + (
                grants.AGENCY_ZH[Agency(p.responsible_agency)] if p.responsible_agency else "")
        out.append(SupervisedProblemPublic(
            id=p.id, subject=subject, subject_zh=subject.zh, venue_id=p.venue_id, institution_id=p.institution_id,
            org_unit_id=p.org_unit_id, responsible_agency=p.responsible_agency, subject_name=name, source=p.source,
            description=p.description, measure=p.measure, responsible_party=p.responsible_party,
            deadline_date=p.deadline_date, status=status, status_zh=status.zh,
            days_overdue=max(0, (today - p.deadline_date).days) if status is ProblemStatus.overdue else 0,
            failed_rechecks=p.failed_rechecks, rectification=p.rectification,
            submitted_at=clock.as_utc(p.submitted_at) if p.submitted_at else None,
            verified_at=clock.as_utc(p.verified_at) if p.verified_at else None, note=p.note,
            raised_unit_id=p.raised_unit_id, found_in_inspection_id=p.found_in_inspection_id,
            case_review_id=p.case_review_id, supervised=p.supervised_unit_id is not None,
            supervised_unit_id=p.supervised_unit_id, supervised_level=p.supervised_level,
            supervised_at=clock.as_utc(p.supervised_at) if p.supervised_at else None, escalations=steps[p.id],
            created_at=clock.as_utc(p.created_at)))
    return out


def _names(session: Session, model: type[Venue] | type[Institution] | type[OrgUnit], ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {int(i): str(n) for i, n in session.execute(
        select(col(model.id), col(model.name)).where(col(model.id).in_(ids)))}


# ---------------------------------------------------------------- dashboard


def summary(session: Session, principal: Principal, unit_id: int) -> SupervisionSummary:
    """Counts of the problems (every subject) and notices of a unit's subtree the caller sees: open,
    overdue, awaiting verification, supervised; notices published and acknowledgements missing."""
    principal.require(Action.supervision_read)
    unit = orgunits.get_visible_unit(session, principal, unit_id)
    today = clock.china_date(clock.now())
    open_values = [s.value for s in OPEN_STATUSES]
    late = _status_is(ProblemStatus.overdue, today)
    rows = session.execute(
        select(col(Problem.subject), col(Problem.supervised_unit_id).is_not(None),
               func.count(), func.sum(case((late, 1), else_=0)),
               func.sum(case((col(Problem.status) == ProblemStatus.submitted.value, 1), else_=0)))
        .where(visible(principal), col(Problem.status).in_(open_values),
               col(Problem.org_unit_id).in_(orgunits.subtree_unit_ids(unit.path)))
        .group_by(col(Problem.subject), col(Problem.supervised_unit_id).is_not(None))).all()
    by_subject = {s.value: SubjectCounts() for s in ProblemSubject}
    supervised_open = supervised_overdue = 0
    for subject, is_supervised, count, overdue, submitted in rows:
        counts = by_subject.setdefault(str(subject), SubjectCounts())
        counts.open += int(count)
        counts.overdue += int(overdue or 0)
        counts.awaiting_verification += int(submitted or 0)
        if is_supervised:
            supervised_open += int(count)
            supervised_overdue += int(overdue or 0)
    published = select(col(Notice.id)).where(col(Notice.publisher_unit_id).in_(orgunits.subtree_unit_ids(unit.path)))
    notices_published = int(session.execute(select(func.count()).select_from(published.subquery())).scalar_one())
    pending = 0
    if principal.can(Action.notice_publish) and notices_published:
        for notice_id in session.execute(published).scalars():
            users = _addressed_users(session, int(notice_id))
            acknowledged = set(session.execute(select(col(NoticeReceipt.user_id)).where(
                col(NoticeReceipt.notice_id) == notice_id, col(NoticeReceipt.acknowledged_at).is_not(None))).scalars())
            pending += sum(1 for u, _r in users if u.id not in acknowledged)
    return SupervisionSummary(
        unit_id=unit.id or 0, open=sum(c.open for c in by_subject.values()),
        overdue=sum(c.overdue for c in by_subject.values()),
        awaiting_verification=sum(c.awaiting_verification for c in by_subject.values()),
        supervised_open=supervised_open, supervised_overdue=supervised_overdue, by_subject=by_subject,
        notices_published=notices_published, notices_unacknowledged=pending)


# ---------------------------------------------------------------- notices (典型案例通报)

def check_notice_text(session: Session, principal: Principal, *, title: str, body: str) -> None:
    """Refuse a notice carrying personal data (backend/registry/personal_text.py: ID numbers, mobile
    numbers, names registered in the publisher's area): a typical case is told with 某某 or an initial
    instead (seed 002: nothing leaks about victims or minor suspects). The refusal keeps its own type,
    `notice-personal-data`."""
    personal_text.refuse_personal_data(session, principal, {"title": title, "body": body}, record="notice",
                                       error=NoticePersonalData)


@dataclass(frozen=True)
class Published:
    notice: Notice
    addressed: int
    warnings: list[NoticeWarning]


def publish(session: Session, principal: Principal, body: NoticePublish) -> Published:
    """Publish a typical-case notice to units of the caller's area; their users are told (ids only). An
    address that reaches no active user who can read notices (a unit or agency with no such account)
    is published all the same, with a warning naming it: the publisher sees at once that nobody there
    will read it, instead of an `addressed: 0` it might overlook."""
    principal.require(Action.notice_publish)
    title, text = _text(body.title, "title"), _text(body.body, "body")
    check_notice_text(session, principal, title=title, body=text)
    addressed: dict[tuple[int, str], None] = {}
    for r in body.recipients:
        unit = orgunits.get_visible_unit(session, principal, r.unit_id)
        addressed[(unit.id or 0, r.agency.value if r.agency else "")] = None
    notice = Notice(title=title, body=text, publisher_user_id=principal.user_id,
                    publisher_unit_id=principal.org_unit_id, published_at=clock.now())
    session.add(notice)
    session.flush()
    assert notice.id is not None
    session.add_all(NoticeRecipient(notice_id=notice.id, org_unit_id=u, agency=a) for u, a in addressed)
    session.flush()
    rows = _addressed_rows(session, notice.id)
    reached = {(r.org_unit_id, r.agency) for _u, r in rows}
    warnings = [NoticeWarning(code="recipient-without-readers", unit_id=u, agency=a or None,
                              message_zh="该单位没有可以阅读通报的在用账号，通报不会被阅知",
                              message_en="No active user of this address can read notices: nobody will read it")
                for u, a in addressed if (u, a) not in reached]
    users = [u.id for u, _ in _dedup(rows) if u.id is not None]
    if users:
        notifications.enqueue(session, user_ids=users, kind="notice.published", title_zh="新的典型案例通报",
                              title_en="A new typical-case notice", body_zh="您所在单位收到一份典型案例通报，请阅知。",
                              body_en="Your unit received a typical-case notice.",
                              data={"notice_id": str(notice.id)})
    audit.record(session, actor=principal, action="notice.publish", object_type="notice", object_id=notice.id,
                 org_unit_id=principal.org_unit_id, details={"recipients": len(addressed), "users": len(users),
                                                             "unreached": len(warnings)})
    return Published(notice, len(users), warnings)


def _readers() -> list[str]:
    return [r.value for r in Role if Action.notice_read in PERMISSIONS[r]]


def _addressed_users(session: Session, notice_id: int) -> list[tuple[User, NoticeRecipient]]:
    """The active users of the addressed units who read notices, each with the address reaching it."""
    return _dedup(_addressed_rows(session, notice_id))


def _addressed_rows(session: Session, notice_id: int) -> list[tuple[User, NoticeRecipient]]:
    """Every (reader, address reaching it) pair of a notice; a user reached by two addresses twice."""
    return [(u, r) for u, r in session.execute(
        select(User, NoticeRecipient).join(NoticeRecipient, and_(
            col(NoticeRecipient.notice_id) == notice_id, col(NoticeRecipient.org_unit_id) == col(User.org_unit_id),
            or_(col(NoticeRecipient.agency) == "", col(NoticeRecipient.agency) == col(User.agency))))
        .where(col(User.is_active).is_(True), col(User.id).in_(
            select(col(UserRole.user_id)).where(col(UserRole.role).in_(_readers()))))
        .order_by(col(User.id), col(NoticeRecipient.id))).all()]


def _dedup(rows: list[tuple[User, NoticeRecipient]]) -> list[tuple[User, NoticeRecipient]]:
    seen: dict[int, tuple[User, NoticeRecipient]] = {}
    for user, recipient in rows:
        seen.setdefault(user.id or 0, (user, recipient))
    return list(seen.values())


def _addressed_to(principal: Principal) -> ColumnElement[bool]:
    """SQL condition on Notice: addressed to the caller's unit (and agency, when the address names one)."""
    agency_ok = col(NoticeRecipient.agency) == "" if principal.agency is None else col(NoticeRecipient.agency).in_(
        ["", principal.agency])
    return col(Notice.id).in_(select(col(NoticeRecipient.notice_id)).where(
        col(NoticeRecipient.org_unit_id) == principal.org_unit_id, agency_ok))


def _published_in_area(principal: Principal) -> ColumnElement[bool]:
    return orgunits.in_jurisdiction(principal, col(Notice.publisher_unit_id))


def _get_notice(session: Session, principal: Principal, notice_id: int) -> tuple[Notice, bool]:
    """A notice addressed to the caller, or (for a publisher) published in its area; whether addressed."""
    principal.require(Action.notice_read)
    reach = [_addressed_to(principal)]
    if principal.can(Action.notice_publish):
        reach.append(_published_in_area(principal))
    notice = session.execute(select(Notice).where(col(Notice.id) == notice_id, or_(*reach))).scalar_one_or_none()
    if notice is None:
        raise NoticeNotFound()
    addressed = session.execute(select(col(Notice.id)).where(
        col(Notice.id) == notice_id, _addressed_to(principal))).first() is not None
    return notice, addressed


def list_notices(session: Session, principal: Principal, *, view: str,
                 page: PageRequest = PageRequest(limit=500)) -> list[Notice]:
    """Notices addressed to the caller's unit, or (`published`) those published in its area, newest first."""
    principal.require(Action.notice_read)
    if view == "published":
        principal.require(Action.notice_publish)
        condition = _published_in_area(principal)
    else:
        condition = _addressed_to(principal)
    return list(session.execute(page.seek(select(Notice).where(condition), col(Notice.id), descending=True,
                                          bare_limit=500)).scalars())


def open_notice(session: Session, principal: Principal, notice_id: int) -> Notice:
    """Read one notice; an addressed user's first reading is its read receipt."""
    notice, addressed = _get_notice(session, principal, notice_id)
    if addressed:
        _receipt(session, notice_id, principal.user_id)
    return notice


def _receipt(session: Session, notice_id: int, user_id: int) -> None:
    session.execute(dialect_insert(session)(NoticeReceipt).values(
        notice_id=notice_id, user_id=user_id, read_at=clock.now()).on_conflict_do_nothing(
        index_elements=["notice_id", "user_id"]))


def acknowledge(session: Session, principal: Principal, notice_id: int) -> Notice:
    """An addressed user acknowledges (已阅知) the notice; again changes nothing (the first time stays)."""
    notice, addressed = _get_notice(session, principal, notice_id)
    if not addressed:
        raise NoticeNotAddressed()
    _receipt(session, notice_id, principal.user_id)
    receipt = session.execute(select(NoticeReceipt).where(
        col(NoticeReceipt.notice_id) == notice_id, col(NoticeReceipt.user_id) == principal.user_id)
        .with_for_update().execution_options(populate_existing=True)).scalar_one()
    if receipt.acknowledged_at is None:
        receipt.acknowledged_at = clock.now()
        session.add(receipt)
        session.flush()
        audit.record(session, actor=principal, action="notice.acknowledge", object_type="notice",
                     object_id=notice_id, org_unit_id=principal.org_unit_id)
    return notice


def receipts(session: Session, principal: Principal, notice_id: int) -> NoticeReceipts:
    """For the publishing side: every addressed user, with when it read and acknowledged (null: not yet)."""
    principal.require(Action.notice_publish)
    notice = session.execute(select(Notice).where(col(Notice.id) == notice_id,
                                                  _published_in_area(principal))).scalar_one_or_none()
    if notice is None:
        raise NoticeNotFound()
    users = _addressed_users(session, notice_id)
    got = {r.user_id: r for r in session.execute(select(NoticeReceipt).where(
        col(NoticeReceipt.notice_id) == notice_id)).scalars()}
    out = []
    for user, recipient in users:
        r = got.get(user.id or 0)
        out.append(ReceiptPublic(user_id=user.id or 0, display_name=user.display_name, unit_id=recipient.org_unit_id,
                                 agency=recipient.agency or None,
                                 read_at=clock.as_utc(r.read_at) if r else None,
                                 acknowledged_at=clock.as_utc(r.acknowledged_at) if r and r.acknowledged_at else None))
    audit.record(session, actor=principal, action="notice.receipts", object_type="notice", object_id=notice_id,
                 org_unit_id=notice.publisher_unit_id, details={"users": [u.user_id for u in out]})
    return NoticeReceipts(notice_id=notice_id, addressed=len(out), read=sum(1 for u in out if u.read_at),
                          acknowledged=sum(1 for u in out if u.acknowledged_at), users=out)


def notices_public(session: Session, principal: Principal, notices: Sequence[Notice]) -> list[NoticePublic]:
    """The notices with their addresses and the caller's own receipt."""
    ids = [n.id for n in notices if n.id is not None]
    recipients: dict[int, list[RecipientPublic]] = {i: [] for i in ids}
    mine: dict[int, NoticeReceipt] = {}
    addressed: set[int] = set()
    if ids:
        for r in session.execute(select(NoticeRecipient).where(col(NoticeRecipient.notice_id).in_(ids))
                                 .order_by(col(NoticeRecipient.id))).scalars():
            recipients[r.notice_id].append(RecipientPublic(unit_id=r.org_unit_id, agency=r.agency or None))
        mine = {r.notice_id: r for r in session.execute(select(NoticeReceipt).where(
            col(NoticeReceipt.notice_id).in_(ids), col(NoticeReceipt.user_id) == principal.user_id)).scalars()}
        addressed = {int(i) for i in session.execute(select(col(Notice.id)).where(
            col(Notice.id).in_(ids), _addressed_to(principal))).scalars()}
    out = []
    for n in notices:
        assert n.id is not None
        r = mine.get(n.id)
        out.append(NoticePublic(
            id=n.id, title=n.title, body=n.body, publisher_unit_id=n.publisher_unit_id,
            published_at=clock.as_utc(n.published_at), recipients=recipients[n.id], addressed_to_me=n.id in addressed,
            read_at=clock.as_utc(r.read_at) if r else None,
            acknowledged_at=clock.as_utc(r.acknowledged_at) if r and r.acknowledged_at else None))
    return out


def notices_listed(session: Session, principal: Principal, notices: Sequence[Notice]) -> list[NoticeListed]:
    """The notices of a list, without their bodies (opening one records its read)."""
    return [NoticeListed(**n.model_dump(exclude={"body"})) for n in notices_public(session, principal, notices)]

