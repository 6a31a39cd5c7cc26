"""The 2112 method: province -> city in 20 min, city -> county in 10, county -> town/village in 10,
feedback within 2 h. Every hand-off is stamped with the server's clock; a missed limit tells the
level above once, and the incident shows it until it is closed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, or_, select, update
from sqlmodel import Session, col

from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.core import clock
from backend.core.config import get_settings
from backend.core.errors import Conflict, InvalidInput, NotFound
from backend.core.pagination import PageRequest
from backend.incidents.models import Incident, IncidentDeadline, IncidentHandoff, IncidentStatus, IncidentStep
from backend.notifications import service as notifications
from backend.notifications.recipients import coordinators_at_or_above
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit

# The step that starts at each origin level, and what each step hands to.
FIRST_STEP = {
    OrgLevel.province.value: IncidentStep.province_to_city,
    OrgLevel.city.value: IncidentStep.city_to_county,
    OrgLevel.county.value: IncidentStep.county_to_local,
}
TARGET_LEVELS = {
    IncidentStep.province_to_city: {OrgLevel.city.value},
    IncidentStep.city_to_county: {OrgLevel.county.value},
    IncidentStep.county_to_local: {OrgLevel.town.value, OrgLevel.village.value},
}
NEXT_STEP = {
    IncidentStep.province_to_city: IncidentStep.city_to_county,
    IncidentStep.city_to_county: IncidentStep.county_to_local,
    IncidentStep.county_to_local: IncidentStep.feedback,
}


class IncidentLevelInvalid(InvalidInput):
    code = "incident-level-invalid"
    title_zh = "该级别不能发起或接收2112案件"
    title_en = "This level cannot open or receive a 2112 incident"


class IncidentStepDone(Conflict):
    code = "incident-step-done"
    title_zh = "该环节已完成或案件已关闭"
    title_en = "This step is already done or the incident is closed"


def limit_for(step: IncidentStep) -> timedelta:
    """The configured limit of a step."""
    s = get_settings()
    minutes = {
        IncidentStep.province_to_city: s.incident_province_to_city_minutes,
        IncidentStep.city_to_county: s.incident_city_to_county_minutes,
        IncidentStep.county_to_local: s.incident_county_to_local_minutes,
        IncidentStep.feedback: s.incident_feedback_minutes,
    }[step]
    return timedelta(minutes=minutes)


def _open_deadline(session: Session, incident: Incident, step: IncidentStep, unit_id: int,
                   now: datetime) -> IncidentDeadline:
    deadline = IncidentDeadline(incident_id=incident.id, step=step.value, unit_id=unit_id,  # type: ignore[arg-type]
                                started_at=now, due_at=now + limit_for(step))
    session.add(deadline)
    return deadline


def _unit(session: Session, unit_id: int) -> OrgUnit:
    unit = session.get(OrgUnit, unit_id)
    if unit is None:
        raise NotFound()
    return unit


def create(session: Session, principal: Principal, *, title: str, summary: str, source_url: str | None,
           org_unit_id: int | None) -> Incident:
    """Open an incident at a province, city or county unit in the caller's jurisdiction."""
    unit = orgunits.get_visible_unit(session, principal, org_unit_id or principal.org_unit_id)
    first = FIRST_STEP.get(unit.level)
    if first is None:
        raise IncidentLevelInvalid("2112案件只能由省、市、县级发起",
                                   "A 2112 incident starts at province, city or county")
    now = clock.now()
    assert unit.id is not None
    incident = Incident(title=title, summary=summary, source_url=source_url, origin_unit_id=unit.id,
                        current_unit_id=unit.id, created_by=principal.user_id, created_at=now)
    session.add(incident)
    session.flush()
    _open_deadline(session, incident, first, unit.id, now)
    audit.record(session, actor=principal, action="incident.create", object_type="incident",
                 object_id=str(incident.id), org_unit_id=unit.id, details={"step": first.value})
    session.flush()
    return incident


def _visible_filter(principal: Principal):  # type: ignore[no-untyped-def]
    in_scope = orgunits.subtree_unit_ids(principal.org_path)
    return or_(
        col(Incident.origin_unit_id).in_(in_scope),
        exists().where(col(IncidentHandoff.incident_id) == col(Incident.id),
                       col(IncidentHandoff.to_unit_id).in_(in_scope)),
    )


def get(session: Session, principal: Principal, incident_id: int) -> Incident:
    """An incident the caller may see (it started or passed through their jurisdiction), else 404."""
    incident: Incident | None = session.execute(
        select(Incident).where(col(Incident.id) == incident_id, _visible_filter(principal))
    ).scalar_one_or_none()
    if incident is None:
        raise NotFound()
    return incident


