"""Opaque cursors and the page envelope every list endpoint returns."""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, literal, tuple_
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.core import clock
from backend.core.errors import InvalidInput
from backend.core.secrets import Purpose, purpose_key

T = TypeVar("T")

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    """A page of results. Pass `next_cursor` back as `cursor` for the next page; null means done."""

    items: list[T]
    next_cursor: str | None = None


# A cursor is the position as JSON, base64url, then "." and a MAC of it (under its own key derived
# from the master secret, backend/core/secrets.py, so cursors of one deployment are valid in all its
# processes). Only the server makes cursors: a hand-made one (say a sync position moved back to
# re-read what was removed, or any fuzzed input) is a 422, not a position. Cursors are short;
# anything longer is refused before decoding.
MAX_CURSOR_LENGTH = 1024


def _mac(payload: str) -> str:
    digest = hmac.digest(purpose_key(Purpose.cursor), payload.encode(), "sha256")[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


# A cursor belongs to the list that issued it: its MAC covers the request path it was made at (set
# per request by CursorScope), so the next_cursor of one list sent to another (a phone's bug, a
# referral cursor at /venues) is refused like a forged one instead of read as a position it is not.
# A cursor made outside any request (tests, tools) is bound to no list and valid at each.
_LIST: ContextVar[str] = ContextVar("hulei_cursor_list", default="")


@contextmanager
def cursor_scope(path: str) -> Iterator[None]:
    """Cursors made and read inside the block belong to the list at `path`."""
    token = _LIST.set(path)
    try:
        yield
    finally:
        _LIST.reset(token)


class CursorScope:
    """ASGI middleware: each HTTP request's cursors belong to its path (cursor_scope)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with cursor_scope(str(scope.get("path", ""))):
            await self.app(scope, receive, send)


def _bound(payload: str) -> str:
    lst = _LIST.get()
    return f"{lst}\x00{payload}" if lst else payload


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    payload = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return f"{payload}.{_mac(_bound(payload))}"


# Every member any list puts in its cursors, with its type: a position is read into this shape or
# refused, so an endpoint reading `int(position["id"])` can rely on it whatever arrives (a cursor of
# another list, one signed by an earlier build or a leaked key). A new cursor member is declared here.
_Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
_KeyPart = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | Annotated[str, Field(max_length=200)]
_Key = Annotated[list[_KeyPart], Field(min_length=1, max_length=8)]
_Text = Annotated[str, Field(max_length=1024)]


class _Position(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: _Int64 | None = None  # households, venues, notifications, children without a helper
    rank: _Int64 | None = None  # children without a helper (with id)
    after: _Int64 | None = None  # users, households not visited
    r: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None  # sync pull: the revision delivered
    p: _Text | None = None  # sync pull: the jurisdiction's path
    k: _Text | _Key | None = None  # sync pull: the kinds readable then; PageRequest lists: the key after


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The position inside a cursor, every member of its declared type; anything else, a cursor we
    did not issue above all, is a clear 422."""
    if not cursor:
        return None
    payload, _, mac = cursor.partition(".")
    # As bytes: compare_digest refuses str with non-ASCII characters, which anyone can put in a URL.
    sent = mac.encode("utf-8", "surrogatepass")
    if len(cursor) > MAX_CURSOR_LENGTH or not mac or not (
            hmac.compare_digest(sent, _mac(_bound(payload)).encode())
            or hmac.compare_digest(sent, _mac(payload).encode())):
        raise _invalid_cursor()
    try:
        padded = payload + "=" * (-len(payload) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(value, dict) or not value or None in value.values():
            raise ValueError(cursor)
        return _Position.model_validate(value).model_dump(exclude_unset=True)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # pydantic's ValidationError is a ValueError
        raise _invalid_cursor() from exc


# ---------------------------------------------------------------- the paged form of v1's bare lists
#
# v1 answered some lists as bare JSON arrays. Those keep answering so (phones that have not updated
# rely on it); `?paged=true`, or any `cursor`, answers the same list as a Page instead. One mechanism
# serves them all: the `page_request` dependency reads paged/cursor/limit, `PageRequest.seek` bounds
# a query after the cursor, and `PageRequest.answer` shapes the reply either way.

KeyValue = int | str | date | datetime

PAGED_HELP = ("true: answer one page {items, next_cursor} of this list instead of the bare array (v1); "
              "implied by `cursor`")
CURSOR_HELP = "The `next_cursor` of the previous page (paged form only)"


def _invalid_cursor() -> InvalidInput:
    return InvalidInput("分页游标无效，请从头加载", "The cursor is not valid; start again without it", field="cursor")


@dataclass(frozen=True)
class PageRequest:
    """How a list was asked for: the bare v1 array, or one page of at most `limit` after `cursor`."""

    paged: bool = False
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    # The endpoint had `limit` in v1: the bare array stops there too.
    limits_bare: bool = False

    @property
    def fetch(self) -> int:
        """Rows to read: a page and one more (to tell whether another follows), or v1's `limit`."""
        return self.limit + 1 if self.paged else self.limit

    def _position(self) -> list[Any] | None:
        position = decode_cursor(self.cursor) if self.paged else None
        if position is None:
            return None
        key = position.get("k")
        if not isinstance(key, list) or not key or not all(
            isinstance(v, int | str) and not isinstance(v, bool) for v in key
        ):
            raise _invalid_cursor()
        return key

    def after(self, *types: type[KeyValue]) -> tuple[KeyValue, ...] | None:
        """The key the cursor continues after, read as `types` (None: from the start)."""
        raw = self._position()
        if raw is None:
            return None
        if len(raw) != len(types):
            raise _invalid_cursor()
        return tuple(_revive(value, kind) for value, kind in zip(raw, types, strict=True))

    def seek(self, stmt: Select[Any], *columns: Any, descending: bool = False,
             bare_limit: int | None = None) -> Select[Any]:
        """`stmt` in the order of `columns` (unique together), after the cursor, one row beyond a page
        (to tell whether another follows). The bare array keeps its v1 cap: `limit` where v1 had it,
        else `bare_limit`."""
        order = [c.desc() if descending else c.asc() for c in columns]
        stmt = stmt.order_by(None).order_by(*order)
        if not self.paged:
            cap = self.limit if self.limits_bare else bare_limit
            return stmt if cap is None else stmt.limit(cap)
        after = self.after(*(_python_type(c) for c in columns))
        if after is not None:
            here = columns[0] if len(columns) == 1 else tuple_(*columns)
            there = (literal(after[0], columns[0].type) if len(columns) == 1 else
                     tuple_(*(literal(v, c.type) for v, c in zip(after, columns, strict=True))))
            stmt = stmt.where(here < there if descending else here > there)
        return stmt.limit(self.limit + 1)

    def answer(self, items: Sequence[T], key: Callable[[T], tuple[KeyValue, ...]], *,
               descending: bool = False) -> list[T] | Page[T]:
        """The bare list as given (v1), or its page after the cursor in the order of `key` (unique per
        item). Items from `seek` are already in that order and bounded; a whole list is sorted here."""
        if not self.paged:
            return list(items)
        keyed = sorted(((_normal(key(item)), item) for item in items), key=lambda e: e[0], reverse=descending)
        if keyed:
            after = self.after(*(type(v) for v in keyed[0][0]))
            if after is not None:
                after = _normal(after)
                keyed = [(k, i) for k, i in keyed if (k < after if descending else k > after)]
        else:
            self._position()  # still refuse a cursor we did not issue
        page = keyed[: self.limit]
        more = len(keyed) > self.limit
        next_cursor = encode_cursor({"k": [_jsonable(v) for v in page[-1][0]]}) if more and page else None
        return Page[T](items=[i for _, i in page], next_cursor=next_cursor)


def page_request(*, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT, v1_limit: bool = False) -> Any:
    """The dependency of a list endpoint answering both forms. `v1_limit`: the endpoint had `limit` in
    v1 (its default and maximum are kept, and it caps the bare array too); otherwise `limit` is the
    page size of the paged form only."""
    help_text = ("At most this many (also caps the bare array, as in v1)" if v1_limit
                 else "Page size (paged form only)")

    # Query() as defaults, not in Annotated: with postponed annotations a closure's names in an
    # annotation could not be resolved by FastAPI.
    def dependency(
        paged: bool = Query(False, description=PAGED_HELP),
        cursor: str | None = Query(None, max_length=512, description=CURSOR_HELP),
        limit: int = Query(default, ge=1, le=maximum, description=help_text),
    ) -> PageRequest:
        return PageRequest(paged=paged or cursor is not None, limit=limit, cursor=cursor, limits_bare=v1_limit)

    return Depends(dependency)


# The usual case: a list v1 answered whole; `limit` (1..500, default 100) sizes pages.
Paging = Annotated[PageRequest, page_request()]


def _python_type(column: Any) -> type[KeyValue]:
    kind: type[KeyValue] = column.type.python_type
    return kind


def _revive(value: Any, kind: type[KeyValue]) -> KeyValue:
    """A cursor's key value back as `kind`; anything else means we did not issue the cursor."""
    try:
        if kind is datetime:
            return clock.as_utc(datetime.fromisoformat(value))
        if kind is date:
            return date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise _invalid_cursor() from exc
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _invalid_cursor()
    return value


def _normal(key: tuple[KeyValue, ...]) -> tuple[KeyValue, ...]:
    """Plain values: datetimes in UTC whichever way they were read (SQLite returns them naive), enums
    as their str or int value."""
    return tuple(clock.as_utc(v) if isinstance(v, datetime) else v if isinstance(v, date)
                 else str(v) if isinstance(v, str) else int(v) for v in key)


def _jsonable(value: KeyValue) -> int | str:
    if isinstance(value, datetime):
        return clock.as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value
