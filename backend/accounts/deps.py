"""FastAPI dependencies that turn a bearer token into a Principal and enforce the matrix."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from backend.accounts import service
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.core.db import SessionDep
from backend.core.errors import Unauthenticated
from backend.core.security import decode_access_token

_bearer = HTTPBearer(auto_error=False, description="Access token from POST /api/v1/auth/login")


def client_ip(request: Request) -> str | None:
    """The caller's address (the reverse proxy is trusted to set X-Forwarded-For)."""
    return request.client.host if request.client else None


def device_header(request: Request) -> str | None:
    value = request.headers.get("x-device-id")
    return value[:120] if value else None


def current_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The signed-in caller, reloaded from the database so deactivation, role changes and the end
    of the token's sign-in (logout, reuse detection) apply at once; 401 otherwise."""
    if credentials is None:
        raise Unauthenticated()
    claims = decode_access_token(credentials.credentials)
    if claims is None:
        raise Unauthenticated("登录已过期，请重新登录", "The access token is invalid or expired")
    family = claims.get("fam")
    if family is not None and not isinstance(family, str):
        raise Unauthenticated("登录已过期，请重新登录", "The access token is invalid or expired")
    principal = service.principal_for(
        session, int(claims["sub"]), device_id=device_header(request), ip=client_ip(request), family_id=family
    )
    if principal is None:
        raise Unauthenticated(
            "登录已失效或账号已停用，请重新登录", "This sign-in has ended or the account is not active"
        )
    disclosure.bind_actor(principal)  # the request's audit entry names its caller
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def requires(action: Action) -> Any:
    """A dependency yielding the caller after checking that a role grants `action`."""

    def _check(principal: CurrentPrincipal) -> Principal:
        principal.require(action)
        return principal

    _check.__name__ = f"requires_{action.value.replace('.', '_')}"
    return Depends(_check)
