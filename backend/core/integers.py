"""Integers no column can hold, found anywhere in a JSON value and named by their path.

Ids, versions and counts are PostgreSQL `integer` columns (32 bits) and SQLite integers (64 bits).
A pushed `grid_id` of 2^31 reached PostgreSQL as a query parameter and failed the whole batch there,
while SQLite looked it up, found nothing and refused only its item; at 2^63 SQLite's driver failed
the batch too. Refusing, before any handler sees them, every integer outside the narrower range
gives one answer on both backends and loses no other item (sync push, backend/sync/service.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from backend.core.errors import InvalidInput

SMALLEST = -(2**31)
LARGEST = 2**31 - 1
# A number of ten or more digits outside a string: the only way JSON text can hold one out of range.
_LONG_NUMBER = re.compile(rb'(?:^|[\[:,])\s*-?[0-9]{10,}')


def _join(path: str, key: str | int) -> str:
    return f"{path}.{key}" if path else str(key)


def find_out_of_range(value: Any, path: str = "") -> list[str]:
    """The dotted paths of integers (not booleans) in `value` outside SMALLEST..LARGEST."""
    try:
        if _LONG_NUMBER.search(orjson.dumps(value)) is None:
            return []
    except TypeError:  # orjson refuses integers beyond 64 bits (and lone surrogates): look closer
        pass
    found: list[str] = []
    _walk(value, path, found)
    return found


def _walk(value: Any, path: str, found: list[str]) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not SMALLEST <= value <= LARGEST:
            found.append(path)
    elif isinstance(value, Mapping):
        for key, member in value.items():
            _walk(member, _join(path, key), found)
    elif isinstance(value, list | tuple):
        for n, member in enumerate(value):
            _walk(member, _join(path, n), found)


def out_of_range_problem(paths: list[str]) -> InvalidInput:
    """A 422 `invalid-input` naming each field, in the shape of every other validation problem."""
    fields = ", ".join(paths)
    errors = [{"field": p, "type": "out_of_range",
               "message": f"integer out of range ({SMALLEST}..{LARGEST}) / 数值超出范围"} for p in paths]
    return InvalidInput(
        f"以下字段的数值超出可保存的范围：{fields}",
        f"These fields hold a number out of range ({SMALLEST}..{LARGEST}): {fields}",
        field=paths[0] if paths else None,
        errors=errors,
    )
