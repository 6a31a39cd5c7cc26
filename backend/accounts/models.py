"""Users, their roles, devices, refresh tokens and login throttling state."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.core import clock


def _ts(nullable: bool = False) -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=nullable)


class Agency(StrEnum):
    """The body a field worker acts for (seed 002's 成员单位)."""

    police = "police"  # 派出所
    market_supervision = "market_supervision"  # 市场监管所
    womens_federation = "womens_federation"  # 妇联
    judicial = "judicial"  # 司法所
    civil_affairs = "civil_affairs"  # 民政办
    education = "education"  # 学校/教育
    health = "health"  # 卫生院
    youth_league = "youth_league"  # 团委
    village_committee = "village_committee"  # 村(社区)委员会
    government = "government"  # 乡镇政府/平安法治办
    # Further inspecting bodies of the joint enforcement (seed 002: 文旅, 教育, 综合执法, 卫健; issue 18).
    culture_tourism = "culture_tourism"  # 文化和旅游（文旅）
    comprehensive_enforcement = "comprehensive_enforcement"  # 综合行政执法


class User(SQLModel, table=True):
    """A person who signs in: volunteer, grid worker, officer, helper, coordinator or admin."""

    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    phone: str = Field(max_length=11, unique=True, index=True)
    display_name: str = Field(max_length=60)
    password_hash: str = Field(max_length=200)
    org_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    agency: str | None = Field(default=None, max_length=32)
    is_active: bool = True
    created_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    updated_at: datetime = Field(default_factory=clock.now, sa_column=_ts())


class UserRole(SQLModel, table=True):
    """One role a user holds; a user may hold several."""

    __tablename__ = "user_role"

    user_id: int = Field(foreign_key="app_user.id", primary_key=True, ondelete="CASCADE")
    role: str = Field(max_length=32, primary_key=True)


class SignIn(SQLModel, table=True):
    """One sign-in on one phone: the family of refresh tokens it rotates through, and the access
    tokens issued along the way (they carry its id as `fam`). Every request checks it is not
    revoked, so logout, reuse detection, a password change or deactivation end them all at once."""

    __tablename__ = "sign_in"

    id: str = Field(primary_key=True, max_length=36)  # the refresh tokens' family_id
    user_id: int = Field(foreign_key="app_user.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class RefreshToken(SQLModel, table=True):
    """A rotating refresh token. Only its digest is stored. Tokens descended from one login form a
    family; presenting a token that was already used revokes the whole family (theft signal),
    except a retry from the device that spent it within the grace window (its answer was lost)."""

    __tablename__ = "refresh_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True, ondelete="CASCADE")
    family_id: str = Field(max_length=36, index=True)
    token_hash: str = Field(max_length=64, unique=True)
    issued_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    expires_at: datetime = Field(sa_column=_ts())
    used_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # X-Device-Id of the refresh that spent this token: only that device may retry it.
    used_device_id: str | None = Field(default=None, max_length=120)
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class DevicePlatform(StrEnum):
    android = "android"
    ios = "ios"
    harmony = "harmony"


class PushChannel(StrEnum):
    """Which push service reaches the phone (issue 19). Most phones sold in mainland China have no
    Google services: they are reached through their maker's own channel. iOS goes through FCM (APNs)."""

    fcm = "fcm"
    huawei = "huawei"  # Huawei Push Kit (HMS; also HarmonyOS)
    xiaomi = "xiaomi"  # Xiaomi MiPush
    honor = "honor"  # Honor Push
    oppo = "oppo"  # OPPO Push (also OnePlus, realme)
    vivo = "vivo"  # vivo Push (also iQOO)
    harmony = "harmony"  # HarmonyOS NEXT (5 and later, ArkTS apps): Push Kit v3, not HMS


class Device(SQLModel, table=True):
    """A phone registered for push notifications. A push token belongs to one user at a time."""

    __tablename__ = "device"
    __table_args__ = (UniqueConstraint("push_token"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True, ondelete="CASCADE")
    platform: str = Field(max_length=16)
    push_token: str = Field(max_length=4096)
    channel: str = Field(default=PushChannel.fcm.value, max_length=16)
    app_version: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    last_seen_at: datetime = Field(default_factory=clock.now, sa_column=_ts())


class LoginThrottle(SQLModel, table=True):
    """Failure counters keyed by "phone:<n>" or "ip:<addr>", in the database so every API process
    sees the same count."""

    __tablename__ = "login_throttle"

    key: str = Field(primary_key=True, max_length=80)
    failures: int = 0
    window_started_at: datetime = Field(default_factory=clock.now, sa_column=_ts())
    locked_until: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
