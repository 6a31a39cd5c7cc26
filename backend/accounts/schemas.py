"""API shapes for sign-in, users and devices."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from backend.accounts.models import Agency, DevicePlatform, PushChannel
from backend.accounts.permissions import Role


class LoginRequest(BaseModel):
    phone: str = Field(description="Mainland mobile number, 11 digits (a +86 prefix is accepted)")
    password: str = Field(min_length=1, max_length=200)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=10, max_length=200)


class UserPublic(BaseModel):
    id: int
    phone: str
    display_name: str
    org_unit_id: int
    agency: Agency | None
    roles: list[Role]
    is_active: bool


class TokenPair(BaseModel):
    """What sign-in and refresh return. Keep the refresh token in the phone's secure storage."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str
    refresh_expires_at: datetime
    user: UserPublic


class UserCreate(BaseModel):
    phone: str
    display_name: str = Field(min_length=1, max_length=60)
    password: str = Field(min_length=10, max_length=200)
    org_unit_id: int
    roles: list[Role] = Field(min_length=1)
    agency: Agency | None = Field(
        default=None, description="The body the user works for; every role is granted only to users of the "
        "agencies the grant table names for it (police roles to the police, and so on)")


class UserUpdate(BaseModel):
    display_name: str | None = Field(default=None, min_length=1, max_length=60)
    org_unit_id: int | None = None
    roles: list[Role] | None = Field(default=None, min_length=1)
    agency: Agency | None = None
    is_active: bool | None = None


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=10, max_length=200)


class DeviceRegister(BaseModel):
    platform: DevicePlatform
    # Every push service's tokens are visible ASCII (letters, digits and a few marks): a space, a
    # control or invisible character, or any other script is no token any vendor issued.
    push_token: str = Field(min_length=8, max_length=4096, pattern=r"^[!-~]+$")
    app_version: str | None = Field(default=None, max_length=40)
    # Which push service the token is from (added by issue 19; absent means FCM, as before). iOS is
    # FCM only; HarmonyOS is Huawei only (mobile_api_spec/notifications.md).
    channel: PushChannel = PushChannel.fcm

    @field_validator("channel", mode="before")
    @classmethod
    def _absent_channel_is_fcm(cls, value: object) -> object:
        # Some JSON libraries write an unset field as null: it means "absent", as before issue 19.
        return PushChannel.fcm if value is None else value


class DevicePublic(BaseModel):
    id: int
    platform: DevicePlatform
    channel: PushChannel
    app_version: str | None
    created_at: datetime
    last_seen_at: datetime
