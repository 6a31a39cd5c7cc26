"""A "2112" incident, each hand-off down the federation chain, and the deadline of each step."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.core import clock


def _ts(nullable: bool = False) -> Any:
    return Column(DateTime(timezone=True), nullable=nullable)


class IncidentStatus(StrEnum):
    open = "open"
    closed = "closed"


class IncidentStep(StrEnum):
    """The four limits of the 2112 method (seed 004)."""

    province_to_city = "province_to_city"  # 省妇联 20 分钟内研判并交办市级
    city_to_county = "city_to_county"  # 市级 10 分钟内交办县级
    county_to_local = "county_to_local"  # 县级 10 分钟内通知乡镇、村(社区)
    feedback = "feedback"  # 2 小时内反馈核实跟进情况

    @property
    def zh(self) -> str:
        return _STEP_ZH[self]

    @property
    def en(self) -> str:
        return _STEP_EN[self]


_STEP_ZH = {
    IncidentStep.province_to_city: "省级交办市级",
    IncidentStep.city_to_county: "市级交办县级",
    IncidentStep.county_to_local: "县级通知乡镇、村(社区)",
    IncidentStep.feedback: "核实情况反馈",
}
_STEP_EN = {
    IncidentStep.province_to_city: "province hands to city",
    IncidentStep.city_to_county: "city hands to county",
    IncidentStep.county_to_local: "county notifies town and village",
    IncidentStep.feedback: "feedback on the verification",
}


class Incident(SQLModel, table=True):
    """An online incident touching women or children, created at province, city or county level."""

    __tablename__ = "incident"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=120)
    summary: str = Field(default="", max_length=4000)
    source_url: str | None = Field(default=None, max_length=500)
    origin_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    current_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    status: str = Field(default=IncidentStatus.open.value, max_length=12, index=True)
    created_by: int = Field(foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    feedback_at: datetime | None = Field(default=None, sa_column=_ts(True))
    feedback_by: int | None = Field(default=None, foreign_key="app_user.id")
    feedback_note: str | None = Field(default=None, max_length=4000)
    closed_at: datetime | None = Field(default=None, sa_column=_ts(True))
    closed_by: int | None = Field(default=None, foreign_key="app_user.id")
    close_note: str | None = Field(default=None, max_length=2000)


class IncidentHandoff(SQLModel, table=True):
    """One hand-off down the chain, stamped with the server's time."""

    __tablename__ = "incident_handoff"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True, ondelete="CASCADE")
    step: str = Field(max_length=24)
    from_unit_id: int = Field(foreign_key="org_unit.id")
    to_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    handed_by: int = Field(foreign_key="app_user.id")
    handed_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    note: str | None = Field(default=None, max_length=2000)


class IncidentDeadline(SQLModel, table=True):
    """The limit of one step: who owes it, when it falls due, when it was met, and whether the
    level above has been told that it was missed (at most once)."""

    __tablename__ = "incident_deadline"
    __table_args__ = (UniqueConstraint("incident_id", "step"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True, ondelete="CASCADE")
    step: str = Field(max_length=24)
    unit_id: int = Field(foreign_key="org_unit.id")
    started_at: datetime = Field(sa_column=_ts())
    due_at: datetime = Field(sa_column=_ts())
    met_at: datetime | None = Field(default=None, sa_column=_ts(True))
    escalated_at: datetime | None = Field(default=None, sa_column=_ts(True))
    escalated_to_unit_id: int | None = Field(default=None, foreign_key="org_unit.id")
