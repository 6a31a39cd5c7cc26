"""Password hashing (argon2id), access tokens (JWT, HS256 under the derived key of backend/core/secrets.py)
and opaque secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from backend.core import clock, hashing
from backend.core.config import get_settings
from backend.core.secrets import Purpose, purpose_key


@lru_cache(maxsize=4)
def _hasher_for(time_cost: int, memory_kib: int, parallelism: int) -> tuple[PasswordHasher, str]:
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
    # Verified against when the phone number is unknown, so a failed login costs the same either way.
    return hasher, hasher.hash("hulei-dummy-password-for-timing")


def _hasher() -> tuple[PasswordHasher, str]:
    s = get_settings()
    return _hasher_for(s.password_hash_time_cost, s.password_hash_memory_kib, s.password_hash_parallelism)


def hash_password(password: str) -> str:
    """An argon2id hash with the configured cost (within the process's hashing budget)."""
    with hashing.gate().slot():
        return _hasher()[0].hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when the password matches; always spends one argon2 verification (within the
    process's hashing budget: 503 `server-busy` when no slot frees in time)."""
    with hashing.gate().slot():
        hasher, dummy = _hasher()
        try:
            return hasher.verify(password_hash or dummy, password) and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def password_needs_rehash(password_hash: str) -> bool:
    """Whether a stored hash was made with other parameters than the configured ones."""
    return _hasher()[0].check_needs_rehash(password_hash)


def new_secret_token() -> str:
    """A 256-bit random token for refresh tokens and signed links."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What we store instead of a bearer secret: its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


def successor_refresh_token(token: str) -> str:
    """The refresh token that rotating `token` issues: HMAC-SHA256 of it under the refresh-successor
    key (derived from the master secret, backend/core/secrets.py). A retried refresh (its answer lost)
    thus gets the same token again although only digests are stored; a database reader holds neither
    the presented token nor the key."""
    mac = hmac.digest(purpose_key(Purpose.refresh_successor), token.encode(), "sha256")
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def issue_access_token(
    user_id: int,
    roles: list[str],
    org_unit_id: int,
    *,
    family_id: str | None = None,
    issued_at: datetime | None = None,
    token_id: str | None = None,
) -> tuple[str, datetime]:
    """A short-lived access token; the user is reloaded on every request, so roles here are hints.

    `family_id` ties it to a sign-in (claim `fam`), checked live on every request so that ending
    the sign-in ends the token. Given `issued_at` and `token_id`, the same inputs give the same
    token, so a retried refresh can answer with the very token the first attempt issued."""
    settings = get_settings()
    issued = issued_at or clock.now()
    expires = issued + timedelta(minutes=settings.access_token_minutes)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "roles": roles,
        "org": org_unit_id,
        "iss": settings.jwt_issuer,
        "iat": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": token_id or uuid.uuid4().hex,
        "typ": "access",
    }
    if family_id is not None:
        claims["fam"] = family_id
    return jwt.encode(claims, purpose_key(Purpose.jwt, settings), algorithm="HS256"), expires


def decode_access_token(token: str) -> dict[str, Any] | None:
    """The claims of a valid, unexpired access token, or None."""
    settings = get_settings()
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            purpose_key(Purpose.jwt, settings),
            algorithms=["HS256"],
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "sub", "iss"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        return None
    # Expiry is checked against our clock (which tests move), not the wall clock.
    if claims.get("typ") != "access" or int(claims["exp"]) <= int(clock.now().timestamp()):
        return None
    return claims
