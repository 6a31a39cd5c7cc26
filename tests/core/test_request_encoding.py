"""Request bodies sent with Content-Encoding: gzip (a phone on 2G compresses its pushes) are read as
if sent plain; a body that would expand beyond the configured bound is refused early, with little
memory; a corrupt body or an encoding the server does not speak is a clean problem, never a 500."""

from __future__ import annotations

import gzip
import json
import struct
import time
import tracemalloc
import zlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

from backend.core.config import get_settings
from backend.registry.models import Household, Person
from backend.visits.models import Visit
from tests.registry.factories import child_item, grid_centre, household_item, make_world, visit_item

MIB = 1024 * 1024


def _batch() -> list[dict[str, Any]]:
    h = household_item(0)
    return [h, child_item(h["client_uuid"]), *[visit_item(h["client_uuid"], at=grid_centre(0)) for _ in range(3)]]


def _post(client: TestClient, headers: dict[str, str], body: bytes, encoding: str | None = "gzip",
          path: str = "/api/v1/sync/push") -> Any:
    extra = {"Content-Encoding": encoding} if encoding else {}
    return client.post(path, content=body, headers={**headers, "Content-Type": "application/json", **extra})


def _count(session: Session, model: Any) -> int:
    session.expire_all()
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_a_gzip_push_is_stored_exactly_as_the_same_push_sent_plain(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    batch = _batch()
    plain = json.dumps({"items": batch}).encode()
    first = _post(client, w.volunteer_a.headers, gzip.compress(plain))
    assert first.status_code == 200, first.text
    assert [r["status"] for r in first.json()["results"]] == ["created"] * 5
    # The same bytes sent plain are the same records: every one a duplicate, nothing stored twice.
    again = _post(client, w.volunteer_a.headers, plain, encoding=None)
    assert [r["status"] for r in again.json()["results"]] == ["duplicate"] * 5
    assert (_count(session, Household), _count(session, Person), _count(session, Visit)) == (1, 1, 3)
    # And gzip once more, sent in small pieces as a slow link delivers them.
    packed = gzip.compress(plain)
    pieces = (packed[i:i + 100] for i in range(0, len(packed), 100))
    chunked = client.post("/api/v1/sync/push", content=pieces, headers={
        **w.volunteer_a.headers, "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert [r["status"] for r in chunked.json()["results"]] == ["duplicate"] * 5


def test_gzip_works_for_every_json_body_not_only_pushes(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    body = {"name": "某人", "categories": ["1"]}
    resp = _post(client, w.coordinator.headers, gzip.compress(json.dumps(body).encode()), path="/api/v1/risk-persons")
    assert resp.status_code == 201, resp.text
    assert resp.json()["name"] == "某人"


def _bomb(expanded_mib: int) -> bytes:
    """A valid gzip member that expands to `expanded_mib` MiB of zeros, about a thousandth of that on
    the wire. Built without compressing it all: after a full flush the compressor starts afresh, so
    each MiB of zeros compresses to the same bytes, which are repeated."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    packer.compress(bytes(MIB))
    packer.flush(zlib.Z_FULL_FLUSH)
    one_mib = packer.compress(bytes(MIB)) + packer.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(expanded_mib):
        crc = zlib.crc32(bytes(MIB), crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, (expanded_mib * MIB) & 0xFFFFFFFF)
    return header + one_mib * expanded_mib + packer.flush() + trailer


@pytest.fixture(scope="module")
def gigabyte_bomb() -> bytes:
    return _bomb(1024)


def test_a_compression_bomb_is_refused_quickly_with_little_memory(
    client: TestClient, session: Session, gigabyte_bomb: bytes
) -> None:
    w = make_world(client, session)
    limit = get_settings().request_max_decompressed_bytes
    assert len(gigabyte_bomb) < 2 * MIB and limit < 1024 * MIB
    tracemalloc.start()
    started = time.monotonic()
    resp = _post(client, w.volunteer_a.headers, gigabyte_bomb)
    elapsed = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert resp.status_code == 413, resp.text
    problem = resp.json()
    assert resp.headers["content-type"] == "application/problem+json"
    assert problem["code"] == "payload-too-large" and problem["limit_bytes"] == limit
    assert elapsed < 5, elapsed
    # The request body is never held expanded beyond the bound (plus a few buffers).
    assert peak < limit + 24 * MIB, peak // MIB
    assert _count(session, Visit) == 0


def test_the_bound_is_a_setting(client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.main import create_app

    monkeypatch.setenv("HULEI_REQUEST_MAX_DECOMPRESSED_BYTES", str(64 * 1024))
    get_settings.cache_clear()
    w = make_world(client, session)
    with TestClient(create_app()) as small:
        assert _post(small, w.volunteer_a.headers, _bomb(1)).status_code == 413
        ok = _post(small, w.volunteer_a.headers, gzip.compress(json.dumps({"items": _batch()}).encode()))
        assert ok.status_code == 200, ok.text


# mtime=0: the bodies (and so the test ids) are the same in every pytest-xdist worker.
_EMPTY_PUSH = gzip.compress(b'{"items": []}', mtime=0)


@pytest.mark.parametrize("body", [
    b"not gzip at all",
    _EMPTY_PUSH[:-6],  # cut off before its checksum
    _EMPTY_PUSH[:-8] + b"\x00\x00\x00\x00" + _EMPTY_PUSH[-4:],  # bad CRC
    _EMPTY_PUSH + b"trailing junk",
], ids=["not-gzip", "truncated", "bad-crc", "trailing-bytes"])
def test_a_corrupt_gzip_body_is_a_400_problem(client: TestClient, session: Session, body: bytes) -> None:
    w = make_world(client, session)
    resp = _post(client, w.volunteer_a.headers, body)
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == "request-body-encoding-invalid"


def test_an_encoding_the_server_does_not_speak_is_a_415_problem(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    resp = _post(client, w.volunteer_a.headers, b"\x1b\x00", encoding="br")
    assert resp.status_code == 415, resp.text
    assert resp.json()["code"] == "request-body-encoding-unsupported"
    assert resp.headers["accept-encoding"] == "gzip"
    # identity is no encoding at all.
    plain = _post(client, w.volunteer_a.headers, json.dumps({"items": _batch()}).encode(), encoding="identity")
    assert plain.status_code == 200, plain.text
