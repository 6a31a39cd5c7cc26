"""Helpers for children at risk: who needs one, proposals from the matcher, confirmation, the
helper's answer (24 h by default, then the next best is proposed), and follow-up visits due by
risk level. Notifications to phones carry assignment ids only, never a child's name."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, and_, case, func, or_, select, text, update
from sqlmodel import Session, col

from backend.accounts import scope
from backend.accounts.models import User
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.audit import service as audit
from backend.cases import service as cases
from backend.core import clock
from backend.core.config import get_settings
from backend.core.errors import Conflict, InvalidInput, NotFound
from backend.core.pagination import PageRequest, decode_cursor, encode_cursor
from backend.helpers.matching import ChildNeed, HelperSlotInfo, match, needed_skills
from backend.helpers.models import (
    HOLDING,
    Assignment,
    AssignmentStatus,
    EndReason,
    FollowUp,
    HelperProfile,
    Skill,
)
from backend.helpers.schemas import AssignmentPublic
from backend.notifications import service as notifications
from backend.notifications.recipients import coordinators_at_or_above
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.registry.idnumber import mask_name
from backend.registry.models import Household, Person, PersonRole, RiskLevel
from backend.sync import revisions

NEEDS_HELPER = (RiskLevel.major.value, RiskLevel.severe.value)  # 较大风险, 重大风险
MANY_TO_ONE_HELPERS = 2


class AssignmentStateConflict(Conflict):
    code = "assignment-state"
    title_zh = "帮扶任务状态不允许此操作"
    title_en = "The assignment's state does not allow this"


class EndReasonInvalid(InvalidInput):
    code = "end-reason-invalid"
    title_zh = "结束帮扶的原因无效"
    title_en = "Invalid reason for ending help"


# The reasons a coordinator gives for ending help (case_closed is the system's, not_given v1's).
EXPLICIT_END_REASONS = (EndReason.need_met, EndReason.helper_unavailable, EndReason.reassigned, EndReason.other)


class HelperProfileInvalid(InvalidInput):
    code = "helper-profile-invalid"
    title_zh = "帮扶人信息有误"
    title_en = "Invalid helper profile"


# ---------------------------------------------------------------- profiles


def create_profile(session: Session, principal: Principal, *, user_id: int, sex: str, skills: list[Skill],
                   capacity: int, home_lon: float | None, home_lat: float | None, active: bool = True) -> HelperProfile:
    """Make a user of the caller's jurisdiction a helper."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound()
    orgunits.get_visible_unit(session, principal, user.org_unit_id)
    if session.execute(select(HelperProfile).where(col(HelperProfile.user_id) == user_id)).first() is not None:
        raise Conflict("该用户已是帮扶人", "This user already has a helper profile")
    if sex not in ("male", "female"):
        raise HelperProfileInvalid("性别应为 male 或 female", "sex must be male or female")
    profile = HelperProfile(user_id=user_id, org_unit_id=user.org_unit_id, sex=sex,
                            skills=sorted({s.value for s in skills}), capacity=capacity, home_lon=home_lon,
                            home_lat=home_lat, active=active)
    session.add(profile)
    session.flush()
    audit.record(session, actor=principal, action="helper.create", object_type="helper_profile",
                 object_id=profile.id, org_unit_id=profile.org_unit_id, details={"user_id": user_id})
    return profile


def get_profile(session: Session, principal: Principal, helper_id: int) -> HelperProfile:
    return orgunits.get_in_jurisdiction(session, principal, HelperProfile, helper_id)


def update_profile(session: Session, principal: Principal, helper_id: int, **changes: object) -> HelperProfile:
    """Change capacity, skills, home point or active; a helper made inactive keeps current children."""
    profile = get_profile(session, principal, helper_id)
    for name, value in changes.items():
        if value is None:
            continue
        if name == "skills":
            value = sorted({Skill(s).value for s in value})  # type: ignore[attr-defined]
        setattr(profile, name, value)
    profile.updated_at = clock.now()
    session.add(profile)
    session.flush()
    return profile


