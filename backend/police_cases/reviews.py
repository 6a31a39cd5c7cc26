"""One-case-one-review (seed 001: 一案一倒查、一案一剖析、一案一整治) of a police case or a child case.

- 倒查 findings: whose duty failed, each a venue or a unit with its agency (a school is a unit with
  agency `education`), with what was found.
- 剖析 analysis: the causes, one text.
- 整治 tasks: a task on a venue raises a problem of the existing problem loop
  (backend/inspections/service.py `open_problem_for_review`): it is rectified, re-inspected, verified
  and marked overdue like any problem, and appears in the problem ledger; the task is done when its
  problem is verified. A task on any other unit is kept on the review, open or done with a note
  (issue 18 generalises the problem loop to any unit).

Police and coordinators (case_review.manage) create and edit reviews of the cases they may see;
whoever reads police cases or manages reviews reads the reviews of its jurisdiction whose case it may
see. Every read and change is declared to the structural audit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlmodel import Session, col

from backend.accounts import scope
from backend.accounts.models import Agency
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.cases import service as cases
from backend.cases.models import Case
from backend.core import clock
from backend.core.errors import Conflict, InvalidInput, NotFound
from backend.core.pagination import PageRequest
from backend.inspections import service as inspections
from backend.inspections.models import Problem, ProblemStatus
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgUnit
from backend.police_cases import service as register
from backend.police_cases.models import (
    CaseReview,
    CaseReviewFinding,
    CaseReviewTask,
    PoliceCase,
    ReviewSubject,
    ReviewTaskStatus,
)
from backend.police_cases.schemas import (
    FindingPublic,
    ReviewCreate,
    ReviewFindingIn,
    ReviewPublic,
    SubjectIn,
    TaskIn,
    TaskPublic,
)
from backend.registry.personal_text import refuse_personal_data
from backend.venues.models import Venue


class CaseReviewNotFound(NotFound):
    code = "case-review-not-found"
    title_zh = "未找到案件倒查记录"
    title_en = "Case review not found"


class ReviewTaskNotFound(NotFound):
    code = "case-review-task-not-found"
    title_zh = "未找到整治任务"
    title_en = "Rectification task not found"


class ReviewCaseInvalid(InvalidInput):
    code = "case-review-case-invalid"
    title_zh = "应指定一个立案记录或一个个案"
    title_en = "Name exactly one police case or one child case"


class ReviewSubjectInvalid(InvalidInput):
    code = "case-review-subject-invalid"
    title_zh = "倒查对象不存在或不完整"
    title_en = "The venue or unit named does not exist or is incomplete"


class ReviewTaskFollowsProblem(Conflict):
    code = "case-review-task-follows-problem"
    title_zh = "场所整治任务随问题清单销号，须经复查"
    title_en = "A venue's task is done when a re-inspection verifies its problem"


class ReviewTaskDone(Conflict):
    code = "case-review-task-done"
    title_zh = "整治任务已完成"
    title_en = "The task is already done"


def _require_reader(principal: Principal) -> None:
    """Reading reviews: police_case.read or case_review.manage (404 for whoever has neither)."""
    if not principal.can(Action.case_review_manage):
        principal.require(Action.police_case_read)


def visible(principal: Principal) -> ColumnElement[bool]:
    """SQL condition: the reviews of the caller's jurisdiction whose case (police or child) it may see."""
    reach: list[ColumnElement[bool]] = []
    if principal.can(Action.police_case_read):
        reach.append(col(CaseReview.police_case_id).in_(
            select(col(PoliceCase.id)).where(scope.visible(principal, PoliceCase))))
    if principal.can(Action.case_read):
        reach.append(col(CaseReview.child_case_id).in_(select(col(Case.id)).where(scope.visible(principal, Case))))
    return and_(orgunits.in_jurisdiction(principal, col(CaseReview.org_unit_id)), or_(false(), *reach))


