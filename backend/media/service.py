"""Photo rules: idempotent and resumable uploads, parent linking, access, background processing.

Upload protocol (mobile_api_spec/media.md): `PUT /media/{client_uuid}` with the whole photo, or
with `Content-Range: bytes start-end/total` for one chunk. Chunks are appended to a staging file
and the offset is kept in `media_item.received_bytes`; the last chunk completes the upload. A
complete upload is judged by its bytes (processing.check_upload); a refused one is forgotten
entirely (row and staging file), so a retry of the same bytes is refused the same way.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Column, ColumnElement, Exists, and_, exists, func, literal_column, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from backend.accounts import scope
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.core import clock
from backend.core.config import get_settings
from backend.core.db import one_of
from backend.core.geo import distance_m
from backend.media import processing
from backend.media.errors import (
    MediaBadRange,
    MediaConflict,
    MediaInvalidParent,
    MediaLinkExpired,
    MediaNotFound,
    MediaNotReady,
    MediaParentNotAuthors,
    MediaRefused,
    MediaStagingFull,
    MediaTooManyUnfinished,
    MediaUnsupportedType,
    MediaUploadInProgress,
    MediaUploadOffset,
)
from backend.media.models import MediaItem, MediaState
from backend.media.parents import ParentRecord, known_kinds, resolve_parent
from backend.media.schemas import SignedLink, Variant
from backend.media.storage import (
    DERIVED_PREFIX,
    ORIGINALS_PREFIX,
    LinkClaims,
    LocalStorage,
    get_storage,
    read_link,
    staging_dir,
)
from backend.orgunits import service as orgunits

log = logging.getLogger(__name__)

_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/heic": "heic"}
_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
MAX_PROCESSING_ATTEMPTS = 5
# pg_advisory_xact_lock key: one new unfinished upload at a time is checked against the caps.
_STAGING_LOCK = 4004001
# Seconds a phone is asked to wait when the staging space of all users is full.
STAGING_FULL_RETRY_AFTER_SECONDS = 900


def limits() -> processing.Limits:
    """The upload limits in force (published in the spec and the X-Hulei-Upload-Limits header)."""
    s = get_settings()
    return processing.Limits(max_bytes=s.media_max_bytes, max_pixels=s.media_max_pixels)


@dataclass(frozen=True)
class ContentRange:
    start: int
    end: int  # inclusive
    total: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_content_range(value: str | None) -> ContentRange | None:
    """`bytes start-end/total` (inclusive end), or None when the header is absent."""
    if value is None:
        return None
    match = _RANGE.match(value.strip())
    if match is None:
        raise MediaBadRange(
            "Content-Range 应为 “bytes 起始-结束/总长”", "Content-Range must be 'bytes start-end/total'",
            received=value[:100],
        )
    start, end, total = (int(g) for g in match.groups())
    if end < start or end >= total:
        raise MediaBadRange("Content-Range 范围无效", "Content-Range start/end/total are inconsistent",
                            received=value[:100])
    return ContentRange(start, end, total)


@dataclass(frozen=True)
class UploadOutcome:
    """What a PUT did. `refusal` is set when the bytes were refused: the router answers with it
    after the session commits the removal of what an earlier chunk had stored."""

    item: MediaItem | None
    created: bool = False
    refusal: MediaRefused | None = None

    @property
    def complete(self) -> bool:
        return self.item is not None and self.item.state != MediaState.receiving.value


def spool_path(client_uuid: uuid.UUID) -> Path:
    """A fresh file for one request's body (the router streams into it)."""
    return staging_dir() / f"{client_uuid}.{uuid.uuid4().hex}.spool"


def _staging_file(client_uuid: uuid.UUID) -> Path:
    return staging_dir() / f"{client_uuid}.part"


