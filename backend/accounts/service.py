"""Sign-in, token rotation, users and devices."""

from __future__ import annotations

import hashlib
import math
import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Select, Table, and_, bindparam, delete, select, update
from sqlmodel import Session, col

from backend.accounts import grants
from backend.accounts.models import (
    Agency,
    Device,
    DevicePlatform,
    LoginThrottle,
    PushChannel,
    RefreshToken,
    SignIn,
    User,
    UserRole,
)
from backend.accounts.permissions import Role
from backend.accounts.principal import Principal
from backend.accounts.schemas import (
    DeviceRegister,
    TokenPair,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from backend.audit import service as audit
from backend.core import clock, identifiers
from backend.core.config import get_settings
from backend.core.db import dialect_insert
from backend.core.errors import DomainError, InvalidInput, NotFound, TooManyRequests, Unauthenticated
from backend.core.overload import ServerBusy
from backend.core.pagination import decode_cursor, encode_cursor
from backend.core.security import (
    hash_password,
    issue_access_token,
    new_secret_token,
    password_needs_rehash,
    successor_refresh_token,
    token_digest,
    verify_password,
)
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit


class InvalidCredentials(Unauthenticated):
    code = "invalid-credentials"
    title_zh = "手机号或密码错误"
    title_en = "Wrong phone number or password"


class LoginLocked(TooManyRequests):
    code = "login-locked"
    title_zh = "登录失败次数过多，请稍后再试"
    title_en = "Too many failed sign-ins; try again later"


class LoginSlowed(TooManyRequests):
    code = "login-slowed"
    title_zh = "该网络登录失败次数过多，请稍候再试"
    title_en = "Too many failed sign-ins from this network; wait a moment"


class RefreshTokenInvalid(Unauthenticated):
    code = "refresh-token-invalid"
    title_zh = "登录已失效，请重新登录"
    title_en = "Session expired; sign in again"


class RefreshTokenReused(Unauthenticated):
    code = "refresh-token-reused"
    title_zh = "登录凭证已被使用，为安全起见已全部注销，请重新登录"
    title_en = "Refresh token reused; every session of this sign-in was revoked"


def normalise_phone(raw: str) -> str:
    """An 11-digit mainland mobile number in its one stored form (backend/core/identifiers.py): +86/0086,
    spaces, dashes and full-width digits accepted, digits of other scripts refused."""
    try:
        return identifiers.mobile(raw or "")
    except ValueError:
        raise InvalidInput(
            "请输入11位中国大陆手机号", "Enter an 11-digit mainland China mobile number", field="phone"
        ) from None


def user_roles(session: Session, user_id: int) -> frozenset[Role]:
    rows = session.execute(select(col(UserRole.role)).where(col(UserRole.user_id) == user_id)).scalars()
    return frozenset(Role(r) for r in rows)


def to_public(session: Session, user: User) -> UserPublic:
    assert user.id is not None
    return UserPublic(
        id=user.id,
        phone=user.phone,
        display_name=user.display_name,
        org_unit_id=user.org_unit_id,
        agency=Agency(user.agency) if user.agency else None,
        roles=sorted(user_roles(session, user.id)),
        is_active=user.is_active,
    )


def _principal_query(*, with_sign_in: bool) -> Select[Any]:
    """The user's columns, a row per role, and (`with_sign_in`) the sign-in the token belongs to.
    Core columns, built once at import: every authenticated request runs it."""
    user, unit, role, sign_in = (cast(Table, User.__table__), cast(Table, OrgUnit.__table__),  # type: ignore[attr-defined]
                                 cast(Table, UserRole.__table__), cast(Table, SignIn.__table__))  # type: ignore[attr-defined]
    columns: list[Any] = [user.c.is_active, user.c.org_unit_id, user.c.agency, unit.c.path, role.c.role]
    if with_sign_in:
        columns += [sign_in.c.id.label("sign_in_id"), sign_in.c.revoked_at.label("sign_in_revoked_at")]
    query = (
        select(*columns)
        .join(unit, unit.c.id == user.c.org_unit_id)
        .outerjoin(role, role.c.user_id == user.c.id)
        .where(user.c.id == bindparam("user_id"))
    )
    if with_sign_in:
        query = query.outerjoin(sign_in, and_(sign_in.c.id == bindparam("family_id"), sign_in.c.user_id == user.c.id))
    return query


_PRINCIPAL = _principal_query(with_sign_in=False)
_PRINCIPAL_OF_SIGN_IN = _principal_query(with_sign_in=True)


def principal_for(
    session: Session, user_id: int, *, device_id: str | None, ip: str | None, family_id: str | None = None
) -> Principal | None:
    """The principal of an active user, or None; given the sign-in an access token belongs to
    (`family_id`), also None once that sign-in has ended. Every authenticated request asks, so it
    is one query of plain columns (a row per role, the sign-in joined by its key), not an ORM user
    and further queries for the roles and the sign-in."""
    query = _PRINCIPAL_OF_SIGN_IN if family_id is not None else _PRINCIPAL
    rows = session.execute(query, {"user_id": user_id, "family_id": family_id}).all()
    if not rows or not rows[0].is_active:
        return None
    first = rows[0]
    if family_id is not None and (first.sign_in_id is None or first.sign_in_revoked_at is not None):
        return None
    return Principal(
        user_id=user_id,
        roles=frozenset(Role(r.role) for r in rows if r.role is not None),
        org_unit_id=first.org_unit_id,
        org_path=first.path,
        agency=first.agency,
        device_id=device_id,
        ip=ip,
        family_id=family_id,
    )


# ------------------------------------------------------------------ throttling


def _throttle_locked_until(session: Session, key: str) -> datetime | None:
    row = session.get(LoginThrottle, key)
    if row is None or row.locked_until is None:
        return None
    until = clock.as_utc(row.locked_until)
    return until if until > clock.now() else None


def _note_failure(session: Session, key: str, limit: int) -> None:
    """Count one failure atomically (upsert), locking the key when the limit is reached."""
    settings = get_settings()
    now = clock.now()
    insert = dialect_insert(session)
    session.execute(
        insert(LoginThrottle)
        .values(key=key, failures=0, window_started_at=now, locked_until=None)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    row = session.execute(select(LoginThrottle).where(col(LoginThrottle.key) == key).with_for_update()).scalar_one()
    window = timedelta(minutes=settings.login_failure_window_minutes)
    if clock.as_utc(row.window_started_at) + window < now:
        row.failures = 0
        row.window_started_at = now
    row.failures += 1
    if row.failures >= limit:
        row.locked_until = now + timedelta(minutes=settings.login_lockout_minutes)
        row.failures = 0
        row.window_started_at = now
    session.add(row)


def _raise_if_locked(session: Session, keys: list[str]) -> None:
    for key in keys:
        until = _throttle_locked_until(session, key)
        if until is not None:
            seconds = max(1, int((until - clock.now()).total_seconds()))
            raise LoginLocked(
                f"登录失败次数过多，请在{(seconds + 59) // 60}分钟后再试",
                f"Too many failed sign-ins; try again in {(seconds + 59) // 60} minutes",
                headers={"Retry-After": str(seconds)},
                retry_after=seconds,
            )


# Per address the rule is a leaky bucket, never a lock: everyone behind a NAT or the proxy shares
# one address. Each failure adds one to the address's level, which drains by login_ip_max_failures
# per login_failure_window_minutes. At that many the address waits after each failure: 1 s, then
# doubling up to login_ip_max_delay_seconds. A sign-in during the wait is answered 429 login-slowed
# (Retry-After) without being verified or counted; once the wait is over the next sign-in takes the
# address's turn (one at a time across processes: a burst gets one verification), a success hands
# the turn on at once and a failure starts the next, longer wait. So a guesser is held to the drain
# rate (3 or 4 a minute by default) while the others at the address wait seconds, not 15 minutes.
# A phone that has signed in to the number before (X-Device-Id) is not held at all: the guesser
# cannot present it, the office's known phones never queue behind it.
KNOWN_DEVICE_DAYS = 90
# How long a sign-in holding the address's turn keeps it if it neither fails nor succeeds (a crash).
_TURN_SECONDS = 10


def _address_key(ip: str) -> str:
    return f"ip:{ip}"


def _known_device_key(phone: str, device_id: str) -> str:
    # Keyed by a digest: the table then holds no device id next to a number.
    return "known:" + hashlib.sha256(f"{phone}\x00{device_id}".encode()).hexdigest()


def _address_level(row: LoginThrottle | None, now: datetime) -> tuple[int, datetime]:
    """The address's failure level at `now`, and the instant its drain is counted from."""
    if row is None:
        return 0, now
    settings = get_settings()
    interval = timedelta(minutes=settings.login_failure_window_minutes) / settings.login_ip_max_failures
    since = clock.as_utc(row.window_started_at)
    drained = int((now - since) / interval) if now > since else 0
    if drained >= row.failures:
        return 0, now
    return row.failures - drained, since + drained * interval


def _address_wait(level: int) -> timedelta | None:
    """How long the address waits after a failure that left it at `level`; None: not slowed."""
    settings = get_settings()
    over = level - settings.login_ip_max_failures
    if over < 0:
        return None
    return timedelta(seconds=min(settings.login_ip_max_delay_seconds, 2 ** min(over, 30)))


def _slowed(until: datetime) -> LoginSlowed:
    seconds = max(1, math.ceil((until - clock.now()).total_seconds()))
    return LoginSlowed(
        f"该网络登录失败次数过多，请在{seconds}秒后再试",
        f"Too many failed sign-ins from this network; try again in {seconds} seconds",
        headers={"Retry-After": str(seconds)},
        retry_after=seconds,
    )


def _is_known_device(session: Session, phone: str, device_id: str | None) -> bool:
    if not device_id:
        return False
    row = session.get(LoginThrottle, _known_device_key(phone, device_id))
    # For these rows locked_until is the end of the trust (so the purge job keeps them until then).
    return row is not None and row.locked_until is not None and clock.as_utc(row.locked_until) > clock.now()


def _take_address_turn(session: Session, ip: str) -> bool:
    """Raise LoginSlowed while the address waits; True when this sign-in took the address's turn
    (the address is slowed and its wait is over), which the caller hands back when it is done."""
    now = clock.now()
    row = session.get(LoginThrottle, _address_key(ip))
    if row is None:
        return False
    if row.locked_until is not None and clock.as_utc(row.locked_until) > now:
        raise _slowed(clock.as_utc(row.locked_until))
    if _address_wait(_address_level(row, now)[0]) is None:
        return False
    # Take the turn in a committed transaction of its own, the row locked, so that of a burst at the
    # end of the wait (in any process) one is verified. On SQLite the request's transaction holds the
    # write lock the side one needs: release it first.
    session.rollback()
    with Session(session.get_bind()) as side:
        row = side.execute(
            select(LoginThrottle).where(col(LoginThrottle.key) == _address_key(ip)).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            return False
        now = clock.now()
        if row.locked_until is not None and clock.as_utc(row.locked_until) > now:
            raise _slowed(clock.as_utc(row.locked_until))
        if _address_wait(_address_level(row, now)[0]) is None:
            return False
        row.locked_until = now + timedelta(seconds=_TURN_SECONDS)
        side.add(row)
        side.commit()
    return True


def _hand_back_turn(session: Session, ip: str) -> None:
    """End the address's turn taken by this sign-in, so the next one need not wait for it."""
    session.execute(
        update(LoginThrottle).where(col(LoginThrottle.key) == _address_key(ip)).values(locked_until=None)
    )


def _note_address_failure(session: Session, ip: str) -> None:
    """Add one failure to the address's level and start its wait when slowed (row locked)."""
    now = clock.now()
    key = _address_key(ip)
    insert = dialect_insert(session)
    session.execute(
        insert(LoginThrottle)
        .values(key=key, failures=0, window_started_at=now, locked_until=None)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    row = session.execute(select(LoginThrottle).where(col(LoginThrottle.key) == key).with_for_update()).scalar_one()
    level, since = _address_level(row, now)
    row.failures = level + 1
    row.window_started_at = since
    wait = _address_wait(row.failures)
    row.locked_until = now + wait if wait is not None else None
    session.add(row)


def _remember_device(session: Session, phone: str, device_id: str) -> None:
    """Trust this phone for this number at every address for KNOWN_DEVICE_DAYS from now."""
    now = clock.now()
    until = now + timedelta(days=KNOWN_DEVICE_DAYS)
    insert = dialect_insert(session)
    session.execute(
        insert(LoginThrottle)
        .values(key=_known_device_key(phone, device_id), failures=0, window_started_at=now, locked_until=until)
        .on_conflict_do_update(index_elements=["key"], set_={"window_started_at": now, "locked_until": until})
    )


# ------------------------------------------------------------------ sign-in


def _pair(session: Session, user: User, row: RefreshToken, refresh: str) -> TokenPair:
    """The answer for a stored refresh token `row` whose plaintext is `refresh`. The access token
    is made from the row alone (its sign-in, issue time and id), so answering again for the same
    row gives the same access token (unless the user's roles or unit, hints in it, changed)."""
    assert user.id is not None and row.id is not None
    roles = sorted(user_roles(session, user.id))
    access, access_expires = issue_access_token(
        user.id,
        [r.value for r in roles],
        user.org_unit_id,
        family_id=row.family_id,
        issued_at=clock.as_utc(row.issued_at),
        token_id=f"{row.family_id[:8]}.{row.id}",
    )
    return TokenPair(
        access_token=access,
        expires_in=max(0, int((access_expires - clock.now()).total_seconds())),
        refresh_token=refresh,
        refresh_expires_at=clock.as_utc(row.expires_at),
        user=to_public(session, user),
    )


def _issue_pair(session: Session, user: User, family_id: str, refresh: str) -> TokenPair:
    """Store refresh token `refresh` in the family and answer with it and a new access token."""
    assert user.id is not None
    now = clock.now()
    row = RefreshToken(
        user_id=user.id,
        family_id=family_id,
        token_hash=token_digest(refresh),
        issued_at=now,
        expires_at=now + timedelta(days=get_settings().refresh_token_days),
    )
    session.add(row)
    session.flush()
    return _pair(session, user, row, refresh)


def login(session: Session, *, phone: str, password: str, ip: str | None, device_id: str | None) -> TokenPair:
    """Check the password and open a new token family. Failures are counted in their own
    transaction, so they stick even though the sign-in itself fails."""
    settings = get_settings()
    try:
        phone = normalise_phone(phone)
    except InvalidInput:
        # Same answer as a wrong password: do not tell a prober which numbers are well formed.
        raise InvalidCredentials() from None
    _raise_if_locked(session, [f"phone:{phone}"])
    # The address rule (above _take_address_turn) holds no phone that signed in to the number before.
    by_address = ip is not None and not _is_known_device(session, phone, device_id)
    took_turn = by_address and ip is not None and _take_address_turn(session, ip)

    user = session.execute(select(User).where(col(User.phone) == phone)).scalar_one_or_none()
    user_id, stored_hash = (user.id, user.password_hash) if user else (None, None)
    # Argon2 takes a tenth of a second and may wait for a slot (backend/core/hashing.py): meanwhile
    # hold no pooled connection, nor SQLite's write lock. (Rollback expires the loaded user.)
    session.rollback()
    try:
        good = verify_password(stored_hash, password)
        rehashed = hash_password(password) if good and stored_hash and password_needs_rehash(stored_hash) else None
    except ServerBusy:
        if took_turn and ip is not None:  # not looked at: the next sign-in may go at once
            with Session(session.get_bind()) as side:
                _hand_back_turn(side, ip)
                side.commit()
        raise
    if good and user_id is not None:
        user = session.execute(select(User).where(col(User.id) == user_id)).scalar_one_or_none()
    else:
        user = None
    # The password checked must still be the user's (not changed while it was being checked).
    if user is None or not user.is_active or user.password_hash != stored_hash:
        session.rollback()  # on SQLite this transaction would hold the write lock the side one needs
        with Session(session.get_bind()) as side:
            _note_failure(side, f"phone:{phone}", settings.login_max_failures)
            if by_address and ip is not None:
                _note_address_failure(side, ip)
            audit.record(
                side,
                actor=None,
                action="auth.login_failed",
                object_type="user",
                object_id=user_id,
                ip=ip,
                device_id=device_id,
                details={"phone_tail": phone[-4:]},
            )
            side.commit()
        raise InvalidCredentials()

    session.execute(delete(LoginThrottle).where(col(LoginThrottle.key) == f"phone:{phone}"))
    if took_turn and ip is not None:
        _hand_back_turn(session, ip)
    if device_id:
        _remember_device(session, phone, device_id)
    if rehashed is not None:
        user.password_hash = rehashed
        session.add(user)
    audit.record(
        session,
        actor=None,
        action="auth.login",
        object_type="user",
        object_id=user.id,
        actor_user_id=user.id,
        org_unit_id=user.org_unit_id,
        ip=ip,
        device_id=device_id,
    )
    assert user.id is not None
    family_id = str(uuid.uuid4())
    session.add(SignIn(id=family_id, user_id=user.id, created_at=clock.now()))
    return _issue_pair(session, user, family_id, refresh=new_secret_token())


def _revoke_sign_ins(
    session: Session, *, family_id: str | None = None, user_id: int | None = None, keep: str | None = None
) -> None:
    """End sign-ins (one family, or every one of a user but `keep`): their refresh tokens are
    refused from now on, and so are their access tokens, whose sign-in every request checks."""
    assert family_id is not None or user_id is not None
    now = clock.now()
    sign_ins = update(SignIn).where(col(SignIn.revoked_at).is_(None)).values(revoked_at=now)
    tokens = update(RefreshToken).where(col(RefreshToken.revoked_at).is_(None)).values(revoked_at=now)
    if family_id is not None:
        sign_ins = sign_ins.where(col(SignIn.id) == family_id)
        tokens = tokens.where(col(RefreshToken.family_id) == family_id)
    if user_id is not None:
        sign_ins = sign_ins.where(col(SignIn.user_id) == user_id)
        tokens = tokens.where(col(RefreshToken.user_id) == user_id)
    if keep is not None:
        sign_ins = sign_ins.where(col(SignIn.id) != keep)
        tokens = tokens.where(col(RefreshToken.family_id) != keep)
    session.execute(sign_ins)
    session.execute(tokens)


def _retried_pair(
    session: Session, row: RefreshToken, presented: str, *, device_id: str | None, now: datetime
) -> TokenPair | None:
    """The pair the first use of spent token `row` answered, when this is that answer being asked
    for again: from the device that spent it, within the grace window, and its successor not yet
    used (a later generation in use means this is not a lost answer). None otherwise."""
    grace = timedelta(seconds=get_settings().refresh_reuse_grace_seconds)
    # Without a device id a retry cannot be told from another holder of the token: no grace.
    if device_id is None or row.used_device_id != device_id or row.used_at is None:
        return None
    if now - clock.as_utc(row.used_at) > grace:
        return None
    # The successor is derived from the presented token, never stored: recompute it, find its row.
    successor_token = successor_refresh_token(presented)
    successor = session.execute(
        select(RefreshToken).where(
            col(RefreshToken.token_hash) == token_digest(successor_token),
            col(RefreshToken.family_id) == row.family_id,
        )
    ).scalar_one_or_none()
    if successor is None or successor.used_at is not None or successor.revoked_at is not None:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise RefreshTokenInvalid()
    audit.record(
        session,
        actor=None,
        action="auth.refresh_retried",
        object_type="user",
        object_id=user.id,
        actor_user_id=user.id,
        device_id=device_id,
        details={"family": row.family_id},
    )
    return _pair(session, user, successor, successor_token)


def refresh(session: Session, *, refresh_token: str, device_id: str | None) -> TokenPair:
    """Rotate: the presented token is spent and its successor issued in the same family. A spent
    token presented again revokes the family, unless it is the spending device retrying within the
    grace window: that gets the same pair again. The token's row is locked first (PostgreSQL; on
    SQLite BEGIN IMMEDIATE already serialises writers), so a retry racing the first attempt waits
    for it and then answers the same pair, in whichever API process it lands."""
    digest = token_digest(refresh_token)
    row = session.execute(
        select(RefreshToken).where(col(RefreshToken.token_hash) == digest).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise RefreshTokenInvalid()
    now = clock.now()
    if row.revoked_at is not None or clock.as_utc(row.expires_at) <= now:
        raise RefreshTokenInvalid()
    if row.used_at is None:
        user = session.get(User, row.user_id)
        if user is None or not user.is_active:
            raise RefreshTokenInvalid()
        row.used_at = now
        row.used_device_id = device_id
        session.add(row)
        return _issue_pair(session, user, row.family_id, refresh=successor_refresh_token(refresh_token))
    retried = _retried_pair(session, row, refresh_token, device_id=device_id, now=now)
    if retried is not None:
        return retried
    family_id, user_id = row.family_id, row.user_id
    # The answer is an error, which rolls the request back: revoke in a transaction of its own.
    session.rollback()
    with Session(session.get_bind()) as side:
        _revoke_sign_ins(side, family_id=family_id)
        audit.record(
            side,
            actor=None,
            action="auth.refresh_reused",
            object_type="user",
            object_id=user_id,
            actor_user_id=user_id,
            device_id=device_id,
            details={"family": family_id},
        )
        side.commit()
    raise RefreshTokenReused()


def logout(session: Session, *, refresh_token: str) -> None:
    """End the token's sign-in (this phone): its refresh and access tokens. Unknown tokens are ignored."""
    row = session.execute(
        select(RefreshToken).where(col(RefreshToken.token_hash) == token_digest(refresh_token))
    ).scalar_one_or_none()
    if row is not None:
        _revoke_sign_ins(session, family_id=row.family_id)


def change_password(session: Session, principal: Principal, *, current: str, new: str) -> None:
    """Change one's own password and sign out every other session (this one too when the caller's
    token names no sign-in)."""
    user = session.get(User, principal.user_id)
    assert user is not None
    if not verify_password(user.password_hash, current):
        raise InvalidCredentials()
    user.password_hash = hash_password(new)
    user.updated_at = clock.now()
    session.add(user)
    _revoke_sign_ins(session, user_id=principal.user_id, keep=principal.family_id)
    audit.record(
        session,
        actor=principal,
        action="auth.password_changed",
        object_type="user",
        object_id=user.id,
        org_unit_id=user.org_unit_id,
    )


# ------------------------------------------------------------------ users


def _standing(unit: OrgUnit, roles: frozenset[Role], agency: str | None, is_active: bool) -> grants.Standing:
    """A user's standing for the grant table."""
    return grants.Standing(unit_path=unit.path, unit_level=OrgLevel(unit.level), roles=roles,
                           agency=Agency(agency) if agency else None, is_active=is_active)


def _check_user_change(session: Session, principal: Principal, *, user: User | None,
                       before: grants.Standing | None, after: grants.Standing, request: dict[str, Any]) -> None:
    """grants.check_user_change, with every refusal audited: an attempt to raise oneself or to touch a
    peer is what an auditor looks for. The refusal rolls the request back, so it is written apart."""
    try:
        grants.check_user_change(principal, user_id=user.id if user else None, before=before, after=after)
    except (grants.UserSelfChange, grants.UserNotManageable, grants.RoleNotGrantable) as refusal:
        object_id = user.id if user else None
        org_unit_id = user.org_unit_id if user else None
        session.rollback()  # on SQLite this transaction holds the write lock the side one needs
        with Session(session.get_bind()) as side:
            audit.record(side, actor=principal, action="user.change_refused", object_type="user",
                         object_id=object_id, org_unit_id=org_unit_id,
                         details={"code": refusal.code, "request": request, **refusal.extensions})
            side.commit()
        raise


def create_user(session: Session, principal: Principal, data: UserCreate) -> User:
    """Create a user inside the caller's jurisdiction, with roles the grant table lets the caller give
    at that unit to that agency (backend/accounts/grants.py)."""
    phone = normalise_phone(data.phone)
    unit = orgunits.get_visible_unit(session, principal, data.org_unit_id)
    roles = frozenset(data.roles)
    agency = data.agency.value if data.agency else None
    _check_user_change(session, principal, user=None, before=None,
                       after=_standing(unit, roles, agency, is_active=True),
                       request={"org_unit_id": data.org_unit_id, "roles": sorted(r.value for r in roles),
                                "agency": agency})
    if session.execute(select(col(User.id)).where(col(User.phone) == phone)).first():
        raise InvalidInput("该手机号已注册", "This phone number is already registered", field="phone")
    user = User(
        phone=phone,
        display_name=data.display_name,
        password_hash=hash_password(data.password),
        org_unit_id=data.org_unit_id,
        agency=agency,
    )
    session.add(user)
    session.flush()
    for role in sorted(roles):
        session.add(UserRole(user_id=user.id, role=role.value))  # type: ignore[arg-type]
    session.flush()
    audit.record(
        session,
        actor=principal,
        action="user.create",
        object_type="user",
        object_id=user.id,
        org_unit_id=user.org_unit_id,
        details={"roles": sorted(r.value for r in roles), "agency": user.agency},
    )
    return user


def get_visible_user(session: Session, principal: Principal, user_id: int) -> User:
    """A user whose unit is inside the caller's jurisdiction, else 404."""
    return orgunits.get_in_jurisdiction(session, principal, User, user_id)


def read_user(session: Session, principal: Principal, user_id: int) -> User:
    """A user's record, audited (a user is a person too)."""
    user = get_visible_user(session, principal, user_id)
    audit.record(
        session,
        actor=principal,
        action="user.read",
        object_type="user",
        object_id=user.id,
        org_unit_id=user.org_unit_id,
    )
    return user


def update_user(session: Session, principal: Principal, user_id: int, data: UserUpdate) -> User:
    """Change a user's name, unit, roles, agency or active flag, as the grant table allows: never
    one's own standing, never a peer's or a superior's, only to roles the caller may grant there."""
    user = get_visible_user(session, principal, user_id)
    unit = orgunits.get_visible_unit(session, principal, data.org_unit_id) if data.org_unit_id is not None else None
    current = user_roles(session, user_id)
    roles = frozenset(data.roles) if data.roles is not None else current
    home = session.get(OrgUnit, user.org_unit_id)
    assert home is not None
    before = _standing(home, current, user.agency, user.is_active)
    after = _standing(unit or home, roles, data.agency.value if data.agency else user.agency,
                      user.is_active if data.is_active is None else data.is_active)
    request = {k: v for k, v in data.model_dump(mode="json", exclude_none=True).items() if k != "display_name"}
    _check_user_change(session, principal, user=user, before=before, after=after, request=request)
    changes: dict[str, object] = {}
    if unit is not None and unit.id != user.org_unit_id:
        user.org_unit_id = unit.id or 0
        changes["org_unit_id"] = unit.id
    if roles != current:
        session.execute(delete(UserRole).where(col(UserRole.user_id) == user_id))
        for role in sorted(roles):
            session.add(UserRole(user_id=user_id, role=role.value))
        changes["roles"] = sorted(r.value for r in roles)
    if data.display_name is not None:
        user.display_name = data.display_name
        changes["display_name"] = True
    if data.agency is not None and data.agency.value != user.agency:
        user.agency = data.agency.value
        changes["agency"] = data.agency.value
    if data.is_active is not None and data.is_active != user.is_active:
        user.is_active = data.is_active
        changes["is_active"] = data.is_active
        if not data.is_active:
            # Ended for good: reactivating the account later does not revive these sign-ins.
            _revoke_sign_ins(session, user_id=user_id)
    user.updated_at = clock.now()
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=principal,
        action="user.update",
        object_type="user",
        object_id=user.id,
        org_unit_id=user.org_unit_id,
        details=changes,
    )
    return user


def list_users(
    session: Session, principal: Principal, *, role: Role | None, cursor: str | None, limit: int
) -> tuple[list[User], str | None]:
    """Users in the caller's jurisdiction, by id, paginated."""
    pos = decode_cursor(cursor) or {}
    q = select(User).where(orgunits.in_jurisdiction(principal, col(User.org_unit_id)))
    if role is not None:
        q = q.where(col(User.id).in_(select(col(UserRole.user_id)).where(col(UserRole.role) == role.value)))
    if "after" in pos:
        q = q.where(col(User.id) > int(pos["after"]))
    rows = list(session.execute(q.order_by(col(User.id)).limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor({"after": rows[-1].id}) if more and rows else None


# ------------------------------------------------------------------ devices


class DeviceChannelInvalid(DomainError):
    """A push channel the phone's platform cannot have (an iPhone on a maker's Android channel)."""

    code = "device-channel-invalid"
    status = 422
    title_zh = "推送通道与设备平台不符"
    title_en = "Push channel does not fit the platform"


# iOS is reached through FCM (APNs); HarmonyOS only through Huawei Push Kit: HMS (v1) on
# HarmonyOS 2-4, Push Kit v3 on HarmonyOS NEXT, whose tokens only v3 takes; Android through any
# channel but the NEXT one.
CHANNELS_OF_PLATFORM: dict[DevicePlatform, frozenset[PushChannel]] = {
    DevicePlatform.ios: frozenset({PushChannel.fcm}),
    DevicePlatform.harmony: frozenset({PushChannel.huawei, PushChannel.harmony}),
    DevicePlatform.android: frozenset(PushChannel) - {PushChannel.harmony},
}


def register_device(session: Session, principal: Principal, data: DeviceRegister) -> Device:
    """Register (or refresh) a phone's push token for the caller. A token seen under another
    user moves to this one: it is the same phone, now signed in by someone else. Registering the
    same token again with another channel moves the phone to that channel."""
    if data.channel not in CHANNELS_OF_PLATFORM[data.platform]:
        allowed = sorted(c.value for c in CHANNELS_OF_PLATFORM[data.platform])
        raise DeviceChannelInvalid(
            f"{data.platform.value} 设备只能使用推送通道：{'、'.join(allowed)}",
            f"A {data.platform.value} device can only use the push channels: {', '.join(allowed)}",
            field="channel", allowed=allowed)
    now = clock.now()
    # The account's registrations one at a time (PostgreSQL; SQLite has one writer), so two at once
    # cannot both leave one phone too many.
    session.execute(select(col(User.id)).where(col(User.id) == principal.user_id).with_for_update())
    # One statement, so a phone resending its registration on a bad network (two identical requests
    # at once) gets the same device twice instead of one unique-violation 500.
    values = {"user_id": principal.user_id, "platform": data.platform.value, "channel": data.channel.value,
              "app_version": data.app_version, "last_seen_at": now}
    insert = dialect_insert(session)
    statement = insert(Device).values(push_token=data.push_token, created_at=now, **values)
    session.execute(statement.on_conflict_do_update(index_elements=["push_token"], set_=values))
    device: Device = session.execute(
        select(Device).where(col(Device.push_token) == data.push_token).execution_options(populate_existing=True)
    ).scalar_one()
    _keep_recent_devices(session, principal.user_id, keep=get_settings().devices_per_user)
    return device


def _keep_recent_devices(session: Session, user_id: int, *, keep: int) -> None:
    """Remove the account's phones beyond the `keep` seen most recently (the one just registered is
    the most recent). A removed phone's pending pushes lose their device and are dropped when claimed,
    as when the phone is unregistered."""
    beyond = [int(i) for i in session.execute(
        select(col(Device.id)).where(col(Device.user_id) == user_id)
        .order_by(col(Device.last_seen_at).desc(), col(Device.id).desc()).offset(keep)
    ).scalars()]
    if beyond:
        session.execute(delete(Device).where(col(Device.id).in_(beyond)))


def list_devices(session: Session, principal: Principal) -> list[Device]:
    return list(
        session.execute(
            select(Device).where(col(Device.user_id) == principal.user_id).order_by(col(Device.id))
        ).scalars()
    )


def remove_device(session: Session, principal: Principal, device_id: int) -> None:
    device = session.get(Device, device_id)
    if device is None or device.user_id != principal.user_id:
        raise NotFound()
    session.delete(device)
