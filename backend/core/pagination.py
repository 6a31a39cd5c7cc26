"""Opaque cursors and the page envelope every list endpoint returns."""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, literal, tuple_

from backend.core import clock, crypto
from backend.core.errors import InvalidInput

T = TypeVar("T")

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    """A page of results. Pass `next_cursor` back as `cursor` for the next page; null means done."""

    items: list[T]
    next_cursor: str | None = None


# A cursor is the position as JSON, base64url, then "." and a MAC of it (key derived from the index
# key, so cursors of one deployment are valid in all its processes). Only the server makes cursors:
# a hand-made one (say a sync position moved back to re-read what was removed, or any fuzzed input)
# is a 422, not a position. Cursors are short; anything longer is refused before decoding.
MAX_CURSOR_LENGTH = 1024


def _mac(payload: str) -> str:
    digest = bytes.fromhex(crypto.keyed_digest(b"hulei-cursor\x00" + payload.encode()))[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    payload = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return f"{payload}.{_mac(payload)}"


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The position inside a cursor; a cursor we did not issue is a clear 422."""
    if not cursor:
        return None
    payload, _, mac = cursor.partition(".")
    if len(cursor) > MAX_CURSOR_LENGTH or not mac or not hmac.compare_digest(mac, _mac(payload)):
        raise _invalid_cursor()
    try:
        padded = payload + "=" * (-len(payload) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(value, dict):
            raise ValueError(cursor)
        return value
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
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
