"""An institution in close contact with minors (密切接触未成年人单位), where it is and who supervises it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel

from backend.accounts.models import Agency
from backend.core import clock


class InstitutionKind(StrEnum):
    """What an institution is; its default supervising agency is SUPERVISOR below."""

    primary_school = "primary_school"  # 小学
    secondary_school = "secondary_school"  # 中学（初中、高中、中职）
    kindergarten = "kindergarten"  # 幼儿园
    training = "training"  # 校外培训机构
    hotel = "hotel"  # 旅馆/酒店/电竞酒店
    internet_cafe = "internet_cafe"  # 网吧
    entertainment = "entertainment"  # 歌舞娱乐场所（KTV、酒吧）
    health = "health"  # 医疗机构（卫生院、诊所）
    welfare = "welfare"  # 儿童福利/救助保护机构、儿童之家
    sports_arts = "sports_arts"  # 体育、文艺培训场馆
    other = "other"  # 其他密切接触未成年人单位

    @property
    def zh(self) -> str:
        return INSTITUTION_KIND_ZH[self]

    @property
    def is_school(self) -> bool:
        """Where students are: the places of 进校园 activities and awareness surveys."""
        return self in (InstitutionKind.primary_school, InstitutionKind.secondary_school,
                        InstitutionKind.kindergarten)


INSTITUTION_KIND_ZH: dict[InstitutionKind, str] = {
    InstitutionKind.primary_school: "小学",
    InstitutionKind.secondary_school: "中学",
    InstitutionKind.kindergarten: "幼儿园",
    InstitutionKind.training: "校外培训机构",
    InstitutionKind.hotel: "旅馆/酒店",
    InstitutionKind.internet_cafe: "网吧",
    InstitutionKind.entertainment: "歌舞娱乐场所",
    InstitutionKind.health: "医疗机构",
    InstitutionKind.welfare: "儿童福利/救助机构",
    InstitutionKind.sports_arts: "体育/文艺培训场馆",
    InstitutionKind.other: "其他",
}

# The agency that supervises each kind unless the register says otherwise (行业主管部门): it keeps the
# staff list and reads the staff checks beside the police.
SUPERVISOR: dict[InstitutionKind, Agency] = {
    InstitutionKind.primary_school: Agency.education,
    InstitutionKind.secondary_school: Agency.education,
    InstitutionKind.kindergarten: Agency.education,
    InstitutionKind.training: Agency.education,
    InstitutionKind.hotel: Agency.police,
    InstitutionKind.internet_cafe: Agency.culture_tourism,
    InstitutionKind.entertainment: Agency.culture_tourism,
    InstitutionKind.health: Agency.health,
    InstitutionKind.welfare: Agency.civil_affairs,
    InstitutionKind.sports_arts: Agency.education,
    InstitutionKind.other: Agency.government,
}


class Institution(SQLModel, table=True):
    """One institution: a school, a kindergarten, a hotel ... `org_unit_id` is the unit it lies in (a
    village or a town); `venue_id` links the venue register when the institution is also an inspected
    venue (a hotel, an internet café); `student_count` is a school's enrolment, the denominator of its
    awareness rate."""

    __tablename__ = "institution"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    kind: str = Field(max_length=24, index=True)
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    supervising_agency: str = Field(max_length=32, index=True)
    venue_id: int | None = Field(default=None, foreign_key="venue.id", unique=True)
    address: str = Field(default="", max_length=200)
    student_count: int | None = None
    is_active: bool = True
    created_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))
