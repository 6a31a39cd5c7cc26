"""Prevention and education activities (宣传教育): what was held, where, for whom, by which unit."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import JSON, BigInteger, Column, Date, DateTime, Index, Integer, Uuid
from sqlmodel import Field, SQLModel

from backend.core import clock


class PlaceKind(StrEnum):
    """Where an activity was held (活动地点)."""

    school = "school"  # 学校（幼儿园）: an institution of the register that is a school
    village = "village"  # 村/社区
    point = "point"  # 其他地点（集市、广场……）: a named point on the map


class ActivityType(SQLModel, table=True):
    """A type of activity a county (or a unit above it) added to the national list (活动类型). The
    national types are code (backend/prevention/catalogue.py), never rows; a row applies to the
    activities held in its owner unit's subtree. Codes are unique across the country, so an activity's
    `type_code` names one type wherever it is read."""

    __tablename__ = "activity_type"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, unique=True)
    name_zh: str = Field(max_length=60)
    name_en: str = Field(max_length=60)
    owner_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    created_by: int = Field(foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))


class Activity(SQLModel, table=True):
    """One activity as a phone (or a web form) recorded it; never edited. `client_uuid` is unique in the
    database: that constraint makes a resent activity land once. `org_unit_id` is the unit of the place
    (the school's unit, the village, or the unit the point lies in): it scopes who sees the activity and
    where it counts; the organiser (`organiser_unit_id` + `organiser_agency`) is who held it."""

    __tablename__ = "activity"
    __table_args__ = (Index("ix_activity_unit_date", "org_unit_id", "held_date"),)

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    )
    client_uuid: UUID = Field(sa_column=Column(Uuid, nullable=False, unique=True))
    content_hash: str = Field(max_length=64)
    type_code: str = Field(max_length=40, index=True)
    organiser_unit_id: int = Field(foreign_key="org_unit.id")
    organiser_agency: str | None = Field(default=None, max_length=32)
    held_date: date = Field(sa_column=Column(Date, nullable=False, index=True))
    place_kind: str = Field(max_length=8)
    institution_id: int | None = Field(default=None, foreign_key="institution.id", index=True)
    org_unit_id: int = Field(foreign_key="org_unit.id")
    place_name: str = Field(max_length=120)
    lon: float | None = None
    lat: float | None = None
    reported_crs: str | None = Field(default=None, max_length=8)
    students: int = 0
    parents: int = 0
    villagers: int = 0
    others: int = 0
    photos: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    note: str | None = Field(default=None, max_length=1000)
    recorded_by: int = Field(foreign_key="app_user.id", index=True)
    device_time: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    # Sync revision (backend/sync/revisions.py): phones pull the activities of their area by it.
    rev: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, index=True))

    def audience(self) -> dict[str, Any]:
        return {"students": self.students, "parents": self.parents, "villagers": self.villagers,
                "others": self.others, "total": self.students + self.parents + self.villagers + self.others}
