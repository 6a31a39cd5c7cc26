"""The administrative tree: 省 > 市 > 县 > 乡镇 > 村/社区 > 网格."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import Column, DateTime, String
from sqlmodel import Field, SQLModel

from backend.core import clock


class OrgLevel(StrEnum):
    """Levels of the tree, top down."""

    province = "province"  # 省
    city = "city"  # 市
    county = "county"  # 县/区
    town = "town"  # 乡镇/街道
    village = "village"  # 村/社区
    grid = "grid"  # 网格

    @property
    def depth(self) -> int:
        return list(OrgLevel).index(self)

    @property
    def zh(self) -> str:
        return _LEVEL_ZH[self]


_LEVEL_ZH = {
    OrgLevel.province: "省",
    OrgLevel.city: "市",
    OrgLevel.county: "县",
    OrgLevel.town: "乡镇",
    OrgLevel.village: "村/社区",
    OrgLevel.grid: "网格",
}

# Byte-order collation on PostgreSQL so the path range scans below match SQLite's BINARY order.
PATH_TYPE = String(400).with_variant(String(400, collation="C"), "postgresql")


class OrgUnit(SQLModel, table=True):
    """One unit of the tree. `path` is the materialised chain of ids ("/1/4/17/"), so a whole
    subtree is one indexed range scan on both backends."""

    __tablename__ = "org_unit"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True, index=True)
    name: str = Field(max_length=120)
    level: str = Field(max_length=16)
    parent_id: int | None = Field(default=None, foreign_key="org_unit.id", index=True)
    path: str = Field(default="", sa_column=Column(PATH_TYPE, nullable=False, index=True))
    boundary: Any = Field(
        default=None,
        sa_column=Column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=True),
    )
    created_at: datetime = Field(
        default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


def subtree_upper_bound(path: str) -> str:
    """The exclusive upper bound of every path under `path` ('/' + 1 == '0')."""
    return path[:-1] + "0"