def _get(session: Session, client_uuid: uuid.UUID, *, lock: bool = False) -> MediaItem | None:
    query = select(MediaItem).where(col(MediaItem.client_uuid) == client_uuid)
    if lock:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def _visible(session: Session, principal: Principal, item: MediaItem) -> bool:
    """Whether the caller may see the photo: in its jurisdiction, and for a helper a photo of a visit
    of an assigned child's household or one it took itself (accounts.scope)."""
    if not principal.by_assignment(Action.media_read):
        path = orgunits.unit_path(session, item.org_unit_id)
        return path is not None and principal.covers(path)
    return session.execute(
        select(col(MediaItem.id)).where(col(MediaItem.id) == item.id, scope.visible(principal, MediaItem))
    ).first() is not None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _check_parent(kind: str) -> None:
    if kind not in known_kinds():
        kinds = ", ".join(sorted(known_kinds()))
        raise MediaInvalidParent(f"所属记录类型应为 {kinds}", f"parent_kind must be one of {kinds}",
                                 received=kind[:40])


def _refuse_unless_image_head(path: Path) -> None:
    with path.open("rb") as fh:
        head = fh.read(32)
    if len(head) >= 12 and processing.sniff(head) is None:
        kind = processing.describe(head)
        accepted = sorted(processing.CONTENT_TYPES.values())
        raise MediaUnsupportedType(f"文件内容为 {kind}，只接受 {', '.join(accepted)}",
                                   f"The content is {kind}; only {', '.join(accepted)} are accepted",
                                   received_type=kind, accepted_types=accepted)


def _forget(session: Session, item: MediaItem | None, client_uuid: uuid.UUID) -> None:
    _staging_file(client_uuid).unlink(missing_ok=True)
    if item is not None and item.id is not None:
        session.delete(item)
        session.flush()


def receive(
    session: Session,
    principal: Principal,
    *,
    client_uuid: uuid.UUID,
    parent_kind: str,
    parent_uuid: uuid.UUID,
    body: Path,
    content_range: ContentRange | None,
) -> UploadOutcome:
    """Take one PUT: a whole photo or one chunk. The spooled body file is consumed."""
    try:
        return _receive(session, principal, client_uuid=client_uuid, parent_kind=parent_kind,
                        parent_uuid=parent_uuid, body=body, content_range=content_range)
    finally:
        body.unlink(missing_ok=True)


