"""Venues inspected in the campaign: hotels, e-sports hotels, on-demand cinemas, internet cafés,
bars, KTV, off-campus training and shops around schools (domain.md section 6)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel

from backend.core import clock


class VenueType(StrEnum):
    hotel = "hotel"  # 旅馆/酒店
    esports_hotel = "esports_hotel"  # 电竞酒店
    on_demand_cinema = "on_demand_cinema"  # 点播影院
    internet_cafe = "internet_cafe"  # 网吧
    bar = "bar"  # 酒吧
    ktv = "ktv"  # KTV
    training = "training"  # 校外培训机构
    school_shop = "school_shop"  # 校园周边商店
    # Places 文旅 licenses and inspects beside the police (issue 18).
    amusement_arcade = "amusement_arcade"  # 游艺厅
    script_game = "script_game"  # 剧本杀/密室逃脱（剧本娱乐经营场所）

    @property
    def zh(self) -> str:
        return VENUE_TYPE_ZH[self]

    @property
    def accommodation(self) -> bool:
        """Places that take overnight guests and so owe the 五必须."""
        return self in (VenueType.hotel, VenueType.esports_hotel, VenueType.on_demand_cinema)

    @property
    def entertainment(self) -> bool:
        """Places that may not admit or hire minors at all."""
        return self in (VenueType.internet_cafe, VenueType.bar, VenueType.ktv, VenueType.amusement_arcade)


VENUE_TYPE_ZH: dict[VenueType, str] = {
    VenueType.hotel: "旅馆/酒店",
    VenueType.esports_hotel: "电竞酒店",
    VenueType.on_demand_cinema: "点播影院",
    VenueType.internet_cafe: "网吧",
    VenueType.bar: "酒吧",
    VenueType.ktv: "KTV",
    VenueType.training: "校外培训机构",
    VenueType.school_shop: "校园周边商店",
    VenueType.amusement_arcade: "游艺厅",
    VenueType.script_game: "剧本杀/密室逃脱",
}


class VenueStatus(StrEnum):
    open = "open"  # 营业
    suspended = "suspended"  # 停业整顿
    closed = "closed"  # 已关闭

    @property
    def zh(self) -> str:
        return {"open": "营业", "suspended": "停业整顿", "closed": "已关闭"}[self.value]


class Venue(SQLModel, table=True):
    """One venue of the ledger (场所台账). The licence number is the unified social credit code,
    unique across the whole service so imports merge instead of doubling."""

    __tablename__ = "venue"

    id: int | None = Field(default=None, primary_key=True)
    venue_type: str = Field(max_length=32, index=True)
    name: str = Field(max_length=120)
    credit_code: str = Field(max_length=18, unique=True, index=True)
    address: str = Field(default="", max_length=200)
    location: Any = Field(
        default=None, sa_column=Column(Geometry("POINT", srid=4326, spatial_index=True), nullable=False)
    )
    owner_name: str = Field(default="", max_length=60)
    owner_phone: str = Field(default="", max_length=20)
    is_key: bool = Field(default=False, index=True)
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    status: str = Field(default=VenueStatus.open.value, max_length=16)
    created_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))