def list_profiles(session: Session, principal: Principal) -> list[tuple[HelperProfile, int]]:
    """Helpers in the caller's jurisdiction with how many children each holds now."""
    loads = _loads(session)
    rows = session.execute(
        select(HelperProfile).where(orgunits.in_jurisdiction(principal, col(HelperProfile.org_unit_id)))
        .order_by(col(HelperProfile.id))
    ).scalars().all()
    return [(p, loads.get(p.id or 0, 0)) for p in rows]


def load_of(session: Session, helper_id: int) -> int:
    """How many children a helper holds now (proposed, offered or accepted)."""
    return _loads(session).get(helper_id, 0)


def _loads(session: Session) -> dict[int, int]:
    return {int(h): int(n) for h, n in session.execute(
        select(col(Assignment.helper_id), func.count()).where(col(Assignment.status).in_(HOLDING))
        .group_by(col(Assignment.helper_id))
    ).all()}


# ---------------------------------------------------------------- proposals


def slots_for(risk_level: str | None) -> int:
    """一对一 by default; 多对一 (two helpers) for 重大风险."""
    return MANY_TO_ONE_HELPERS if risk_level == RiskLevel.severe.value else 1


def _lock_matching(session: Session) -> None:
    """One matcher at a time (SQLite's BEGIN IMMEDIATE already serialises writers)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(6006001)"))


@dataclass(frozen=True)
class _ChildRow:
    person: Person
    lon: float | None
    lat: float | None
    area: str


def needs_helper() -> ColumnElement[bool]:
    """The children who must have a helper: at 较大/重大风险, on 附件3, or with a case (个案) that is not
    closed (a victim or a child at risk whatever its level says). The matcher and the coordinators'
    list of children without a helper read this one condition."""
    return or_(col(Person.risk_level).in_(NEEDS_HELPER), col(Person.vulnerable).is_(True),
               col(Person.id).in_(cases.children_with_open_cases()))


def _children_needing_help(session: Session, *, child_ids: list[int] | None,
                           within_path: str | None) -> list[_ChildRow]:
    query = (
        select(Person, Household.lon, Household.lat, OrgUnit.path)  # type: ignore[call-overload]
        .outerjoin(Household, col(Household.id) == col(Person.household_id))
        .join(OrgUnit, col(OrgUnit.id) == col(Person.org_unit_id))
        .where(col(Person.role) == PersonRole.child.value, col(Person.retired_at).is_(None),
               needs_helper(),
               col(Person.id).not_in(cases.closed_children()))
    )
    if child_ids is not None:
        query = query.where(col(Person.id).in_(child_ids))
    if within_path is not None:
        query = query.where(col(Person.org_unit_id).in_(orgunits.subtree_unit_ids(within_path)))
    out = []
    for person, lon, lat, path in session.execute(query.order_by(col(Person.id))).all():
        ids = [p for p in str(path).strip("/").split("/") if p]
        # The child's town: the 4th unit from the root (province/city/county/town), or the unit itself if higher.
        area = "/" + "/".join(ids[: OrgLevel.town.depth + 1]) + "/"
        out.append(_ChildRow(person, lon, lat, area))
    return out


# A helper whose help of a child ended because the need was met or the case closed may help that child
# again when a new case opens (the child knows them); one who declined, let an offer lapse, was
# rejected, could not go on or was replaced is not proposed for the child again.
_ENDED_WELL = (EndReason.need_met.value, EndReason.case_closed.value)


def _may_help_again(a: Assignment) -> bool:
    return a.status == AssignmentStatus.ended.value and a.end_reason in _ENDED_WELL


def propose_now(session: Session, principal: Principal, *, child_id: int | None = None) -> list[Assignment]:
    """A coordinator runs the matcher over its jurisdiction, or for one child of it it may see (the
    same 404 as a child that does not exist otherwise)."""
    if child_id is not None:
        scope.get_visible(session, principal, Person, child_id, action=Action.child_read)
    return propose(session, actor=principal, child_ids=[child_id] if child_id is not None else None,
                   within_path=principal.org_path)


def propose(session: Session, *, actor: Principal | None = None, child_ids: list[int] | None = None,
            within_path: str | None = None) -> list[Assignment]:
    """Propose helpers for every child at 较大/重大风险, on 附件3 or with an open case (个案) who lacks
    them (minimum-cost matching); in auto mode the proposals are offered to the helpers at once."""
    _lock_matching(session)
    settings = get_settings()
    children = _children_needing_help(session, child_ids=child_ids, within_path=within_path)
    if not children:
        return []
    ids = [c.person.id for c in children if c.person.id is not None]
    history: dict[int, list[Assignment]] = defaultdict(list)
    for a in session.execute(select(Assignment).where(col(Assignment.child_id).in_(ids))).scalars():
        history[a.child_id].append(a)
    helpers = session.execute(
        select(HelperProfile, OrgUnit.path).join(OrgUnit, col(OrgUnit.id) == col(HelperProfile.org_unit_id))  # type: ignore[call-overload]
        .where(col(HelperProfile.active).is_(True)).order_by(col(HelperProfile.id))
    ).all()
    sex_of = {p.id: p.sex for p, _ in helpers}
    loads = _loads(session)
    needs = []
    for c in children:
        rows = history[c.person.id or 0]
        holding = [a for a in rows if a.status in HOLDING]
        open_slots = slots_for(c.person.risk_level) - len(holding)
        if open_slots <= 0:
            continue
        needs.append(ChildNeed(
            child_id=c.person.id or 0, sex=c.person.sex, lon=c.lon, lat=c.lat,
            skills=needed_skills(c.person.categories or [], c.person.groups or [], c.person.vulnerable),
            slots=open_slots, excluded=frozenset(a.helper_id for a in rows if not _may_help_again(a)), area=c.area,
            has_woman=any(sex_of.get(a.helper_id) == "female" for a in holding),
        ))
    pool = [HelperSlotInfo(helper_id=p.id or 0, sex=p.sex, lon=p.home_lon, lat=p.home_lat, skills=frozenset(p.skills),
                           capacity=p.capacity, load=loads.get(p.id or 0, 0), unit_path=str(path))
            for p, path in helpers]
    matches = match(needs, pool, max_km=settings.helper_max_distance_km)
    by_child = {c.person.id: c.person for c in children}
    now = clock.now()
    created: list[Assignment] = []
    for m in sorted(matches, key=lambda m: (m.child_id, m.cost)):
        child = by_child[m.child_id]
        a = Assignment(child_id=m.child_id, helper_id=m.helper_id, org_unit_id=child.org_unit_id,
                       mode="many_to_one" if slots_for(child.risk_level) > 1 else "one_to_one",
                       status=AssignmentStatus.proposed.value, cost=round(m.cost, 4), reasons=m.reasons,
                       proposed_at=now, case_id=cases.case_for_assignment(session, child_id=m.child_id, actor=actor))
        session.add(a)
        created.append(a)
    session.flush()
    for a in created:
        audit.record(session, actor=actor, action="assignment.propose", object_type="helper_assignment",
                     object_id=a.id, org_unit_id=a.org_unit_id,
                     details={"child_id": a.child_id, "helper_id": a.helper_id, "cost": a.cost})
    if settings.helper_auto_confirm:
        for a in created:
            _offer(session, a, confirmed_by=None)
    else:
        _tell_coordinators(session, created)
    session.flush()
    return created


def _tell_coordinators(session: Session, created: list[Assignment]) -> None:
    per_group: dict[tuple[int, ...], int] = defaultdict(int)
    for a in created:
        unit = session.get(OrgUnit, a.org_unit_id)
        if unit is None:
            continue
        _, users = coordinators_at_or_above(session, unit)
        if users:
            per_group[tuple(users)] += 1
    for group, n in per_group.items():
        notifications.enqueue(
            session, user_ids=list(group), kind="assignment.proposed", title_zh="帮扶匹配待确认",
            title_en="Helper proposals to confirm", body_zh=f"有{n}条帮扶人匹配建议等待确认。",
            body_en=f"{n} helper proposal(s) wait for your confirmation.", data={"count": str(n)},
        )


def _offer(session: Session, a: Assignment, *, confirmed_by: int | None) -> None:
    now = clock.now()
    hours = get_settings().helper_answer_hours
    a.status = AssignmentStatus.offered.value
    a.confirmed_at, a.confirmed_by = now, confirmed_by
    a.answer_due_at = now + timedelta(hours=hours)
    session.add(a)
    session.flush()
    helper = session.get(HelperProfile, a.helper_id)
    assert helper is not None and a.id is not None
    notifications.enqueue(
        session, user_ids=[helper.user_id], kind="assignment.offered", title_zh="新的帮扶任务",
        title_en="New child to help", body_zh=f"有一名儿童需要您帮扶，请在{hours}小时内在应用中接受或婉拒。",
        body_en=f"A child needs your help. Please accept or decline in the app within {hours} hours.",
        data={"assignment_id": str(a.id)},
        # A 重大风险 child cannot wait for an unread offer: it falls back to SMS.
        critical=session.execute(select(col(Person.risk_level)).where(col(Person.id) == a.child_id))
        .scalar_one_or_none() == RiskLevel.severe.value,
    )


# ---------------------------------------------------------------- answers


def _locked_assignment(session: Session, assignment_id: int) -> Assignment | None:
    """The assignment as it is now, locked until the transaction ends, so its state is checked and
    changed atomically: a helper accepting while a coordinator closes the case (which ends the case's
    help) waits for the close and finds the help ended, instead of writing `accepted` over it. The sync
    counter is taken first, as every case and assignment change does (cases.service._locked): one lock
    order, no deadlock."""
    revisions.hold(session)
    return session.get(Assignment, assignment_id, with_for_update=True, populate_existing=True)


def _assignment_for_coordinator(session: Session, principal: Principal, assignment_id: int, *,
                                lock: bool = True) -> Assignment:
    a = _locked_assignment(session, assignment_id) if lock else session.get(Assignment, assignment_id)
    path = orgunits.unit_path(session, a.org_unit_id) if a else None
    if a is None or path is None or not principal.covers(path):
        raise NotFound()
    return a


def _own_assignment(session: Session, principal: Principal, assignment_id: int, *, lock: bool = True) -> Assignment:
    a = _locked_assignment(session, assignment_id) if lock else session.get(Assignment, assignment_id)
    helper = session.get(HelperProfile, a.helper_id) if a else None
    if a is None or helper is None or helper.user_id != principal.user_id:
        raise NotFound()
    return a


def _expect(a: Assignment, status: AssignmentStatus) -> None:
    if a.status != status.value:
        raise AssignmentStateConflict(f"当前状态为{a.status}", f"The assignment is {a.status}", current_status=a.status)


def confirm(session: Session, principal: Principal, assignment_id: int) -> Assignment:
    """A coordinator confirms a proposal: the helper is told and has the answer window to reply."""
    a = _assignment_for_coordinator(session, principal, assignment_id)
    _expect(a, AssignmentStatus.proposed)
    _offer(session, a, confirmed_by=principal.user_id)
    audit.record(session, actor=principal, action="assignment.confirm", object_type="helper_assignment",
                 object_id=a.id, org_unit_id=a.org_unit_id)
    return a


def reject(session: Session, principal: Principal, assignment_id: int) -> list[Assignment]:
    """A coordinator turns a proposal down; the next best helper is proposed."""
    a = _assignment_for_coordinator(session, principal, assignment_id)
    _expect(a, AssignmentStatus.proposed)
    a.status = AssignmentStatus.rejected.value
    session.add(a)
    session.flush()
    audit.record(session, actor=principal, action="assignment.reject", object_type="helper_assignment",
                 object_id=a.id, org_unit_id=a.org_unit_id)
    return propose(session, actor=principal, child_ids=[a.child_id])


def _move(session: Session, principal: Principal, a: Assignment, status: AssignmentStatus, action: str,
          **stamps: Any) -> None:
    """An answer or an end: the new status and its time stamp, stored and audited."""
    a.status = status.value
    for name, value in stamps.items():
        setattr(a, name, value)
    session.add(a)
    session.flush()
    audit.record(session, actor=principal, action=action, object_type="helper_assignment",
                 object_id=a.id, org_unit_id=a.org_unit_id)


def accept(session: Session, principal: Principal, assignment_id: int) -> Assignment:
    """The helper takes the child on; follow-ups fall due from now."""
    a = _own_assignment(session, principal, assignment_id)
    _expect(a, AssignmentStatus.offered)
    _move(session, principal, a, AssignmentStatus.accepted, "assignment.accept", answered_at=clock.now())
    cases.on_assignment_accepted(session, a, principal)
    return a


def decline(session: Session, principal: Principal, assignment_id: int) -> list[Assignment]:
    """The helper declines; the next best helper is proposed at once."""
    a = _own_assignment(session, principal, assignment_id)
    _expect(a, AssignmentStatus.offered)
    _move(session, principal, a, AssignmentStatus.declined, "assignment.decline", answered_at=clock.now())
    return propose(session, actor=principal, child_ids=[a.child_id])


def end(session: Session, principal: Principal, assignment_id: int, *, reason: str | None = None,
        note: str | None = None) -> Assignment:
    """A coordinator ends help under way (the child needs it no more, or the helper stops), with a
    reason (`other` needs a note; none given by v1 phones: `not_given`): the assignment is kept as
    history (reports count it), the helper's place is free, follow-ups stop falling due, and the child,
    its household and their visits leave the helper's view and phone (migration 0016 tells the phone).
    The case goes on (the matcher proposes another helper); closing the case ends all its help."""
    allowed = [r.value for r in EXPLICIT_END_REASONS]
    note = (note or "").strip() or None
    if reason is not None and reason not in allowed:
        raise EndReasonInvalid(f"原因应为：{'、'.join(allowed)}", f"reason must be one of {', '.join(allowed)}",
                               field="reason", allowed=allowed)
    if reason == EndReason.other.value and note is None:
        raise EndReasonInvalid("原因为“其他”时须填写说明", "A note is required when the reason is other",
                               field="note", allowed=allowed)
    a = _assignment_for_coordinator(session, principal, assignment_id)
    _expect(a, AssignmentStatus.accepted)
    _move(session, principal, a, AssignmentStatus.ended, "assignment.end", ended_at=clock.now(),
          end_reason=reason or EndReason.not_given.value, end_note=note)
    return a


def expire_unanswered(session: Session) -> list[Assignment]:
    """Offers not answered in time lapse (each once, by a conditional UPDATE) and the next best
    helper is proposed for each child."""
    now = clock.now()
    due = session.execute(
        select(col(Assignment.id)).where(col(Assignment.status) == AssignmentStatus.offered.value,
                                         col(Assignment.answer_due_at) < now)
    ).scalars().all()
    children: list[int] = []
    for assignment_id in due:
        lapsed = session.execute(
            update(Assignment)
            .where(col(Assignment.id) == assignment_id, col(Assignment.status) == AssignmentStatus.offered.value)
            .values(status=AssignmentStatus.expired.value, rev=revisions.allocate(session))
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if lapsed == 1:
            a = session.get(Assignment, assignment_id)
            assert a is not None
            session.refresh(a)
            children.append(a.child_id)
            audit.record(session, actor=None, action="assignment.expire", object_type="helper_assignment",
                         object_id=a.id, org_unit_id=a.org_unit_id)
    if not children:
        return []
    return propose(session, child_ids=sorted(set(children)))


def list_assignments(session: Session, principal: Principal, *, status: AssignmentStatus | None = None,
                     mine: bool = False, page: PageRequest = PageRequest()) -> list[Assignment]:
    """A helper's own assignments, or (coordinators) those of children in the jurisdiction, newest first
    (the bare list: the newest 500)."""
    query = select(Assignment)
    if mine:
        query = query.join(HelperProfile, col(HelperProfile.id) == col(Assignment.helper_id)).where(
            col(HelperProfile.user_id) == principal.user_id)
    else:
        query = query.where(orgunits.in_jurisdiction(principal, col(Assignment.org_unit_id)))
    if status is not None:
        query = query.where(col(Assignment.status) == status.value)
    return list(session.execute(page.seek(query, col(Assignment.id), descending=True, bare_limit=500)).scalars())


def assignments_public(session: Session, rows: list[Assignment]) -> list[AssignmentPublic]:
    """The one public shape of assignments, for the helpers API and sync pull alike; the assignments and
    their children are declared to the request's audit entry."""
    disclosure.record(disclosure.ASSIGNMENT, [a.id for a in rows])
    disclosure.record(disclosure.PERSON, [a.child_id for a in rows])
    levels = dict(session.execute(
        select(col(Person.id), col(Person.risk_level)).where(col(Person.id).in_([a.child_id for a in rows]))
    ).all()) if rows else {}
    return [AssignmentPublic(
        id=a.id or 0, child_id=a.child_id, helper_id=a.helper_id, org_unit_id=a.org_unit_id, mode=a.mode,
        status=a.status, cost=a.cost, reasons=a.reasons, proposed_at=a.proposed_at, confirmed_at=a.confirmed_at,
        answer_due_at=a.answer_due_at, answered_at=a.answered_at, last_followup_at=a.last_followup_at,
        followup_due_at=followup_due(a, levels.get(a.child_id)), case_id=a.case_id, ended_at=a.ended_at,
        end_reason=a.end_reason,
    ) for a in rows]