def _receive(
    session: Session,
    principal: Principal,
    *,
    client_uuid: uuid.UUID,
    parent_kind: str,
    parent_uuid: uuid.UUID,
    body: Path,
    content_range: ContentRange | None,
) -> UploadOutcome:
    _check_parent(parent_kind)
    body_size = body.stat().st_size
    item = _get(session, client_uuid, lock=True)
    if item is not None:
        if not _visible(session, principal, item):
            raise MediaNotFound()
        if item.parent_kind != parent_kind or item.parent_uuid != parent_uuid:
            raise MediaConflict("该编号的照片属于另一条记录", "This UUID's photo belongs to another record",
                                parent_kind=item.parent_kind, parent_uuid=str(item.parent_uuid))
        if item.state != MediaState.receiving.value:
            return _repeat_of_stored(item, body, content_range)
        if item.uploader_user_id != principal.user_id:
            raise MediaNotFound()
        if _expired(item):  # the server holds nothing of it any more (as after the worker's cleanup)
            _forget(session, item, client_uuid)
            item = None

    if content_range is None:
        # The whole photo in one body: a fresh upload, or a restart of an unfinished chunked one.
        try:
            processing.refuse_size(body_size, limits())
        except MediaRefused as refusal:
            _forget(session, item, client_uuid)
            return UploadOutcome(None, refusal=refusal)
        # The row first: a second request racing with the same UUID waits on its unique key and
        # is refused before it can touch the staged file.
        if item is None:
            item = _new_item(session, principal, client_uuid, parent_kind, parent_uuid, body_size)
        staged = _staging_file(client_uuid)
        os.replace(body, staged)
        item.total_bytes = item.received_bytes = body_size
        return _complete(session, principal, item)

    if body_size != content_range.length:
        raise MediaBadRange(
            f"Content-Range 声明 {content_range.length} 字节，实际收到 {body_size} 字节",
            f"Content-Range announces {content_range.length} bytes but the body has {body_size}",
            received_bytes=body_size,
        )
    try:
        processing.refuse_size(content_range.total, limits())
        if content_range.start == 0:
            _refuse_unless_image_head(body)
    except MediaRefused as refusal:
        _forget(session, item, client_uuid)
        return UploadOutcome(None, refusal=refusal)

    created = False
    if item is None:
        if content_range.start != 0:
            raise MediaUploadOffset("服务器尚未收到此照片的任何内容，请从 0 开始",
                                    "The server holds nothing of this upload yet: start at byte 0",
                                    received_bytes=0, headers={"Upload-Offset": "0"})
        if content_range.end + 1 < content_range.total:  # it stays unfinished: it takes staging space
            _reserve_staging(session, principal, content_range.total, content_range.length)
        item = _new_item(session, principal, client_uuid, parent_kind, parent_uuid, content_range.total)
        created = True
    elif item.total_bytes != content_range.total:
        raise MediaBadRange(f"总长度与先前声明的 {item.total_bytes} 字节不一致",
                            f"The total differs from the {item.total_bytes} bytes announced before",
                            total_bytes=item.total_bytes, received_bytes=item.received_bytes)
    if content_range.start > item.received_bytes:
        raise MediaUploadOffset(
            f"服务器已收到 {item.received_bytes} 字节，请从该位置继续",
            f"The server holds {item.received_bytes} bytes: continue from there",
            received_bytes=item.received_bytes, headers={"Upload-Offset": str(item.received_bytes)},
        )
    if content_range.end >= item.received_bytes:
        _append(_staging_file(client_uuid), body, skip=item.received_bytes - content_range.start,
                at=item.received_bytes)
        item.received_bytes = content_range.end + 1
    # expires_at stays as set at the first chunk: an upload must finish within
    # media_upload_expiry_hours of its start, however many chunks (or repeats of one) it gets.
    item.updated_at = clock.now()
    if item.received_bytes < item.total_bytes:
        session.flush()
        return UploadOutcome(item, created=created)
    return _complete(session, principal, item)


def _expired(item: MediaItem) -> bool:
    return (item.state == MediaState.receiving.value and item.expires_at is not None
            and clock.as_utc(item.expires_at) <= clock.now())


def _unfinished() -> tuple[Any, ...]:
    """Uploads holding staging space: still receiving and not expired (an expired one is forgotten
    by the worker, or by its next chunk, and counts no more)."""
    return (col(MediaItem.state) == MediaState.receiving.value, col(MediaItem.expires_at) > clock.now())


