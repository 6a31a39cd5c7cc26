"""A staff member of an institution and each background check of it (从业查询)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.core import clock


class StaffStatus(StrEnum):
    candidate = "candidate"  # 拟聘用（入职前查询）
    employed = "employed"  # 在职
    not_hired = "not_hired"  # 不予聘用
    dismissed = "dismissed"  # 已解聘
    left = "left"  # 已离职

    @property
    def zh(self) -> str:
        return STATUS_ZH[self]


STATUS_ZH: dict[StaffStatus, str] = {
    StaffStatus.candidate: "拟聘用", StaffStatus.employed: "在职", StaffStatus.not_hired: "不予聘用",
    StaffStatus.dismissed: "已解聘", StaffStatus.left: "已离职",
}


class CheckKind(StrEnum):
    pre_hire = "pre_hire"  # 入职查询
    periodic = "periodic"  # 定期查询


class CheckResult(StrEnum):
    clear = "clear"  # 无违法犯罪记录
    record_found = "record_found"  # 有性侵害、虐待等违法犯罪记录


class StaffMember(SQLModel, table=True):
    """One person on an institution's staff list. The ID number is stored as the registry stores a
    person's: AES-GCM cipher, keyed blind index (one member per number and institution), region-only
    masked form; nothing else of it. `flagged`: a check found a record and the member is not yet
    dismissed or refused. `last_check_date` is the latest check's date (the periodic check falls due
    from it); `reminded_due_date` the due date last told, so a due date is told once."""

    __tablename__ = "staff_member"
    __table_args__ = (UniqueConstraint("institution_id", "id_index"),)

    id: int | None = Field(default=None, primary_key=True)
    institution_id: int = Field(foreign_key="institution.id", index=True)
    name: str = Field(max_length=60)
    id_cipher: str = Field(max_length=200)
    id_key_id: str = Field(max_length=40)
    id_index: str = Field(max_length=64, index=True)
    id_masked: str = Field(max_length=18)
    position: str = Field(default="", max_length=60)
    hire_date: date | None = None
    status: str = Field(max_length=16, index=True)
    flagged: bool = False
    last_check_date: date | None = None
    reminded_due_date: date | None = None
    created_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))


class StaffCheck(SQLModel, table=True):
    """One background check of a member: when, before hiring or periodic, the result, which officer."""

    __tablename__ = "staff_check"

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="staff_member.id", index=True)
    check_date: date
    kind: str = Field(max_length=16)
    result: str = Field(max_length=16)
    checked_by_user_id: int = Field(foreign_key="app_user.id")
    note: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))


class StaffNumberQuota(SQLModel, table=True):
    """Full ID numbers one user typed into staff writes that match by number (POST of a member, the
    rows of a real import) on one China calendar day. A write that answers whether a typed number is
    listed takes its numbers here in one conditional UPDATE (typed = typed + n WHERE typed + n <= cap),
    so enumerating numbers one guess at a time ends at the day's cap (backend/staff_checks/quota.py)."""

    __tablename__ = "staff_number_quota"

    user_id: int = Field(foreign_key="app_user.id", primary_key=True, ondelete="CASCADE")
    day: date = Field(primary_key=True)
    typed: int = 0