def get_assignment(session: Session, principal: Principal, assignment_id: int) -> Assignment:
    """The helper's own assignment, or one in a coordinator's jurisdiction."""
    try:
        return _own_assignment(session, principal, assignment_id, lock=False)
    except NotFound:
        if not principal.can(Action.assignment_confirm):
            raise
        return _assignment_for_coordinator(session, principal, assignment_id, lock=False)


# ---------------------------------------------------------------- children still without a helper


@dataclass(frozen=True)
class ChildWithoutHelper:
    """A child who needs a helper and has none who accepted yet (personal data masked)."""

    child_id: int
    name_masked: str | None
    id_number_masked: str | None
    sex: str | None
    risk_level: str | None
    vulnerable: bool
    org_unit_id: int
    unit_name: str
    pending: int  # proposals and offers still waiting for a coordinator or the helper


def _severity_rank() -> Any:
    """重大风险 first, then 较大风险, then children on 附件3 at a lower level."""
    return case((col(Person.risk_level) == RiskLevel.severe.value, 0),
                (col(Person.risk_level) == RiskLevel.major.value, 1), else_=2)


def children_without_helper(session: Session, principal: Principal, *, unit_id: int | None = None,
                            cursor: str | None = None, limit: int = 50) -> tuple[list[ChildWithoutHelper], str | None]:
    """Children of the caller's jurisdiction (or of `unit_id` in it) at 较大/重大风险 or on 附件3 with
    no accepted helper assignment, the most at risk first; a page of at most `limit`. Children are
    hidden like every child record (404 without child.read); the list is a coordinator's matching
    work list (helper.read). Names and ID numbers are masked; each page read is audited."""
    from backend.accounts.permissions import Action

    principal.require(Action.child_read)
    principal.require(Action.helper_read)
    unit = orgunits.get_visible_unit(session, principal, unit_id if unit_id is not None else principal.org_unit_id)
    position = decode_cursor(cursor) or {}
    rank = _severity_rank()
    accepted = select(col(Assignment.id)).where(col(Assignment.child_id) == col(Person.id),
                                                col(Assignment.status) == AssignmentStatus.accepted.value)
    pending = (
        select(func.count()).select_from(Assignment)
        .where(col(Assignment.child_id) == col(Person.id),
               col(Assignment.status).in_((AssignmentStatus.proposed.value, AssignmentStatus.offered.value)))
        .scalar_subquery()
    )
    query = (
        select(Person, OrgUnit.name, rank.label("rank"), pending.label("pending"))  # type: ignore[call-overload]
        .join(OrgUnit, col(OrgUnit.id) == col(Person.org_unit_id))
        .where(col(Person.role) == PersonRole.child.value, col(Person.retired_at).is_(None),
               needs_helper(),
               scope.visible(principal, Person),
               col(Person.org_unit_id).in_(orgunits.subtree_unit_ids(unit.path)),
               ~accepted.exists())
    )
    if position:
        try:
            after_rank, after_id = int(position.get("rank", 0)), int(position.get("id", 0))
        except (TypeError, ValueError):
            raise InvalidInput("翻页标记无效", "Invalid cursor", field="cursor") from None
        query = query.where(or_(rank > after_rank, and_(rank == after_rank, col(Person.id) > after_id)))
    rows = session.execute(query.order_by(rank, col(Person.id)).limit(limit + 1)).all()
    page = rows[:limit]
    items = [
        ChildWithoutHelper(child_id=p.id or 0, name_masked=mask_name(p.name), id_number_masked=p.id_masked,
                           sex=p.sex, risk_level=p.risk_level, vulnerable=bool(p.vulnerable),
                           org_unit_id=p.org_unit_id, unit_name=str(name), pending=int(n or 0))
        for p, name, _rank, n in page
    ]
    disclosure.record(disclosure.PERSON, [c.child_id for c in items])
    disclosure.event(session, "child.list.without_helper", actor=principal, object_type="org_unit",
                     object_id=unit.id, org_unit_id=unit.id, details={"count": len(items), "after": position or None})
    next_cursor = None
    if len(rows) > limit and page:
        last = page[-1]
        next_cursor = encode_cursor({"rank": int(last[2]), "id": last[0].id})
    return items, next_cursor