def _reserve_staging(session: Session, principal: Principal, total: int, first: int) -> None:
    """Refuse a new unfinished upload announcing `total` bytes, its first chunk `first` bytes long,
    beyond the caller's caps on count and announced bytes (429) or when the bytes all users' unfinished
    uploads really hold in staging (received, not announced: announcing costs nothing, so a few
    accounts announcing 20 MB per 1 KB chunk could otherwise fill the space for everyone) would pass
    the staging space (503). Checked and reserved (the row inserted after) under one lock held to the
    commit, so requests racing in several processes cannot pass a cap together (SQLite's BEGIN
    IMMEDIATE serialises writers already)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _STAGING_LOCK})
    settings = get_settings()
    mine = session.execute(
        select(col(MediaItem.client_uuid), col(MediaItem.total_bytes), col(MediaItem.expires_at))
        .where(*_unfinished(), col(MediaItem.uploader_user_id) == principal.user_id)
        .order_by(col(MediaItem.expires_at))
    ).all()
    held = sum(int(row.total_bytes) for row in mine)
    max_count, max_bytes = settings.media_unfinished_max_per_user, settings.media_unfinished_max_bytes_per_user
    if len(mine) + 1 > max_count or held + total > max_bytes:
        hours = settings.media_upload_expiry_hours
        wait = max(1, int((clock.as_utc(mine[0].expires_at) - clock.now()).total_seconds())) if mine else 60
        raise MediaTooManyUnfinished(
            f"您有 {len(mine)} 张照片尚未上传完成（已声明 {held} 字节）；同时未完成的上传最多 {max_count} 张、"
            f"共 {max_bytes} 字节。请先续传完成这些照片（HEAD /media/{{uuid}}/upload 查询进度），或整张上传"
            f"（不分片）；未完成的上传在第一个分片 {hours} 小时后过期并释放",
            f"You have {len(mine)} unfinished uploads announcing {held} bytes; at most {max_count} uploads and "
            f"{max_bytes} bytes may be unfinished at once. Finish them first (HEAD /media/{{uuid}}/upload tells "
            f"where to resume) or send photos whole in one request; an unfinished upload expires {hours} h "
            "after its first chunk and frees its share",
            unfinished_uploads=len(mine), unfinished_bytes=held, limit_uploads=max_count, limit_bytes=max_bytes,
            client_uuids=[str(row.client_uuid) for row in mine], headers={"Retry-After": str(wait)},
        )
    everyone = int(session.execute(
        select(func.coalesce(func.sum(col(MediaItem.received_bytes)), 0)).where(*_unfinished())).scalar_one())
    if everyone + first > settings.media_unfinished_max_bytes_total:
        log.warning("media staging full: %s bytes held by unfinished uploads", everyone)
        raise MediaStagingFull(
            "服务器上传暂存空间已满，请稍后再上传，或整张上传（不分片）",
            "The server's space for unfinished uploads is full: try again later, or send the photo whole",
            headers={"Retry-After": str(STAGING_FULL_RETRY_AFTER_SECONDS)},
        )


def _append(staged: Path, chunk: Path, *, skip: int, at: int) -> None:
    """Write the chunk (minus `skip` leading bytes already held) at offset `at`, durably."""
    mode = "r+b" if staged.exists() else "w+b"
    with staged.open(mode) as out, chunk.open("rb") as src:
        src.seek(skip)
        out.seek(at)
        while block := src.read(1 << 20):
            out.write(block)
        out.truncate()
        out.flush()
        os.fsync(out.fileno())


def _new_item(session: Session, principal: Principal, client_uuid: uuid.UUID, parent_kind: str,
              parent_uuid: uuid.UUID, total: int) -> MediaItem:
    parent = resolve_parent(session, parent_kind, parent_uuid)
    if parent is not None and parent.author_user_id not in (None, principal.user_id):
        raise MediaParentNotAuthors("该记录的照片只能由填写人上传", "only the record's author uploads its photos",
                                    parent_kind=parent_kind)
    now = clock.now()
    item = MediaItem(
        client_uuid=client_uuid, parent_kind=parent_kind, parent_uuid=parent_uuid,
        org_unit_id=principal.org_unit_id, uploader_user_id=principal.user_id,
        uploader_org_unit_id=principal.org_unit_id, total_bytes=total, created_at=now, updated_at=now,
        expires_at=now + timedelta(hours=get_settings().media_upload_expiry_hours),
    )
    try:
        with session.begin_nested():
            session.add(item)
    except IntegrityError:
        raise MediaUploadInProgress(
            "这张照片正由另一个请求上传，请查询上传进度后继续",
            "Another request is uploading this photo; ask for its status and resume",
        ) from None
    return item


def _complete(session: Session, principal: Principal, item: MediaItem) -> UploadOutcome:
    """Every byte is here: judge them, store the original, queue processing, try to link."""
    staged = _staging_file(item.client_uuid)
    try:
        checked = processing.check_upload(staged, limits())
    except MediaRefused as refusal:
        _forget(session, item, item.client_uuid)
        return UploadOutcome(None, refusal=refusal)
    item.sha256 = _sha256(staged)
    item.content_type = checked.content_type
    item.width, item.height = checked.width, checked.height
    item.original_key = f"{ORIGINALS_PREFIX}{item.client_uuid}.{_EXTENSIONS[checked.content_type]}"
    get_storage().put_file(item.original_key, staged, checked.content_type)
    staged.unlink(missing_ok=True)
    item.state = MediaState.received.value
    item.expires_at = None
    item.updated_at = clock.now()
    link_parent(session, item)
    session.flush()
    audit.record(session, actor=principal, action="media.upload", object_type="media",
                 object_id=str(item.client_uuid), org_unit_id=item.org_unit_id,
                 details={"sha256": item.sha256, "bytes": item.total_bytes, "parent_kind": item.parent_kind})
    return UploadOutcome(item, created=True)


def _repeat_of_stored(item: MediaItem, body: Path, content_range: ContentRange | None) -> UploadOutcome:
    """A PUT for a photo already complete: the same bytes answer with it, different bytes conflict."""
    if content_range is None:
        same = _sha256(body) == item.sha256
    elif content_range.total != item.total_bytes or item.original_key is None:
        same = False
    else:
        stored = get_storage().get_bytes(item.original_key)
        same = stored[content_range.start : content_range.end + 1] == body.read_bytes()
    if not same:
        raise MediaConflict("该编号已用于另一张照片，请换一个新的 UUID",
                            "This UUID already holds a different photo: use a new UUID",
                            sha256=item.sha256, total_bytes=item.total_bytes)
    return UploadOutcome(item, created=False)


def upload_status(session: Session, principal: Principal, client_uuid: uuid.UUID) -> MediaItem:
    """The upload's progress, for the phone to resume after a dropped connection."""
    item = _get(session, client_uuid)
    if item is None or not _visible(session, principal, item) or _expired(item):
        raise MediaNotFound()
    if item.state == MediaState.receiving.value and item.uploader_user_id != principal.user_id:
        raise MediaNotFound()
    return item


