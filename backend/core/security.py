"""Password hashing (argon2id), access tokens (JWT, HS256) and opaque secrets."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from backend.core import clock
from backend.core.config import get_settings

# argon2id with the library's RFC 9106 "low memory" defaults: ~46 MiB, t=3, p=4.
_hasher = PasswordHasher()
# Verified against when the phone number is unknown, so a failed login costs the same either way.
_DUMMY_HASH = _hasher.hash("hulei-dummy-password-for-timing")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when the password matches; always spends one argon2 verification."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def new_secret_token() -> str:
    """A 256-bit random token for refresh tokens and signed links."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What we store instead of a bearer secret: its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_access_token(user_id: int, roles: list[str], org_unit_id: int) -> tuple[str, datetime]:
    """A short-lived access token; the user is reloaded on every request, so roles here are hints."""
    settings = get_settings()
    issued = clock.now()
    expires = issued + timedelta(minutes=settings.access_token_minutes)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "roles": roles,
        "org": org_unit_id,
        "iss": settings.jwt_issuer,
        "iat": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": uuid.uuid4().hex,
        "typ": "access",
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256"), expires


def decode_access_token(token: str) -> dict[str, Any] | None:
    """The claims of a valid, unexpired access token, or None."""
    settings = get_settings()
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=["HS256"],
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "sub", "iss"], "verify_exp": False},
        )
    except jwt.PyJWTError:
        return None
    # Expiry is checked against our clock (which tests move), not the wall clock.
    if claims.get("typ") != "access" or int(claims["exp"]) <= int(clock.now().timestamp()):
        return None
    return claims
