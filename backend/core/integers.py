"""Integers no column can hold, found anywhere in a JSON value and named by their path.

Ids, versions and counts are PostgreSQL `integer` columns (32 bits) and SQLite integers (64 bits).
A pushed `grid_id` of 2^31 reached PostgreSQL as a query parameter and failed the whole batch there,
while SQLite looked it up, found nothing and refused only its item; at 2^63 SQLite's driver failed
the batch too. Refusing, before any handler sees them, every integer outside the narrower range
gives one answer on both backends and loses no other item (sync push, backend/sync/service.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from backend.core.errors import InvalidInput

SMALLEST = -(2**31)
LARGEST = 2**31 - 1
# A number of ten or more digits outside a string is the only way JSON text can hold one out of
# range. orjson writes no whitespace, so such a number follows "[", ":" or ",". The dump is mapped
# to three symbols (digits to "0", those three to ":", the rest but "-" to "x") and searched for
# the two spellings: about thirty times faster than a regular expression over a 100 kB push.
_SYMBOLS = bytes(
    ord("0") if chr(c).isdigit() and c < 128 else ord(":") if chr(c) in "[:," else ord("-") if c == ord("-")
    else ord("x")
    for c in range(256)
)
_LONG_NUMBER = (b":" + b"0" * 10, b":-" + b"0" * 10)


def _join(path: str, key: str | int) -> str:
    return f"{path}.{key}" if path else str(key)


def find_out_of_range(value: Any, path: str = "") -> list[str]:
    """The dotted paths of integers (not booleans) in `value` outside SMALLEST..LARGEST."""
    try:
        symbols = orjson.dumps(value).translate(_SYMBOLS)
        if not isinstance(value, int) and not any(number in symbols for number in _LONG_NUMBER):
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
