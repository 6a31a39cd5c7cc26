"""The ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.routing import APIRoute

from backend.api import API_PREFIX, build_api_router
from backend.audit.disclosure import DisclosureAudit
from backend.core.body_reception import BodyReception, body_limits
from backend.core.collector import tune_for_long_running_process
from backend.core.config import get_settings
from backend.core.db import app_started, app_stopped
from backend.core.errors import document_problems, install_problem_handlers
from backend.core.headers import SecurityHeaders
from backend.core.health import router as health_router
from backend.core.overload import InFlightLimit, size_thread_pool
from backend.core.pagination import CursorScope
from backend.core.request_encoding import GzipRequestBodies
from backend.core.secrets import check_production
from backend.core.text import UnstorableTextGuard
from backend.dashboard.router import mount_dashboard
from backend.notifications.sms import check_sms_settings
from backend.registries import load_all
from backend.sync import router as sync_router

API_DESCRIPTION = """\
Hulei (护蕾) serves the phones of volunteers, grid workers, officers and helpers in the
利剑护蕾 campaign, and the coordinators who watch their work. See mobile_api_spec/README.md for the
conventions a phone client relies on: authentication, problem+json errors, pagination, offline sync.
"""


def _operation_id(route: APIRoute) -> str:
    # "{tag}-{name}" gives generated phone clients clean method names.
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    tune_for_long_running_process()  # everything loaded so far lives as long as the process
    size_thread_pool(get_settings().api_max_in_flight)
    app_started()
    try:
        yield
    finally:
        app_stopped()


def create_app() -> FastAPI:
    """Build the application (settings are read at call time)."""
    settings = get_settings()
    # In production, weak or template secrets stop the start, each named (backend/core/secrets.py).
    check_production(settings)
    check_sms_settings(settings)  # a texted sentence with numbers in it, or a gateway without a URL
    docs = settings.api_docs or not settings.production
    # Every registry (tables, push kinds, photo parents, jobs) before the first request, whichever
    # modules this process has imported so far.
    load_all()
    app = FastAPI(
        title="Hulei 护蕾 API",
        version="1.0.0",
        description=API_DESCRIPTION,
        generate_unique_id_function=_operation_id,
        lifespan=_lifespan,
        # The interactive documentation is off in production unless HULEI_API_DOCS=true; the
        # document itself (app.openapi(), `hulei export-spec`) is built either way.
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    install_problem_handlers(app)
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        # FastAPI caches its document on the app; adding the problem responses is idempotent.
        return document_problems(default_openapi())

    app.openapi = openapi  # type: ignore[method-assign]
    # Innermost: a collector per request of the person-bearing records it discloses or changes; no
    # answer leaves before they are in the audit log (backend/audit/disclosure.py).
    app.add_middleware(DisclosureAudit)
    # A list's cursors belong to it: one sent to another list is a 422 (backend/core/pagination.py).
    app.add_middleware(CursorScope)
    # Phones send Accept-Encoding: gzip; sync pulls of a whole village compress about tenfold.
    # Level 6 (zlib's default) compresses within a few per cent of Starlette's default 9 at about half
    # the CPU, which the one event loop spends on every large push answer and pull page.
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)
    app.include_router(health_router)
    app.include_router(build_api_router())
    mount_dashboard(app)
    # Request bodies on the way in: gzip decoded within a bound, then text no database can store
    # refused alike on both backends (backend/core/request_encoding.py, backend/core/text.py).
    itemwise = {API_PREFIX + path: members for path, members in sync_router.ITEMWISE_TEXT.items()}
    app.add_middleware(UnstorableTextGuard, itemwise=itemwise)
    app.add_middleware(GzipRequestBodies, max_bytes=settings.request_max_decompressed_bytes)
    # So a request turned away costs nothing else (see backend/core/overload.py).
    app.add_middleware(InFlightLimit, limit=settings.api_max_in_flight)
    # A body is received in full, within time and per-route size bounds, before its request takes a
    # place in flight, so slow senders cannot hold the places (backend/core/body_reception.py).
    app.add_middleware(
        BodyReception,
        limits=body_limits(settings),
        timeout=settings.request_body_timeout_seconds,
        min_rate=settings.request_body_min_rate,
        idle=settings.request_body_idle_seconds,
        max_seconds=settings.request_body_max_seconds,
        per_client=settings.request_body_receptions_per_client,
        total=settings.request_body_receptions_max,
    )
    # Outermost: security headers (CSP, nosniff, no-store on /api/, HSTS over TLS) on every answer the
    # app gives, the early refusals of the guards above included (413, 408, 429, 503;
    # backend/core/headers.py).
    app.add_middleware(SecurityHeaders, docs_paths=["/docs", "/docs/oauth2-redirect", "/redoc"] if docs else [],
                       basemap_url_template=settings.basemap_url_template)
    return app