# --- parents and location ---------------------------------------------------------------------


def _compare_location(item: MediaItem, parent: ParentRecord | None) -> None:
    if parent is None or parent.lon is None or parent.lat is None or item.gps_lon is None or item.gps_lat is None:
        item.distance_m = None
        item.location_mismatch = None
        return
    item.distance_m = distance_m(item.gps_lon, item.gps_lat, parent.lon, parent.lat)
    item.location_mismatch = item.distance_m > get_settings().media_location_max_distance_m


def link_parent(session: Session, item: MediaItem) -> bool:
    """Link the photo to its parent if the parent exists now; True when linked by this call.
    A parent outside the uploader's jurisdiction is never linked (the photo stays the uploader's)."""
    if item.linked_at is not None or item.link_error is not None:
        return False
    now = clock.now()
    item.link_checked_at = now
    parent = resolve_parent(session, item.parent_kind, item.parent_uuid)
    if parent is None:
        return False
    if parent.author_user_id not in (None, item.uploader_user_id):
        item.link_error = "not-the-parent-author"
        log.warning("media %s names a %s another user recorded", item.client_uuid, item.parent_kind)
        return False
    uploader_path = orgunits.unit_path(session, item.uploader_org_unit_id)
    parent_path = orgunits.unit_path(session, parent.org_unit_id)
    if uploader_path is None or parent_path is None or not parent_path.startswith(uploader_path):
        item.link_error = "parent-outside-jurisdiction"
        log.warning("media %s names a %s outside its uploader's jurisdiction", item.client_uuid, item.parent_kind)
        return False
    item.org_unit_id = parent.org_unit_id
    item.linked_at = now
    item.updated_at = now
    _compare_location(item, parent)
    return True


# A photo waits for its parent once every byte is here; an unfinished upload links when it completes.
_LINKABLE_STATES = (MediaState.received.value, MediaState.processing.value, MediaState.ready.value)
_MEDIA = MediaItem.__table__  # type: ignore[attr-defined]


