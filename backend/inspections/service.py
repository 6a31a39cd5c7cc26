"""Recording inspections, the problem-and-rectification loop and penalties.

`record_inspection` is the single entry point for a phone's inspection, whether it arrives
through POST /inspections or through the sync push endpoint: same client UUID and same body gives
back the stored result, same UUID with another body is a conflict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import User, UserRole
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.core import clock, placement
from backend.core.config import get_settings
from backend.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from backend.core.geo import distance_m, point, to_wgs84
from backend.core.pagination import PageRequest
from backend.inspections import checklists
from backend.inspections.models import (
    Inspection,
    InspectionInspector,
    Penalty,
    PenaltyKind,
    Problem,
    ProblemSource,
    ProblemStatus,
)
from backend.inspections.schemas import (
    Answer,
    InspectionPublic,
    InspectionSubmit,
    InspectorPublic,
    PenaltyCreate,
    PenaltyIn,
    PenaltyPublic,
    ProblemPublic,
    ProblemUpdate,
)
from backend.media import service as media
from backend.orgunits import service as orgunits
from backend.registry.personal_text import refuse_personal_data
from backend.venues import service as venues
from backend.venues.models import Venue, VenueType


class InspectionConflict(Conflict):
    code = "inspection-conflict"
    title_zh = "该检查记录已以不同内容提交"
    title_en = "This inspection was already submitted with different content"


class UnknownChecklist(InvalidInput):
    code = "unknown-checklist"
    title_zh = "检查表不存在或不适用于该场所"
    title_en = "Unknown checklist or not for this kind of venue"


class IncompleteAnswers(InvalidInput):
    code = "incomplete-answers"
    title_zh = "检查表未全部作答"
    title_en = "Not every checklist item is answered"


class InvalidInspector(InvalidInput):
    code = "invalid-inspector"
    title_zh = "检查人员无效"
    title_en = "An inspector is not valid"


class ProblemTransitionRefused(Conflict):
    code = "problem-transition-refused"
    title_zh = "问题状态不能这样变更"
    title_en = "The problem cannot move to this status"


class DeadlineOutOfRange(InvalidInput):
    code = "deadline-out-of-range"
    title_zh = "整改期限须在今天至一年之内"
    title_en = "A new deadline lies between today and 365 days ahead"


class DeadlineSetFromAbove(Forbidden):
    code = "deadline-set-by-supervising-unit"
    title_zh = "挂牌督办问题的整改期限只能由督办单位或其上级调整"
    title_en = "Only the supervising unit (or one above it) moves a supervised problem's deadline"


# A rectification deadline moved later is bounded, so a "new deadline" cannot park a problem for years
# and stop its overdue escalation (issue 18 outside test, M3).
MAX_DEADLINE_DAYS = 365


def check_new_deadline(session: Session, principal: Principal, problem: Problem, new: date, today: date, *,
                       field_name: str) -> None:
    """A problem's deadline moved (PATCH, a failed re-inspection or verification): not before `today`, at
    most MAX_DEADLINE_DAYS after it (422), and on a 挂牌督办 problem only by the supervising unit or a unit
    above it (403): the unit supervised must not push out the deadline it is held to. The deadline it
    has already (a form sent back whole) is no change and passes."""
    if new == problem.deadline_date:
        return
    if new < today:
        raise _out_of_range(today, field_name)
    check_far_deadline(new, today, field_name=field_name)
    if problem.supervised_unit_id is not None:
        supervising = orgunits.unit_path(session, problem.supervised_unit_id)
        if supervising is None or not principal.covers(supervising):
            raise DeadlineSetFromAbove(supervised_unit_id=problem.supervised_unit_id, field=field_name)


def check_far_deadline(deadline: date, day: date, *, field_name: str) -> None:
    """A problem's first deadline is as bounded as a moved one: a deadline years out would keep the
    problem from ever falling overdue, and so from escalating."""
    if deadline > day + timedelta(days=MAX_DEADLINE_DAYS):
        raise _out_of_range(day, field_name)


def _out_of_range(day: date, field_name: str) -> DeadlineOutOfRange:
    last = day + timedelta(days=MAX_DEADLINE_DAYS)
    return DeadlineOutOfRange(f"整改期限须在 {day.isoformat()} 至 {last.isoformat()}之间",
                              f"the deadline must lie between {day.isoformat()} and {last.isoformat()}",
                              field=field_name, max_days=MAX_DEADLINE_DAYS)


@dataclass
class InspectionResult:
    inspection: Inspection
    created: bool
    opened: list[Problem] = field(default_factory=list)
    verified: list[int] = field(default_factory=list)


def payload_digest(payload: InspectionSubmit, *, as_sent: bool = False) -> str:
    """Digest of what the inspection says: the validated body with defaults filled in and its
    instants in UTC, so the same body written with another offset is a resend, not a conflict.
    `as_sent` keeps the offsets as the phone wrote them: the digest stored before 2026-11-29."""
    body = payload.model_dump(mode="json")
    if not as_sent:
        for name in ("started_at", "finished_at"):
            instant = getattr(payload, name)
            body[name] = clock.as_utc(instant).isoformat() if instant is not None else None
    raw = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


# An inspector acts for their own agency (市场监管, 文旅, 教育, 综合执法, 卫健 ... for `market_officer`,
# issue 18). Only an account opened before agencies were recorded falls back on what its role meant then.
_ROLE_AGENCY = {"police": "police", "market_officer": "market_supervision"}


def _inspectors(session: Session, principal: Principal, ids: Sequence[int]) -> list[tuple[User, str]]:
    """The caller and the other officers present, each with the agency they act for (their own,
    or the one their officer role implies)."""
    wanted = [principal.user_id, *[i for i in ids if i != principal.user_id]]
    users = {u.id: u for u in session.execute(select(User).where(col(User.id).in_(wanted))).scalars()}
    roles: dict[int, set[str]] = {}
    for uid, role in session.execute(select(col(UserRole.user_id), col(UserRole.role)).where(
            col(UserRole.user_id).in_(wanted))):
        roles.setdefault(int(uid), set()).add(str(role))
    out = []
    for uid in dict.fromkeys(wanted):
        user = users.get(uid)
        if user is None or not user.is_active:
            raise InvalidInspector(f"检查人员 {uid} 不存在或已停用", f"inspector {uid} does not exist or is inactive",
                                   user_id=uid)
        agency = user.agency or next((_ROLE_AGENCY[r] for r in sorted(roles.get(uid, ())) if r in _ROLE_AGENCY), None)
        if not agency:
            raise InvalidInspector(f"检查人员 {uid} 未登记所属单位", f"inspector {uid} has no agency", user_id=uid)
        out.append((user, agency))
    return out


def record_inspection(session: Session, principal: Principal, payload: InspectionSubmit) -> InspectionResult:
    """Store an inspection with its answers, open a problem for every "no" and every finding,
    apply re-checks (the only way a problem is verified) and record penalties."""
    principal.require(Action.inspection_create)
    client_uuid = str(payload.client_uuid)
    digest = payload_digest(payload)
    existing = session.execute(
        select(Inspection).where(col(Inspection.client_uuid) == client_uuid)).scalar_one_or_none()
    if existing is not None:
        principal.ensure_covers(orgunits.unit_path(session, existing.org_unit_id))
        if existing.payload_hash != digest and existing.payload_hash != payload_digest(payload, as_sent=True):
            raise InspectionConflict("同一检查编号已提交过不同内容", "the client UUID was used for another body",
                                     inspection_id=existing.id)
        return InspectionResult(existing, created=False)

    venue = venues.get_venue(session, principal, payload.venue_id)
    assert venue.id is not None
    checklist = checklists.get(session, payload.checklist_code, payload.checklist_version)
    vtype = VenueType(venue.venue_type)
    venue_path = orgunits.unit_path(session, venue.org_unit_id)
    # Any version that applies here is accepted, an older one too: a phone offline since a county
    # published its next version still syncs, and its answers are read against the version it used.
    if checklist is None or vtype not in checklist.venue_types or not checklists.applies_at(checklist, venue_path):
        current = checklists.current_for(session, vtype, unit_path=venue_path)
        raise UnknownChecklist(f"请使用检查表 {current.code} v{current.version}",
                               f"use checklist {current.code} v{current.version}",
                               expected_code=current.code, expected_version=current.version)
    missing = [i.code for i in checklist.items if i.code not in payload.answers]
    unknown = [code for code in payload.answers if checklist.item(code) is None]
    if missing or unknown:
        raise IncompleteAnswers("检查项未作答或不属于该检查表", "items missing or not on this checklist",
                                missing=missing, unknown=unknown)
    if payload.rechecks:
        principal.require(Action.problem_verify)
    # A finding becomes a problem every officer, coordinator and member unit of the area reads: the
    # one free-text filter of the registry keeps children's names and numbers out of it.
    refuse_personal_data(session, principal, {
        "notes": payload.notes,
        **{f"findings.{i}.{name}": getattr(f, name) for i, f in enumerate(payload.findings)
           for name in ("description", "measure")},
        **{f"rechecks.{i}.note": r.note for i, r in enumerate(payload.rechecks)},
    }, record="inspection")
    people = _inspectors(session, principal, payload.inspector_ids)
    agencies = {agency for _, agency in people}

    lon_lat = venues.lon_lat(venue)
    distance = None
    location = None
    accuracy = None
    if payload.fix is not None:
        flon, flat = to_wgs84(payload.fix.lon, payload.fix.lat, payload.fix.crs)
        location = point(flon, flat)
        distance = round(distance_m(flon, flat, *lon_lat), 1)
        accuracy = payload.fix.accuracy_m

    # The phone's start time places the inspection (reports, weekly plans, the venue's last inspection)
    # and dates its problems' deadlines, unless it is implausible: then the receipt time does.
    received_at = clock.now()
    placed = placement.place(payload.started_at, received_at)
    inspection = Inspection(
        client_uuid=client_uuid, payload_hash=digest, venue_id=venue.id, org_unit_id=venue.org_unit_id,
        recorded_by_user_id=principal.user_id, checklist_code=checklist.code, checklist_version=checklist.version,
        started_at=clock.as_utc(payload.started_at),
        finished_at=clock.as_utc(payload.finished_at) if payload.finished_at else None, is_joint=len(agencies) >= 2,
        counted_at=placed.counted_at, clock_suspect=placed.clock_suspect, created_at=received_at,
        is_reinspection=bool(payload.rechecks), location=location, fix_accuracy_m=accuracy, distance_m=distance,
        location_mismatch=distance is not None and distance > get_settings().inspection_max_distance_m,
        answers={k: v.value for k, v in payload.answers.items()}, notes=payload.notes,
        photo_ids=list(payload.photo_ids),
    )
    session.add(inspection)
    session.flush()
    assert inspection.id is not None
    for user, agency in people:
        session.add(InspectionInspector(inspection_id=inspection.id, user_id=user.id or 0, agency=agency))

    day = clock.china_date(placed.counted_at)
    result = InspectionResult(inspection, created=True)
    explicit = {f.item_code: f for f in payload.findings if f.item_code}
    for item in checklist.items:
        if payload.answers[item.code] is not Answer.no:
            continue
        finding = explicit.get(item.code)
        result.opened.append(_open_problem(session, venue, inspection, day, item_code=item.code,
                                           description=(finding.description if finding and finding.description
                                                        else f"{item.text_zh}：不符合"),
                                           measure=(finding.measure if finding and finding.measure
                                                    else item.measure_zh),
                                           responsible=finding.responsible_party if finding else "",
                                           deadline=(finding.deadline_date if finding and finding.deadline_date
                                                     else day + timedelta(days=item.deadline_days))))
    for finding in payload.findings:
        if finding.item_code and checklist.item(finding.item_code) is not None:
            continue  # attached to its "no" answer above (or ignored for a "yes")
        if not finding.description or not finding.measure:
            raise InvalidInput("其他问题需填写问题描述和整改措施", "a finding needs a description and a measure")
        result.opened.append(_open_problem(session, venue, inspection, day, item_code=finding.item_code,
                                           description=finding.description, measure=finding.measure,
                                           responsible=finding.responsible_party,
                                           deadline=finding.deadline_date or day + timedelta(days=7)))
    for recheck in payload.rechecks:
        problem = session.get(Problem, recheck.problem_id)
        if problem is None or problem.venue_id != venue.id:
            raise NotFound(f"问题 {recheck.problem_id} 不属于该场所",
                           f"problem {recheck.problem_id} is not this venue's")
        if problem.status == ProblemStatus.verified.value:
            continue
        if recheck.fixed:
            problem.status = ProblemStatus.verified.value
            problem.verified_at = clock.now()
            problem.verified_by_inspection_id = inspection.id
            result.verified.append(problem.id or 0)
        else:
            problem.failed_rechecks += 1
            if recheck.new_deadline_date is not None:
                check_new_deadline(session, principal, problem, recheck.new_deadline_date, day,
                                   field_name="rechecks.new_deadline_date")
                problem.deadline_date = recheck.new_deadline_date
            problem.status = (ProblemStatus.overdue.value if problem.deadline_date < day
                              else ProblemStatus.rectifying.value)
        if recheck.note:
            problem.note = recheck.note
        problem.updated_at = clock.now()
        session.add(problem)
    for penalty in payload.penalties:
        _add_penalty(session, principal, venue, penalty, inspection.id, day)
    session.flush()
    # Photos that came before their inspection are linked by this request, not by a later sweep.
    media.link_waiting_photos(session, "inspection", [payload.client_uuid])
    audit.record(session, actor=principal, action="inspection.create", object_type="inspection",
                 object_id=inspection.id, org_unit_id=venue.org_unit_id,
                 details={"venue_id": venue.id, "problems_opened": len(result.opened),
                          "problems_verified": result.verified, "joint": inspection.is_joint})
    return result


def _responsible_default(venue: Venue) -> str:
    return f"{venue.name}（负责人：{venue.owner_name}）" if venue.owner_name else venue.name


def _open_problem(session: Session, venue: Venue, inspection: Inspection, day: date, *, item_code: str | None,
                  description: str, measure: str, responsible: str, deadline: date) -> Problem:
    if deadline < day:
        raise InvalidInput("整改期限不能早于检查日期", "the deadline is before the inspection date")
    check_far_deadline(deadline, day, field_name="findings.deadline_date")
    problem = Problem(venue_id=venue.id or 0, org_unit_id=venue.org_unit_id, found_in_inspection_id=inspection.id or 0,
                      item_code=item_code, description=description[:1000], measure=measure[:1000],
                      responsible_party=(responsible or _responsible_default(venue))[:120], deadline_date=deadline)
    session.add(problem)
    session.flush()
    return problem


def open_problem_for_review(session: Session, venue: Venue, *, case_review_id: int, description: str, measure: str,
                            responsible: str, deadline: date) -> Problem:
    """A problem a case review's rectification task (一案一整治) raises on a venue: it enters the same
    loop as an inspection's (rectifying, submitted, verified only by a re-inspection, overdue), with
    source case_review and no inspection. The caller has checked the venue may be reached."""
    if deadline < clock.china_date(clock.now()):
        raise InvalidInput("整改期限不能早于今天", "the deadline is before today", field="deadline_date")
    check_far_deadline(deadline, clock.china_date(clock.now()), field_name="deadline_date")
    problem = Problem(venue_id=venue.id or 0, org_unit_id=venue.org_unit_id, found_in_inspection_id=None,
                      source=ProblemSource.case_review.value, case_review_id=case_review_id,
                      description=description[:1000], measure=measure[:1000],
                      responsible_party=(responsible or _responsible_default(venue))[:120], deadline_date=deadline)
    session.add(problem)
    session.flush()
    return problem


def _add_penalty(session: Session, principal: Principal, venue: Venue, data: PenaltyIn, inspection_id: int | None,
                 day: date) -> Penalty:
    if data.problem_id is not None:
        problem = session.get(Problem, data.problem_id)
        if problem is None or problem.venue_id != venue.id:
            raise NotFound(f"问题 {data.problem_id} 不属于该场所", f"problem {data.problem_id} is not this venue's")
    if data.kind is PenaltyKind.fine and not data.amount_yuan:
        raise InvalidInput("罚款需填写金额", "a fine needs amount_yuan")
    penalty = Penalty(venue_id=venue.id or 0, org_unit_id=venue.org_unit_id, inspection_id=inspection_id,
                      problem_id=data.problem_id, kind=data.kind.value, amount_yuan=data.amount_yuan,
                      decision_number=data.decision_number, decided_date=data.decided_date or day, note=data.note,
                      recorded_by_user_id=principal.user_id)
    session.add(penalty)
    session.flush()
    return penalty


def record_penalty(session: Session, principal: Principal, data: PenaltyCreate) -> Penalty:
    """A penalty decided outside an inspection record (e.g. after a case is closed)."""
    venue = venues.get_venue(session, principal, data.venue_id)
    if data.inspection_id is not None:
        inspection = session.get(Inspection, data.inspection_id)
        if inspection is None or inspection.venue_id != venue.id:
            raise NotFound()
    return _add_penalty(session, principal, venue, data, data.inspection_id, clock.china_date(clock.now()))


# ---------------------------------------------------------------- problems


def effective_status(problem: Problem, today: date) -> ProblemStatus:
    """The status as of `today`: an unrectified problem past its deadline is overdue."""
    status = ProblemStatus(problem.status)
    if status in (ProblemStatus.open, ProblemStatus.rectifying) and problem.deadline_date < today:
        return ProblemStatus.overdue
    return status


def get_problem(session: Session, principal: Principal, problem_id: int) -> Problem:
    """A venue's problem in the caller's jurisdiction. The v1 ledger (/problems) is about venues and
    its shape carries a venue id: another subject's problem (issue 18) is read through
    /supervision/problems and is 404 here, as it is absent from this ledger's lists."""
    problem = orgunits.get_in_jurisdiction(session, principal, Problem, problem_id)
    if problem.venue_id is None:
        raise NotFound()
    return problem