def get_review(session: Session, principal: Principal, review_id: int) -> CaseReview:
    """A review the caller may see (404 case-review-not-found otherwise)."""
    _require_reader(principal)
    review: CaseReview | None = session.execute(
        select(CaseReview).where(col(CaseReview.id) == review_id, visible(principal))).scalar_one_or_none()
    if review is None:
        raise CaseReviewNotFound()
    return review


def _managed(session: Session, principal: Principal, review_id: int) -> CaseReview:
    principal.require(Action.case_review_manage)
    return get_review(session, principal, review_id)


def list_reviews(session: Session, principal: Principal, *, police_case_id: int | None = None,
                 child_case_id: int | None = None, page: PageRequest = PageRequest()) -> list[CaseReview]:
    """Reviews the caller may see, newest first (the bare list: the newest 500)."""
    _require_reader(principal)
    query = select(CaseReview).where(visible(principal))
    if police_case_id is not None:
        query = query.where(col(CaseReview.police_case_id) == police_case_id)
    if child_case_id is not None:
        query = query.where(col(CaseReview.child_case_id) == child_case_id)
    return list(session.execute(page.seek(query, col(CaseReview.id), descending=True, bare_limit=500)).scalars())


# ---------------------------------------------------------------- subjects


def _subject(session: Session, principal: Principal, item: SubjectIn) -> tuple[Venue | None, int | None, str | None]:
    """The venue, or the unit and agency, a finding or task concerns: inside the caller's jurisdiction
    (refused as if missing otherwise)."""
    if item.subject is ReviewSubject.venue:
        venue = session.execute(select(Venue).where(
            col(Venue.id) == item.venue_id, orgunits.in_jurisdiction(principal, col(Venue.org_unit_id)))
        ).scalar_one_or_none() if item.venue_id is not None else None
        if venue is None:
            raise ReviewSubjectInvalid(f"场所 {item.venue_id} 不存在", f"venue {item.venue_id} not found",
                                       field="venue_id")
        return venue, None, None
    unit = session.execute(select(OrgUnit).where(
        col(OrgUnit.id) == item.org_unit_id, col(OrgUnit.id).in_(orgunits.subtree_unit_ids(principal.org_path)))
    ).scalar_one_or_none() if item.org_unit_id is not None else None
    if unit is None:
        raise ReviewSubjectInvalid(f"单位 {item.org_unit_id} 不存在", f"unit {item.org_unit_id} not found",
                                   field="org_unit_id")
    agencies = [a.value for a in Agency]
    if item.agency not in agencies:
        raise ReviewSubjectInvalid(f"单位类别应为：{'、'.join(agencies)}",
                                   f"agency must be one of {', '.join(agencies)}", field="agency", allowed=agencies)
    return None, unit.id, item.agency


def _add_finding(session: Session, principal: Principal, review: CaseReview,
                 item: ReviewFindingIn) -> CaseReviewFinding:
    venue, unit_id, agency = _subject(session, principal, item)
    finding = CaseReviewFinding(review_id=review.id or 0, subject=item.subject.value,
                                venue_id=venue.id if venue else None, org_unit_id=unit_id, agency=agency,
                                finding=item.finding.strip(), created_by=principal.user_id, created_at=clock.now())
    session.add(finding)
    return finding


