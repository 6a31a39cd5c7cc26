"""Referral deadlines (强制报告): the police station must acknowledge (receive) and then handle a
referral in time; when a stage is late, the coordinators over the station are told once and the
referral is listed as overdue until the stage is done."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlmodel import Session, col

from backend.accounts import scope
from backend.accounts.principal import Principal
from backend.core import clock
from backend.core.db import dialect_insert
from backend.escalations.models import ReferralEscalation
from backend.notifications import service as notifications
from backend.notifications.recipients import coordinators_at_or_above
from backend.orgunits.models import OrgUnit
from backend.referrals.models import Referral, ReferralStatus

STAGE_RECEIVE = "receive"
STAGE_HANDLE = "handle"
_STAGE_ZH = {STAGE_RECEIVE: "签收", STAGE_HANDLE: "处置"}
_STAGE_EN = {STAGE_RECEIVE: "acknowledge", STAGE_HANDLE: "handle"}


@dataclass(frozen=True)
class OverdueReferral:
    referral_id: int
    stage: str
    due_at: datetime
    org_unit_id: int
    police_unit_id: int | None
    escalated_at: datetime | None


def late_stages(session: Session, now: datetime, *, where: ColumnElement[bool] | None = None,
                ) -> list[tuple[Referral, str, datetime]]:
    """Every referral stage past its deadline and not done: (referral, stage, due_at)."""
    extra = [where] if where is not None else []
    out: list[tuple[Referral, str, datetime]] = []
    for r in session.execute(
        select(Referral).where(col(Referral.status) == ReferralStatus.new.value, col(Referral.receive_due_at) < now,
                               *extra)
    ).scalars():
        out.append((r, STAGE_RECEIVE, r.receive_due_at))
    for r in session.execute(
        select(Referral).where(col(Referral.status) != ReferralStatus.handled.value, col(Referral.handle_due_at) < now,
                               *extra)
    ).scalars():
        out.append((r, STAGE_HANDLE, r.handle_due_at))
    return out


def check_referral_deadlines(session: Session) -> list[tuple[int, str, list[int]]]:
    """Tell the coordinators over the police station about each late stage, once: the unique
    (referral, stage) row is inserted with ON CONFLICT DO NOTHING and only its inserter notifies."""
    now = clock.now()
    told: list[tuple[int, str, list[int]]] = []
    insert = dialect_insert(session)
    for referral, stage, due in late_stages(session, now):
        assert referral.id is not None
        unit = session.get(OrgUnit, referral.police_unit_id or referral.org_unit_id)
        if unit is None:
            continue
        notified_unit, users = coordinators_at_or_above(session, unit)
        inserted = session.execute(
            insert(ReferralEscalation)
            .values(referral_id=referral.id, stage=stage, due_at=due, escalated_at=now, notified_unit_id=notified_unit)
            .on_conflict_do_nothing(index_elements=["referral_id", "stage"])
            .returning(col(ReferralEscalation.id))
        ).scalar_one_or_none()
        if inserted is None:  # another run got there first
            continue
        if users:
            local_due = clock.china_time(due)
            notifications.enqueue(
                session, user_ids=users, kind="referral.overdue",
                title_zh="强制报告超时未" + _STAGE_ZH[stage], title_en=f"Referral not {_STAGE_EN[stage]}d in time",
                body_zh=f"强制报告{referral.id}未在时限内{_STAGE_ZH[stage]}（时限 {local_due.month}月{local_due.day}日 "
                        f"{local_due:%H:%M}，北京时间），请督办。",
                body_en=f"Referral {referral.id} was not {_STAGE_EN[stage]}d by {local_due:%H:%M} (Asia/Shanghai).",
                data={"referral_id": str(referral.id), "stage": stage}, critical=True,
            )
        session.flush()
        told.append((referral.id, stage, users))
    return told


def overdue_referrals(session: Session, principal: Principal) -> list[OverdueReferral]:
    """Late referral stages in the caller's jurisdiction, with when the coordinators were told."""
    late = late_stages(session, clock.now(), where=scope.visible(principal, Referral))
    ids = sorted({r.id for r, _, _ in late if r.id is not None})
    escalated = {
        (e.referral_id, e.stage): e.escalated_at
        for e in session.execute(select(ReferralEscalation).where(col(ReferralEscalation.referral_id).in_(ids)))
        .scalars()
    }
    return [OverdueReferral(r.id or 0, stage, due, r.org_unit_id, r.police_unit_id, escalated.get((r.id or 0, stage)))
            for r, stage, due in late]
