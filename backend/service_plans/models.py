"""Service plans of cases (服务计划): the kinds of service, each service of a case with its providing
unit (an org unit and an agency: 司法所 of town X is org unit X + judicial), and the history of its steps."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, event
from sqlalchemy.orm import Session, UOWTransaction
from sqlmodel import Field, SQLModel

from backend.core import clock
from backend.sync import revisions


def _ts(nullable: bool = False) -> Any:
    return Column(DateTime(timezone=True), nullable=nullable)


class ServiceStatus(StrEnum):
    planned = "planned"  # 计划: a coordinator planned it
    referred = "referred"  # 已转介: sent to the providing unit, waiting for it
    in_progress = "in_progress"  # 服务中
    done = "done"  # 已完成 (with an outcome)
    declined = "declined"  # 未提供 (with a reason)


# What each status may become (a step). done and declined are final.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    ServiceStatus.planned.value: (ServiceStatus.referred.value, ServiceStatus.in_progress.value,
                                  ServiceStatus.declined.value),
    ServiceStatus.referred.value: (ServiceStatus.in_progress.value, ServiceStatus.planned.value,
                                   ServiceStatus.declined.value),
    # In progress, a providing unit may also hand the service on to another unit (a referral).
    ServiceStatus.in_progress.value: (ServiceStatus.done.value, ServiceStatus.declined.value,
                                      ServiceStatus.referred.value),
    ServiceStatus.done.value: (),
    ServiceStatus.declined.value: (),
}
FINAL: tuple[str, ...] = (ServiceStatus.done.value, ServiceStatus.declined.value)
OPEN: tuple[str, ...] = (ServiceStatus.planned.value, ServiceStatus.referred.value, ServiceStatus.in_progress.value)

# The seeds' kinds (code, name_zh, name_en, default agency), written by migration 0021 (which keeps its
# own copy, as migrations do).
SEED_KINDS: tuple[tuple[str, str, str, str], ...] = (
    ("legal_aid", "法律援助", "Legal aid", "judicial"),
    ("judicial_aid", "司法救助", "Judicial assistance", "judicial"),
    ("living_aid", "生活救助", "Living assistance", "civil_affairs"),
    ("medical", "医疗救治", "Medical treatment", "health"),
    ("psychological", "心理干预", "Psychological intervention", "health"),
    ("school_transfer", "转学安置", "School transfer", "education"),
    ("temporary_guardianship", "临时监护", "Temporary guardianship", "civil_affairs"),
    ("family_education", "家庭教育指导", "Family education guidance", "womens_federation"),
    ("guardianship_order", "督促监护令", "Guardianship supervision order", "judicial"),
)

# The reason a service still open gets when its case closes.
CASE_CLOSED = "case_closed"


class ServiceKind(SQLModel, table=True):
    """A kind of service (法律援助, 生活救助 ...); the seeds' list is written by migration 0021, coordinators
    add more."""

    __tablename__ = "service_kind"

    code: str = Field(primary_key=True, max_length=40)
    name_zh: str = Field(max_length=60)
    name_en: str = Field(max_length=80)
    # The agency that usually provides it (backend/accounts/models.py Agency), proposed when planning.
    default_agency: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    created_by: int | None = Field(default=None, foreign_key="app_user.id")


class CaseService(SQLModel, table=True):
    """One service of a case, provided by one unit."""

    __tablename__ = "case_service"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="child_case.id", index=True, ondelete="CASCADE")
    # The case's unit: the jurisdiction that sees the service.
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    kind: str = Field(foreign_key="service_kind.code", max_length=40)
    provider_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    provider_agency: str = Field(max_length=32)
    status: str = Field(default=ServiceStatus.planned.value, max_length=12, index=True)
    due_on: date | None = None
    outcome: str | None = Field(default=None, max_length=2000)
    # When it became done (the step's time): monthly figures count services done in a period.
    completed_at: datetime | None = Field(default=None, sa_column=_ts(True))
    decline_reason: str | None = Field(default=None, max_length=2000)
    note: str | None = Field(default=None, max_length=2000)
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    updated_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    overdue_notified_at: datetime | None = Field(default=None, sa_column=_ts(True))
    client_uuid: uuid.UUID | None = Field(default=None, unique=True)
    # Sync revision (backend/sync/revisions.py), stamped on every ORM change by the listener below.
    rev: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, index=True))


class ServiceStep(SQLModel, table=True):
    """One transition of a service: who, when (as it happened, maybe offline), from, to, why."""

    __tablename__ = "case_service_step"

    id: int | None = Field(default=None, primary_key=True)
    service_id: int = Field(foreign_key="case_service.id", index=True, ondelete="CASCADE")
    from_status: str | None = Field(default=None, max_length=12)
    to_status: str = Field(max_length=12)
    note: str | None = Field(default=None, max_length=2000)
    outcome: str | None = Field(default=None, max_length=2000)
    reason: str | None = Field(default=None, max_length=2000)
    actor_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    recorded_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    client_uuid: uuid.UUID | None = Field(default=None, unique=True)


@event.listens_for(Session, "before_flush")
def _stamp_service_revisions(session: Session, _context: UOWTransaction, _instances: object) -> None:
    """Give every new or changed service a fresh revision, whichever function changed it, so phones
    pulling services miss no change."""
    changed = [o for o in session.new if isinstance(o, CaseService)]
    changed += [o for o in session.dirty if isinstance(o, CaseService) and session.is_modified(o)]
    if not changed:
        return
    first = revisions.allocate(session, len(changed))
    for n, service in enumerate(changed):
        service.rev = first + n