_ALLOWED: dict[ProblemStatus, set[ProblemStatus]] = {
    ProblemStatus.open: {ProblemStatus.rectifying, ProblemStatus.submitted},
    ProblemStatus.rectifying: {ProblemStatus.submitted},
    ProblemStatus.overdue: {ProblemStatus.rectifying, ProblemStatus.submitted},
    ProblemStatus.submitted: {ProblemStatus.rectifying},
    ProblemStatus.verified: set(),
}


def update_problem(session: Session, principal: Principal, problem_id: int, data: ProblemUpdate) -> Problem:
    """Record rectification progress; verification is refused here (re-inspection only)."""
    problem = get_problem(session, principal, problem_id)
    today = clock.china_date(clock.now())
    current = effective_status(problem, today)
    if current is ProblemStatus.verified:
        raise ProblemTransitionRefused("问题已销号", "the problem is already verified and closed")
    if data.status is not None and data.status is not current:
        if data.status is ProblemStatus.verified:
            raise ProblemTransitionRefused("只有执法人员复查才能销号", "only a re-inspection by an officer verifies a "
                                           "problem", hint="POST /api/v1/inspections with rechecks")
        if data.status not in _ALLOWED[current]:
            raise ProblemTransitionRefused(f"不能从“{current.zh}”改为“{data.status.zh}”",
                                           f"cannot move from {current.value} to {data.status.value}")
        problem.status = data.status.value
        if data.status is ProblemStatus.submitted:
            problem.submitted_at = clock.now()
    # The measure and note go on the rectification notice to the venue and to every reader of the ledger.
    refuse_personal_data(session, principal, {"measure": data.measure, "note": data.note}, record="problem")
    if data.measure is not None:
        problem.measure = data.measure
    if data.responsible_party is not None:
        problem.responsible_party = data.responsible_party
    if data.deadline_date is not None:
        check_new_deadline(session, principal, problem, data.deadline_date, today, field_name="deadline_date")
        problem.deadline_date = data.deadline_date
        if problem.status == ProblemStatus.overdue.value and data.deadline_date >= today:
            problem.status = ProblemStatus.rectifying.value
    if data.note is not None:
        problem.note = data.note
    problem.updated_at = clock.now()
    session.add(problem)
    session.flush()
    return problem


