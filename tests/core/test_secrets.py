"""Production refuses weak secrets, and each purpose signs with its own key (issue 14).

With HULEI_PRODUCTION=true the service used to start with the Kubernetes template's `CHANGE_ME`,
with `x`, with an all-zero AES key; a token signed with `CHANGE_ME` for user 1 was accepted as the
administrator, and the same secret also made calendar tokens and photo links. Now every weak
setting is named in one refusal at start (API and worker), and the master secret only derives
per-purpose keys (HKDF), none of which is the secret itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlmodel import Session
from typer.testing import CliRunner

from backend.accounts.permissions import Role
from backend.cli import app as cli
from backend.core import clock
from backend.core.config import get_settings
from backend.core.errors import InvalidInput
from backend.core.jobs import run_worker
from backend.main import create_app
from tests.factories import make_town, make_user, sign_in

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STRONG_JWT = "q8Vd3nR-xZ7cLw0pTfY2hK9mJbA6sUeG4oN1iQyHvX5rWzC_Dk8tPaLgEu3FjMhB"
STRONG_INDEX = "Hn4c_Zp9QeX2wLrT7vK0bYsJ6dG1mUaF8iO3xRtEyWq5-NkCjVhB2gPzLsDfAe7M"


def _aes(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


STRONG_AES = _aes(bytes.fromhex("9f3a1c7e5b2d4f6081a3c5e7092b4d6f8e1a3c5e70b2d4f6a8193b5d7f0e2c4a"))
GOOD = {
    "HULEI_PRODUCTION": "true",
    "HULEI_JWT_SECRET": STRONG_JWT,
    "HULEI_ID_NUMBER_KEYS": f"k2026a:{STRONG_AES}",
    "HULEI_ID_NUMBER_ACTIVE_KEY": "k2026a",
    "HULEI_ID_NUMBER_INDEX_KEY": STRONG_INDEX,
    "HULEI_MEDIA_STORAGE": "local",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A strong production configuration, which each test then spoils in one place."""
    for name in list(os.environ):
        if name.startswith("HULEI_") and name not in ("HULEI_PASSWORD_HASH_TIME_COST",
                                                      "HULEI_PASSWORD_HASH_MEMORY_KIB",
                                                      "HULEI_PASSWORD_HASH_PARALLELISM"):
            monkeypatch.delenv(name)
    for name, value in GOOD.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def _refusal(env: pytest.MonkeyPatch, **values: str | None) -> str:
    for name, value in values.items():
        if value is None:
            env.delenv(name, raising=False)
        else:
            env.setenv(name, value)
    get_settings.cache_clear()
    with pytest.raises(RuntimeError) as refused:
        create_app()
    return str(refused.value)


def test_a_strong_production_configuration_starts(env: pytest.MonkeyPatch) -> None:
    with TestClient(create_app()) as client:
        assert client.get("/healthz").status_code == 200


