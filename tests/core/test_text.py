"""Which text Hulei refuses (NUL, lone surrogates, C0 controls but TAB/LF/CR, DEL, U+FFFE, U+FFFF) and
which it keeps (TAB, LF, CR, C1 controls, the other noncharacters, surrogate pairs, an escaped
backslash): the finder, the byte pre-checks, the one cleaner, and the round trip on each backend."""

from __future__ import annotations

import json

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.core.text import (
    clean,
    escaped,
    find_unstorable,
    first_refused,
    holds_unstorable,
    might_hold_unstorable,
)
from tests.factories import make_town, make_user, sign_in
from tests.venues.factories import credit_code, grid_point

REFUSED = ([chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"] + [chr(c) for c in range(0x7F, 0xA0)]
           + [chr(c) for c in [*range(0x2028, 0x202F), *range(0x2066, 0x206A)]]
           + ["\ufeff", "\ufffe", "\uffff", "\ud800", "\udfff"])
KEPT = ["\t", "\n", "\r", "\xa0", "\xb7", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2027", "\u202f",
        "\u2065", "\u206a", "\ue000", "\ufdd0", "\ufdef", "\U0001fffe", "\U0010ffff", "\ufffd", "😀", " ",
        "“", "…", "—"]


def _refused(c: str) -> bool:
    """The rule, written out independently of the module."""
    n = ord(c)
    return ((n < 0x20 and c not in "\t\n\r") or 0x7F <= n <= 0x9F or 0x2028 <= n <= 0x202E or 0x2066 <= n <= 0x2069
            or n == 0xFEFF or 0xD800 <= n <= 0xDFFF or n in (0xFFFE, 0xFFFF))


def test_refused_characters_are_found_by_path_keys_included() -> None:
    value = {"a": ["ok", "x\x00"], "b\ud800": 1, "c": {"d": "\udfff"}, "e": "\x01", "f\x1f": "\ufffe", "g": "\x7f",
             "h": "网\u202e吧", "i": "\x85"}
    found = find_unstorable(value)
    assert [(f.path, f.code_point) for f in found] == [
        ("a.1", "U+0000"), ("b\\ud800", "U+D800"), ("c.d", "U+DFFF"), ("e", "U+0001"),
        ("f\\u001f", "U+001F"), ("f\\u001f", "U+FFFE"), ("g", "U+007F"), ("h", "U+202E"), ("i", "U+0085")]
    assert find_unstorable("\x00", "kind")[0].path == "kind"


@pytest.mark.parametrize("char", REFUSED, ids=[f"U+{ord(c):04X}" for c in REFUSED])
def test_every_refused_character_is_found_in_every_json_form(char: str) -> None:
    assert first_refused("名" + char) == char
    assert [f.char for f in find_unstorable({"k": "名" + char})] == [char]
    assert holds_unstorable(["名" + char])
    assert clean("名" + char + "字") == "名字"
    for ascii_only in (True, False):
        body = json.dumps({"k": "名" + char}, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
        assert might_hold_unstorable(body), body


def test_text_both_backends_and_every_file_keep_is_not_flagged() -> None:
    keepable = ["".join(KEPT), "\\u0000 typed by hand", "\\b\\f", "", 2**70, None]
    assert find_unstorable(keepable) == []
    assert not holds_unstorable(["".join(KEPT), "青山村"])
    assert not might_hold_unstorable(json.dumps({"a": "青山村", "b": "<&>\t\n"}, ensure_ascii=False).encode())
    assert not might_hold_unstorable(json.dumps({"a": "青山村", "b": "<&>"}, ensure_ascii=True).encode())
    assert might_hold_unstorable(json.dumps("😀").encode())  # a pair: looked at, then found clean
    assert escaped("a\x00b\ud800\x01") == "a\\u0000b\\ud800\\u0001"
    assert clean("a\r\nb\rc\t\xa0😀") == "a\nb\nc\t\xa0😀"


@given(st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=30))
def test_the_finder_the_pre_checks_and_the_cleaner_agree_with_the_rule(text: str) -> None:
    bad = [c for c in text if _refused(c)]
    assert first_refused(text) == (bad[0] if bad else None)
    assert clean(text) == "".join(c for c in text.replace("\r\n", "\n").replace("\r", "\n") if not _refused(c))
    assert holds_unstorable([text]) or not bad
    for ascii_only in (True, False):
        body = json.dumps([text], ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
        assert might_hold_unstorable(body) or not bad
    if not any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        assert might_hold_unstorable(orjson.dumps([text])) or not bad


def test_kept_characters_round_trip_on_every_backend(client: TestClient, session: Session) -> None:
    town = make_town(session)
    who = sign_in(client, make_user(session, town.town, Role.coordinator)).headers
    lon, lat = grid_point((0, 0))
    name = "酒店\ufdd0\U0010ffff😀\xa0\u200d\ue000\t"
    body = json.dumps({"venue_type": "hotel", "name": name, "credit_code": credit_code(), "lon": lon, "lat": lat})
    created = client.post("/api/v1/venues", headers={**who, "Content-Type": "application/json"}, content=body)
    assert created.status_code == 201, created.text
    stored = client.get(f"/api/v1/venues/{created.json()['id']}", headers=who)
    assert stored.json()["name"] == name
