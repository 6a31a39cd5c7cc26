"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from backend.core.db import get_engine
from backend.core.migrate import current_revisions, head_revisions

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz() -> JSONResponse:
    """The database answers and its schema is at the newest migration."""
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
            current = current_revisions(conn)
    except Exception as exc:  # any failure to reach the database means not ready
        return JSONResponse({"status": "unavailable", "database": "unreachable", "error": type(exc).__name__},
                            status_code=503)
    heads = head_revisions()
    if current != heads:
        return JSONResponse({"status": "unavailable", "database": "ok", "migration": sorted(current),
                             "head": sorted(heads)}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok", "migration": sorted(current)})