def _waiting_for(parent_kind: str, parents: ColumnElement[bool]) -> ColumnElement[bool]:
    """A photo of this kind of record that came before its parent and waits for it (`parents`: the
    condition on its parent_uuid)."""
    # The states as equalities, not IN: an expanding IN cannot go into an executemany's RETURNING.
    return and_(_MEDIA.c.parent_kind == parent_kind, parents, _MEDIA.c.linked_at.is_(None),
                _MEDIA.c.link_error.is_(None), or_(*(_MEDIA.c.state == state for state in _LINKABLE_STATES)))


def photos_waiting(parent_kind: str, parent_uuid: Column[uuid.UUID]) -> Exists:
    """EXISTS a photo waiting for this record: a domain storing many records at once puts it in its
    INSERT's RETURNING, and passes only the records it found true to link_waiting_photos (one round
    trip fewer per sync push; the photos seen are the same as that function's own query sees)."""
    # Named with its table, as text: SQLAlchemy neither correlates a subquery in RETURNING nor, on
    # SQLite, qualifies the columns there (an unqualified client_uuid would be the photo's own).
    parent: ColumnElement[uuid.UUID] = literal_column(f"{parent_uuid.table.name}.{parent_uuid.name}")
    return exists(select(_MEDIA.c.id).where(_waiting_for(parent_kind, _MEDIA.c.parent_uuid == parent)))


def link_waiting_photos(session: Session, parent_kind: str, parent_uuids: Collection[uuid.UUID]) -> int:
    """Link the photos that arrived before these records, which the caller has just stored in this
    transaction; return how many were linked. The domain that stores a record calls this, so a photo
    sent first is linked by the request that brings its parent, in whichever API process, and not
    minutes later by the worker's sweep (which remains for a photo and its parent arriving at the
    same instant through two requests, neither seeing the other's uncommitted row)."""
    if not parent_uuids:
        return 0
    waiting = session.execute(
        select(MediaItem)
        .where(_waiting_for(parent_kind, one_of(session, _MEDIA.c.parent_uuid, parent_uuids)))
        .order_by(col(MediaItem.id))
        # Waits for a worker that is finishing the photo, then reads the GPS it found (see process()).
        .with_for_update()
    ).scalars()
    return sum(link_parent(session, item) for item in waiting)


# --- reading ----------------------------------------------------------------------------------


def get_item(session: Session, principal: Principal, client_uuid: uuid.UUID) -> MediaItem:
    """A photo inside the caller's jurisdiction (404 otherwise)."""
    item = _get(session, client_uuid)
    if item is None or not _visible(session, principal, item):
        raise MediaNotFound()
    if item.state == MediaState.receiving.value and item.uploader_user_id != principal.user_id:
        raise MediaNotFound()
    return item


def list_for_parent(session: Session, principal: Principal, parent_kind: str,
                    parent_uuid: uuid.UUID) -> list[MediaItem]:
    """The complete photos of one record that the caller may see, oldest first."""
    rows = session.execute(
        select(MediaItem)
        .where(col(MediaItem.parent_kind) == parent_kind, col(MediaItem.parent_uuid) == parent_uuid,
               col(MediaItem.state) != MediaState.receiving.value,
               scope.visible(principal, MediaItem))
        .order_by(col(MediaItem.created_at), col(MediaItem.id))
    ).scalars()
    return list(rows)


def issue_link(session: Session, principal: Principal, client_uuid: uuid.UUID, variant: Variant) -> SignedLink:
    """A short-lived link to a derivative of a ready photo in the caller's jurisdiction."""
    item = get_item(session, principal, client_uuid)
    key = item.display_key if variant == "display" else item.thumbnail_key
    if item.state != MediaState.ready.value or key is None:
        raise MediaNotReady(f"照片状态为 {item.state}，尚无可下载的图片",
                            f"The photo is {item.state}; nothing to download yet", state=item.state)
    expires_at = clock.now() + timedelta(seconds=get_settings().media_link_seconds)
    filename = f"{item.client_uuid}-{variant}.jpg"
    url = get_storage().signed_url(key, expires_at=expires_at, content_type=processing.DERIVED_CONTENT_TYPE,
                                   filename=filename)
    audit.record(session, actor=principal, action="media.link", object_type="media",
                 object_id=str(item.client_uuid), org_unit_id=item.org_unit_id, details={"variant": variant})
    return SignedLink(url=url, variant=variant, content_type=processing.DERIVED_CONTENT_TYPE,
                      expires_at=expires_at)