def _add_task(session: Session, principal: Principal, review: CaseReview, item: TaskIn) -> CaseReviewTask:
    venue, unit_id, agency = _subject(session, principal, item)
    if item.deadline_date < clock.china_date(clock.now()):
        raise InvalidInput("整改期限不能早于今天", "the deadline is before today", field="deadline_date")
    inspections.check_far_deadline(item.deadline_date, clock.china_date(clock.now()), field_name="deadline_date")
    # A task reaches the unit it names (a venue's task becomes a ledger problem every officer reads).
    refuse_personal_data(session, principal, {"description": item.description, "measure": item.measure},
                         record="case_review_task")
    problem_id = None
    if venue is not None:
        problem = inspections.open_problem_for_review(
            session, venue, case_review_id=review.id or 0, description=item.description,
            measure=item.measure or item.description, responsible=item.responsible_party or "",
            deadline=item.deadline_date)
        problem_id = problem.id
    task = CaseReviewTask(review_id=review.id or 0, subject=item.subject.value, venue_id=venue.id if venue else None,
                          problem_id=problem_id, org_unit_id=unit_id, agency=agency,
                          description=item.description.strip(), deadline_date=item.deadline_date,
                          created_by=principal.user_id, created_at=clock.now())
    session.add(task)
    return task


def _changed(session: Session, review: CaseReview, principal: Principal, action: str, details: dict[str, object]
             ) -> None:
    review.updated_at = clock.now()
    session.add(review)
    session.flush()
    disclosure.changed(disclosure.CASE_REVIEW, [review.id], unit_id=review.org_unit_id)
    disclosure.event(session, action, actor=principal, object_type="case_review", object_id=review.id,
                     org_unit_id=review.org_unit_id, details=details)


# ---------------------------------------------------------------- changes


def create(session: Session, principal: Principal, body: ReviewCreate) -> CaseReview:
    """A review of one police case or one child case the caller may see, with its first findings and
    tasks (a venue's task raises its problem at once)."""
    principal.require(Action.case_review_manage)
    if (body.police_case_id is None) == (body.child_case_id is None):
        raise ReviewCaseInvalid(field="police_case_id")
    if body.police_case_id is not None:
        unit_id = register.get_case(session, principal, body.police_case_id).station_unit_id
    else:
        unit_id = cases.get_case(session, principal, body.child_case_id or 0).org_unit_id
    now = clock.now()
    review = CaseReview(police_case_id=body.police_case_id, child_case_id=body.child_case_id, org_unit_id=unit_id,
                        analysis=body.analysis.strip(), created_by=principal.user_id, created_at=now, updated_at=now)
    session.add(review)
    session.flush()
    for finding in body.findings:
        _add_finding(session, principal, review, finding)
    for task in body.tasks:
        _add_task(session, principal, review, task)
    _changed(session, review, principal, "case_review.create",
             {"police_case_id": review.police_case_id, "child_case_id": review.child_case_id,
              "findings": len(body.findings), "tasks": len(body.tasks)})
    return review


def update(session: Session, principal: Principal, review_id: int, *, analysis: str) -> CaseReview:
    """Rewrite the analysis (剖析)."""
    review = _managed(session, principal, review_id)
    review.analysis = analysis.strip()
    _changed(session, review, principal, "case_review.edit", {"fields": ["analysis"]})
    return review


def add_finding(session: Session, principal: Principal, review_id: int, item: ReviewFindingIn) -> CaseReview:
    review = _managed(session, principal, review_id)
    _add_finding(session, principal, review, item)
    _changed(session, review, principal, "case_review.add_finding", {"subject": item.subject.value})
    return review


def add_task(session: Session, principal: Principal, review_id: int, item: TaskIn) -> CaseReview:
    review = _managed(session, principal, review_id)
    _add_task(session, principal, review, item)
    _changed(session, review, principal, "case_review.add_task", {"subject": item.subject.value})
    return review


