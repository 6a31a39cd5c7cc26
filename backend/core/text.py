"""The characters Hulei does not accept in text, found anywhere in a JSON value and named by its
path; and the one cleaner of text on its way into a file (xlsx, iCalendar).

Refused, in every string of every JSON request body (object keys included), every sync push item
(as that item only) and every cell of an imported ledger or venue sheet:

- NUL (U+0000). PostgreSQL text cannot hold it (psycopg refuses it outright), and a `json` column
  keeps it as the escape `\\u0000`, which `jsonb` and every text function then refuse. SQLite stores
  it, so without this rule the same request was stored on one backend and refused on the other.
- Lone surrogates (U+D800 to U+DFFF not in a pair). They are not Unicode scalar values and have no
  UTF-8 form: no driver can send them, and a `json` column on PostgreSQL keeps the escape as sent,
  which then breaks every answer that reads it back. JSON text can carry them as `\\udXXX` escapes.
- The other C0 control characters (U+0001 to U+001F) except TAB, LF and CR, and the noncharacters
  U+FFFE and U+FFFF. XML 1.0 has no form for them, so no .xlsx can hold them; RFC 5545 forbids the
  controls in calendar text. Both backends store them, but every export had to drop them, so a name
  holding one came back changed (export, edit, re-import showed a change nobody made; issue 15).
  A phone's keyboard or input method never types them: they arrive only by pasting from a broken
  source or on purpose.
- DEL (U+007F) and the C1 controls (U+0080 to U+009F). XML carries them, but RFC 5545 lists DEL
  among the controls calendar text may not hold, and U+0085 (NEL) is a line break to many text tools
  (Python's `splitlines` among them) while it looks like nothing: the same silent change. Like the C0
  controls they are codes, not characters of any name, address or note, so refusing them costs
  nothing and keeps the rule one line: no control character (Unicode category Cc) but TAB, LF, CR.
- The line and paragraph separators U+2028 and U+2029: invisible line breaks that split a CSV
  record, an iCalendar line or a log line where no break is seen.
- The bidirectional embeddings, overrides and isolates (U+202A to U+202E, U+2066 to U+2069): they
  make a name display as something else (U+202E reverses what follows), the "Trojan Source" trick;
  no Chinese text needs them.
- U+FEFF (a byte order mark inside text): invisible, and a name holding one no longer equals the
  same name typed, which looks like a duplicate to anyone reading the ledger.

Accepted as sent: TAB, LF, CR (text areas hold line breaks; the writers write CR and CR LF as LF, the
line break of a cell and of iCalendar); the joiners U+200C and U+200D (emoji sequences and some
scripts need them) and the marks U+200E and U+200F; private-use characters (local systems encode
rare characters of Chinese names there); and the other noncharacters (U+FDD0 to U+FDEF, the last two
code points of planes 1 to 16), because both backends and both file formats carry them unchanged
and Unicode (Corrigendum #9) allows noncharacters in interchange; surrogate pairs (emoji) of course.

Each refusal is the 422 `invalid-input` with `errors[].type` `unstorable_text` it has always been
(a stable type: the phones match on it), naming the JSON path and the code point, in zh-CN and en.

Text stored before this rule may still hold such characters, so the file writers still clean:
`clean` drops them (a U+FFFD in their place would put a visible mark into a name never meant to hold
one) and turns CR LF and a lone CR into LF.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.errors import BodyRefused, InvalidInput, negotiate_locale

# The refused characters (see the module docstring): the controls (C0 but TAB, LF and CR; DEL; C1);
# the line and paragraph separators and the bidirectional controls; U+FEFF; lone surrogates; U+FFFE
# and U+FFFF.
_UNSTORABLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028-\u202e\u2066-\u2069\ufeff\ud800-\udfff\ufffe\uffff]"
)
_CR = re.compile("\r\n?")
# In JSON text the C0 controls can only arrive as escapes (raw, they are invalid JSON); the others may
# also arrive raw (as UTF-8), and so may a surrogate as the three bytes ED A0..BF xx, which
# are not UTF-8 but which Python's json.loads (what FastAPI parses with) reads with "surrogatepass"
# into a lone surrogate. A body without any of these needs no closer look. Harmless escapes also
# match (\\u000a, a surrogate pair such as \\ud83d\\ude00, "\\\\b" for a typed backslash and b): the
# walk over the parsed value decides.
# Each expression starts with one byte a memchr finds first (a body without it is passed at once): a
# 240 kB push is looked at in about 0.2 ms (1.3 ms when it escapes all its Chinese as \\uXXXX), where
# one expression of all alternatives took 1.3 ms (3.7 ms).
_CANDIDATE_ESCAPE = re.compile(
    rb"\\(?:u(?:00[0189][0-9a-fA-F]|007[fF]|[dD][89a-fA-F]|[fF]{3}[eEfF]|202[89a-eA-E]|206[6-9]"
    rb"|[fF][eE][fF][fF])|[bf])"
)
_RAW_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")
# U+FEFF, U+FFFE and U+FFFF; U+2028 to U+202E and U+2066 to U+2069; the C1 controls (as UTF-8).
_RAW_NONCHARACTER = re.compile(rb"\xef(?:\xbf[\xbe\xbf]|\xbb\xbf)")
_RAW_SEPARATOR_OR_BIDI = re.compile(rb"\xe2(?:\x80[\xa8-\xae]|\x81[\xa6-\xa9])")
_RAW_C1 = re.compile(rb"\xc2[\x80-\x9f]")
# The same in orjson's output, which escapes the C0 controls (\\b and \\f for U+0008 and U+000C,
# \\u00XX for the others but TAB, LF and CR) and writes every other character raw.
_DUMPED_ESCAPE = re.compile(rb"\\(?:u00|[bf])")


def _raw_candidates(data: bytes) -> bool:
    """Whether UTF-8 `data` holds, as they are, any refused character JSON need not escape: DEL, a
    C1 control, a separator or bidirectional control, U+FEFF, U+FFFE or U+FFFF."""
    return (
        b"\x7f" in data
        or (b"\xef" in data and _RAW_NONCHARACTER.search(data) is not None)
        or (b"\xe2" in data and _RAW_SEPARATOR_OR_BIDI.search(data) is not None)
        or (b"\xc2" in data and _RAW_C1.search(data) is not None)
    )


# At most this many findings are reported for one value (the rest are of no further help).
MAX_FINDINGS = 20


@dataclass(frozen=True)
class Unstorable:
    """One string holding a refused character: where it is, and the first such character."""

    path: str
    char: str

    @property
    def code_point(self) -> str:
        return code_point(self.char)

    def message(self, locale: str) -> str:
        if locale == "en":
            return f"Contains a character that is not accepted ({self.code_point}); remove it"
        return f"含有不允许的字符（{self.code_point}），请删除后重试"


def code_point(char: str) -> str:
    """`char` as people and the problem texts name it: U+0001."""
    return f"U+{ord(char):04X}"


def first_refused(text: str) -> str | None:
    """The first character of `text` Hulei does not accept, or None."""
    bad = _UNSTORABLE.search(text)
    return None if bad is None else bad.group()


def cell_reason(char: str, locale: str = "zh") -> str:
    """The row error of an imported cell holding the refused `char` (the row and column are named
    beside it): the one place this text is built, for the ledger and the venue import alike."""
    if locale == "en":
        return f"Contains a character that is not accepted ({code_point(char)}); remove it and import again"
    return f"含有不允许的字符（{code_point(char)}），请删除后重新导入"


def clean(text: str) -> str:
    """`text` as a file (xlsx, iCalendar) carries it: CR LF and a lone CR as LF, the refused
    characters dropped (stored text may predate the rule). The one cleaner of both writers."""
    if "\r" in text:
        text = _CR.sub("\n", text)
    return _UNSTORABLE.sub("", text)


def escaped(text: str) -> str:
    """`text` with each refused character written as its \\uXXXX escape, safe to echo back."""
    if _UNSTORABLE.search(text) is None:
        return text
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _join(path: str, key: str | int) -> str:
    part = escaped(key) if isinstance(key, str) else str(key)
    return f"{path}.{part}" if path else part


def holds_unstorable(value: Any) -> bool:
    """False when a JSON value certainly holds no refused character; decided by orjson in C, about
    fifty times faster than looking at each string (a push checks hundreds of records)."""
    try:
        dumped = orjson.dumps(value)
    except TypeError:  # orjson refuses lone surrogates (and integers beyond 64 bits): look closer
        return True
    # The typed text "\u0001" (escaped by orjson as "\\u0001") also matches: then the walk decides.
    return (b"\\" in dumped and _DUMPED_ESCAPE.search(dumped) is not None) or _raw_candidates(dumped)


def find_unstorable(value: Any, path: str = "") -> list[Unstorable]:
    """Every string (object keys included) in a JSON value that holds a refused character,
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
    """False when JSON text `body` certainly holds no refused character (the common case, decided
    without parsing it, in one scan of the bytes)."""
    return (
        b"\x00" in body
        or _raw_candidates(body)
        or (b"\xed" in body and _RAW_SURROGATE.search(body) is not None)
        or (b"\\" in body and _CANDIDATE_ESCAPE.search(body) is not None)
    )