def open_link(token: str) -> tuple[Path, LinkClaims]:
    """The local file a signed link names (local storage only); 404 if forged, 410 if expired."""
    claims = read_link(token)
    storage = get_storage()
    if claims is None or not isinstance(storage, LocalStorage) or not claims.key.startswith(DERIVED_PREFIX):
        raise MediaNotFound()
    if claims.expires < clock.now().timestamp():
        raise MediaLinkExpired("请重新获取下载链接", "Ask for a new download link")
    path = storage.path_of(claims.key)
    if not path.is_file():
        raise MediaNotFound()
    return path, claims


def fetch_original(session: Session, principal: Principal, client_uuid: uuid.UUID) -> tuple[bytes, MediaItem]:
    """The original bytes (EXIF and GPS included) for a role holding media.original; audited."""
    item = get_item(session, principal, client_uuid)
    if item.original_key is None:
        raise MediaNotFound()
    data = get_storage().get_bytes(item.original_key)
    audit.record(session, actor=principal, action="media.original.read", object_type="media",
                 object_id=str(item.client_uuid), org_unit_id=item.org_unit_id,
                 details={"sha256": item.sha256, "bytes": len(data)})
    return data, item


# --- background work (called from scheduled.py, one item per transaction) ----------------------


def processing_lease() -> timedelta:
    """How long a worker may spend on one photo before another presumes it dead and takes it over."""
    return timedelta(seconds=get_settings().media_processing_lease_seconds)


def due_for_processing(session: Session, limit: int) -> list[int]:
    """Ids of photos waiting for the worker, or abandoned by a dead one (taken longer than the
    processing lease ago and not finished)."""
    stale = clock.now() - processing_lease()
    rows = session.execute(
        select(col(MediaItem.id))
        .where(or_(col(MediaItem.state) == MediaState.received.value,
                   (col(MediaItem.state) == MediaState.processing.value)
                   & (col(MediaItem.processing_started_at) < stale)))
        .order_by(col(MediaItem.id))
        .limit(limit)
    ).scalars()
    return [int(i) for i in rows]


def start_processing(session: Session, item_id: int) -> MediaItem | None:
    """Claim one photo for processing (the caller commits before the heavy work): one waiting, or
    one abandoned by a dead worker. None when another worker has it; the row lock makes the
    check and the claim one step, so with several workers each photo is processed once."""
    # populate_existing: the job's session outlives commits without expiring, and a copy loaded
    # earlier may predate another worker's claim.
    item = session.get(MediaItem, item_id, with_for_update=True, populate_existing=True)
    if item is None:
        return None
    abandoned = (item.state == MediaState.processing.value and item.processing_started_at is not None
                 and clock.as_utc(item.processing_started_at) < clock.now() - processing_lease())
    if item.state != MediaState.received.value and not abandoned:
        return None
    item.state = MediaState.processing.value
    item.processing_started_at = clock.now()
    item.attempts += 1
    return item


def _reject(item: MediaItem, code: str, reason: str) -> None:
    storage = get_storage()
    for key in (item.original_key, item.display_key, item.thumbnail_key):
        if key:
            storage.delete(key)
    item.original_key = item.display_key = item.thumbnail_key = None
    item.state = MediaState.rejected.value
    item.reject_code = code
    item.reject_reason = reason[:300]
    item.processed_at = clock.now()


