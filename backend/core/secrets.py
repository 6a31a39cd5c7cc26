"""The service's secrets: refused at start in production when weak, and one derived key per purpose.

**Per-purpose keys.** `HULEI_JWT_SECRET` is the master secret. Nothing signs with it directly: each
purpose (access tokens, refresh successors, calendar feed tokens, photo links, list cursors) uses a
key derived from it with HKDF-SHA256 (RFC 5869) under its own label. A derived key cannot be turned
back into the master or into another purpose's key, so a key that leaks from one place (a log, a
debugger, a library bug) opens that purpose only, and a token of one purpose is never valid as
another's. The blind index of ID numbers keeps its own key (`HULEI_ID_NUMBER_INDEX_KEY`): stored
indexes and content hashes depend on it, so it is neither derived nor used for anything new.

**The production check** (`check_production`, run by the API's `create_app` and by the worker)
refuses to start, naming every offending setting in one message and never printing a value, when:
- a secret is a development default or a template value (contains CHANGE_ME, "changeme", "secret",
  "password", "example", "placeholder", "dev-only", "insecure" ... once lower-cased and stripped of
  punctuation);
- a text secret (master, blind-index key) is shorter than 32 bytes, or its estimated entropy is
  under 96 bits (see `estimated_bits`), or the blind-index key equals the master secret;
- an AES key (`HULEI_ID_NUMBER_KEYS`) is not base64 of 16, 24 or 32 bytes, is all one byte value
  (all zero included), has few distinct bytes, is printable text rather than random bytes, or has a
  development key id ("dev..."); or the active key id is not among them;
- photos are stored in S3 and the secret key is missing, a template value or weak (16 bytes and
  64 bits at least: some providers issue 30-character secrets);
- the database password in DATABASE_URL is a template value.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import math
import re
from collections import Counter
from enum import StrEnum
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from backend.core.config import Settings, get_settings

# Fixed, public salt (RFC 5869 §3.1: a constant salt still separates this application's keys from
# any other use of the same secret); the purpose goes in `info`.
_SALT = b"hulei/key-derivation/v1"
_KEY_BYTES = 32


class Purpose(StrEnum):
    """What a derived key is for; the value is the HKDF info label (changing one retires its tokens)."""

    jwt = "hulei/v1/jwt-access-token"
    refresh_successor = "hulei/v1/refresh-successor"
    calendar_feed = "hulei/v1/calendar-feed-token"
    media_link = "hulei/v1/media-link"
    cursor = "hulei/v1/list-cursor"


@lru_cache(maxsize=64)
def _derive(master: str, info: str) -> bytes:
    # Keyed on the secret's value, so tests that change the settings get keys of the new secret.
    hkdf = HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=_SALT, info=info.encode())
    return hkdf.derive(master.encode())


def purpose_key(purpose: Purpose, settings: Settings | None = None) -> bytes:
    """The 32-byte key of one purpose, derived from the master secret (HULEI_JWT_SECRET)."""
    return _derive((settings or get_settings()).jwt_secret, purpose.value)


# ---------------------------------------------------------------- the production check


class InsecureConfiguration(RuntimeError):
    """Production settings that must not be used; the message names each one."""


# Compared with the secret lower-cased and stripped of everything but letters and digits.
TEMPLATE_MARKERS = ("changeme", "replaceme", "secret", "password", "passwd", "example", "placeholder",
                    "devonly", "insecure", "default", "fillin")
# An access key is a name, not a secret: only the placeholders themselves are refused.
PLACEHOLDERS = ("changeme", "replaceme", "placeholder")
MIN_SECRET_BYTES = 32
MIN_SECRET_BITS = 96.0
# Adjacent characters one code point apart (or equal), as in "abcdef", "123456", "aaaa".
MAX_STEP_SHARE = 0.5


def _normalised(value: str) -> str:
    return re.sub(r"[^a-z0-9]", "", value.lower())


def _template_marker(value: str, markers: tuple[str, ...] = TEMPLATE_MARKERS) -> str | None:
    flat = _normalised(value)
    return next((m for m in markers if m in flat), None)


def _period(value: str) -> str:
    """The shortest unit the value is a repetition of ("abcabcab" -> "abc")."""
    for size in range(1, len(value) // 2 + 1):
        unit = value[:size]
        if (unit * (len(value) // size + 1))[: len(value)] == value:
            return unit
    return value


def estimated_bits(value: str) -> float:
    """A rough entropy estimate: Shannon entropy of the characters times the length of the value's
    shortest repeating unit. 64 URL-safe random characters give about 330 bits, 32 hex digits about
    115; "hulei2026" repeated gives 27. It catches typing, patterns and placeholders, it does not
    prove randomness: generate secrets as infra/README.md says."""
    unit = _period(value)
    counts = Counter(unit)
    per_char = -sum(n / len(unit) * math.log2(n / len(unit)) for n in counts.values())
    return per_char * len(unit)


def _step_share(value: str) -> float:
    steps = [abs(ord(b) - ord(a)) <= 1 for a, b in itertools.pairwise(value)]
    return sum(steps) / len(steps) if steps else 1.0


def text_secret_problem(value: str | None, *, min_bytes: int = MIN_SECRET_BYTES,
                        min_bits: float = MIN_SECRET_BITS) -> str | None:
    """Why a text secret is too weak for production, or None."""
    if not value:
        return "is not set"
    if marker := _template_marker(value):
        return f"is a template or development value (contains {marker!r}); generate a random one"
    if len(value.encode()) < min_bytes:
        return f"is shorter than {min_bytes} bytes"
    if _period(value) != value:
        return "repeats a shorter pattern"
    if _step_share(value) > MAX_STEP_SHARE:
        return "is mostly a run of neighbouring characters (abc..., 123..., aaa...)"
    if estimated_bits(value) < min_bits:
        return f"has too little entropy (about {estimated_bits(value):.0f} bits, {min_bits:.0f} needed)"
    return None


def aes_key_problem(key_id: str, encoded: str) -> str | None:
    """Why one "key_id:base64" entry of HULEI_ID_NUMBER_KEYS is unfit for production, or None."""
    if _template_marker(encoded):
        return "is a template value; generate one with `openssl rand -base64 32`"
    if key_id.lower().startswith("dev"):
        return "has a development key id (dev...)"
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return "is not valid base64"
    if len(key) not in (16, 24, 32):
        return f"is {len(key)} bytes; AES keys are 16, 24 or 32"
    if len(set(key)) == 1:
        return "is one byte value repeated (all zero?)"
    if len(set(key)) < len(key) // 2:
        return "has too few distinct bytes to be random"
    if all(0x20 <= b < 0x7F for b in key):
        return "is printable text, not random bytes"
    return None


def production_problems(settings: Settings) -> list[str]:
    """Every setting unfit for production, as "NAME: reason" (values are never included)."""
    problems: list[str] = []

    def check(name: str, reason: str | None) -> None:
        if reason:
            problems.append(f"{name} {reason}")

    defaults = Settings.model_fields
    master = settings.jwt_secret
    check("HULEI_JWT_SECRET", "is the development default" if master == defaults["jwt_secret"].default
          else text_secret_problem(master))
    index_key = settings.id_number_index_key
    check("HULEI_ID_NUMBER_INDEX_KEY", "is the development default"
          if index_key == defaults["id_number_index_key"].default else text_secret_problem(index_key))
    if index_key and index_key == master:
        check("HULEI_ID_NUMBER_INDEX_KEY", "must differ from HULEI_JWT_SECRET (one leak would open both)")

    key_ids: list[str] = []
    for part in settings.id_number_keys.split(","):
        if not part.strip():
            continue
        key_id, sep, encoded = part.strip().partition(":")
        if not sep or not key_id:
            check("HULEI_ID_NUMBER_KEYS", "has an entry that is not key_id:base64")
            continue
        key_ids.append(key_id)
        check(f"HULEI_ID_NUMBER_KEYS ({key_id})", aes_key_problem(key_id, encoded))
    if not key_ids:
        check("HULEI_ID_NUMBER_KEYS", "is not set")
    elif settings.id_number_active_key not in key_ids:
        check("HULEI_ID_NUMBER_ACTIVE_KEY", "names no key of HULEI_ID_NUMBER_KEYS")

    if settings.media_storage == "s3":
        check("HULEI_MEDIA_S3_SECRET_KEY", text_secret_problem(settings.media_s3_secret_key, min_bytes=16,
                                                               min_bits=64.0))
        access = settings.media_s3_access_key
        check("HULEI_MEDIA_S3_ACCESS_KEY", "is not set" if not access else
              "is a template value" if _template_marker(access, PLACEHOLDERS) else None)

    try:
        password = make_url(settings.database_url).password
    except (ArgumentError, ValueError):
        password = None
    if password and _template_marker(str(password)):
        check("DATABASE_URL", "has a template password (CHANGE_ME)")
    return problems


def check_production(settings: Settings | None = None) -> None:
    """In production, refuse to start with any weak secret (InsecureConfiguration naming each)."""
    s = settings or get_settings()
    if not s.production:
        return
    problems = production_problems(s)
    if problems:
        raise InsecureConfiguration(
            "refusing to start in production (HULEI_PRODUCTION=true) with weak secrets; see the "
            "\"Secrets\" section of infra/README.md for how to generate each:\n- " + "\n- ".join(problems))
