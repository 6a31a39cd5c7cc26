"""Photo endpoints: thin. Uploads stream the body to a staging file (never the whole photo in
memory), then the service decides in a worker thread."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.core.config import get_settings
from backend.core.db import SessionDep
from backend.core.errors import problem_response
from backend.core.pagination import Page, Paging
from backend.media import processing, service
from backend.media.errors import MediaBadRange, MediaInvalidParent, MediaTooLarge
from backend.media.parents import PARENT_KINDS
from backend.media.schemas import MediaItemPublic, SignedLink, UploadStatus, Variant

router = APIRouter(prefix="/media", tags=["media"])
# Signed links carry their own authorisation: mounted without the bearer-token requirement.
files_router = APIRouter(prefix="/media-files", tags=["media"])

LIMITS_HEADER = "X-Hulei-Upload-Limits"
OFFSET_HEADER = "Upload-Offset"

_settings = get_settings()
UPLOAD_DESCRIPTION = f"""\
Upload a photo (JPEG, PNG or WebP{", HEIC" if processing.HEIF_AVAILABLE else ""}) for a record
(parent_kind: {", ".join(sorted(PARENT_KINDS))}; the record may arrive later).

**Limits** (defaults; the live values are in every response's `{LIMITS_HEADER}` header):
at most {_settings.media_max_bytes} bytes ({_settings.media_max_bytes // (1024 * 1024)} MB) and
{_settings.media_max_pixels} pixels. Content is judged by its bytes, never by name or Content-Type.

**Idempotent**: the same UUID with the same bytes answers 200 with the stored item; different
bytes answer 409 `media-conflict`.

**Resumable**: send `Content-Range: bytes start-end/total` with one chunk per request. Partial
uploads answer 202 with `{OFFSET_HEADER}`; after a dropped connection ask
`HEAD /media/{{client_uuid}}/upload` and send the rest from `{OFFSET_HEADER}`. Unfinished uploads
expire after {_settings.media_upload_expiry_hours} h. A user may have at most
{_settings.media_unfinished_max_per_user} unfinished uploads announcing
{_settings.media_unfinished_max_bytes_per_user} bytes: a new chunked upload beyond answers 429
`media-too-many-unfinished` (finish those, or send photos whole); beyond the staging space of all
users, 503 `media-staging-full`.

Refusals (nothing is kept): `media-empty` 400, `media-too-large` 413 (limit_bytes, received_bytes),
`media-too-many-pixels` 413 (limit_pixels, received_pixels), `media-unsupported-type` 415,
`media-corrupt` 422. See mobile_api_spec/media.md.
"""


def _limits_headers() -> dict[str, str]:
    return {LIMITS_HEADER: service.limits().header()}


async def _spool(request: Request, target: anyio.Path, cap: int) -> int:
    """Stream the body into `target`, stopping once it exceeds `cap` bytes; return the size read."""
    size = 0
    async with await anyio.open_file(target, "wb") as fh:
        async for block in request.stream():
            size += len(block)
            if size > cap:
                break
            await fh.write(block)
    return size


def _status(item: Any) -> UploadStatus:
    return UploadStatus(client_uuid=item.client_uuid, state=item.state, received_bytes=item.received_bytes,
                        total_bytes=item.total_bytes, expires_at=item.expires_at)


@router.put(
    "/{client_uuid}",
    description=UPLOAD_DESCRIPTION,
    openapi_extra={"requestBody": {"required": True, "content": {
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        "image/png": {"schema": {"type": "string", "format": "binary"}},
        "image/webp": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    }}},
    responses={200: {"model": MediaItemPublic, "description": "Already stored (same bytes)"},
               201: {"model": MediaItemPublic, "description": "Complete; processing follows"},
               202: {"model": UploadStatus, "description": "Chunk stored; send the rest"}},
    response_model=None,
)
async def upload(
    client_uuid: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, requires(Action.media_upload)],
    parent_kind: Annotated[str | None, Query(max_length=20)] = None,
    parent_uuid: uuid.UUID | None = None,
    x_hulei_parent_kind: Annotated[str | None, Header(max_length=20)] = None,
    x_hulei_parent_uuid: Annotated[uuid.UUID | None, Header()] = None,
    content_range: Annotated[str | None, Header()] = None,
) -> Response:
    kind = parent_kind or x_hulei_parent_kind
    parent = parent_uuid or x_hulei_parent_uuid
    if kind is None or parent is None:
        raise MediaInvalidParent("请提供 parent_kind 和 parent_uuid", "parent_kind and parent_uuid are required",
                                 headers=_limits_headers())
    limits = service.limits()
    rng = service.parse_content_range(content_range)
    cap = min(rng.length, limits.max_bytes) if rng is not None else limits.max_bytes
    spool = service.spool_path(client_uuid)
    size = await _spool(request, anyio.Path(spool), cap)
    if size > cap:
        spool.unlink(missing_ok=True)
        if rng is not None and rng.length <= limits.max_bytes:
            raise MediaBadRange("分片内容比 Content-Range 声明的长", "The chunk is longer than its Content-Range")
        announced = request.headers.get("content-length")
        received = int(announced) if announced and announced.isdigit() else size
        mb = limits.max_bytes // (1024 * 1024)
        raise MediaTooLarge(
            f"照片 {received} 字节，超过上限 {limits.max_bytes} 字节（{mb} MB），请压缩后重传",
            f"The photo is {received} bytes; the limit is {limits.max_bytes} bytes ({mb} MB). "
            "Send a smaller photo.",
            limit_bytes=limits.max_bytes, received_bytes=received, headers=_limits_headers(),
        )
    outcome = await run_in_threadpool(
        service.receive, session, principal, client_uuid=client_uuid, parent_kind=kind, parent_uuid=parent,
        body=spool, content_range=rng,
    )
    headers = _limits_headers()
    if outcome.refusal is not None:
        return problem_response(outcome.refusal, request, headers=headers)
    item = outcome.item
    assert item is not None
    if not outcome.complete:
        headers[OFFSET_HEADER] = str(item.received_bytes)
        return JSONResponse(_status(item).model_dump(mode="json"), status_code=202, headers=headers)
    headers["Location"] = f"{request.url.path}"
    return JSONResponse(MediaItemPublic.of(item).model_dump(mode="json"),
                        status_code=201 if outcome.created else 200, headers=headers)


@router.head("/{client_uuid}/upload", operation_id="media-upload_status_head")
@router.get("/{client_uuid}/upload")
def upload_status(
    client_uuid: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, requires(Action.media_upload)],
    response: Response,
) -> UploadStatus:
    """How many bytes the server holds (also in the Upload-Offset header): resume from there."""
    item = service.upload_status(session, principal, client_uuid)
    response.headers[OFFSET_HEADER] = str(item.received_bytes)
    response.headers[LIMITS_HEADER] = service.limits().header()
    response.headers["Cache-Control"] = "no-store"
    return _status(item)


@router.get("")
def list_media(
    session: SessionDep,
    principal: Annotated[Principal, requires(Action.media_read)],
    parent_kind: Annotated[str, Query(max_length=20)],
    parent_uuid: uuid.UUID,
    page: Paging,
) -> list[MediaItemPublic] | Page[MediaItemPublic]:
    """The photos of one record inside the caller's jurisdiction, oldest first."""
    items = [MediaItemPublic.of(i) for i in service.list_for_parent(session, principal, parent_kind, parent_uuid)]
    return page.answer(items, key=lambda i: (i.created_at, str(i.client_uuid)))


@router.get("/{client_uuid}")
def get_media(
    client_uuid: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, requires(Action.media_read)],
) -> MediaItemPublic:
    """One photo's state and what processing found."""
    return MediaItemPublic.of(service.get_item(session, principal, client_uuid))


@router.get("/{client_uuid}/link")
def media_link(
    client_uuid: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, requires(Action.media_read)],
    variant: Variant = "display",
) -> SignedLink:
    """A short-lived download link for the display image (1600 px) or thumbnail (320 px)."""
    return service.issue_link(session, principal, client_uuid, variant)


@router.get("/{client_uuid}/original", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}})
def media_original(
    client_uuid: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, requires(Action.media_original)],
) -> Response:
    """The original as uploaded, EXIF and GPS included (police only; every fetch is audited)."""
    data, item = service.fetch_original(session, principal, client_uuid)
    return Response(data, media_type=item.content_type or "application/octet-stream", headers={
        "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="{item.client_uuid}-original"',
    })


@files_router.get("/{token}", response_class=FileResponse)
def media_file(token: str) -> FileResponse:
    """A derivative named by a signed link (local storage); 404 if forged, 410 once expired."""
    path, claims = service.open_link(token)
    return FileResponse(path, media_type=claims.content_type, headers={
        "Cache-Control": "private, max-age=300",
        "Content-Disposition": f'inline; filename="{claims.filename}"',
        "X-Content-Type-Options": "nosniff",
    })
