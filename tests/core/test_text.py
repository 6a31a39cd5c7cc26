"""Which text counts as unstorable (NUL, lone surrogates) and which does not (noncharacters, other
controls, surrogate pairs, an escaped backslash): the finder, and the round trip on each backend."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.core.text import escaped, find_unstorable, might_hold_unstorable
from tests.factories import make_town, make_user, sign_in
from tests.venues.factories import credit_code, grid_point


def test_nul_and_lone_surrogates_are_found_by_path_keys_included() -> None:
    value = {"a": ["ok", "x\x00"], "b\ud800": 1, "c": {"d": "\udfff"}}
    found = find_unstorable(value)
    assert [(f.path, f.code_point) for f in found] == [("a.1", "U+0000"), ("b\\ud800", "U+D800"), ("c.d", "U+DFFF")]
    assert find_unstorable("\x00", "kind")[0].path == "kind"


def test_text_both_backends_keep_as_it_is_is_not_flagged() -> None:
    keepable = ["\ufffe\uffff\ufdd0\U0010ffff", "\x01\x1f\x7f", "😀", "\\u0000 typed by hand", "", 2**70, None]
    assert find_unstorable(keepable) == []
    assert not might_hold_unstorable(json.dumps({"a": "青山村", "b": "<&>"}, ensure_ascii=True).encode())
    assert might_hold_unstorable(json.dumps("😀").encode())  # a pair: looked at, then found clean
    assert escaped("a\x00b\ud800") == "a\\u0000b\\ud800"


def test_noncharacters_and_surrogate_pairs_round_trip_on_every_backend(client: TestClient, session: Session) -> None:
    town = make_town(session)
    who = sign_in(client, make_user(session, town.town, Role.coordinator)).headers
    lon, lat = grid_point((0, 0))
    name = "酒店\ufffe\uffff😀\x01"
    body = json.dumps({"venue_type": "hotel", "name": name, "credit_code": credit_code(), "lon": lon, "lat": lat})
    created = client.post("/api/v1/venues", headers={**who, "Content-Type": "application/json"}, content=body)
    assert created.status_code == 201, created.text
    stored = client.get(f"/api/v1/venues/{created.json()['id']}", headers=who)
    assert stored.json()["name"] == name
