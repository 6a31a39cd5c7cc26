"""Both storage backends with real bytes: a local directory, and an S3-compatible server (moto in
server mode, started on 127.0.0.1 by the tests) reached over HTTP by boto3 and httpx."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select
from sqlmodel import Session, col

from backend.core import clock
from backend.media.models import MediaItem
from backend.media.storage import S3Storage, get_storage
from tests.media.conftest import S3_BUCKET, World, camera_jpeg
from tests.media.test_uploads import put, run_worker


def test_storage_round_trips_bytes(storage_kind: str, tmp_path: Path) -> None:
    storage = get_storage()
    assert storage.name == storage_kind
    source = tmp_path / "photo.bin"
    source.write_bytes(b"\x00\x01" * 5000)
    storage.put_file("originals/x.jpg", source, "image/jpeg")
    storage.put_bytes("derived/x/display.jpg", b"display", "image/jpeg")
    assert storage.get_bytes("originals/x.jpg") == source.read_bytes()
    assert storage.exists("derived/x/display.jpg")
    storage.delete("derived/x/display.jpg")
    assert not storage.exists("derived/x/display.jpg")
    with pytest.raises(FileNotFoundError):
        storage.get_bytes("derived/x/display.jpg")


def test_photo_round_trips_through_upload_worker_and_signed_link(
    storage_kind: str, client: TestClient, world: World, session: Session
) -> None:
    media = uuid.uuid4()
    data = camera_jpeg(2000, 1500, lon=108.32, lat=30.01, seed=11)
    assert put(client, world.volunteer.headers, media, data).status_code == 201
    run_worker()
    row = session.execute(select(MediaItem).where(col(MediaItem.client_uuid) == media)).scalar_one()
    assert row.state == "ready"
    storage = get_storage()
    assert row.original_key is not None
    assert hashlib.sha256(storage.get_bytes(row.original_key)).hexdigest() == hashlib.sha256(data).hexdigest()
    link = client.get(f"/api/v1/media/{media}/link", headers=world.volunteer.headers).json()
    if storage_kind == "s3":
        assert isinstance(storage, S3Storage)
        assert link["url"].startswith(storage.client.meta.endpoint_url)
        assert f"/{S3_BUCKET}/derived/" in link["url"]
        fetched = httpx.get(link["url"])  # straight from the S3 server, no API credentials
    else:
        fetched = client.get(link["url"])
    assert fetched.status_code == 200, fetched.text
    display = Image.open(io.BytesIO(fetched.content))
    assert display.size == (1600, 1200)
    assert len(display.getexif()) == 0
    assert b"Exif" not in fetched.content


def test_s3_objects_are_private_and_reached_only_through_presigned_links(
    media_root: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.media.conftest import use_s3

    use_s3(s3_endpoint, monkeypatch)
    storage = get_storage()
    storage.put_bytes("derived/y/display.jpg", b"jpeg bytes", "image/jpeg")
    url = storage.signed_url("derived/y/display.jpg", expires_at=clock.now() + timedelta(seconds=60),
                             content_type="image/jpeg", filename="y.jpg")
    assert httpx.get(url).content == b"jpeg bytes"
    unsigned = url.split("?", 1)[0]
    assert httpx.get(unsigned).status_code == 403