def list_problems(session: Session, principal: Principal, *, venue_id: int | None = None,
                  org_unit_id: int | None = None, status: ProblemStatus | None = None, overdue_only: bool = False,
                  page: PageRequest = PageRequest(limit=500, limits_bare=True),
                  include_review_problems: bool = True) -> list[Problem]:
    """Problems in the caller's jurisdiction, newest first; `overdue_only` gives the coordinators' overdue
    list (oldest deadline first). `page`: the bare list's cap, or the page asked for. Without
    `include_review_problems`, only those an inspection found (the v1 list)."""
    today = clock.china_date(clock.now())
    stmt = select(Problem).where(orgunits.in_jurisdiction(principal, col(Problem.org_unit_id)),
                                 col(Problem.venue_id).is_not(None))
    if not include_review_problems:
        stmt = stmt.where(col(Problem.found_in_inspection_id).is_not(None))
    if venue_id is not None:
        venues.get_venue(session, principal, venue_id)
        stmt = stmt.where(col(Problem.venue_id) == venue_id)
    if org_unit_id is not None:
        unit = orgunits.get_visible_unit(session, principal, org_unit_id)
        stmt = stmt.where(col(Problem.org_unit_id).in_(orgunits.subtree_unit_ids(unit.path)))
    if overdue_only or status is ProblemStatus.overdue:
        stmt = stmt.where(col(Problem.status).in_([ProblemStatus.open.value, ProblemStatus.rectifying.value,
                                                   ProblemStatus.overdue.value]),
                          col(Problem.deadline_date) < today)
        return list(session.execute(page.seek(stmt, col(Problem.deadline_date), col(Problem.id))).scalars())
    if status is not None:
        stmt = stmt.where(col(Problem.status) == status.value)
        if status in (ProblemStatus.open, ProblemStatus.rectifying):
            stmt = stmt.where(col(Problem.deadline_date) >= today)
    return list(session.execute(page.seek(stmt, col(Problem.id), descending=True)).scalars())