def unstorable_problem(found: Sequence[Unstorable], locale: str) -> InvalidInput:
    """A 422 `invalid-input` naming each field, in the shape of every other validation problem."""
    errors = [{"field": f.path, "type": "unstorable_text", "message": f.message(locale)} for f in found]
    named = [f for f in found if f.path]
    zh = "、".join(f"{f.path}（{f.code_point}）" for f in named)
    en = ", ".join(f"{f.path} ({f.code_point})" for f in named)
    first = found[0].code_point if found else ""
    return InvalidInput(
        f"以下字段含有不允许的字符，请删除后重试：{zh}" if zh
        else f"提交的内容含有不允许的字符（{first}），请删除后重试",
        f"These fields contain a character that is not accepted; remove it: {en}"
        if en
        else f"The body contains a character that is not accepted ({first}); remove it",
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
    """ASGI middleware: a JSON request body holding a refused character is refused with 422
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


# Characters that show nothing on their own: format characters (zero-width space and joiners, word
# joiner, variation selectors are Cf/Mn), combining marks with no base, and the "blank" letters fonts
# draw as space (Hangul fillers, the blank Braille pattern).
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Mn", "Me", "Zs", "Zl", "Zp"})


def visible(text: str) -> bool:
    """Whether a person sees anything in the text: a comment, an answer or a checklist question made only
    of spaces, zero-width characters or blank letters says nothing and is refused as empty."""
    return any(not c.isspace() and c not in _BLANK_LETTERS and unicodedata.category(c) not in _INVISIBLE_CATEGORIES
               for c in text)
