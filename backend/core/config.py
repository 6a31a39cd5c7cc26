"""Settings, read once from the environment (prefix HULEI_) and an optional .env file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HULEI_", env_file=".env", extra="ignore")

    # SQLite + SpatiaLite file under ./var/ unless DATABASE_URL points at PostgreSQL/PostGIS.
    database_url: str = Field(
        default=f"sqlite:///{PROJECT_ROOT / 'var' / 'hulei.db'}",
        validation_alias="DATABASE_URL",
    )
    spatialite_library: str = "mod_spatialite"

    # Signing key for access tokens. The development default is refused in production mode.
    jwt_secret: str = "dev-only-insecure-jwt-secret-change-me-0123456789"  # noqa: S105 - refused in production
    jwt_issuer: str = "hulei"
    access_token_minutes: int = 15
    refresh_token_days: int = 30
    production: bool = False

    # Login throttling: this many failures inside the window lock the phone number (and the IP).
    login_max_failures: int = 5
    login_failure_window_minutes: int = 15
    login_lockout_minutes: int = 15
    login_ip_max_failures: int = 50

    default_locale: str = "zh-CN"
    timezone: str = "Asia/Shanghai"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; tests clear the cache when they change the environment)."""
    return Settings()