def mark_overdue(session: Session) -> int:
    """Persist the overdue status of every unrectified problem past its deadline (daily job)."""
    today = clock.china_date(clock.now())
    rows = session.execute(select(Problem).where(
        col(Problem.status).in_([ProblemStatus.open.value, ProblemStatus.rectifying.value]),
        col(Problem.deadline_date) < today)).scalars().all()
    for problem in rows:
        problem.status = ProblemStatus.overdue.value
        problem.updated_at = clock.now()
        session.add(problem)
    session.flush()
    return len(rows)


# ---------------------------------------------------------------- shaping


def problem_public(problem: Problem, venue_name: str, today: date) -> ProblemPublic:
    assert problem.id is not None and problem.venue_id is not None  # the v1 shape: venues' problems only
    status = effective_status(problem, today)
    return ProblemPublic(
        id=problem.id, venue_id=problem.venue_id, venue_name=venue_name, item_code=problem.item_code,
        description=problem.description, measure=problem.measure, responsible_party=problem.responsible_party,
        deadline_date=problem.deadline_date, status=status, status_zh=status.zh,
        stored_status=ProblemStatus(problem.status),
        days_overdue=max(0, (today - problem.deadline_date).days) if status is ProblemStatus.overdue else 0,
        failed_rechecks=problem.failed_rechecks, found_in_inspection_id=problem.found_in_inspection_id,
        verified_by_inspection_id=problem.verified_by_inspection_id, verified_at=problem.verified_at,
        note=problem.note, source=problem.source, case_review_id=problem.case_review_id,
    )


