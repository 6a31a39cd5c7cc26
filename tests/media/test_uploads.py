"""Uploading photos over HTTP: idempotency, resumable chunks, refusals that keep nothing, access."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image
from sqlalchemy import select
from sqlmodel import Session, col

from backend.audit.models import AuditEntry
from backend.core import clock
from backend.core.config import get_settings
from backend.core.db import session_scope
from backend.core.jobs import run_due_jobs
from backend.media import scheduled
from backend.media.models import MediaItem
from tests.media.conftest import TESTDATA, World, camera_jpeg, media_count, png_bomb, stored_files

VISIT = uuid.UUID("00000000-0000-4000-8000-00000000a001")


def put(client: TestClient, headers: dict[str, str], media_uuid: uuid.UUID, data: bytes, *,
        content_range: str | None = None, parent: uuid.UUID = VISIT, kind: str = "visit") -> Response:
    h = {**headers, "Content-Type": "image/jpeg"}
    if content_range is not None:
        h["Content-Range"] = content_range
    return client.put(f"/api/v1/media/{media_uuid}", params={"parent_kind": kind, "parent_uuid": str(parent)},
                      content=data, headers=h)


def run_worker() -> int:
    with session_scope() as s:
        return scheduled.process_received(s)


def test_photo_upload_answers_at_once_and_the_worker_makes_it_ready_with_its_gps(
    client: TestClient, world: World, session: Session
) -> None:
    media = uuid.uuid4()
    data = camera_jpeg(1200, 900, lon=108.3412345, lat=30.0123456, alt_m=512.3)
    resp = put(client, world.volunteer.headers, media, data)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["state"] == "received"
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["linked"] is False
    assert "max-bytes=20971520" in resp.headers["X-Hulei-Upload-Limits"]
    assert "max-pixels=60000000" in resp.headers["X-Hulei-Upload-Limits"]

    ran = run_due_jobs()
    assert "media.process" in ran
    item = client.get(f"/api/v1/media/{media}", headers=world.volunteer.headers).json()
    assert item["state"] == "ready"
    assert item["has_gps"] is True
    assert item["width"] == 1200 and item["height"] == 900
    assert item["taken_at"].startswith("2026-03-14T01:26:53")  # 09:26:53 +08:00
    row = session.execute(select(MediaItem).where(col(MediaItem.client_uuid) == media)).scalar_one()
    assert row.gps_lat == pytest.approx(30.0123456, abs=1e-6)
    assert row.gps_lon == pytest.approx(108.3412345, abs=1e-6)
    assert row.gps_alt_m == pytest.approx(512.3, abs=0.01)
    assert row.gps_at is not None and clock.as_utc(row.gps_at).isoformat().startswith("2026-03-14T01:26:53")


def test_same_uuid_and_same_bytes_returns_the_stored_photo(client: TestClient, world: World, session: Session) -> None:
    media = uuid.uuid4()
    data = camera_jpeg(seed=2)
    first = put(client, world.volunteer.headers, media, data)
    again = put(client, world.volunteer.headers, media, data)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["sha256"] == first.json()["sha256"]
    assert media_count(session) == 1


def test_two_racing_first_uploads_of_one_photo_store_it_once(world: World, session: Session) -> None:
    """Two connections of a phone on a flaky network send the same photo at once."""
    from concurrent.futures import ThreadPoolExecutor

    from backend.main import create_app

    media = uuid.uuid4()
    data = camera_jpeg(seed=5)

    def send(_: int) -> int:
        with TestClient(create_app()) as c:
            return put(c, world.volunteer.headers, media, data).status_code

    with ThreadPoolExecutor(2) as pool:
        codes = sorted(pool.map(send, range(2)))
    # One stores it (201); the other sees it stored (200) or is told to ask for the status (409).
    assert codes in ([200, 201], [201, 409]), codes
    assert media_count(session) == 1


def test_same_uuid_with_different_bytes_is_a_conflict(client: TestClient, world: World, session: Session) -> None:
    media = uuid.uuid4()
    assert put(client, world.volunteer.headers, media, camera_jpeg(seed=3)).status_code == 201
    resp = put(client, world.volunteer.headers, media, camera_jpeg(seed=4))
    assert resp.status_code == 409
    assert resp.json()["code"] == "media-conflict"
    assert media_count(session) == 1


def _truncated_camera_jpeg() -> bytes:
    data = camera_jpeg(800, 600, seed=5)
    return data[: len(data) * 2 // 3]


HOSTILE = {
    "zero-byte body": (lambda: b"", 400, "media-empty"),
    "text file named .jpg": (lambda: b"This is not a photo, just text pretending.\n" * 20, 415,
                             "media-unsupported-type"),
    "truncated camera JPEG": (_truncated_camera_jpeg, 422, "media-corrupt"),
    "truncated_jpeg.jpg": (lambda: (TESTDATA / "truncated_jpeg.jpg").read_bytes(), 422, "media-corrupt"),
    "png_decompression_dos.png": (lambda: (TESTDATA / "png_decompression_dos.png").read_bytes(), 422,
                                  "media-corrupt"),
    "decompression_bomb.gif": (lambda: (TESTDATA / "decompression_bomb.gif").read_bytes(), 415,
                               "media-unsupported-type"),
    "PNG declaring 1.6 gigapixels": (png_bomb, 413, "media-too-many-pixels"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_upload_gets_a_clear_problem_and_nothing_is_stored(
    client: TestClient, world: World, session: Session, media_root: Path, case: str
) -> None:
    make, status, code = HOSTILE[case]
    resp = put(client, world.volunteer.headers, uuid.uuid4(), make())
    assert resp.status_code == status, resp.text
    problem = resp.json()
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == code
    assert problem["detail"]
    assert "X-Hulei-Upload-Limits" in resp.headers
    if code == "media-too-many-pixels":
        assert problem["limit_pixels"] == 60_000_000
        assert problem["received_pixels"] == 40000 * 40000
    assert media_count(session) == 0
    assert stored_files(media_root) == []


def test_too_large_photo_is_refused_naming_the_limit_and_the_size(
    client: TestClient, world: World, session: Session, media_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HULEI_MEDIA_MAX_BYTES", "50000")
    get_settings.cache_clear()
    data = camera_jpeg(1000, 800, seed=6)
    assert len(data) > 50000
    resp = put(client, world.volunteer.headers, uuid.uuid4(), data)
    assert resp.status_code == 413
    problem = resp.json()
    assert problem["code"] == "media-too-large"
    assert problem["limit_bytes"] == 50000
    assert problem["received_bytes"] == len(data)
    assert "max-bytes=50000" in resp.headers["X-Hulei-Upload-Limits"]
    assert media_count(session) == 0
    assert stored_files(media_root) == []


def test_chunked_upload_of_too_large_photo_is_refused_at_the_first_chunk(
    client: TestClient, world: World, session: Session, media_root: Path
) -> None:
    total = 21 * 1024 * 1024
    resp = put(client, world.volunteer.headers, uuid.uuid4(), camera_jpeg()[:1000],
               content_range=f"bytes 0-999/{total}")
    assert resp.status_code == 413
    assert resp.json()["received_bytes"] == total
    assert media_count(session) == 0
    assert stored_files(media_root) == []


@pytest.mark.parametrize(
    "name", ["exif_gps_zero_denominator.jpg", "exif_gps.jpg", "empty_gps_ifd.jpg", "exif_typeerror.jpg",
             "exif_zerodivisionerror.jpg", "invalid-exif.jpg", "hopper_bad_exif.jpg", "junk_jpeg_header.jpg"]
)
def test_valid_photo_with_malformed_exif_is_accepted_with_bad_gps_treated_as_missing(
    client: TestClient, world: World, name: str
) -> None:
    media = uuid.uuid4()
    resp = put(client, world.volunteer.headers, media, (TESTDATA / name).read_bytes())
    assert resp.status_code == 201, resp.text
    run_worker()
    item = client.get(f"/api/v1/media/{media}", headers=world.volunteer.headers).json()
    assert item["state"] == "ready"
    assert item["has_gps"] is False


def test_partly_corrupt_exif_still_yields_its_valid_gps(client: TestClient, world: World, session: Session) -> None:
    media = uuid.uuid4()
    assert put(client, world.volunteer.headers, media, (TESTDATA / "corrupt_exif.jpg").read_bytes()).status_code == 201
    run_worker()
    row = session.execute(select(MediaItem).where(col(MediaItem.client_uuid) == media)).scalar_one()
    assert row.state == "ready"
    assert row.gps_lat == pytest.approx(36 + 54.1343 / 60, abs=1e-6)
    assert row.gps_lon == pytest.approx(-(111 + 24.7588 / 60), abs=1e-6)


def test_interrupted_chunked_upload_resumes_from_the_server_offset_and_ends_byte_identical(
    client: TestClient, world: World, session: Session, media_root: Path
) -> None:
    media = uuid.uuid4()
    data = camera_jpeg(1600, 1200, lon=108.33, lat=30.02, seed=7)
    total = len(data)
    h = world.volunteer.headers
    first = put(client, h, media, data[:100_000], content_range=f"bytes 0-99999/{total}")
    assert first.status_code == 202, first.text
    assert first.headers["Upload-Offset"] == "100000"
    assert first.json()["state"] == "receiving"
    # The connection dropped while the second chunk was in flight: the phone asks what arrived.
    status = client.head(f"/api/v1/media/{media}/upload", headers=h)
    assert status.status_code == 200
    assert status.headers["Upload-Offset"] == "100000"
    # A chunk that skips ahead is refused with the offset to continue from.
    gap = put(client, h, media, data[150_000:200_000], content_range=f"bytes 150000-199999/{total}")
    assert gap.status_code == 409
    assert gap.json()["code"] == "media-upload-offset"
    assert gap.json()["received_bytes"] == 100_000
    # Re-sending from a little before the offset is harmless; the rest completes the photo.
    middle = put(client, h, media, data[90_000:200_000], content_range=f"bytes 90000-199999/{total}")
    assert middle.status_code == 202
    assert client.get(f"/api/v1/media/{media}/upload", headers=h).json()["received_bytes"] == 200_000
    last = put(client, h, media, data[200_000:], content_range=f"bytes 200000-{total - 1}/{total}")
    assert last.status_code == 201, last.text
    assert last.json()["sha256"] == hashlib.sha256(data).hexdigest()
    # The stored original is the exact bytes sent (police may fetch it).
    original = client.get(f"/api/v1/media/{media}/original", headers=world.police.headers)
    assert original.status_code == 200
    assert original.content == data
    assert not list((media_root / "staging").iterdir())
    # Re-sending the final chunk after completion (its answer was lost) returns the stored item.
    again = put(client, h, media, data[200_000:], content_range=f"bytes 200000-{total - 1}/{total}")
    assert again.status_code == 200


def test_chunked_upload_of_a_text_file_is_refused_at_its_first_chunk(
    client: TestClient, world: World, session: Session, media_root: Path
) -> None:
    text = b"hello, not an image at all\n" * 100
    resp = put(client, world.volunteer.headers, uuid.uuid4(), text[:1000], content_range=f"bytes 0-999/{len(text)}")
    assert resp.status_code == 415
    assert media_count(session) == 0
    assert stored_files(media_root) == []


def test_chunked_upload_that_completes_as_a_truncated_jpeg_leaves_nothing(
    client: TestClient, world: World, session: Session, media_root: Path
) -> None:
    data = _truncated_camera_jpeg()
    media = uuid.uuid4()
    half = len(data) // 2
    assert put(client, world.volunteer.headers, media, data[:half],
               content_range=f"bytes 0-{half - 1}/{len(data)}").status_code == 202
    resp = put(client, world.volunteer.headers, media, data[half:],
               content_range=f"bytes {half}-{len(data) - 1}/{len(data)}")
    assert resp.status_code == 422
    assert resp.json()["code"] == "media-corrupt"
    assert media_count(session) == 0
    assert stored_files(media_root) == []


def test_abandoned_upload_expires_and_the_worker_removes_its_chunks(
    client: TestClient, world: World, session: Session, media_root: Path
) -> None:
    media = uuid.uuid4()
    data = camera_jpeg(seed=8)
    assert put(client, world.volunteer.headers, media, data[:5000],
               content_range=f"bytes 0-4999/{len(data)}").status_code == 202
    assert list((media_root / "staging").iterdir())
    clock.advance(timedelta(hours=23))
    with session_scope() as s:
        assert scheduled.expire_uploads(s) == 0
    clock.advance(timedelta(hours=2))
    with session_scope() as s:
        assert scheduled.expire_uploads(s) == 1
    assert media_count(session) == 0
    assert not list((media_root / "staging").iterdir())


def test_malformed_content_range_is_a_bad_request(client: TestClient, world: World) -> None:
    resp = put(client, world.volunteer.headers, uuid.uuid4(), b"x" * 10, content_range="bytes=0-9")
    assert resp.status_code == 400
    assert resp.json()["code"] == "media-bad-range"


def test_unknown_parent_kind_is_refused(client: TestClient, world: World, session: Session) -> None:
    resp = put(client, world.volunteer.headers, uuid.uuid4(), camera_jpeg(), kind="household-secret")
    assert resp.status_code == 422
    assert resp.json()["code"] == "media-invalid-parent"
    assert media_count(session) == 0


def test_volunteer_of_another_village_cannot_see_or_fetch_an_unlinked_photo(
    client: TestClient, world: World
) -> None:
    media = uuid.uuid4()
    assert put(client, world.volunteer.headers, media, camera_jpeg(seed=9)).status_code == 201
    run_worker()
    for path in (f"/api/v1/media/{media}", f"/api/v1/media/{media}/link", f"/api/v1/media/{media}/upload"):
        assert client.get(path, headers=world.stranger.headers).status_code == 404, path
    # Not even by re-sending the same bytes to the UUID.
    assert put(client, world.stranger.headers, media, camera_jpeg(seed=9)).status_code == 404
    assert client.get("/api/v1/media", params={"parent_kind": "visit", "parent_uuid": str(VISIT)},
                      headers=world.stranger.headers).json() == []
    # A colleague of the same village sees it, in the record's list too.
    link = client.get(f"/api/v1/media/{media}/link", headers=world.colleague.headers)
    assert link.status_code == 200
    listed = client.get("/api/v1/media", params={"parent_kind": "visit", "parent_uuid": str(VISIT)},
                        headers=world.colleague.headers).json()
    assert [i["client_uuid"] for i in listed] == [str(media)]


def test_originals_are_hidden_from_field_roles_and_every_police_fetch_is_audited(
    client: TestClient, world: World, session: Session
) -> None:
    media = uuid.uuid4()
    data = camera_jpeg(lon=108.31, lat=30.01, seed=10)
    assert put(client, world.volunteer.headers, media, data).status_code == 201
    for who in (world.volunteer, world.colleague, world.stranger, world.admin):
        assert client.get(f"/api/v1/media/{media}/original", headers=who.headers).status_code == 404
    resp = client.get(f"/api/v1/media/{media}/original", headers=world.police.headers)
    assert resp.status_code == 200
    assert resp.content == data
    entries = session.execute(
        select(AuditEntry).where(col(AuditEntry.action) == "media.original.read")
    ).scalars().all()
    assert len(entries) == 1
    assert entries[0].object_id == str(media)
    assert entries[0].details["sha256"] == hashlib.sha256(data).hexdigest()


def test_signed_link_serves_a_stripped_derivative_until_it_expires(
    client: TestClient, world: World, media_root: Path
) -> None:
    media = uuid.uuid4()
    assert put(client, world.volunteer.headers, media, camera_jpeg(2400, 1800, lon=108.3, lat=30.0)).status_code == 201
    assert client.get(f"/api/v1/media/{media}/link", headers=world.volunteer.headers).status_code == 409
    run_worker()
    link = client.get(f"/api/v1/media/{media}/link", headers=world.volunteer.headers).json()
    assert link["url"].startswith("/api/v1/media-files/")
    fetched = client.get(link["url"])  # no bearer token: the link is the authorisation
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "image/jpeg"
    display = Image.open(io.BytesIO(fetched.content))
    assert display.size == (1600, 1200)
    assert len(display.getexif()) == 0
    assert b"Exif" not in fetched.content and b"xmpmeta" not in fetched.content
    thumb = client.get(client.get(f"/api/v1/media/{media}/link", params={"variant": "thumbnail"},
                                  headers=world.volunteer.headers).json()["url"])
    assert Image.open(io.BytesIO(thumb.content)).size == (320, 240)
    # Forged or altered tokens are unknown; an expired one says so.
    token = link["url"].rsplit("/", 1)[1]
    assert client.get("/api/v1/media-files/" + token[:-2] + "AA").status_code == 404
    clock.advance(timedelta(seconds=get_settings().media_link_seconds + 1))
    expired = client.get(link["url"])
    assert expired.status_code == 410
    assert expired.json()["code"] == "media-link-expired"
