"""A second record for a registered ID number: refused without saying where the first one is.

Every way a person's ID number is written (a child or guardian created or edited over REST or sync
push, a 附件1/3 ledger row, a 附件2 risk person over REST or a 附件2 ledger row) ends here when the
number's blind index is already held by another record. The caller learns no more than "already
registered; your coordinator has been notified": one problem (409 `id-number-registered`, the same
title, detail and fields) whether the holder is in the caller's own village or in another county,
and the same work on the server either way (the same statements run).

Each refused attempt is written to the audit log (`registry.duplicate_id_number`: the caller, the
record it collided with, the unit the refused record was meant for) and told to the coordinators
who may see both records: the active coordinators of the lowest org unit whose subtree holds both
the refused record's unit and the holder's unit, or, where that unit has none, of the nearest unit
above it that has some. Where no unit at or above it has a coordinator (two counties of a city with
coordinators only at county level), the nearest coordinators above each of the two records are told
instead, each about their side. The caller is never among those told (a coordinator trying a number
would otherwise see, in their own inbox, which of the two cases it was); nothing in the notification
names the number or the person. Refused attempts are kept although the write is undone: the audit
entry and the notification are the refusal's aftermath (core/errors.py), written after the rollback
by whoever undoes it (the request's session for REST, the item's savepoint for sync push).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import User, UserRole
from backend.accounts.permissions import Role
from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.core.errors import Conflict
from backend.notifications import service as notifications
from backend.orgunits.models import OrgUnit
from backend.registry.models import Person, RiskPerson
from backend.sealing import service as sealing

AUDIT_ACTION = "registry.duplicate_id_number"
NOTIFICATION_KIND = "registry.duplicate_id_number"
# The reason a ledger row gives: the problem's title, nothing more.
REFUSAL_ZH = "该身份证号码已登记，已通知您的协调人"
REFUSAL_EN = "This ID number is already registered; your coordinator has been notified"
# A ledger of many refused rows tells each coordinator this many times at most; the last of them
# counts the rest (`attempts`). Every row has its own audit entry.
MAX_NOTIFICATIONS_PER_REFUSAL = 10


class IdNumberRegistered(Conflict):
    """Another record holds this ID number, somewhere: the caller is told no more."""

    code = "id-number-registered"
    title_zh = REFUSAL_ZH
    title_en = REFUSAL_EN


@dataclass(frozen=True)
class Collision:
    """One refused write of an ID number."""

    record_type: str  # "person" or "risk_person"
    holder_id: int | None  # the record holding the number (None if it vanished meanwhile)
    holder_unit_id: int | None
    unit_id: int  # where the refused record would have gone
    operation: str  # "create", "update", "import"


def collision(
    session: Session, model: type[Person] | type[RiskPerson], index: str, *, unit_id: int, operation: str
) -> Collision:
    """The collision of a write of blind index `index` into `unit_id` with the record holding it."""
    # A sealed 附件2 entry is never the holder (backend/sealing): nobody is told of it.
    visible = [sealing.unsealed(RiskPerson)] if model is RiskPerson else []
    held = session.execute(
        select(col(model.id), col(model.org_unit_id)).where(col(model.id_index) == index, *visible)
    ).first()
    return Collision(
        record_type="risk_person" if model is RiskPerson else "person",
        holder_id=int(held[0]) if held else None,
        holder_unit_id=int(held[1]) if held else None,
        unit_id=unit_id,
        operation=operation,
    )


def refusal(principal: Principal, found: Collision) -> IdNumberRegistered:
    """The error to raise for a collision; its aftermath audits it and tells the coordinators."""
    return IdNumberRegistered(field="id_number", aftermath=partial(report, principal=principal, found=[found]))


def refused(
    session: Session,
    principal: Principal,
    model: type[Person] | type[RiskPerson],
    index: str,
    *,
    unit_id: int,
    operation: str,
) -> IdNumberRegistered:
    """`refusal` of the collision of `index` (see `collision`)."""
    return refusal(principal, collision(session, model, index, unit_id=unit_id, operation=operation))


def _chain(path: str | None) -> list[int]:
    return [int(p) for p in (path or "").strip("/").split("/") if p]


def coordinators_over_both(
    session: Session, unit_id: int, holder_unit_id: int | None, *, exclude_user_id: int | None
) -> tuple[int | None, list[int]]:
    """Who is told of a collision between a record meant for `unit_id` and one held in
    `holder_unit_id` (module docstring): the unit chosen (None when no unit above both has a
    coordinator) and the user ids. Two statements whatever the answer."""
    wanted = [unit_id] if holder_unit_id is None else [unit_id, holder_unit_id]
    paths = dict(session.execute(select(col(OrgUnit.id), col(OrgUnit.path)).where(col(OrgUnit.id).in_(wanted))).all())
    mine, theirs = _chain(paths.get(unit_id)), _chain(paths.get(holder_unit_id)) if holder_unit_id else []
    common: list[int] = []
    for a, b in zip(mine, theirs, strict=False):
        if a != b:
            break
        common.append(a)
    by_unit: dict[int, list[int]] = defaultdict(list)
    query = (
        select(col(User.id), col(User.org_unit_id))
        .join(UserRole, col(UserRole.user_id) == col(User.id))
        .where(col(UserRole.role) == Role.coordinator.value, col(User.is_active).is_(True),
               col(User.org_unit_id).in_(sorted(set(mine) | set(theirs) or {unit_id})))
    )
    for user_id, user_unit in session.execute(query).all():
        if user_id != exclude_user_id:
            by_unit[int(user_unit)].append(int(user_id))
    for unit in reversed(common):
        if by_unit.get(unit):
            return unit, sorted(by_unit[unit])
    told: set[int] = set()
    for chain in (mine, theirs):
        for unit in reversed(chain):
            if by_unit.get(unit):
                told.update(by_unit[unit])
                break
    return None, sorted(told)


def report(session: Session, *, principal: Principal, found: Sequence[Collision]) -> None:
    """Audit each refused attempt and tell the coordinators over both records (module docstring)."""
    told: dict[tuple[int, ...], list[Collision]] = defaultdict(list)
    for c in found:
        unit, users = coordinators_over_both(session, c.unit_id, c.holder_unit_id, exclude_user_id=principal.user_id)
        audit.record(
            session,
            actor=principal,
            action=AUDIT_ACTION,
            object_type=c.record_type,
            object_id=c.holder_id,
            org_unit_id=c.unit_id,
            details={"operation": c.operation, "holder_unit_id": c.holder_unit_id, "notified_unit_id": unit,
                     "notified_user_ids": users},
        )
        if users:
            told[tuple(users)].append(c)
    for recipients, collisions in told.items():
        shown = collisions[:MAX_NOTIFICATIONS_PER_REFUSAL]
        for n, c in enumerate(shown, start=1):
            attempts = 1 + (len(collisions) - len(shown) if n == len(shown) else 0)
            _notify(session, list(recipients), principal, c, attempts=attempts)


def _notify(session: Session, users: list[int], principal: Principal, c: Collision, *, attempts: int) -> None:
    # Ids only (notifications.service refuses anything else): no number, no name.
    data = {"actor_user_id": str(principal.user_id), "record_type": c.record_type,
            "record_id": str(c.holder_id or 0), "unit_id": str(c.unit_id), "attempts": str(attempts)}
    notifications.enqueue(
        session,
        user_ids=users,
        kind=NOTIFICATION_KIND,
        title_zh="身份证号码重复登记提醒",
        title_en="A registered ID number was entered again",
        body_zh="有工作人员录入了一个已登记的身份证号码，系统已拒绝。请核实已有记录和该次录入。",
        body_en="Someone entered an ID number that is already registered; it was refused. "
                "Check the existing record and the attempt.",
        data=data,
    )
