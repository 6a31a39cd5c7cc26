"""Opaque cursors and the page envelope every list endpoint returns."""

from __future__ import annotations

import base64
import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from backend.core.errors import InvalidInput

T = TypeVar("T")

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    """A page of results. Pass `next_cursor` back as `cursor` for the next page; null means done."""

    items: list[T]
    next_cursor: str | None = None


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The position inside a cursor; a cursor we did not issue is a clear 422."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(value, dict):
            raise ValueError(cursor)
        return value
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("分页游标无效，请从头加载", "The cursor is not valid; start again without it",
                           field="cursor") from exc
