"""The precomputed per-grid coverage summary (for county-size areas).

Counting a million households against their visits on every map request is too slow, so the
worker job `coverage.refresh` recomputes, for the standard periods (current phase, this month and
last month), one row per grid with the heavy numbers. Requests over large areas sum these rows;
small areas and arbitrary dates are always counted live. `coverage_summary_state` records when
each period was last refreshed, so a stale summary is never used.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Date, DateTime, String
from sqlmodel import Field, SQLModel


class CoverageGridStat(SQLModel, table=True):
    __tablename__ = "coverage_grid_stat"

    period_key: str = Field(sa_column=Column(String(80), primary_key=True))
    grid_id: int = Field(foreign_key="org_unit.id", primary_key=True, index=True, ondelete="CASCADE")
    households: int = 0
    visited: int = 0
    never_visited: int = 0
    mismatch_visits: int = 0
    risk_low: int = 0
    risk_general: int = 0
    risk_major: int = 0
    risk_severe: int = 0
    risk_none: int = 0


class CoverageSummaryState(SQLModel, table=True):
    __tablename__ = "coverage_summary_state"

    period_key: str = Field(sa_column=Column(String(80), primary_key=True))
    start_date: date = Field(sa_column=Column(Date, nullable=False))
    end_date: date = Field(sa_column=Column(Date, nullable=False))
    refreshed_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    grids: int = 0
    seconds: float = 0.0
