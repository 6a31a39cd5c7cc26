"""Households, persons (children and guardians), guardianships, risk level history and the
risk persons ledger (附件2)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from geoalchemy2 import Geometry
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, TypeAdapter
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema
from sqlalchemy import JSON, BigInteger, Boolean, Column, DateTime, Index, String, Uuid, false, text
from sqlmodel import Field, SQLModel

from backend.core import clock
from backend.core.placement import counted_from


def _ts(nullable: bool = False) -> Any:
    return Column(DateTime(timezone=True), nullable=nullable)


def _uuid_col() -> Any:
    return Column(Uuid, nullable=False, unique=True, index=True)


def _rev_col() -> Any:
    return Column(BigInteger, nullable=False, index=True)


def _counted_col() -> Any:
    # Where the record counts in reporting periods: the phone's device_time when it was created offline
    # and plausible, else its creation (receipt) time (backend/core/placement.py). Writes that place
    # nothing (imports, the demo town) count it from created_at.
    return Column(DateTime(timezone=True), nullable=False, default=counted_from("created_at"))


def _suspect_col() -> Any:
    return Column(Boolean, nullable=False, server_default=false())


class RiskLevel(StrEnum):
    """综合研判风险等级, in increasing order: the one vocabulary of risk levels. The value is the
    Chinese label (stored, and carried by every v1 field); the member name is the stable code
    (coverage's counts, every `*_code` field, accepted on input); `label_en` is the English label."""

    low = "低风险"
    general = "一般风险"
    major = "较大风险"
    severe = "重大风险"

    @property
    def rank(self) -> int:
        return list(RiskLevel).index(self)

    @property
    def code(self) -> str:
        return self.name

    @property
    def label_zh(self) -> str:
        return self.value

    @property
    def label_en(self) -> str:
        return f"{self.name.capitalize()} risk"

    @classmethod
    def parse(cls, value: str) -> RiskLevel:
        """A level from its code or its Chinese label (ValueError for anything else)."""
        return cls.__members__.get(value) or cls(value)

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        out = handler.resolve_ref_schema(handler(schema))
        out["description"] = "Risk level as its Chinese label (v1 fields); the code is beside it in `<field>_code`."
        out["x-codes"] = {level.value: level.code for level in cls}
        return out


class RiskLevelCode(StrEnum):
    """The stable code of a risk level (RiskLevel's member names, in the same order)."""

    low = "low"
    general = "general"
    major = "major"
    severe = "severe"

    @property
    def level(self) -> RiskLevel:
        return RiskLevel[self.value]

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        out = handler.resolve_ref_schema(handler(schema))
        out["description"] = "Risk level code: " + ", ".join(
            f"{level.code} ({level.label_zh}, {level.label_en})" for level in RiskLevel)
        out["x-labels"] = {level.code: {"zh": level.label_zh, "en": level.label_en} for level in RiskLevel}
        return out


class _CodeOrLabel:
    """Pydantic marker for input: a risk level given by its code or by its Chinese label (v1)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(_level_of_code, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # A union of the two enums documents as anyOf with a $ref to each.
        return handler(core_schema.union_schema([TypeAdapter(RiskLevelCode).core_schema,
                                                 TypeAdapter(RiskLevel).core_schema]))


def _level_of_code(value: object) -> object:
    return RiskLevel[value] if isinstance(value, str) and value in RiskLevel.__members__ else value


# A risk level in a request: the code ("major") or the Chinese label ("较大风险").
RiskLevelIn = Annotated[RiskLevel, _CodeOrLabel()]


def risk_level_code(label: str | None) -> str | None:
    """The code of a stored level (its Chinese label); no level stays None."""
    # A dict, not RiskLevel(label): a town's first sync pull asks this for every child.
    return _CODE_OF_LABEL[label] if label is not None else None


_CODE_OF_LABEL: dict[str, str] = {level.value: level.code for level in RiskLevel}


def risk_reasons_public(reasons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored risk reasons as the API shows them: each reason's level with its code beside it."""
    return [{**r, "level_code": risk_level_code(r.get("level"))} if "level" in r else r for r in reasons]


class ChildCategory(StrEnum):
    """附件1 分类."""

    serious_misconduct = "严重不良行为"
    misconduct = "不良行为"
    psychological = "心理困境"
    guardianship = "家庭监护困境"
    livelihood = "生活困境"


class ChildGroup(StrEnum):
    """Groups to count and watch (seed 001, 002)."""

    left_behind = "留守"
    migrant = "流动"
    hardship = "困境"
    disabled = "残疾"
    single_parent = "单亲"
    blended = "重组"
    troubled = "关系异常"


class PersonRole(StrEnum):
    child = "child"
    guardian = "guardian"


class Household(SQLModel, table=True):
    """A dwelling the door-knockers visit, placed in its grid."""

    __tablename__ = "household"

    id: int | None = Field(default=None, primary_key=True)
    uuid: UUID = Field(sa_column=_uuid_col())
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    address: str = Field(max_length=200)
    head_name: str | None = Field(default=None, max_length=60)
    contact: str | None = Field(default=None, max_length=40)
    lon: float | None = None
    lat: float | None = None
    location: Any = Field(
        default=None, sa_column=Column(Geometry("POINT", srid=4326, spatial_index=True), nullable=True)
    )
    note: str | None = Field(default=None, max_length=500)
    version: int = 1
    content_hash: str = Field(max_length=64)
    # The digest of the record as its creator first pushed it (migration 0025): that user's resend of
    # the create is a duplicate however the record changed or moved since.
    created_hash: str | None = Field(default=None, max_length=64)
    rev: int = Field(sa_column=_rev_col())
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    updated_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    counted_at: datetime = Field(default=None, sa_column=_counted_col())
    clock_suspect: bool = Field(default=False, sa_column=_suspect_col())


class Person(SQLModel, table=True):
    """A child (the fields of 附件1 and 附件3) or a guardian."""

    __tablename__ = "person"
    __table_args__ = (
        Index(
            "uq_person_id_index",
            "id_index",
            unique=True,
            postgresql_where=text("id_index IS NOT NULL"),
            sqlite_where=text("id_index IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    uuid: UUID = Field(sa_column=_uuid_col())
    role: str = Field(max_length=16)
    household_id: int | None = Field(default=None, foreign_key="household.id", index=True)
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    name: str = Field(max_length=60)
    id_cipher: str | None = Field(default=None, max_length=200)
    id_key_id: str | None = Field(default=None, max_length=40)
    id_index: str | None = Field(default=None, max_length=64)
    id_masked: str | None = Field(default=None, max_length=18)
    sex: str | None = Field(default=None, max_length=8)
    birth_date: date | None = None
    hukou_place: str | None = Field(default=None, max_length=200)
    residence: str | None = Field(default=None, max_length=200)
    in_school: bool | None = None
    contact: str | None = Field(default=None, max_length=40)
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    groups: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    signs: str | None = Field(default=None, max_length=1000)
    task_force: str | None = Field(default=None, max_length=200)
    assistance: str | None = Field(default=None, max_length=1000)
    key_minor: bool = False  # on 附件1
    vulnerable: bool = False  # on 附件3
    risk_level: str | None = Field(default=None, max_length=8)
    risk_reasons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    version: int = 1
    content_hash: str = Field(max_length=64)
    # The digest of the record as its creator first pushed it (migration 0025): that user's resend of
    # the create is a duplicate however the record changed or moved since.
    created_hash: str | None = Field(default=None, max_length=64)
    rev: int = Field(sa_column=_rev_col())
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    updated_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    counted_at: datetime = Field(default=None, sa_column=_counted_col())
    clock_suspect: bool = Field(default=False, sa_column=_suspect_col())
    # Data minimisation over time (backend/registry/retention.py): when the record left the active
    # registry (a child grown up with no open case, a guardian of none left), and when its personal
    # details were anonymised. A retired record is in no list, count of children or pull.
    retired_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True,
                                                                       index=True))
    anonymised_at: datetime | None = Field(default=None, sa_column=_ts(True))


class Guardianship(SQLModel, table=True):
    """A guardian of a child, with the relation (父亲, 母亲, 祖母 ...)."""

    __tablename__ = "guardianship"

    child_id: int = Field(foreign_key="person.id", primary_key=True, ondelete="CASCADE")
    guardian_id: int = Field(foreign_key="person.id", primary_key=True, index=True, ondelete="CASCADE")
    relation: str | None = Field(default=None, max_length=20)


class RiskLevelChange(SQLModel, table=True):
    """Every change of a child's risk level, with its reasons and where it came from."""

    __tablename__ = "risk_level_change"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True, ondelete="CASCADE")
    previous_level: str | None = Field(default=None, max_length=8)
    level: str = Field(max_length=8)
    source: str = Field(max_length=16)  # visit | override | import | registry
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    visit_id: int | None = Field(default=None, index=True)
    actor_user_id: int | None = Field(default=None)
    created_at: datetime = Field(default_factory=clock.now, sa_column=_ts())


class RiskPersonCategory(StrEnum):
    """附件2 分类."""

    sex_offence_released = "1"  # 性侵犯罪前科刑满释放人员
    community_correction = "2"  # 社区矫正对象
    vagrant = "3"  # 流浪乞讨人员
    vice_drugs = "4"  # 涉黄涉毒人员
    std_patient = "5"  # 性病患者
    lives_with_stepdaughter = "6"  # 与继女（孙女）共同生活男性
    prostitution_organiser = "7"  # 因组织介绍强制卖淫被公安机关处理过人员

    @property
    def zh(self) -> str:
        return RISK_PERSON_CATEGORY_ZH[self]


RISK_PERSON_CATEGORY_ZH: dict[RiskPersonCategory, str] = {
    RiskPersonCategory.sex_offence_released: "性侵犯罪前科刑满释放人员",
    RiskPersonCategory.community_correction: "社区矫正对象",
    RiskPersonCategory.vagrant: "流浪乞讨人员",
    RiskPersonCategory.vice_drugs: "涉黄涉毒人员",
    RiskPersonCategory.std_patient: "性病患者",
    RiskPersonCategory.lives_with_stepdaughter: "与继女（孙女）共同生活男性",
    RiskPersonCategory.prostitution_organiser: "因组织介绍强制卖淫被公安机关处理过人员",
}


class RiskPerson(SQLModel, table=True):
    """附件2 性侵未成年人风险重点人群: police and coordinators only. An entry of a person under 18 on the
    day it was made is sealed (backend/sealing): read by nobody but police who open it."""

    __tablename__ = "risk_person"
    __table_args__ = (
        # One visible entry per ID number. Sealed entries are left out: a check against them would tell
        # whoever registers the number that a sealed record exists, and the adult a sealed minor grows
        # into goes on the ledger as a record of its own.
        Index(
            "uq_risk_person_id_index",
            "id_index",
            unique=True,
            postgresql_where=text("id_index IS NOT NULL AND NOT sealed"),
            sqlite_where=text("id_index IS NOT NULL AND NOT sealed"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    name: str = Field(max_length=60)
    id_cipher: str | None = Field(default=None, max_length=200)
    id_key_id: str | None = Field(default=None, max_length=40)
    id_index: str | None = Field(default=None, max_length=64)
    id_masked: str | None = Field(default=None, max_length=18)
    sex: str | None = Field(default=None, max_length=8)
    hukou_place: str | None = Field(default=None, max_length=200)
    residence: str | None = Field(default=None, max_length=200)
    contact: str | None = Field(default=None, max_length=40)
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    risk_level: str | None = Field(default=None, max_length=8)
    control_measures: str | None = Field(default=None, max_length=1000)
    # Control (管控, backend/registry/risk_persons.py): the police's own note, whether the person is
    # under control, and when they last checked in on the person (the next check-in falls due from it).
    note: str | None = Field(default=None, max_length=1000)
    control_status: str = Field(default="controlled", sa_column=Column(
        String(16), nullable=False, server_default="controlled"))
    last_check_in_at: datetime | None = Field(default=None, sa_column=_ts(True))
    # Judged whenever the entry is written (backend/sealing/service.py `judge`), never set by hand.
    sealed: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    version: int = 1
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    updated_at: datetime = Field(default_factory=clock.now, sa_column=_ts())


class ControlStatus(StrEnum):
    """Whether a 附件2 person is under control (管控). Only `released` stops check-ins falling due."""

    controlled = "controlled"  # 在控
    lost = "lost"  # 失控（下落不明）: still due, and most urgent
    released = "released"  # 解除管控

    @property
    def zh(self) -> str:
        return {"controlled": "在控", "lost": "失控", "released": "解除管控"}[self.value]


class RiskPersonChange(SQLModel, table=True):
    """One field of a 附件2 entry changed by an edit: who, when, the value before and after (an ID number
    only in its masked form)."""

    __tablename__ = "risk_person_change"

    id: int | None = Field(default=None, primary_key=True)
    risk_person_id: int = Field(foreign_key="risk_person.id", index=True, ondelete="CASCADE")
    version: int  # the entry's version the edit made
    field_name: str = Field(max_length=40)
    before: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    after: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    actor_user_id: int | None = Field(default=None, foreign_key="app_user.id", ondelete="SET NULL")
    changed_at: datetime = Field(default_factory=clock.now, sa_column=_ts())


class CheckInMethod(StrEnum):
    """How a control check-in was made."""

    home_visit = "home_visit"  # 上门走访
    summons = "summons"  # 约谈
    phone = "phone"  # 电话
    video = "video"  # 视频
    other = "other"


class CheckInFinding(StrEnum):
    """What the officer found."""

    normal = "normal"  # 正常
    concern = "concern"  # 发现异常
    not_found = "not_found"  # 未见本人


class RiskPersonCheckIn(SQLModel, table=True):
    """A control check-in (管控) on a 附件2 person by a police officer."""

    __tablename__ = "risk_person_check_in"

    id: int | None = Field(default=None, primary_key=True)
    risk_person_id: int = Field(foreign_key="risk_person.id", index=True, ondelete="CASCADE")
    checked_at: datetime = Field(sa_column=_ts())
    method: str = Field(max_length=16)
    place: str | None = Field(default=None, max_length=200)
    finding: str = Field(max_length=16)
    note: str | None = Field(default=None, max_length=1000)
    officer_user_id: int | None = Field(default=None, foreign_key="app_user.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=clock.now, sa_column=_ts())


class RiskPersonHousehold(SQLModel, table=True):
    """A 附件2 person linked to the household they live in; at most one link is current (unlinked_at
    null), ended links are kept as the history."""

    __tablename__ = "risk_person_household"
    __table_args__ = (
        Index(
            "uq_risk_person_household_current",
            "risk_person_id",
            unique=True,
            postgresql_where=text("unlinked_at IS NULL"),
            sqlite_where=text("unlinked_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    risk_person_id: int = Field(foreign_key="risk_person.id", index=True, ondelete="CASCADE")
    household_id: int = Field(foreign_key="household.id", index=True, ondelete="CASCADE")
    linked_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    linked_by: int | None = Field(default=None, foreign_key="app_user.id", ondelete="SET NULL")
    # The children of the household raised for review when the link was made, and the coordinators told.
    raised_child_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    notified_user_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    unlinked_at: datetime | None = Field(default=None, sa_column=_ts(True))
    unlinked_by: int | None = Field(default=None, foreign_key="app_user.id", ondelete="SET NULL")
