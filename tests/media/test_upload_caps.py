"""Unfinished uploads are bounded: per user in count and announced bytes (429), in all in bytes really
held in staging (503), counting only uploads still receiving and unexpired; an unfinished upload
expires a fixed time after its first chunk, whatever it is sent after; requests racing past a cap from several app
instances pass it no more than one at a time; the worker forgets every expired upload, row and
staged chunks (one grid worker once reserved 39 GiB for a day with 2,000 first chunks)."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.config import get_settings
from backend.core.db import session_scope
from backend.core.security import issue_access_token
from backend.media import scheduled
from backend.media.models import MediaItem
from tests.media.conftest import Caller, World, caller, camera_jpeg, media_count

VISIT = uuid.UUID("00000000-0000-4000-8000-00000000c001")
PHOTO = camera_jpeg(seed=11)
CHUNK = 4000


def first_chunk(client: TestClient, who: Caller, media: uuid.UUID | None = None, data: bytes = PHOTO) -> Response:
    return client.put(f"/api/v1/media/{media or uuid.uuid4()}", content=data[:CHUNK],
                      params={"parent_kind": "visit", "parent_uuid": str(VISIT)},
                      headers={**who.headers, "Content-Range": f"bytes 0-{CHUNK - 1}/{len(data)}"})


def rest(client: TestClient, who: Caller, media: uuid.UUID, data: bytes = PHOTO) -> Response:
    return client.put(f"/api/v1/media/{media}", content=data[CHUNK:],
                      params={"parent_kind": "visit", "parent_uuid": str(VISIT)},
                      headers={**who.headers, "Content-Range": f"bytes {CHUNK}-{len(data) - 1}/{len(data)}"})


def staged(root: Path) -> list[Path]:
    staging = root / "staging"
    return sorted(p for p in staging.iterdir() if p.suffix == ".part") if staging.exists() else []


def limit(monkeypatch: pytest.MonkeyPatch, **values: int) -> None:
    for name, value in values.items():
        monkeypatch.setenv(f"HULEI_MEDIA_UNFINISHED_{name.upper()}", str(value))
    get_settings.cache_clear()


def test_the_twenty_first_unfinished_upload_of_a_phone_is_refused_naming_the_others(
    client: TestClient, world: World, session: Session, media_root: Path
) -> None:
    started = []
    for _ in range(20):
        media = uuid.uuid4()
        assert first_chunk(client, world.volunteer, media).status_code == 202
        started.append(str(media))
    resp = first_chunk(client, world.volunteer)
    assert resp.status_code == 429
    assert resp.headers["content-type"] == "application/problem+json"
    problem = resp.json()
    assert problem["code"] == "media-too-many-unfinished"
    assert problem["title"] == "未完成的照片上传过多，请先续传完成之前的照片"
    assert (problem["unfinished_uploads"], problem["limit_uploads"]) == (20, 20)
    assert sorted(problem["client_uuids"]) == sorted(started)
    assert 0 < int(resp.headers["Retry-After"]) <= 24 * 3600
    english = first_chunk(client, world.volunteer.__class__(world.volunteer.user_id, {
        **world.volunteer.headers, "Accept-Language": "en"}))
    assert "Finish them first" in english.json()["detail"]
    assert media_count(session) == 20 and len(staged(media_root)) == 20
    # A photo sent whole takes no staging space and is still taken; so is another phone's upload.
    assert client.put(f"/api/v1/media/{uuid.uuid4()}", content=PHOTO, headers=world.volunteer.headers,
                      params={"parent_kind": "visit", "parent_uuid": str(VISIT)}).status_code == 201
    assert first_chunk(client, world.colleague).status_code == 202


def test_announced_bytes_count_toward_a_phones_share(
    client: TestClient, world: World, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit(monkeypatch, max_bytes_per_user=2 * len(PHOTO) + 100)
    assert first_chunk(client, world.volunteer).status_code == 202
    assert first_chunk(client, world.volunteer).status_code == 202
    resp = first_chunk(client, world.volunteer)
    assert resp.status_code == 429
    assert resp.json()["unfinished_bytes"] == 2 * len(PHOTO)
    assert resp.json()["limit_bytes"] == 2 * len(PHOTO) + 100
    assert media_count(session) == 2


def test_finishing_an_upload_frees_its_share(
    client: TestClient, world: World, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit(monkeypatch, max_per_user=1)
    media = uuid.uuid4()
    assert first_chunk(client, world.volunteer, media).status_code == 202
    assert first_chunk(client, world.volunteer).status_code == 429
    assert rest(client, world.volunteer, media).status_code == 201
    assert first_chunk(client, world.volunteer).status_code == 202


def test_expired_uploads_count_no_more_and_the_worker_removes_their_rows_and_chunks(
    client: TestClient, world: World, session: Session, media_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit(monkeypatch, max_per_user=2)
    old = [uuid.uuid4(), uuid.uuid4()]
    for media in old:
        assert first_chunk(client, world.volunteer, media).status_code == 202
    assert first_chunk(client, world.volunteer).status_code == 429
    clock.advance(timedelta(hours=25))
    token, _ = issue_access_token(world.volunteer.user_id, [Role.volunteer.value], world.town.villages[0].id or 0)
    volunteer = Caller(world.volunteer.user_id, {"Authorization": f"Bearer {token}"})  # a day later
    fresh = uuid.uuid4()
    assert first_chunk(client, volunteer, fresh).status_code == 202  # before any cleanup ran
    # The server holds nothing of an expired upload: its status is 404, its next chunk starts it over.
    assert client.get(f"/api/v1/media/{old[0]}/upload", headers=volunteer.headers).status_code == 404
    assert rest(client, volunteer, old[0]).status_code == 409
    with session_scope() as s:
        assert scheduled.expire_uploads(s) >= 2
    assert media_count(session) == 1
    assert [p.stem for p in staged(media_root)] == [str(fresh)]


def test_one_run_of_the_worker_forgets_every_expired_upload(
    client: TestClient, world: World, session: Session, media_root: Path
) -> None:
    """More than one batch: 2,000 abandoned first chunks must not take a day of hourly runs."""
    staging = media_root / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    unit = world.town.villages[0].id or 0
    expired = clock.now() - timedelta(minutes=1)
    for _ in range(scheduled.EXPIRE_BATCH + 20):
        media = uuid.uuid4()
        session.add(MediaItem(client_uuid=media, parent_kind="visit", parent_uuid=VISIT, org_unit_id=unit,
                              uploader_user_id=world.volunteer.user_id, uploader_org_unit_id=unit,
                              total_bytes=len(PHOTO), received_bytes=CHUNK, expires_at=expired))
        (staging / f"{media}.part").write_bytes(b"x" * 16)
    session.commit()
    with session_scope() as s:
        scheduled.expire_uploads(s)
    assert media_count(session) == 0
    assert staged(media_root) == []


def test_unfinished_uploads_of_everyone_are_bounded_in_bytes(
    client: TestClient, world: World, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit(monkeypatch, max_bytes_total=2 * CHUNK + 100)
    assert first_chunk(client, world.volunteer).status_code == 202
    assert first_chunk(client, world.colleague).status_code == 202
    resp = first_chunk(client, world.stranger)
    assert resp.status_code == 503
    assert resp.json()["code"] == "media-staging-full"
    assert resp.json()["title"] == "服务器上传暂存空间已满，请稍后再上传"
    assert int(resp.headers["Retry-After"]) > 0
    assert media_count(session) == 2


def _upload_as(world: World, who: Caller) -> Caller:
    """The (village 0 volunteer) caller with a token fresh at the clock's present time."""
    token, _ = issue_access_token(who.user_id, [Role.volunteer.value], world.town.villages[0].id or 0)
    return Caller(who.user_id, {"Authorization": f"Bearer {token}"})


