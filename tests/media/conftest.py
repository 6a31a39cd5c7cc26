"""Photo test fixtures: media storage per test (local directory or a real S3-compatible server
started here: moto in server mode on 127.0.0.1), a demo town with users, real image files."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image, TiffImagePlugin
from sqlalchemy import func, select
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.core.config import get_settings
from backend.core.security import issue_access_token
from backend.demo.town import DemoTown
from backend.media.models import MediaItem
from backend.orgunits.models import OrgUnit
from tests.factories import make_town, make_user

TESTDATA = Path("/work/shared/testdata/pillow-images")
S3_BUCKET = "hulei-media-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible HTTP server (moto) for this test run."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def media_root(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Local storage under this test's directory."""
    root = tmp_path / "media"
    monkeypatch.setenv("HULEI_MEDIA_ROOT", str(root))
    monkeypatch.setenv("HULEI_MEDIA_STORAGE", "local")
    get_settings.cache_clear()
    return root


@pytest.fixture(params=["local", "s3"])
def storage_kind(request: pytest.FixtureRequest, media_root: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test once on each storage backend."""
    kind = str(request.param)
    if kind == "s3":
        use_s3(request.getfixturevalue("s3_endpoint"), monkeypatch)
    return kind


def use_s3(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.media.storage import S3Storage, get_storage

    monkeypatch.setenv("HULEI_MEDIA_STORAGE", "s3")
    monkeypatch.setenv("HULEI_MEDIA_S3_ENDPOINT", endpoint)
    monkeypatch.setenv("HULEI_MEDIA_S3_BUCKET", S3_BUCKET)
    monkeypatch.setenv("HULEI_MEDIA_S3_ACCESS_KEY", "testing")
    monkeypatch.setenv("HULEI_MEDIA_S3_SECRET_KEY", "testing")
    get_settings.cache_clear()
    storage = get_storage()
    assert isinstance(storage, S3Storage)
    storage.ensure_bucket()
    # Each test starts with an empty bucket.
    for obj in storage.client.list_objects_v2(Bucket=S3_BUCKET).get("Contents", []):
        storage.client.delete_object(Bucket=S3_BUCKET, Key=obj["Key"])


@dataclass(frozen=True)
class Caller:
    user_id: int
    headers: dict[str, str]


def caller(session: Session, unit: OrgUnit, *roles: Role) -> Caller:
    """A new user holding `roles` at `unit`, with a real access token (as login would issue; the
    login endpoint itself is tested in tests/accounts, and password hashing would slow these)."""
    user = make_user(session, unit, *roles)
    assert user.id is not None and unit.id is not None
    token, _ = issue_access_token(user.id, [r.value for r in roles], unit.id)
    return Caller(user.id, {"Authorization": f"Bearer {token}"})


@dataclass
class World:
    town: DemoTown
    volunteer: Caller  # village 0
    colleague: Caller  # another volunteer of village 0
    stranger: Caller  # volunteer of village 1
    police: Caller  # police at the town (covers every village)
    admin: Caller


@pytest.fixture
def world(client: TestClient, session: Session, media_root: Path) -> World:
    town = make_town(session)
    return World(
        town=town,
        volunteer=caller(session, town.villages[0], Role.volunteer),
        colleague=caller(session, town.villages[0], Role.volunteer),
        stranger=caller(session, town.villages[1], Role.volunteer),
        police=caller(session, town.town, Role.police),
        admin=caller(session, town.town, Role.admin),
    )


def media_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(MediaItem)).scalar_one())


def stored_files(root: Path) -> list[Path]:
    """Every file under the local media root (objects and staging)."""
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _rational(value: float, denominator: int = 10000) -> TiffImagePlugin.IFDRational:
    fraction = Fraction(value).limit_denominator(denominator)
    return TiffImagePlugin.IFDRational(fraction.numerator, fraction.denominator)


def _dms(value: float) -> tuple[TiffImagePlugin.IFDRational, ...]:
    value = abs(value)
    degrees = int(value)
    minutes_full = (value - degrees) * 60
    minutes = int(minutes_full)
    seconds = (minutes_full - minutes) * 60
    return (_rational(degrees, 1), _rational(minutes, 1), _rational(seconds, 10000))


def camera_jpeg(
    width: int = 640,
    height: int = 480,
    *,
    lon: float | None = None,
    lat: float | None = None,
    alt_m: float | None = None,
    taken_at: str | None = "2026:03:14 09:26:53",
    orientation: int | None = None,
    quality: int = 90,
    seed: int = 1,
) -> bytes:
    """A real JPEG written by Pillow with EXIF (GPS as degree/minute/second rationals)."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    overlay = Image.effect_noise((width, height), 40 + seed).convert("RGB")
    image = Image.blend(image, overlay, 0.3)
    # An asymmetric mark so orientation can be checked: a red block in the top-left corner.
    image.paste((255, 0, 0), (0, 0, max(1, width // 4), max(1, height // 8)))
    exif = Image.Exif()
    exif[0x010F] = "HuleiTestCam"
    if orientation is not None:
        exif[0x0112] = orientation
    if taken_at is not None:
        sub = exif.get_ifd(0x8769)
        sub[0x9003] = taken_at
        sub[0x9011] = "+08:00"
    if lat is not None and lon is not None:
        gps = exif.get_ifd(0x8825)
        gps[0] = b"\x02\x03\x00\x00"
        gps[1] = "N" if lat >= 0 else "S"
        gps[2] = _dms(lat)
        gps[3] = "E" if lon >= 0 else "W"
        gps[4] = _dms(lon)
        if alt_m is not None:
            gps[5] = b"\x00" if alt_m >= 0 else b"\x01"
            gps[6] = _rational(abs(alt_m), 100)
        gps[7] = (_rational(1, 1), _rational(26, 1), _rational(53, 1))
        gps[29] = "2026:03:14"
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality, exif=exif.tobytes(),
               xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>')
    return buf.getvalue()


def png_bomb(width: int = 40000, height: int = 40000) -> bytes:
    """A PNG whose header declares width x height pixels (a decompression bomb in a few bytes)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def taken(value: str) -> datetime:
    return datetime.fromisoformat(value)
