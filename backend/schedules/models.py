"""Weekly joint-enforcement plans, the rules they follow per jurisdiction, and officers' days."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Date, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.core import clock


class ScheduleRule(SQLModel, table=True):
    """Planning rules held per jurisdiction (a town or county). The nearest unit up the tree with
    rules applies; without any, the defaults below (seed 001's town) apply."""

    __tablename__ = "schedule_rule"

    org_unit_id: int = Field(foreign_key="org_unit.id", primary_key=True)
    joint_ops_per_month: int = 2
    daily_capacity: int = 6
    min_team_size: int = 2
    high_risk_threshold: int = 60
    routine_interval_days: int = 28
    area_level: str = Field(default="village", max_length=16)
    visit_minutes: int = 40
    day_start_hour: int = 9
    updated_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))


class OfficerAvailability(SQLModel, table=True):
    """A weekday (0 = Monday) on which an officer can be planned. No rows means Monday to Friday."""

    __tablename__ = "officer_availability"

    user_id: int = Field(foreign_key="app_user.id", primary_key=True, ondelete="CASCADE")
    weekday: int = Field(primary_key=True)


class CalendarFeed(SQLModel, table=True):
    """The generation of a user's calendar subscription URL. The URL's token is an HMAC over the user
    and this number, so raising it (a revocation) retires every URL handed out before. No row is
    generation 0. The URL also stops working while the user is deactivated."""

    __tablename__ = "calendar_feed"

    user_id: int = Field(foreign_key="app_user.id", primary_key=True, ondelete="CASCADE")
    generation: int = 0
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    revoked_by_user_id: int | None = Field(default=None, foreign_key="app_user.id", ondelete="SET NULL")


class PlanStatus(StrEnum):
    draft = "draft"
    published = "published"
    superseded = "superseded"


class SchedulePlan(SQLModel, table=True):
    """One week's plan for a jurisdiction."""

    __tablename__ = "schedule_plan"

    id: int | None = Field(default=None, primary_key=True)
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    week_start_date: date = Field(sa_column=Column(Date, nullable=False, index=True))
    status: str = Field(default=PlanStatus.draft.value, max_length=16)
    rules: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    joint_ops_required: int = 0
    violations: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    total_distance_m: float = 0.0
    generated_by_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    generated_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))
    published_by_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    published_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    publish_note: str = Field(default="", max_length=1000)


class ScheduleTeam(SQLModel, table=True):
    """One team's day: its members, the area it stays in and its route."""

    __tablename__ = "schedule_team"

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="schedule_plan.id", index=True, ondelete="CASCADE")
    day_date: date = Field(sa_column=Column(Date, nullable=False))
    label: str = Field(max_length=40)
    area_unit_id: int = Field(foreign_key="org_unit.id")
    is_joint: bool = False
    route_distance_m: float = 0.0


class ScheduleTeamMember(SQLModel, table=True):
    __tablename__ = "schedule_team_member"

    team_id: int = Field(foreign_key="schedule_team.id", primary_key=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="app_user.id", primary_key=True, index=True)
    agency: str = Field(max_length=32)


class ScheduleVisit(SQLModel, table=True):
    """A venue planned on a team's day, in driving order."""

    __tablename__ = "schedule_visit"
    __table_args__ = (UniqueConstraint("plan_id", "venue_id"),)

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="schedule_plan.id", index=True, ondelete="CASCADE")
    team_id: int = Field(foreign_key="schedule_team.id", index=True, ondelete="CASCADE")
    venue_id: int = Field(foreign_key="venue.id", index=True)
    position: int
    leg_distance_m: float = 0.0
    reason: str = Field(max_length=24)
    carried_over: bool = False


class EnforcementDuty(SQLModel, table=True):
    """执法职责: a county's word on which agency inspects which type of venue, and how often. A county
    with rows uses exactly them; a county without any uses the national default
    (backend/schedules/duties.py)."""

    __tablename__ = "enforcement_duty"

    org_unit_id: int = Field(foreign_key="org_unit.id", primary_key=True)
    agency: str = Field(max_length=32, primary_key=True)
    venue_type: str = Field(max_length=32, primary_key=True)
    interval_days: int
    updated_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_by_user_id: int | None = Field(default=None, foreign_key="app_user.id", ondelete="SET NULL")