def test_resending_a_chunk_never_moves_the_expiry_of_an_unfinished_upload(
    client: TestClient, world: World, session: Session, media_root: Path
) -> None:
    """One tiny PUT a day of a chunk the server already holds kept staging space for good."""
    media = uuid.uuid4()
    started = first_chunk(client, world.volunteer, media)
    assert started.status_code == 202
    expires = started.json()["expires_at"]
    for hours in (8, 8, 7):  # 23 h later, the first chunk again (zero new bytes), then a real one
        clock.advance(timedelta(hours=hours))
        again = first_chunk(client, _upload_as(world, world.volunteer), media)
        assert again.status_code == 202
        assert again.json()["expires_at"] == expires
    more = client.put(f"/api/v1/media/{media}", content=PHOTO[CHUNK:2 * CHUNK],
                      params={"parent_kind": "visit", "parent_uuid": str(VISIT)},
                      headers={**_upload_as(world, world.volunteer).headers,
                               "Content-Range": f"bytes {CHUNK}-{2 * CHUNK - 1}/{len(PHOTO)}"})
    assert more.status_code == 202 and more.json()["expires_at"] == expires
    assert more.json()["received_bytes"] == 2 * CHUNK
    clock.advance(timedelta(hours=1, minutes=1))  # 24 h after the first chunk: gone
    volunteer = _upload_as(world, world.volunteer)
    assert client.get(f"/api/v1/media/{media}/upload", headers=volunteer.headers).status_code == 404
    with session_scope() as s:
        assert scheduled.expire_uploads(s) == 1
    assert media_count(session) == 0 and staged(media_root) == []