# ---------------------------------------------------------------- follow-ups


def followup_interval(risk_level: str | None) -> timedelta:
    """重大 weekly, 较大 every two weeks, otherwise monthly (configurable)."""
    s = get_settings()
    if risk_level == RiskLevel.severe.value:
        return timedelta(days=s.helper_followup_days_major)
    if risk_level == RiskLevel.major.value:
        return timedelta(days=s.helper_followup_days_high)
    return timedelta(days=s.helper_followup_days_general)


def followup_due(a: Assignment, risk_level: str | None) -> datetime | None:
    """When the next follow-up visit of an accepted assignment falls due."""
    start = a.last_followup_at or a.answered_at
    if a.status != AssignmentStatus.accepted.value or start is None:
        return None
    return clock.as_utc(start) + followup_interval(risk_level)


def record_followup(session: Session, principal: Principal, assignment_id: int, *, visited_at: datetime | None,
                    note: str | None, client_uuid: UUID | None = None, device_time: datetime | None = None,
                    clock_suspect: bool = False) -> FollowUp:
    """The helper records a follow-up visit; the next one falls due from it. A follow-up pushed from
    the phone carries its client UUID and the time the phone gave (`visited_at` is then where that
    time was placed: backend/core/placement.py)."""
    a = _own_assignment(session, principal, assignment_id)
    now = clock.now()
    when = clock.as_utc(visited_at) if visited_at else now
    # A follow-up made while the help lasted and synced after it ended (the phone was offline) is kept,
    # as a visit is: the visit happened. Only a time the phone could be trusted with places it so.
    made_during_help = (a.status == AssignmentStatus.ended.value and a.ended_at is not None
                        and visited_at is not None and not clock_suspect and when < clock.as_utc(a.ended_at))
    if not made_during_help:
        _expect(a, AssignmentStatus.accepted)
    if when > now + timedelta(minutes=5):
        raise InvalidInput("随访时间不能晚于当前时间", "A follow-up cannot be in the future", field="visited_at")
    row = FollowUp(assignment_id=a.id, visited_at=when, note=note, recorded_at=now,  # type: ignore[arg-type]
                   client_uuid=client_uuid, device_time=clock.as_utc(device_time) if device_time else None,
                   clock_suspect=clock_suspect)
    last = clock.as_utc(a.last_followup_at) if a.last_followup_at else None
    a.last_followup_at = max(when, last) if last else when
    session.add_all([row, a])
    session.flush()
    audit.record(session, actor=principal, action="assignment.followup", object_type="helper_assignment",
                 object_id=a.id, org_unit_id=a.org_unit_id)
    return row


