"""Inspections of venues, the problems they find (问题清单) and the penalties decided."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import JSON, Boolean, Column, Date, DateTime, String, UniqueConstraint, false
from sqlmodel import Field, SQLModel

from backend.core import clock
from backend.core.placement import counted_from


class Inspection(SQLModel, table=True):
    """One inspection of one venue, recorded on a phone (maybe offline) and keyed by the phone's
    UUID so a resubmission is recognised."""

    __tablename__ = "inspection"

    id: int | None = Field(default=None, primary_key=True)
    client_uuid: str = Field(max_length=36, unique=True, index=True)
    payload_hash: str = Field(max_length=64)
    venue_id: int = Field(foreign_key="venue.id", index=True)
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    recorded_by_user_id: int = Field(foreign_key="app_user.id", index=True)
    checklist_code: str = Field(max_length=40)
    checklist_version: int
    started_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    finished_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    # Where the inspection counts in periods (reports, weekly plans, a venue's last inspection): started_at
    # when plausible, else the receipt time with clock_suspect set (backend/core/placement.py).
    counted_at: datetime = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True, default=counted_from("started_at")),
    )
    clock_suspect: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    is_joint: bool = False
    is_reinspection: bool = False
    location: Any = Field(
        default=None, sa_column=Column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True)
    )
    fix_accuracy_m: float | None = None
    distance_m: float | None = None
    location_mismatch: bool = False
    answers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    notes: str = Field(default="", max_length=4000)
    photo_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))
    # Review of field work (backend/reviews): pending until a coordinator decides.
    review_state: str = Field(default="pending", sa_column=Column(
        String(16), nullable=False, server_default="pending", index=True))


class InspectionInspector(SQLModel, table=True):
    """One officer who took part, with the agency they acted for at the time."""

    __tablename__ = "inspection_inspector"

    inspection_id: int = Field(foreign_key="inspection.id", primary_key=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="app_user.id", primary_key=True, index=True)
    agency: str = Field(max_length=32)


class ProblemStatus(StrEnum):
    open = "open"  # 待整改
    rectifying = "rectifying"  # 整改中
    submitted = "submitted"  # 已提交整改, awaiting re-inspection
    verified = "verified"  # 复查通过, closed
    overdue = "overdue"  # 逾期未整改

    @property
    def zh(self) -> str:
        return {"open": "待整改", "rectifying": "整改中", "submitted": "待复查", "verified": "已销号",
                "overdue": "逾期"}[self.value]


class ProblemSource(StrEnum):
    inspection = "inspection"  # found on an inspection (a "no" answer or a finding)
    case_review = "case_review"  # a rectification task of a one-case-one-review (一案一整治)
    unannounced_check = "unannounced_check"  # 明察暗访 (backend/supervision, issue 18)
    report = "report"  # raised on a report (举报, 上级交办) by a supervising unit (issue 18)


class ProblemSubject(StrEnum):
    """What a problem is about (issue 18): a venue (the only subject before), an institution of the
    register (a school, a kindergarten ...) or a unit (an org unit, with an agency for a department
    or a village committee)."""

    venue = "venue"
    institution = "institution"
    unit = "unit"

    @property
    def zh(self) -> str:
        return {"venue": "场所", "institution": "机构", "unit": "单位"}[self.value]


OPEN_STATUSES = (ProblemStatus.open, ProblemStatus.rectifying, ProblemStatus.submitted, ProblemStatus.overdue)


class Problem(SQLModel, table=True):
    """One entry of the problem ledger (问题清单) with its rectification measure. A venue's problem is
    closed only when a re-inspection by an officer verifies it; any other subject's (issue 18,
    backend/supervision) when the raising side verifies the reported rectification. The table keeps
    its first name: every problem of any subject is in this one loop."""

    __tablename__ = "venue_problem"

    id: int | None = Field(default=None, primary_key=True)
    # The subject: a venue (venue_id), an institution (institution_id) or a unit (org_unit_id with
    # responsible_agency); org_unit_id is always the unit the problem lies in (jurisdiction).
    subject: str = Field(default=ProblemSubject.venue.value, sa_column=Column(
        String(16), nullable=False, server_default=ProblemSubject.venue.value, index=True))
    venue_id: int | None = Field(default=None, foreign_key="venue.id", index=True)
    institution_id: int | None = Field(default=None, foreign_key="institution.id", index=True)
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    # The agency that rectifies for the subject (a unit's department, an institution's supervising
    # agency); None: the unit as a whole, or a venue.
    responsible_agency: str | None = Field(default=None, max_length=32)
    # The inspection that found it; None for a problem a case review raised (source below).
    found_in_inspection_id: int | None = Field(default=None, foreign_key="inspection.id", index=True)
    # Where the problem came from: an inspection, or a one-case-one-review's rectification task
    # (backend/police_cases, migration 0023); the review's id then.
    source: str = Field(default="inspection", sa_column=Column(String(24), nullable=False,
                                                                server_default="inspection"))
    case_review_id: int | None = Field(default=None, foreign_key="case_review.id", index=True)
    item_code: str | None = Field(default=None, max_length=40)
    description: str = Field(max_length=1000)
    measure: str = Field(max_length=1000)
    responsible_party: str = Field(max_length=120)
    deadline_date: date = Field(sa_column=Column(Date, nullable=False, index=True))
    status: str = Field(default=ProblemStatus.open.value, max_length=16, index=True)
    note: str = Field(default="", max_length=1000)
    failed_rechecks: int = 0
    submitted_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    verified_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    verified_by_inspection_id: int | None = Field(default=None, foreign_key="inspection.id")
    # Issue 18 (backend/supervision): who raised it and from which unit (the raising side verifies a
    # non-venue problem), the rectification the responsible unit reported, who verified it.
    raised_by_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    raised_unit_id: int | None = Field(default=None, foreign_key="org_unit.id")
    rectification: str = Field(default="", sa_column=Column(String(2000), nullable=False, server_default=""))
    rectified_by_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    verified_by_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    # 挂牌督办: the unit above the problem's unit that supervises it, at its level (county, city ...).
    supervised_unit_id: int | None = Field(default=None, foreign_key="org_unit.id", index=True)
    supervised_level: str | None = Field(default=None, max_length=16)
    supervised_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    supervised_by_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))


class PenaltyKind(StrEnum):
    warning = "warning"  # 警告
    fine = "fine"  # 罚款
    confiscation = "confiscation"  # 没收违法所得
    suspension = "suspension"  # 责令停业整顿
    licence_revoked = "licence_revoked"  # 吊销许可证
    other = "other"


class Penalty(SQLModel, table=True):
    """An administrative penalty decided against a venue."""

    __tablename__ = "venue_penalty"

    id: int | None = Field(default=None, primary_key=True)
    venue_id: int = Field(foreign_key="venue.id", index=True)
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    inspection_id: int | None = Field(default=None, foreign_key="inspection.id", index=True)
    problem_id: int | None = Field(default=None, foreign_key="venue_problem.id")
    kind: str = Field(max_length=24)
    amount_yuan: int | None = None
    decision_number: str = Field(default="", max_length=60)
    decided_date: date = Field(sa_column=Column(Date, nullable=False))
    note: str = Field(default="", max_length=1000)
    recorded_by_user_id: int = Field(foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))


class InspectionChecklistVersion(SQLModel, table=True):
    """One published version of an inspection checklist: the built-in national one (no owner) or a
    county's edit of it. Never changed once written: an inspection recorded against a version (maybe
    offline, after a newer one was published) is read against that version's items. Versions are
    numbered per code across every owner, so (code, version) names one row."""

    __tablename__ = "inspection_checklist"
    __table_args__ = (UniqueConstraint("code", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, index=True)
    version: int
    title_zh: str = Field(max_length=120)
    title_en: str = Field(max_length=120)
    venue_types: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # [{code, text_zh, text_en, measure_zh, deadline_days}]
    items: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    owner_unit_id: int | None = Field(default=None, foreign_key="org_unit.id", index=True)  # None: national
    published_by: int | None = Field(default=None, foreign_key="app_user.id")
    published_at: datetime = Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))
