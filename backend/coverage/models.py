"""The precomputed coverage summary (for town- and county-size areas; see backend/coverage/summary.py).

Counting a million households against their visits on every map request is too slow, so the
worker job `coverage.refresh` recomputes, for the standard periods (current phase, this month and
last month), one row per grid and per unit above it with the heavy numbers. Requests over large
areas read the rows of the units they show; small areas and arbitrary dates are always counted
live. `coverage_summary_state` records when each period was last refreshed, so a stale summary is
never used.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Date, DateTime, String
from sqlmodel import Field, SQLModel


class CoverageUnitStat(SQLModel, table=True):
    """One unit's figures for one standard period: the sum of its grids' (a grid's row is its own).

    The visit figures are kept by both rules of backend/reviews (every visit not rejected, and
    approved visits only); backend/coverage/summary.py picks by the towns' settings when it reads."""

    __tablename__ = "coverage_unit_stat"

    period_key: str = Field(sa_column=Column(String(80), primary_key=True))
    unit_id: int = Field(foreign_key="org_unit.id", primary_key=True, index=True, ondelete="CASCADE")
    households: int = 0
    visited: int = 0
    never_visited: int = 0
    visited_approved: int = 0
    never_visited_approved: int = 0
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
