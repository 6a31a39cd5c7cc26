"""Door-knocking visits (敲门行动): append-only, corrected by amendments."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import JSON, BigInteger, Boolean, Column, DateTime, Integer, String, Uuid, false
from sqlmodel import Field, SQLModel

from backend.core.placement import counted_from


class VisitOutcome(StrEnum):
    visited = "visited"  # 已走访
    nobody_home = "nobody_home"  # 无人在家
    refused = "refused"  # 拒绝
    moved_away = "moved_away"  # 已搬离


class Visit(SQLModel, table=True):
    """One visit or amendment as the phone recorded it. `client_uuid` is unique in the database:
    that constraint, not application code, makes a resent visit land once."""

    __tablename__ = "visit"

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    )
    client_uuid: UUID = Field(sa_column=Column(Uuid, nullable=False, unique=True))
    content_hash: str = Field(max_length=64)
    amends_id: int | None = Field(default=None, index=True)
    household_id: int = Field(foreign_key="household.id", index=True)
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    recorded_by: int = Field(foreign_key="app_user.id", index=True)
    template_code: str = Field(max_length=60)
    template_version: int
    outcome: str = Field(max_length=16)
    answers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    children_seen: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    note: str | None = Field(default=None, max_length=2000)
    device_time: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    # The instant that puts the visit in a reporting period: device_time when plausible, else
    # received_at with clock_suspect set (backend/core/placement.py). Every period query reads this.
    counted_at: datetime = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True, default=counted_from("device_time")),
    )
    clock_suspect: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    lon: float | None = None
    lat: float | None = None
    accuracy_m: float | None = None
    reported_crs: str | None = Field(default=None, max_length=8)
    distance_m: float | None = None
    location_mismatch: bool = Field(default=False, index=True)
    risk_level: str | None = Field(default=None, max_length=8)
    risk_reasons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Review of field work (backend/reviews): pending until a coordinator decides.
    review_state: str = Field(default="pending", sa_column=Column(
        String(16), nullable=False, server_default="pending", index=True))
    # Sync revision (backend/sync/revisions.py): phones pull their households' visit history by it.
    rev: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, index=True))