def test_announced_totals_take_no_staging_space_but_bytes_really_held_do(
    client: TestClient, world: World, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """28 accounts x 10 uploads announcing 20 MB with 1 KB each filled 5 GB and shut everyone out."""
    limit(monkeypatch, max_bytes_total=20 * CHUNK)
    huge = 20_000_000  # announced, within media_max_bytes; only CHUNK bytes of each are ever sent
    phones = [caller(session, world.town.villages[0], Role.volunteer) for _ in range(4)]
    uploads = []
    for phone in phones:
        for _ in range(4):
            media = uuid.uuid4()
            resp = client.put(f"/api/v1/media/{media}", content=PHOTO[:CHUNK],
                              params={"parent_kind": "visit", "parent_uuid": str(VISIT)},
                              headers={**phone.headers, "Content-Range": f"bytes 0-{CHUNK - 1}/{huge}"})
            assert resp.status_code == 202, resp.text
            uploads.append((phone, media))
    # 320 MB announced, 64,000 bytes held: someone else's photo still starts.
    assert first_chunk(client, world.stranger).status_code == 202
    # Really sending data fills the space: 16,000 more bytes of one upload (a chunk continuing an
    # upload is never refused), and now the staging space holds 84,000 bytes, more than 80,000.
    phone, media = uploads[0]
    assert client.put(f"/api/v1/media/{media}", content=b"\0" * 4 * CHUNK,
                      params={"parent_kind": "visit", "parent_uuid": str(VISIT)},
                      headers={**phone.headers, "Content-Range": f"bytes {CHUNK}-{5 * CHUNK - 1}/{huge}"}
                      ).status_code == 202
    full = first_chunk(client, world.colleague)
    assert full.status_code == 503
    assert full.json()["code"] == "media-staging-full"
    assert media_count(session) == 17


def _race(world: World, who: list[Caller]) -> list[int]:
    """Each caller starts a new upload through its own app instance, all at the same instant."""
    from backend.main import create_app

    barrier = threading.Barrier(len(who))
    codes: list[int] = []

    def send(c: Caller) -> None:
        with TestClient(create_app()) as client:
            barrier.wait()
            codes.append(first_chunk(client, c).status_code)

    threads = [threading.Thread(target=send, args=(c,)) for c in who]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(codes)


def test_racing_first_chunks_of_one_phone_pass_its_cap_one_at_a_time(
    world: World, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit(monkeypatch, max_per_user=3)
    assert _race(world, [world.volunteer] * 8) == [202] * 3 + [429] * 5
    assert media_count(session) == 3


def test_racing_first_chunks_of_many_phones_pass_the_total_one_at_a_time(
    world: World, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit(monkeypatch, max_bytes_total=3 * CHUNK)
    phones = [caller(session, world.town.villages[0], Role.volunteer) for _ in range(8)]
    assert _race(world, phones) == [202] * 3 + [503] * 5
    assert media_count(session) == 3