def process(session: Session, item: MediaItem) -> None:
    """Read EXIF, make the stripped derivatives, check the location: state ready or rejected."""
    settings = get_settings()
    storage = get_storage()
    assert item.original_key is not None
    try:
        data = storage.get_bytes(item.original_key)
    except FileNotFoundError:
        _reject(item, "media-missing", "original not found in storage")
        return
    try:
        derived = processing.make_derivatives(io.BytesIO(data), default_tz=settings.timezone,
                                              max_pixels=settings.media_max_pixels)
    except Exception as exc:  # hostile or damaged bytes past the upload checks: reject, never crash
        _reject(item, "media-corrupt", f"{type(exc).__name__}: {exc}")
        return
    base = f"{DERIVED_PREFIX}{item.client_uuid}"
    item.display_key, item.thumbnail_key = f"{base}/display.jpg", f"{base}/thumbnail.jpg"
    storage.put_bytes(item.display_key, derived.display, processing.DERIVED_CONTENT_TYPE)
    storage.put_bytes(item.thumbnail_key, derived.thumbnail, processing.DERIVED_CONTENT_TYPE)
    meta = derived.metadata
    item.gps_lon, item.gps_lat, item.gps_alt_m, item.gps_at = meta.lon, meta.lat, meta.alt_m, meta.gps_at
    item.taken_at, item.orientation = meta.taken_at, meta.orientation
    item.width, item.height = derived.width, derived.height
    # The photo may have been linked while the derivatives were made (its parent pushed meanwhile):
    # re-read that under a row lock, so that either this run or the linking request, which waits on
    # the lock, compares the location with the GPS just read.
    session.refresh(item, ["linked_at"], with_for_update=True)
    parent = resolve_parent(session, item.parent_kind, item.parent_uuid) if item.linked_at is not None else None
    _compare_location(item, parent)
    item.state = MediaState.ready.value
    item.processed_at = item.updated_at = clock.now()


def give_up_processing(session: Session, item_id: int, error: str) -> None:
    """After a storage or database failure: back to the queue, or rejected after too many tries."""
    item = session.get(MediaItem, item_id)
    if item is None:
        return
    if item.attempts >= MAX_PROCESSING_ATTEMPTS:
        _reject(item, "media-processing-failed", error)
    else:
        item.state = MediaState.received.value


def expired_uploads(session: Session, limit: int) -> list[MediaItem]:
    """Unfinished uploads past their expiry (one resumed at this moment is left to its request)."""
    rows = session.execute(
        select(MediaItem)
        .where(col(MediaItem.state) == MediaState.receiving.value, col(MediaItem.expires_at) <= clock.now())
        .order_by(col(MediaItem.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).scalars()
    return list(rows)


def discard_upload(session: Session, item: MediaItem) -> None:
    """Forget an unfinished upload and its staged bytes."""
    _forget(session, item, item.client_uuid)


def sweep_staging(session: Session, older_than: datetime) -> int:
    """Delete staging files untouched since `older_than` that nobody will finish: request spools
    of crashed requests and chunk files whose upload no longer exists. Returns how many."""
    removed = 0
    for path in staging_dir().iterdir():
        try:
            if not path.is_file() or path.stat().st_mtime >= older_than.timestamp():
                continue
            if path.suffix == ".part":
                try:
                    client_uuid = uuid.UUID(path.stem)
                except ValueError:
                    client_uuid = None
                item = _get(session, client_uuid) if client_uuid is not None else None
                if item is not None and item.state == MediaState.receiving.value:
                    continue  # the expiry of its row decides
            path.unlink()
            removed += 1
        except FileNotFoundError:
            continue
    return removed


def unlinked(session: Session, limit: int) -> list[MediaItem]:
    """Complete photos still waiting for their parent record, least recently checked first."""
    rows = session.execute(
        select(MediaItem)
        .where(col(MediaItem.linked_at).is_(None), col(MediaItem.link_error).is_(None),
               col(MediaItem.state).in_(_LINKABLE_STATES))
        .order_by(col(MediaItem.link_checked_at).is_not(None), col(MediaItem.link_checked_at), col(MediaItem.id))
        .limit(limit)
        # A photo locked by a worker finishing it or by a request linking it is left to the next sweep
        # (see process() and link_waiting_photos()); waiting for it here could deadlock with a push.
        .with_for_update(skip_locked=True)
    ).scalars()
    return list(rows)
