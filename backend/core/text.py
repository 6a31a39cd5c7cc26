"""Text that no backend stores as it was sent, found anywhere in a JSON value and named by its path.

Two kinds of character qualify, and both are refused before any database sees them, so a request
gets the same answer on PostgreSQL and on SQLite:

- NUL (U+0000). PostgreSQL text cannot hold it (psycopg refuses it outright), and a `json` column
  keeps it as the escape `\\u0000`, which `jsonb` and every text function then refuse. SQLite
  stores it, so without this check the same request was stored on one backend and refused on the
  other.
- Lone surrogates (U+D800 to U+DFFF not in a pair). They are not Unicode scalar values and have no
  UTF-8 form: no driver can send them, and a `json` column on PostgreSQL keeps the escape as sent,
  which then breaks every answer that reads it back. JSON text can carry them as `\\udXXX` escapes.

Noncharacters (U+FFFE, U+FFFF, U+FDD0 to U+FDEF and the last two code points of every plane) and
the other control characters are accepted: they are scalar values with a UTF-8 form, both backends
store and return them unchanged, and Unicode (Corrigendum #9) allows them in interchange. Refusing
them would turn away text a phone can legitimately hold for no storage reason; the spreadsheet
exports, which do care, clean control characters themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.errors import BodyRefused, InvalidInput, negotiate_locale

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# In JSON text such characters can only arrive as escapes (raw control characters and raw surrogate
# bytes are invalid JSON): a body without any of these needs no closer look. Surrogate escapes in
# valid pairs (emoji written as \\ud83d\\ude00) also match; the walk over the parsed value decides.
_CANDIDATE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
# At most this many findings are reported for one value (the rest are of no further help).
MAX_FINDINGS = 20


@dataclass(frozen=True)
class Unstorable:
    """One string that cannot be stored: where it is, and the first offending character."""

    path: str
    char: str

    @property
    def code_point(self) -> str:
        return f"U+{ord(self.char):04X}"

    def message(self, locale: str) -> str:
        if locale == "en":
            return f"Contains a character that cannot be stored ({self.code_point}); remove it"
        return f"含有无法保存的字符（{self.code_point}），请删除后重试"


def escaped(text: str) -> str:
    """`text` with each unstorable character written as its \\uXXXX escape, safe to echo back."""
    if _UNSTORABLE.search(text) is None:
        return text
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _join(path: str, key: str | int) -> str:
    part = escaped(key) if isinstance(key, str) else str(key)
    return f"{path}.{part}" if path else part


def holds_unstorable(value: Any) -> bool:
    """False when a JSON value certainly holds no unstorable text; decided by orjson in C, about fifty
    times faster than looking at each string (a push checks hundreds of records)."""
    try:
        dumped = orjson.dumps(value)
    except TypeError:  # orjson refuses lone surrogates (and integers beyond 64 bits): look closer
        return True
    # orjson writes NUL as \u0000 (the text "\u0000", escaped, also matches: then the walk decides).
    return b"\\u0000" in dumped


def find_unstorable(value: Any, path: str = "") -> list[Unstorable]:
    """Every string (object keys included) in a JSON value that no backend can store as it is,
    with its dotted path from `path` (list items by index; a bad key is named escaped)."""
    if not holds_unstorable(value):
        return []
    found: list[Unstorable] = []
    _walk(value, path, found)
    return found[:MAX_FINDINGS]


def _walk(value: Any, path: str, found: list[Unstorable]) -> None:
    if len(found) >= MAX_FINDINGS:
        return
    if isinstance(value, str):
        bad = _UNSTORABLE.search(value)
        if bad is not None:
            found.append(Unstorable(path, bad.group()))
    elif isinstance(value, Mapping):
        for key, member in value.items():
            here = _join(path, key)
            bad = _UNSTORABLE.search(key) if isinstance(key, str) else None
            if bad is not None:
                found.append(Unstorable(here, bad.group()))
            _walk(member, here, found)
    elif isinstance(value, list | tuple):
        for n, member in enumerate(value):
            _walk(member, _join(path, n), found)


def might_hold_unstorable(body: bytes) -> bool:
    """False when JSON text `body` certainly holds no unstorable character (the common case, decided
    without parsing it: a body without a backslash has no escapes at all)."""
    return b"\x00" in body or (b"\\" in body and _CANDIDATE_ESCAPE.search(body) is not None)


def unstorable_problem(found: Sequence[Unstorable], locale: str) -> InvalidInput:
    """A 422 `invalid-input` naming each field, in the shape of every other validation problem."""
    errors = [{"field": f.path, "type": "unstorable_text", "message": f.message(locale)} for f in found]
    fields = ", ".join(f.path for f in found if f.path)
    return InvalidInput(
        f"以下字段含有无法保存的字符：{fields}" if fields else "提交的内容含有无法保存的字符",
        f"These fields contain a character that cannot be stored: {fields}"
        if fields
        else "The body contains a character that cannot be stored",
        errors=errors,
    )


def _is_json(headers: Headers) -> bool:
    # The same test FastAPI applies before it parses a body as JSON.
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type.startswith("application/") and (media_type.endswith("/json") or media_type.endswith("+json"))


def _matches(pattern: Sequence[str], path: Sequence[str]) -> bool:
    return len(pattern) == len(path) and all(p in ("*", q) for p, q in zip(pattern, path, strict=True))


def _without(value: Any, skipped: Sequence[Sequence[str]], path: tuple[str, ...] = ()) -> Any:
    """`value` with the members at the skipped paths (segments, "*" for any key or index) left out."""
    if not skipped:
        return value
    if isinstance(value, dict):
        items: list[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return value
    kept = {}
    for key, member in items:
        here = (*path, str(key))
        if any(_matches(pattern, here) for pattern in skipped):
            continue
        kept[key] = _without(member, [p for p in skipped if len(p) > len(here)], here)
    return kept


class UnstorableTextGuard:
    """ASGI middleware: a JSON request body holding text no backend can store is refused with 422
    `invalid-input` naming each field, whatever the endpoint, before anything reads it as data.

    The check runs as the application reads the last chunk of the body (nothing is buffered here
    that the application would not buffer anyway), and costs one byte scan unless the body holds a
    candidate escape. `itemwise` names, per path, members whose text the endpoint judges itself
    (sync push rejects only the item that holds it): dotted patterns, "*" for any key or index."""

    def __init__(self, app: ASGIApp, itemwise: Mapping[str, Sequence[str]] | None = None) -> None:
        self.app = app
        self.itemwise = {path: [p.split(".") for p in patterns] for path, patterns in (itemwise or {}).items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not _is_json(headers):
            await self.app(scope, receive, send)
            return
        skipped = self.itemwise.get(scope["path"], [])
        chunks: list[bytes] = []

        async def checked_receive() -> Message:
            message = await receive()
            if message["type"] != "http.request":
                return message
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                if might_hold_unstorable(body):
                    self._check(body, skipped, headers)
            return message

        await self.app(scope, checked_receive, send)

    @staticmethod
    def _check(body: bytes, skipped: Sequence[Sequence[str]], headers: Headers) -> None:
        try:
            # The standard parser, unlike orjson, accepts lone surrogate escapes: it is the one that
            # can show where they are. Invalid JSON is left to the application's own 422.
            value = json.loads(body)
        except ValueError:
            return
        found = find_unstorable(_without(value, skipped))
        if found:
            locale = negotiate_locale(headers.get("accept-language"))
            raise BodyRefused(unstorable_problem(found, locale))
