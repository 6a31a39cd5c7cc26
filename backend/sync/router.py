"""POST /sync/push and GET /sync/pull: the phone's offline contract (mobile_api_spec/sync.md)."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from backend.accounts.deps import CurrentPrincipal
from backend.core import compression
from backend.core.db import SessionDep
from backend.core.errors import negotiate_locale
from backend.core.routing import OrjsonRoute
from backend.sync import pull as pulls
from backend.sync import service
from backend.sync.schemas import PullResponse, PushRequest, PushResponse

router = APIRouter(prefix="/sync", tags=["sync"], route_class=OrjsonRoute)

# Text no database can store rejects only the pushed item holding it (service.push judges each
# item's data); the request-wide check (backend/core/text.py) leaves items' data to it.
ITEMWISE_TEXT = {f"{router.prefix}/push": ("items.*.data",)}


def _json(body: object, request: Request) -> Response:
    # Serialised once, straight to bytes: the push/pull hot path skips response-model re-validation;
    # compressed here, in the worker thread, with the fast encoder (backend/core/compression.py).
    return compression.json_response(orjson.dumps(body), request)


@router.post("/push", response_model=PushResponse)
def push(body: PushRequest, request: Request, principal: CurrentPrincipal, session: SessionDep) -> Response:
    """Store up to 500 records; one result per item (created, updated, duplicate, conflict, rejected)."""
    locale = negotiate_locale(request.headers.get("accept-language"))
    return _json(service.push(session, principal, body.items, locale), request)


@router.get("/pull", response_model=PullResponse)
def pull(
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=pulls.MAX_PULL_LIMIT)] = pulls.DEFAULT_PULL_LIMIT,
) -> Response:
    """Changes in your jurisdiction since `cursor` (none: everything), oldest first."""
    return _json(pulls.pull(session, principal, cursor, limit), request)
