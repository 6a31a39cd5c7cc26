"""Mounts every domain router under /api/v1. Authentication is applied here, once: every router
but sign-in requires a valid access token before its own checks run."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from backend.accounts.deps import current_principal
from backend.accounts.router import auth_router, device_router
from backend.accounts.router import router as users_router
from backend.audit.router import router as audit_router
from backend.orgunits.router import router as orgunits_router

API_PREFIX = "/api/v1"

_authenticated = [Depends(current_principal)]


def build_api_router() -> APIRouter:
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(auth_router)
    for router in (users_router, device_router, orgunits_router, audit_router):
        api.include_router(router, dependencies=_authenticated)
    return api
