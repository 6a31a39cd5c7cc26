"""The monthly report of a unit (月报), with its generated files."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Date, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.core import clock


class ReportStatus(StrEnum):
    generated = "generated"  # 已生成, not yet sent upward
    submitted = "submitted"  # 已报送, awaiting the level above
    approved = "approved"  # 已审核通过 (final)
    returned = "returned"  # 已退回: regenerate and submit again


class MonthlyReport(SQLModel, table=True):
    """One unit's report for one month. Regenerating replaces the files until it is submitted, and again
    after the level above returns it; its way up is a ReportSubmission (backend/report_submissions)."""

    __tablename__ = "monthly_report"
    __table_args__ = (UniqueConstraint("org_unit_id", "month"),)

    id: int | None = Field(default=None, primary_key=True)
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    month: str = Field(max_length=7, index=True)  # YYYY-MM
    due_date: date = Field(sa_column=Column(Date, nullable=False))
    status: str = Field(default=ReportStatus.generated.value, max_length=16)
    xlsx_key: str = Field(max_length=200)
    xlsx_sha256: str = Field(max_length=64)
    xlsx_bytes: int = 0
    png_key: str = Field(max_length=200)
    png_sha256: str = Field(max_length=64)
    png_bytes: int = 0
    figures: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    generated_by: int | None = Field(default=None, foreign_key="app_user.id")
    generated_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))
    submitted_by: int | None = Field(default=None, foreign_key="app_user.id")
    submitted_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