def task_done(session: Session, principal: Principal, review_id: int, task_id: int, *, note: str) -> CaseReview:
    """Mark a unit's task done with a note. A venue's task follows its problem (409)."""
    review = _managed(session, principal, review_id)
    # The task's row is locked before its status is checked, so requests marking it done at once are
    # done one after the other: the first marks it, the others find it done (409). (PostgreSQL: FOR
    # UPDATE, re-read as committed; SQLite's writers are serialised already and render no FOR UPDATE.)
    task = session.execute(
        select(CaseReviewTask).where(col(CaseReviewTask.id) == task_id, col(CaseReviewTask.review_id) == review.id)
        .with_for_update().execution_options(populate_existing=True)).scalar_one_or_none()
    if task is None:
        raise ReviewTaskNotFound()
    if task.subject == ReviewSubject.venue.value:
        raise ReviewTaskFollowsProblem(problem_id=task.problem_id, hint="POST /api/v1/inspections with rechecks")
    if task.status == ReviewTaskStatus.done.value:
        raise ReviewTaskDone(task_id=task.id)
    task.status, task.done_note = ReviewTaskStatus.done.value, note.strip()
    task.done_at, task.done_by = clock.now(), principal.user_id
    session.add(task)
    _changed(session, review, principal, "case_review.task_done", {"task_id": task.id})
    return review


# ---------------------------------------------------------------- shaping


def public(session: Session, reviews: Sequence[CaseReview]) -> list[ReviewPublic]:
    """The reviews with their findings and tasks (a venue task's status from its problem), declared to
    the request's audit entry with the cases they name."""
    ids = [r.id or 0 for r in reviews]
    findings: dict[int, list[CaseReviewFinding]] = {i: [] for i in ids}
    tasks: dict[int, list[CaseReviewTask]] = {i: [] for i in ids}
    if ids:
        for f in session.execute(select(CaseReviewFinding).where(col(CaseReviewFinding.review_id).in_(ids))
                                 .order_by(col(CaseReviewFinding.id))).scalars():
            findings[f.review_id].append(f)
        for t in session.execute(select(CaseReviewTask).where(col(CaseReviewTask.review_id).in_(ids))
                                 .order_by(col(CaseReviewTask.id))).scalars():
            tasks[t.review_id].append(t)
    problem_ids = {t.problem_id for per in tasks.values() for t in per if t.problem_id is not None}
    problems = {p.id: p for p in session.execute(
        select(Problem).where(col(Problem.id).in_(problem_ids))).scalars()} if problem_ids else {}
    today = clock.china_date(clock.now())
    out = []
    for r in reviews:
        out.append(ReviewPublic(
            id=r.id or 0, police_case_id=r.police_case_id, child_case_id=r.child_case_id, org_unit_id=r.org_unit_id,
            analysis=r.analysis,
            findings=[FindingPublic(id=f.id or 0, subject=f.subject, venue_id=f.venue_id, org_unit_id=f.org_unit_id,
                                    agency=f.agency, finding=f.finding, created_at=f.created_at)
                      for f in findings[r.id or 0]],
            tasks=[_task_public(t, problems.get(t.problem_id), today) for t in tasks[r.id or 0]],
            created_by=r.created_by, created_at=r.created_at, updated_at=r.updated_at))
    disclosure.record(disclosure.CASE_REVIEW, ids)
    disclosure.record(disclosure.POLICE_CASE, [r.police_case_id for r in reviews])
    disclosure.record(disclosure.CASE, [r.child_case_id for r in reviews])
    return out


def _task_public(t: CaseReviewTask, problem: Problem | None, today: date) -> TaskPublic:
    if problem is not None:
        effective = inspections.effective_status(problem, today)
        status = ReviewTaskStatus.done.value if effective is ProblemStatus.verified else ReviewTaskStatus.open.value
        overdue = effective is ProblemStatus.overdue
        done_at = problem.verified_at
    else:
        effective, status, done_at = None, t.status, t.done_at
        overdue = status == ReviewTaskStatus.open.value and t.deadline_date < today
    return TaskPublic(id=t.id or 0, subject=t.subject, venue_id=t.venue_id, problem_id=t.problem_id,
                      problem_status=effective.value if effective else None, org_unit_id=t.org_unit_id,
                      agency=t.agency, description=t.description, deadline_date=t.deadline_date, status=status,
                      overdue=overdue, done_note=t.done_note, done_at=done_at, done_by=t.done_by)