def list_visible(session: Session, principal: Principal, *, status: IncidentStatus | None = None,
                 overdue_only: bool = False, limit: int = 100, page: PageRequest = PageRequest()) -> list[Incident]:
    """Incidents in the caller's jurisdiction, newest first; `overdue_only` keeps those with a missed limit.
    The bare list holds the newest `limit`; `page` asks for a page instead."""
    query = select(Incident).where(_visible_filter(principal))
    if status is not None:
        query = query.where(col(Incident.status) == status.value)
    if overdue_only:
        query = query.where(exists().where(col(IncidentDeadline.incident_id) == col(Incident.id),
                                           _missed(clock.now())))
    return list(session.execute(page.seek(query, col(Incident.id), descending=True, bare_limit=limit)).scalars())


def _missed(now: datetime):  # type: ignore[no-untyped-def]
    return or_(
        col(IncidentDeadline.escalated_at).is_not(None),
        (col(IncidentDeadline.met_at).is_(None)) & (col(IncidentDeadline.due_at) < now),
        col(IncidentDeadline.met_at) > col(IncidentDeadline.due_at),
    )


def deadlines(session: Session, incident_id: int) -> list[IncidentDeadline]:
    return list(session.execute(
        select(IncidentDeadline).where(col(IncidentDeadline.incident_id) == incident_id)
        .order_by(col(IncidentDeadline.id))
    ).scalars())


def handoffs(session: Session, incident_id: int) -> list[IncidentHandoff]:
    return list(session.execute(
        select(IncidentHandoff).where(col(IncidentHandoff.incident_id) == incident_id)
        .order_by(col(IncidentHandoff.id))
    ).scalars())


def _pending(session: Session, incident: Incident) -> IncidentDeadline:
    if incident.status != IncidentStatus.open.value:
        raise IncidentStepDone("案件已关闭", "The incident is closed")
    row: IncidentDeadline | None = session.execute(
        select(IncidentDeadline).where(col(IncidentDeadline.incident_id) == incident.id,
                                       col(IncidentDeadline.met_at).is_(None))
        .order_by(col(IncidentDeadline.id)).with_for_update()
    ).scalars().first()
    if row is None:
        raise IncidentStepDone("所有环节均已完成，等待关闭", "Every step is done; the incident waits to be closed")
    return row


def hand_off(session: Session, principal: Principal, incident_id: int, *, to_unit_ids: list[int],
             note: str | None) -> list[IncidentHandoff]:
    """Hand the incident down one level: to a city, to a county, or to one or more towns/villages."""
    incident = get(session, principal, incident_id)
    pending = _pending(session, incident)
    step = IncidentStep(pending.step)
    if step is IncidentStep.feedback:
        raise IncidentStepDone("已通知乡镇、村(社区)，请提交反馈", "Already handed down; post the feedback instead")
    holder = _unit(session, pending.unit_id)
    principal.ensure_covers(holder.path)
    targets = [_unit(session, uid) for uid in dict.fromkeys(to_unit_ids)]
    if not targets or (step is not IncidentStep.county_to_local and len(targets) != 1):
        raise IncidentLevelInvalid("请选择一个下级单位", "Choose exactly one unit of the next level")
    for target in targets:
        if target.level not in TARGET_LEVELS[step] or not target.path.startswith(holder.path) or target.id == holder.id:
            raise IncidentLevelInvalid(f"“{target.name}”不是可交办的下级单位",
                                       f"Unit {target.id} is not a unit this step hands to")
    now = clock.now()
    pending.met_at = now
    session.add(pending)
    rows = [IncidentHandoff(incident_id=incident.id, step=step.value, from_unit_id=holder.id,  # type: ignore[arg-type]
                            to_unit_id=t.id, handed_by=principal.user_id, handed_at=now, note=note)  # type: ignore[arg-type]
            for t in targets]
    session.add_all(rows)
    next_step = NEXT_STEP[step]
    # Feedback is owed by the county that notified the towns and villages; every other step by the receiver.
    owner = holder.id if next_step is IncidentStep.feedback else targets[0].id
    _open_deadline(session, incident, next_step, owner, now)  # type: ignore[arg-type]
    incident.current_unit_id = targets[0].id  # type: ignore[assignment]
    session.add(incident)
    audit.record(session, actor=principal, action="incident.handoff", object_type="incident",
                 object_id=str(incident.id), org_unit_id=holder.id,
                 details={"step": step.value, "to": [t.id for t in targets],
                          "late": now > clock.as_utc(pending.due_at)})
    _tell_receivers(session, incident.id, step, targets)  # type: ignore[arg-type]
    session.flush()
    return rows


def _tell_receivers(session: Session, incident_id: int, step: IncidentStep, targets: list[OrgUnit]) -> None:
    """A 2112 hand-off is critical: each receiving unit's coordinators (or the nearest above that has
    any) are told at once, and by SMS when they have not read it in time. Ids only, generic text."""
    for target in targets:
        _, users = coordinators_at_or_above(session, target)
        if users:
            notifications.enqueue(
                session, user_ids=users, kind="incident.handoff", title_zh="新的2112交办案件",
                title_en="New 2112 incident handed to you",
                body_zh="上级交办了一起2112网络舆情案件，请在时限内登录系统接收处理。",
                body_en="A 2112 online incident was handed down to your unit; open the app and act within the limit.",
                data={"incident_id": str(incident_id), "step": step.value, "unit_id": str(target.id)},
                critical=True,
            )


