"""附件2 risk persons under control (管控): police check-ins falling due by risk level, the overdue list,
and the household a person lives in, whose children are raised for review when the link is made.

Who may do what is the permission matrix: reading is `risk_person.read` (police, coordinators),
linking is `risk_person.write` (police, coordinators) and needs the household in the caller's
jurisdiction, a check-in is `risk_person.control` (police). Every answer declares the entry it
carries to the request's audit entry (`registry.risk_person_public`); every write says so too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.core import clock
from backend.core.config import get_settings
from backend.core.errors import Conflict, InvalidInput
from backend.notifications import service as notifications
from backend.notifications.recipients import coordinators_at_or_above
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgUnit
from backend.registry import risk_person_history
from backend.registry import service as registry
from backend.registry.models import (
    ControlStatus,
    Household,
    Person,
    PersonRole,
    RiskLevel,
    RiskPerson,
    RiskPersonCategory,
    RiskPersonCheckIn,
    RiskPersonHousehold,
)
from backend.registry.schemas import CheckInCreate
from backend.sealing import service as sealing

# The source of a child's risk level raised because a risk person was linked to its household
# (risk_level_change.source; 16 characters at most).
LINK_SOURCE = "risk_person_link"
# Check-ins may be recorded a little ahead of the server's clock (a phone's clock runs fast).
CHECK_IN_CLOCK_SLACK = timedelta(minutes=5)


class CheckInInFuture(InvalidInput):
    code = "check-in-in-future"
    title_zh = "管控时间不能晚于当前时间"
    title_en = "A check-in cannot be in the future"


class AlreadyLinked(Conflict):
    code = "risk-person-linked-elsewhere"
    title_zh = "该人员已关联其他住户"
    title_en = "The person is linked to another household"


class SealedNotLinked(Conflict):
    code = "risk-person-sealed-not-linked"
    title_zh = "封存记录不能关联住户"
    title_en = "A sealed entry cannot be linked to a household"


class NotLinked(Conflict):
    code = "risk-person-not-linked"
    title_zh = "该人员当前未关联住户"
    title_en = "The person is not linked to a household"


# ---------------------------------------------------------------- check-ins and due dates


def check_interval(level: str | None) -> timedelta:
    """Days from one check-in to the next for a stored risk level (unassessed: as 一般风险)."""
    s = get_settings()
    days = {
        RiskLevel.severe.value: s.risk_person_check_days_severe,
        RiskLevel.major.value: s.risk_person_check_days_major,
        RiskLevel.general.value: s.risk_person_check_days_general,
        RiskLevel.low.value: s.risk_person_check_days_low,
    }.get(level or "", s.risk_person_check_days_general)
    return timedelta(days=days)


def next_due_at(r: RiskPerson) -> datetime | None:
    """When the next check-in falls due: the last one (or, before any, the entry's creation) plus the
    interval of the person's level; None once control is released."""
    if r.control_status == ControlStatus.released.value:
        return None
    since = r.last_check_in_at or r.created_at
    return clock.as_utc(since) + check_interval(r.risk_level)


def control_public(r: RiskPerson) -> dict[str, Any]:
    """The control state of an entry: last check-in, next due, and how many days overdue (0 when not)."""
    due = next_due_at(r)
    now = clock.now()
    late = (now - due) if due is not None and due < now else None
    return {
        "control_status": r.control_status,
        "control_status_zh": ControlStatus(r.control_status).zh,
        "check_interval_days": check_interval(r.risk_level).days,
        "last_check_in_at": clock.as_utc(r.last_check_in_at).isoformat() if r.last_check_in_at else None,
        "next_due_at": due.isoformat() if due is not None else None,
        "overdue": late is not None,
        "overdue_days": late.days if late is not None else 0,
    }


def check_in_public(c: RiskPersonCheckIn) -> dict[str, Any]:
    return {
        "id": c.id,
        "risk_person_id": c.risk_person_id,
        "checked_at": clock.as_utc(c.checked_at).isoformat(),
        "method": c.method,
        "place": c.place,
        "finding": c.finding,
        "note": c.note,
        "officer_user_id": c.officer_user_id,
        "created_at": clock.as_utc(c.created_at).isoformat(),
    }


def record_check_in(session: Session, principal: Principal, risk_person_id: int, body: CheckInCreate) -> RiskPerson:
    """A police check-in on a person of the caller's jurisdiction; the next one falls due from the latest."""
    principal.require(Action.risk_person_read)
    principal.require(Action.risk_person_control)
    r = registry.locked_risk_person(session, principal, risk_person_id)
    now = clock.now()
    at = clock.as_utc(body.checked_at) if body.checked_at is not None else now
    if at > now + CHECK_IN_CLOCK_SLACK:
        raise CheckInInFuture(field="checked_at")
    check_in = RiskPersonCheckIn(
        risk_person_id=r.id or 0, checked_at=at, method=body.method.value, place=body.place,
        finding=body.finding.value, note=body.note, officer_user_id=principal.user_id, created_at=now,
    )
    session.add(check_in)
    if r.last_check_in_at is None or clock.as_utc(r.last_check_in_at) < at:
        r.last_check_in_at = at
        session.add(r)
    session.flush()
    disclosure.changed(disclosure.RISK_PERSON, [r.id], unit_id=r.org_unit_id)
    disclosure.event(session, "risk_person.check_in", actor=principal, object_type="risk_person", object_id=r.id,
                     org_unit_id=r.org_unit_id, details={"check_in_id": check_in.id, "finding": check_in.finding})
    return r


def check_ins(session: Session, risk_person_id: int) -> list[dict[str, Any]]:
    """The check-ins of an entry, latest first."""
    rows = session.execute(
        select(RiskPersonCheckIn).where(col(RiskPersonCheckIn.risk_person_id) == risk_person_id)
        .order_by(col(RiskPersonCheckIn.checked_at).desc(), col(RiskPersonCheckIn.id).desc())
    ).scalars()
    return [check_in_public(c) for c in rows]


@dataclass(frozen=True)
class Overdue:
    person: RiskPerson
    due_at: datetime


def overdue(session: Session, principal: Principal, *, unit_id: int | None = None) -> list[Overdue]:
    """Entries of the caller's jurisdiction (or a unit of it) under control whose check-in is overdue,
    most overdue first. Sealed entries are in no list."""
    principal.require(Action.risk_person_read)
    query = select(RiskPerson).where(
        orgunits.in_jurisdiction(principal, col(RiskPerson.org_unit_id)), sealing.unsealed(RiskPerson),
        col(RiskPerson.control_status) != ControlStatus.released.value,
    )
    if unit_id is not None:
        unit = orgunits.get_visible_unit(session, principal, unit_id)
        query = query.where(col(RiskPerson.org_unit_id).in_(orgunits.subtree_unit_ids(unit.path)))
    now = clock.now()
    found = []
    for r in session.execute(query).scalars():
        due = next_due_at(r)
        if due is not None and due < now:
            found.append(Overdue(r, due))
    return sorted(found, key=lambda o: (o.due_at, o.person.id or 0))


def overdue_public(o: Overdue) -> dict[str, Any]:
    return {**registry.risk_person_public(o.person), "control": control_public(o.person)}


# ---------------------------------------------------------------- the household a person lives in


def current_link(session: Session, risk_person_id: int) -> RiskPersonHousehold | None:
    found = session.execute(
        select(RiskPersonHousehold).where(col(RiskPersonHousehold.risk_person_id) == risk_person_id,
                                          col(RiskPersonHousehold.unlinked_at).is_(None))
    ).scalar_one_or_none()
    return found if isinstance(found, RiskPersonHousehold) else None


def link_public(link: RiskPersonHousehold) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return clock.as_utc(value).isoformat() if value is not None else None

    return {
        "id": link.id,
        "household_id": link.household_id,
        "linked_at": iso(link.linked_at),
        "linked_by": link.linked_by,
        "raised_child_ids": link.raised_child_ids,
        "notified_user_ids": link.notified_user_ids,
        "unlinked_at": iso(link.unlinked_at),
        "unlinked_by": link.unlinked_by,
        "current": link.unlinked_at is None,
    }


def links(session: Session, risk_person_id: int) -> list[dict[str, Any]]:
    """Every household link of an entry, oldest first (the current one has `current`)."""
    rows = session.execute(
        select(RiskPersonHousehold).where(col(RiskPersonHousehold.risk_person_id) == risk_person_id)
        .order_by(col(RiskPersonHousehold.id))
    ).scalars()
    return [link_public(link) for link in rows]


def link_household(session: Session, principal: Principal, risk_person_id: int, household_id: int) -> RiskPerson:
    """Link an entry to the household it lives in (a household of the caller's jurisdiction). Linking
    the household it is already linked to changes nothing; another household while one is current is a
    conflict (unlink first). A new link raises the household's children for review and tells their
    coordinators, once. A sealed entry (opened by this officer) is not linked: 409."""
    principal.require(Action.risk_person_write)
    r = registry.locked_risk_person(session, principal, risk_person_id)
    if r.sealed:  # its effects (children raised, coordinators told) would spread a sealed record
        raise SealedNotLinked()
    home = registry.get_household(session, principal, household_id)
    current = current_link(session, r.id or 0)
    if current is not None:
        if current.household_id == home.id:
            return r
        raise AlreadyLinked("请先解除与当前住户的关联", "Unlink the current household first")
    link = RiskPersonHousehold(risk_person_id=r.id or 0, household_id=home.id or 0, linked_at=clock.now(),
                               linked_by=principal.user_id)
    try:
        with session.begin_nested():  # a racing link of the same person loses on the partial unique index
            session.add(link)
            session.flush()
    except IntegrityError:
        raise AlreadyLinked("请先解除与当前住户的关联", "Unlink the current household first") from None
    link.raised_child_ids, link.notified_user_ids = _raise_children(session, principal, r, home, link)
    session.add(link)
    session.flush()
    disclosure.changed(disclosure.RISK_PERSON, [r.id], unit_id=r.org_unit_id)
    disclosure.record(disclosure.HOUSEHOLD, [home.id], unit_id=home.org_unit_id)
    disclosure.event(session, "risk_person.link_household", actor=principal, object_type="risk_person",
                     object_id=r.id, org_unit_id=r.org_unit_id,
                     details={"household_id": home.id, "link_id": link.id, "raised": link.raised_child_ids})
    return r


def unlink_household(session: Session, principal: Principal, risk_person_id: int) -> RiskPerson:
    """End the current household link (kept in the history). Children's levels stay as they are."""
    principal.require(Action.risk_person_write)
    r = registry.locked_risk_person(session, principal, risk_person_id)
    current = current_link(session, r.id or 0)
    if current is None:
        raise NotLinked()
    current.unlinked_at, current.unlinked_by = clock.now(), principal.user_id
    session.add(current)
    session.flush()
    disclosure.changed(disclosure.RISK_PERSON, [r.id], unit_id=r.org_unit_id)
    disclosure.event(session, "risk_person.unlink_household", actor=principal, object_type="risk_person",
                     object_id=r.id, org_unit_id=r.org_unit_id,
                     details={"household_id": current.household_id, "link_id": current.id})
    return r


def _categories(r: RiskPerson) -> list[RiskPersonCategory]:
    return [RiskPersonCategory(c) for c in r.categories or [] if c in RiskPersonCategory._value2member_map_]


def _raise_children(
    session: Session, principal: Principal, r: RiskPerson, home: Household, link: RiskPersonHousehold
) -> tuple[list[int], list[int]]:
    """Raise the household's children (not retired) to at least the configured level, never lowering
    one, and tell their coordinators once. The children's records say only that a police link raised
    them: their readers (volunteers, helpers) never learn of a risk person; the coordinators' notice
    names the category. (The ids of the children raised, the users told.)"""
    children = list(session.execute(
        select(Person).where(col(Person.household_id) == home.id, col(Person.role) == PersonRole.child.value,
                             col(Person.retired_at).is_(None)).order_by(col(Person.id))
    ).scalars())
    if not children:
        return [], []
    target = RiskLevel[get_settings().risk_person_link_child_level]
    reasons = [{"rule": LINK_SOURCE, "level": target.value,
                "reason_zh": "公安关联研判：同户人员存在风险，需复核",
                "reason_en": "Police linked a person at risk to the household; review"}]
    raised: list[int] = []
    for child in children:
        if child.risk_level is not None and RiskLevel(child.risk_level).rank >= target.rank:
            continue
        registry.set_risk_level(session, person_id=child.id or 0, previous=child.risk_level, level=target,
                                reasons=reasons, source=LINK_SOURCE, actor_user_id=principal.user_id)
        raised.append(child.id or 0)
    told: set[int] = set()
    for unit_id in sorted({c.org_unit_id for c in children}):
        unit = session.get(OrgUnit, unit_id)
        if unit is not None:
            told.update(coordinators_at_or_above(session, unit)[1])
    categories = _categories(r)
    names_zh = "、".join(f"第{c.value}类（{c.zh}）" for c in categories) or "未分类"
    codes = ",".join(c.value for c in categories) or "none"
    notifications.enqueue(
        session,
        user_ids=sorted(told),
        kind="risk_person.household_linked",
        title_zh="住户儿童需复核",
        title_en="Children of a household to review",
        body_zh=f"公安将一名附件2风险重点人员（{names_zh}）关联到一户有未成年人的住户，"
                f"户内{len(children)}名儿童已列入复核，请及时研判并安排帮扶。",
        body_en=f"Police linked a person on the risk ledger (category {codes}) to a household with "
                f"{len(children)} child(ren); they are raised for review.",
        data={"household_id": str(home.id), "link_id": str(link.id), "categories": codes.replace(",", "-"),
              "children": str(len(children))},
    )
    return raised, sorted(told)


# ---------------------------------------------------------------- the detail of one entry


def detail(session: Session, r: RiskPerson) -> dict[str, Any]:
    """One entry with its control state, check-ins, household links and edit history."""
    current = current_link(session, r.id or 0)
    household_links = links(session, r.id or 0)
    # The children a link raised are named by id: declared like any answer naming children.
    disclosure.record(disclosure.PERSON, [i for link in household_links for i in link["raised_child_ids"]])
    return {
        **registry.risk_person_public(r),
        "control": control_public(r),
        "household_id": current.household_id if current is not None else None,
        "household_links": household_links,
        "check_ins": check_ins(session, r.id or 0),
        "history": risk_person_history.history(session, r.id or 0),
    }