WEAK = [
    pytest.param({"HULEI_JWT_SECRET": "CHANGE_ME"}, "HULEI_JWT_SECRET", id="jwt-template"),
    pytest.param({"HULEI_JWT_SECRET": "x"}, "HULEI_JWT_SECRET", id="jwt-one-character"),
    pytest.param({"HULEI_JWT_SECRET": None}, "HULEI_JWT_SECRET", id="jwt-development-default"),
    pytest.param({"HULEI_JWT_SECRET": "CHANGE_ME_64_random_bytes_CHANGE_ME_64_random_bytes"}, "HULEI_JWT_SECRET",
                 id="jwt-compose-template"),
    pytest.param({"HULEI_JWT_SECRET": "Tr0ub4dor&3-our-hulei-jwt-secret-for-2026-prod"}, "HULEI_JWT_SECRET",
                 id="jwt-says-secret"),
    pytest.param({"HULEI_JWT_SECRET": "hulei2026" * 6}, "HULEI_JWT_SECRET", id="jwt-repeated-pattern"),
    pytest.param({"HULEI_JWT_SECRET": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF"}, "HULEI_JWT_SECRET",
                 id="jwt-keyboard-run"),
    pytest.param({"HULEI_JWT_SECRET": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"}, "HULEI_JWT_SECRET",
                 id="jwt-few-characters"),
    pytest.param({"HULEI_JWT_SECRET": "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5"}, "HULEI_JWT_SECRET", id="jwt-30-bytes"),
    pytest.param({"HULEI_ID_NUMBER_INDEX_KEY": "CHANGE_ME"}, "HULEI_ID_NUMBER_INDEX_KEY", id="index-template"),
    pytest.param({"HULEI_ID_NUMBER_INDEX_KEY": "x" * 40}, "HULEI_ID_NUMBER_INDEX_KEY", id="index-one-letter"),
    pytest.param({"HULEI_ID_NUMBER_INDEX_KEY": None}, "HULEI_ID_NUMBER_INDEX_KEY", id="index-development-default"),
    pytest.param({"HULEI_ID_NUMBER_INDEX_KEY": STRONG_JWT}, "HULEI_ID_NUMBER_INDEX_KEY", id="index-same-as-jwt"),
    pytest.param({"HULEI_ID_NUMBER_KEYS": f"k1:{_aes(bytes(32))}", "HULEI_ID_NUMBER_ACTIVE_KEY": "k1"},
                 "HULEI_ID_NUMBER_KEYS (k1)", id="aes-all-zero"),
    pytest.param({"HULEI_ID_NUMBER_KEYS": f"k1:{_aes(b'hulei-production-aes-key-2026-01')}",
                  "HULEI_ID_NUMBER_ACTIVE_KEY": "k1"},
                 "HULEI_ID_NUMBER_KEYS (k1)", id="aes-text"),
    pytest.param({"HULEI_ID_NUMBER_KEYS": f"k1:{_aes(bytes([7]) * 32)}", "HULEI_ID_NUMBER_ACTIVE_KEY": "k1"},
                 "HULEI_ID_NUMBER_KEYS (k1)", id="aes-one-byte-value"),
    pytest.param({"HULEI_ID_NUMBER_KEYS": f"k2026a:{STRONG_AES},old:{_aes(bytes(16))}"},
                 "HULEI_ID_NUMBER_KEYS (old)", id="aes-old-key-all-zero"),
    pytest.param({"HULEI_ID_NUMBER_KEYS": "k2026a:CHANGE_ME_base64_32_bytes"}, "HULEI_ID_NUMBER_KEYS (k2026a)",
                 id="aes-template"),
    pytest.param({"HULEI_ID_NUMBER_KEYS": None, "HULEI_ID_NUMBER_ACTIVE_KEY": None}, "HULEI_ID_NUMBER_KEYS (dev-1)",
                 id="aes-development-default"),
    pytest.param({"HULEI_ID_NUMBER_ACTIVE_KEY": "k2027"}, "HULEI_ID_NUMBER_ACTIVE_KEY", id="active-key-missing"),
    pytest.param({"HULEI_MEDIA_STORAGE": "s3", "HULEI_MEDIA_S3_ACCESS_KEY": "hulei-api",
                  "HULEI_MEDIA_S3_SECRET_KEY": "CHANGE_ME"}, "HULEI_MEDIA_S3_SECRET_KEY", id="s3-template"),
    pytest.param({"HULEI_MEDIA_STORAGE": "s3", "HULEI_MEDIA_S3_ACCESS_KEY": "hulei-api"},
                 "HULEI_MEDIA_S3_SECRET_KEY", id="s3-secret-missing"),
    pytest.param({"DATABASE_URL": "postgresql://hulei:CHANGE_ME@postgis.hulei.svc:5432/hulei"}, "DATABASE_URL",
                 id="database-password-template"),
]


@pytest.mark.parametrize(("values", "setting"), WEAK)
def test_production_refuses_a_weak_setting_and_names_it(env: pytest.MonkeyPatch, values: dict[str, str | None],
                                                        setting: str) -> None:
    message = _refusal(env, **values)
    assert setting in message, message
    for value in values.values():  # the refusal never prints a secret
        if value and len(value) > 12 and value not in (STRONG_JWT, "hulei-api"):
            assert value not in message


def test_every_weak_setting_is_named_in_one_refusal(env: pytest.MonkeyPatch) -> None:
    message = _refusal(env, HULEI_JWT_SECRET="x", HULEI_ID_NUMBER_INDEX_KEY="CHANGE_ME",
                       HULEI_ID_NUMBER_KEYS=f"k1:{_aes(bytes(32))}", HULEI_ID_NUMBER_ACTIVE_KEY="k1")
    for setting in ("HULEI_JWT_SECRET", "HULEI_ID_NUMBER_INDEX_KEY", "HULEI_ID_NUMBER_KEYS (k1)"):
        assert setting in message, message


def test_the_shipped_kubernetes_and_compose_templates_are_refused(env: pytest.MonkeyPatch) -> None:
    docs = list(yaml.safe_load_all((PROJECT_ROOT / "infra/k8s/10-config.yaml").read_text()))
    k8s = {k: str(v) for d in docs for k, v in (d.get("data") or d.get("stringData") or {}).items()}
    message = _refusal(env, **k8s)
    for setting in ("HULEI_JWT_SECRET", "HULEI_ID_NUMBER_KEYS (k2026a)", "HULEI_ID_NUMBER_INDEX_KEY",
                    "HULEI_MEDIA_S3_SECRET_KEY", "DATABASE_URL"):
        assert setting in message, message
    lines = (PROJECT_ROOT / "infra/compose/hulei.env.example").read_text().splitlines()
    compose = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    message = _refusal(env, **{k: v for k, v in compose.items() if k.startswith("HULEI_") or k == "DATABASE_URL"})
    for setting in ("HULEI_JWT_SECRET", "HULEI_ID_NUMBER_KEYS (k2026a)", "HULEI_ID_NUMBER_INDEX_KEY",
                    "HULEI_MEDIA_S3_SECRET_KEY", "DATABASE_URL"):
        assert setting in message, message


def test_the_worker_refuses_to_start_with_a_weak_secret(env: pytest.MonkeyPatch) -> None:
    env.setenv("HULEI_JWT_SECRET", "CHANGE_ME")
    env.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/nothing")  # never reached when refused
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["worker", "--once"])
    assert result.exit_code == 1 and "HULEI_JWT_SECRET" in result.output, result.output
    with pytest.raises(RuntimeError, match="HULEI_JWT_SECRET"):  # however the worker loop is started
        run_worker(once=True)


def test_development_mode_keeps_its_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HULEI_PRODUCTION", "false")
    get_settings.cache_clear()
    try:
        create_app()
    finally:
        get_settings.cache_clear()


# ---------------------------------------------------------------- one key per purpose


def test_a_token_signed_with_the_master_secret_is_refused(client: TestClient, session: Session) -> None:
    """The attack of the issue: whoever knows HULEI_JWT_SECRET signs a token for an administrator."""
    town = make_town(session)
    admin = make_user(session, town.province, Role.admin)
    now = int(clock.now().timestamp())
    claims = {"sub": str(admin.id), "roles": ["admin"], "org": admin.org_unit_id, "iss": "hulei", "iat": now,
              "exp": now + 600, "jti": "forged", "typ": "access"}
    forged = jwt.encode(claims, get_settings().jwt_secret, algorithm="HS256")
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    genuine = sign_in(client, admin).headers
    assert client.get("/api/v1/me", headers=genuine).status_code == 200


def test_each_purpose_has_its_own_key_none_of_them_the_master_secret() -> None:
    from backend.core import secrets

    master = get_settings().jwt_secret.encode()
    keys = {purpose: secrets.purpose_key(purpose) for purpose in secrets.Purpose}
    assert len(set(keys.values())) == len(keys) >= 5
    old = {master, hashlib.sha256(b"hulei-refresh-successor\x00" + master).digest(),
           hashlib.sha256(b"hulei-media-link\x00" + master).digest(), get_settings().id_number_index_key.encode()}
    assert not set(keys.values()) & old


def test_tokens_feeds_links_and_cursors_no_longer_follow_from_the_master_secret() -> None:
    from backend.core.pagination import decode_cursor, encode_cursor
    from backend.core.security import successor_refresh_token
    from backend.media.storage import LinkClaims, read_link, sign_link
    from backend.schedules.service import feed_token

    master = get_settings().jwt_secret.encode()
    # The calendar token of user 1 as the master secret made it: no longer a credential.
    old_feed = hmac.new(master, b"hulei-ics:1", hashlib.sha256).hexdigest()[:32]
    assert feed_token(1, 0) != old_feed
    old_successor = base64.urlsafe_b64encode(hmac.digest(
        hashlib.sha256(b"hulei-refresh-successor\x00" + master).digest(), b"tok", "sha256")).rstrip(b"=").decode()
    assert successor_refresh_token("tok") != old_successor
    link = sign_link(LinkClaims(key="k", expires=1, content_type="image/jpeg", filename="a.jpg"))
    body = link.split(".")[0]
    old_mac = hmac.new(hashlib.sha256(b"hulei-media-link\x00" + master).digest(),
                       base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)), hashlib.sha256).digest()
    assert read_link(f"{body}.{base64.urlsafe_b64encode(old_mac).rstrip(b'=').decode()}") is None
    assert read_link(link) is not None
    # A cursor MACed with the blind-index key (as before) is not a cursor: that key opens nothing else.
    cursor = encode_cursor({"r": 1})
    payload = cursor.split(".")[0]
    index_mac = hmac.digest(get_settings().id_number_index_key.encode(), b"hulei-cursor\x00" + payload.encode(),
                            "sha256")[:16]
    with pytest.raises(InvalidInput):
        decode_cursor(f"{payload}.{base64.urlsafe_b64encode(index_mac).decode().rstrip('=')}")
    assert decode_cursor(cursor) == {"r": 1}


def test_changing_the_master_secret_changes_every_purpose_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.core import secrets

    before = {p: secrets.purpose_key(p) for p in secrets.Purpose}
    monkeypatch.setenv("HULEI_JWT_SECRET", STRONG_JWT)
    get_settings.cache_clear()
    try:
        after = {p: secrets.purpose_key(p) for p in secrets.Purpose}
    finally:
        get_settings.cache_clear()
    assert all(before[p] != after[p] for p in secrets.Purpose)
