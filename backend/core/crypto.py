"""Field encryption for resident ID numbers: AES-GCM with a key id (for rotation) and an HMAC
blind index (for duplicate detection and exact lookup without decrypting).

Keys come from settings: `id_number_keys` lists "key_id:base64" pairs, `id_number_active_key`
names the one new values are written with; old keys stay listed until every value is rewritten.
Production refuses weak or development keys at start (backend/core/secrets.py).
A stored value is "key_id:base64(nonce || ciphertext)", so decryption needs no extra column.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from backend.core import identifiers
from backend.core.config import Settings, get_settings

_AAD = b"hulei:id-number:v1"
_NONCE_BYTES = 12


class KeyConfigError(RuntimeError):
    """The configured keys cannot be used."""


@dataclass(frozen=True)
class Sealed:
    """An encrypted value and the id of the key that sealed it."""

    key_id: str
    token: str


@dataclass(frozen=True)
class _Keyring:
    keys: dict[str, bytes]
    active: str
    index_key: bytes


def _parse_keys(raw: str) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        key_id, sep, encoded = part.partition(":")
        if not sep or not key_id:
            raise KeyConfigError("id_number_keys entries must look like key_id:base64")
        key = base64.b64decode(encoded)
        if len(key) not in (16, 24, 32):
            raise KeyConfigError(f"key {key_id} must be 16, 24 or 32 bytes")
        keys[key_id] = key
    return keys


@lru_cache(maxsize=4)
def _keyring(raw_keys: str, active: str, index_key: str) -> _Keyring:
    keys = _parse_keys(raw_keys)
    if active not in keys:
        raise KeyConfigError(f"active id number key {active!r} is not among id_number_keys")
    return _Keyring(keys=keys, active=active, index_key=index_key.encode())


def keyring(settings: Settings | None = None) -> _Keyring:
    s = settings or get_settings()
    return _keyring(s.id_number_keys, s.id_number_active_key, s.id_number_index_key)


def encrypt(plaintext: str) -> Sealed:
    """Seal a value with the active key."""
    ring = keyring()
    nonce = os.urandom(_NONCE_BYTES)
    ciphertext = AESGCM(ring.keys[ring.active]).encrypt(nonce, plaintext.encode(), _AAD)
    token = base64.b64encode(nonce + ciphertext).decode()
    return Sealed(ring.active, f"{ring.active}:{token}")


def decrypt(token: str) -> str:
    """Open a value sealed by any configured key."""
    ring = keyring()
    key_id, _, encoded = token.partition(":")
    key = ring.keys.get(key_id)
    if key is None:
        raise KeyConfigError(f"value was sealed with key {key_id!r}, which is no longer configured")
    raw = base64.b64decode(encoded)
    return AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _AAD).decode()


def blind_index(value: str) -> str:
    """HMAC-SHA256 of the value's canonical spelling (identifiers.fold): equal values give equal
    indexes however they were typed, nothing else leaks."""
    return hmac.new(keyring().index_key, identifiers.fold(value).encode(), hashlib.sha256).hexdigest()


def keyed_digest(data: bytes) -> str:
    """HMAC-SHA256 of arbitrary bytes with the index key (content hashes of records holding IDs, which
    are stored: the key stays the index key). Not for anything new: backend/core/secrets.py derives
    a key per purpose."""
    # hmac.digest is the one-shot C path: same value as hmac.new(...).hexdigest(), a third of the cost,
    # which a sync push pays once per record.
    return hmac.digest(keyring().index_key, data, "sha256").hex()
