"""Sign-in, users and devices."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from backend.accounts import service
from backend.accounts.deps import CurrentPrincipal, client_ip, device_header, requires
from backend.accounts.permissions import Action, Role
from backend.accounts.principal import Principal
from backend.accounts.schemas import (
    DevicePublic,
    DeviceRegister,
    LoginRequest,
    PasswordChange,
    RefreshRequest,
    TokenPair,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from backend.core.db import SessionDep
from backend.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, Paging

auth_router = APIRouter(prefix="/auth", tags=["auth"])
router = APIRouter(tags=["users"])
device_router = APIRouter(prefix="/devices", tags=["devices"])


@auth_router.post("/login", response_model=TokenPair)
def login(body: LoginRequest, request: Request, session: SessionDep) -> TokenPair:
    """Sign in with a mainland mobile number and password. After repeated failures: 429
    `login-locked` (this number, for minutes) or `login-slowed` (this address, for seconds), with
    Retry-After; 503 `server-busy` when the server has no room to check a password now."""
    return service.login(
        session, phone=body.phone, password=body.password, ip=client_ip(request), device_id=device_header(request)
    )


@auth_router.post("/refresh", response_model=TokenPair)
def refresh(body: RefreshRequest, request: Request, session: SessionDep) -> TokenPair:
    """Exchange a refresh token for a new pair; the old refresh token is spent. The same device
    retrying within the grace window (its answer was lost) gets the same pair again."""
    return service.refresh(session, refresh_token=body.refresh_token, device_id=device_header(request))


@auth_router.post("/logout", status_code=204)
def logout(body: RefreshRequest, session: SessionDep) -> Response:
    """End this sign-in: its refresh tokens and its access tokens."""
    service.logout(session, refresh_token=body.refresh_token)
    return Response(status_code=204)


@router.get("/me", response_model=UserPublic)
def me(principal: CurrentPrincipal, session: SessionDep) -> UserPublic:
    """The signed-in user."""
    return service.to_public(session, service.get_visible_user(session, principal, principal.user_id))


@router.post("/me/password", status_code=204)
def change_password(body: PasswordChange, principal: CurrentPrincipal, session: SessionDep) -> Response:
    """Change one's password; other sessions are signed out."""
    service.change_password(session, principal, current=body.current_password, new=body.new_password)
    return Response(status_code=204)


@router.get("/users", response_model=Page[UserPublic])
def list_users(
    principal: Annotated[Principal, requires(Action.user_read)],
    session: SessionDep,
    role: Role | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[UserPublic]:
    """Users inside the caller's jurisdiction."""
    rows, next_cursor = service.list_users(session, principal, role=role, cursor=cursor, limit=limit)
    return Page(items=[service.to_public(session, u) for u in rows], next_cursor=next_cursor)


@router.post("/users", response_model=UserPublic, status_code=201)
def create_user(
    body: UserCreate, principal: Annotated[Principal, requires(Action.user_manage)], session: SessionDep
) -> UserPublic:
    """Create a user in the caller's jurisdiction, with roles the grant table lets the caller give at
    that unit to that agency (README, "Who may grant which role"); otherwise 403
    `role-not-grantable`, naming each refused role and why."""
    return service.to_public(session, service.create_user(session, principal, body))


@router.get("/users/{user_id}", response_model=UserPublic)
def get_user(
    user_id: int, principal: Annotated[Principal, requires(Action.user_read)], session: SessionDep
) -> UserPublic:
    """One user (audited)."""
    return service.to_public(session, service.read_user(session, principal, user_id))


@router.patch("/users/{user_id}", response_model=UserPublic)
def update_user(
    user_id: int,
    body: UserUpdate,
    principal: Annotated[Principal, requires(Action.user_manage)],
    session: SessionDep,
) -> UserPublic:
    """Change a user's name, unit, roles, agency or active flag. Nobody changes their own roles, unit,
    agency or active flag (403 `user-self-change`; one's own name may change); a peer or superior in
    the grant table is out of reach (403 `user-not-manageable`); new roles, a new unit or a new agency
    must make a grant the caller may give (403 `role-not-grantable`)."""
    return service.to_public(session, service.update_user(session, principal, user_id, body))


@device_router.post("", response_model=DevicePublic, status_code=201)
def register_device(
    body: DeviceRegister, principal: Annotated[Principal, requires(Action.device_register)], session: SessionDep
) -> DevicePublic:
    """Register this phone's push token (idempotent per token)."""
    return DevicePublic.model_validate(service.register_device(session, principal, body), from_attributes=True)


@device_router.get("", response_model=list[DevicePublic] | Page[DevicePublic])
def list_devices(
    principal: CurrentPrincipal, session: SessionDep, page: Paging
) -> list[DevicePublic] | Page[DevicePublic]:
    """The caller's registered phones."""
    devices = [DevicePublic.model_validate(d, from_attributes=True) for d in service.list_devices(session, principal)]
    return page.answer(devices, key=lambda d: (d.id,))


@device_router.delete("/{device_id}", status_code=204)
def remove_device(device_id: int, principal: CurrentPrincipal, session: SessionDep) -> Response:
    """Unregister one of the caller's phones."""
    service.remove_device(session, principal, device_id)
    return Response(status_code=204)