def feedback(session: Session, principal: Principal, incident_id: int, *, note: str) -> Incident:
    """Report the verification and follow-up back up the chain (the last step)."""
    incident = get(session, principal, incident_id)
    pending = _pending(session, incident)
    if pending.step != IncidentStep.feedback.value:
        raise IncidentStepDone("尚未交办到乡镇、村(社区)", "Not yet handed down to towns and villages")
    county = _unit(session, pending.unit_id)
    locals_ = [_unit(session, h.to_unit_id) for h in handoffs(session, incident_id)
               if h.step == IncidentStep.county_to_local.value]
    if not (principal.covers(county.path) or any(principal.covers(u.path) for u in locals_)):
        raise NotFound()
    now = clock.now()
    pending.met_at = now
    incident.feedback_at, incident.feedback_by, incident.feedback_note = now, principal.user_id, note
    session.add_all([pending, incident])
    audit.record(session, actor=principal, action="incident.feedback", object_type="incident",
                 object_id=str(incident.id), org_unit_id=county.id,
                 details={"late": now > clock.as_utc(pending.due_at)})
    session.flush()
    return incident


def close(session: Session, principal: Principal, incident_id: int, *, note: str | None) -> Incident:
    """Close the incident (a coordinator of the level that opened it, or above)."""
    incident = get(session, principal, incident_id)
    if incident.status == IncidentStatus.closed.value:
        raise IncidentStepDone("案件已关闭", "The incident is already closed")
    origin = _unit(session, incident.origin_unit_id)
    principal.ensure_covers(origin.path)
    incident.status = IncidentStatus.closed.value
    incident.closed_at, incident.closed_by, incident.close_note = clock.now(), principal.user_id, note
    session.add(incident)
    audit.record(session, actor=principal, action="incident.close", object_type="incident",
                 object_id=str(incident.id), org_unit_id=origin.id, details={})
    session.flush()
    return incident


@dataclass(frozen=True)
class Escalation:
    incident_id: int
    step: str
    unit_id: int
    notified_unit_id: int | None
    user_ids: list[int]


def local_hhmm(value: datetime) -> str:
    """A time as people read it in the field: Asia/Shanghai, e.g. '11月23日 14:20'."""
    t = clock.china_time(value)
    return f"{t.month}月{t.day}日 {t:%H:%M}"


def check_deadlines(session: Session) -> list[Escalation]:
    """Tell the level above about every missed limit of an open incident, once per limit.

    The claim is a conditional UPDATE (escalated_at IS NULL): a second run, or a second worker
    running at the same time, finds nothing left to claim, so nobody is told twice."""
    now = clock.now()
    due = session.execute(
        select(IncidentDeadline.id).join(Incident, col(Incident.id) == col(IncidentDeadline.incident_id))  # type: ignore[call-overload]
        .where(col(Incident.status) == IncidentStatus.open.value, col(IncidentDeadline.met_at).is_(None),
               col(IncidentDeadline.escalated_at).is_(None), col(IncidentDeadline.due_at) < now)
        .order_by(col(IncidentDeadline.id))
    ).scalars().all()
    done: list[Escalation] = []
    for deadline_id in due:
        claimed = session.execute(
            update(IncidentDeadline)
            .where(col(IncidentDeadline.id) == deadline_id, col(IncidentDeadline.escalated_at).is_(None),
                   col(IncidentDeadline.met_at).is_(None))
            .values(escalated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if claimed != 1:
            continue
        deadline = session.get(IncidentDeadline, deadline_id)
        assert deadline is not None
        session.refresh(deadline)
        owner = _unit(session, deadline.unit_id)
        # The level above the unit that owes the step; the province, having none, is told itself.
        above = _unit(session, owner.parent_id) if owner.parent_id is not None else owner
        notified_unit, users = coordinators_at_or_above(session, above)
        deadline.escalated_to_unit_id = notified_unit
        session.add(deadline)
        step = IncidentStep(deadline.step)
        minutes = int(limit_for(step).total_seconds() // 60)
        if users:
            notifications.enqueue(
                session, user_ids=users, kind="incident.overdue",
                title_zh="2112案件超时", title_en="2112 incident overdue",
                body_zh=f"案件{deadline.incident_id}“{step.zh}”未在{minutes}分钟内完成"
                        f"（时限 {local_hhmm(deadline.due_at)}，北京时间），请督办。",
                body_en=f"Incident {deadline.incident_id}: '{step.en}' missed its {minutes}-minute limit "
                        f"(due {clock.china_time(deadline.due_at):%H:%M} Asia/Shanghai).",
                data={"incident_id": str(deadline.incident_id), "step": step.value, "unit_id": str(owner.id)},
                critical=True,
            )
        session.flush()
        done.append(Escalation(deadline.incident_id, step.value, owner.id, notified_unit, users))  # type: ignore[arg-type]
    return done