def followup_by_uuid(session: Session, client_uuid: UUID) -> FollowUp | None:
    """The follow-up a phone pushed with this UUID, if stored."""
    return session.execute(select(FollowUp).where(col(FollowUp.client_uuid) == client_uuid)).scalar_one_or_none()


def owns_followup(session: Session, principal: Principal, followup: FollowUp) -> bool:
    """Whether the follow-up was recorded on one of the caller's own assignments."""
    try:
        _own_assignment(session, principal, followup.assignment_id, lock=False)
    except NotFound:
        return False
    return True


@dataclass(frozen=True)
class OverdueFollowUp:
    assignment: Assignment
    risk_level: str | None
    due_at: datetime


def overdue_followups(session: Session, *, principal: Principal | None = None) -> list[OverdueFollowUp]:
    """Accepted assignments whose follow-up is overdue (in the caller's jurisdiction if given)."""
    now = clock.now()
    query = (
        select(Assignment, Person.risk_level)  # type: ignore[call-overload]
        .join(Person, col(Person.id) == col(Assignment.child_id))
        .where(col(Assignment.status) == AssignmentStatus.accepted.value)
    )
    if principal is not None:
        query = query.where(orgunits.in_jurisdiction(principal, col(Assignment.org_unit_id)))
    out = []
    for a, level in session.execute(query.order_by(col(Assignment.id))).all():
        due = followup_due(a, level)
        if due is not None and due < now:
            out.append(OverdueFollowUp(a, level, due))
    return out


def remind_overdue_followups(session: Session) -> int:
    """Remind each helper once per missed due date (conditional UPDATE on reminded_due_at)."""
    sent = 0
    for item in overdue_followups(session):
        a = item.assignment
        claimed = session.execute(
            update(Assignment)
            .where(col(Assignment.id) == a.id,
                   or_(col(Assignment.reminded_due_at).is_(None), col(Assignment.reminded_due_at) < item.due_at))
            .values(reminded_due_at=item.due_at)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if claimed != 1:
            continue
        helper = session.get(HelperProfile, a.helper_id)
        if helper is None:
            continue
        notifications.enqueue(
            session, user_ids=[helper.user_id], kind="assignment.followup_overdue", title_zh="随访已逾期",
            title_en="Follow-up overdue", body_zh="您帮扶的一名儿童的随访已逾期，请尽快上门并在应用中记录。",
            body_en="A follow-up visit of a child you help is overdue. Please visit and record it in the app.",
            data={"assignment_id": str(a.id)},
        )
        sent += 1
    return sent