def problems_public(session: Session, problems: Sequence[Problem]) -> list[ProblemPublic]:
    names = dict(session.execute(select(col(Venue.id), col(Venue.name)).where(
        col(Venue.id).in_({p.venue_id for p in problems}))).all()) if problems else {}
    today = clock.china_date(clock.now())
    return [problem_public(p, names.get(p.venue_id, ""), today) for p in problems]


def penalty_public(p: Penalty) -> PenaltyPublic:
    assert p.id is not None
    return PenaltyPublic(id=p.id, venue_id=p.venue_id, kind=PenaltyKind(p.kind), amount_yuan=p.amount_yuan,
                         decision_number=p.decision_number, decided_date=p.decided_date,
                         inspection_id=p.inspection_id, problem_id=p.problem_id, note=p.note)


def get_inspection(session: Session, principal: Principal, inspection_id: int) -> Inspection:
    return orgunits.get_in_jurisdiction(session, principal, Inspection, inspection_id)


def inspection_public(session: Session, inspection: Inspection, *, replayed: bool = False) -> InspectionPublic:
    assert inspection.id is not None
    people = session.execute(
        select(InspectionInspector, User).join(User, col(User.id) == col(InspectionInspector.user_id))
        .where(col(InspectionInspector.inspection_id) == inspection.id)).all()
    opened = list(session.execute(select(Problem).where(
        col(Problem.found_in_inspection_id) == inspection.id).order_by(col(Problem.id))).scalars())
    verified = list(session.execute(select(col(Problem.id)).where(
        col(Problem.verified_by_inspection_id) == inspection.id).order_by(col(Problem.id))).scalars())
    penalties = list(session.execute(select(Penalty).where(
        col(Penalty.inspection_id) == inspection.id).order_by(col(Penalty.id))).scalars())
    return InspectionPublic(
        id=inspection.id, client_uuid=inspection.client_uuid, venue_id=inspection.venue_id,
        checklist_code=inspection.checklist_code, checklist_version=inspection.checklist_version,
        started_at=inspection.started_at, finished_at=inspection.finished_at,
        counted_at=clock.as_utc(inspection.counted_at), clock_suspect=inspection.clock_suspect,
        inspectors=[InspectorPublic(user_id=i.user_id, display_name=u.display_name, agency=i.agency)
                    for i, u in people],
        is_joint=inspection.is_joint, is_reinspection=inspection.is_reinspection, distance_m=inspection.distance_m,
        location_mismatch=inspection.location_mismatch, answers=inspection.answers, notes=inspection.notes,
        photo_ids=inspection.photo_ids, problems_opened=problems_public(session, opened),
        problems_verified=[int(v) for v in verified], penalties=[penalty_public(p) for p in penalties],
        replayed=replayed, review_state=inspection.review_state,
    )
