"""A cursor is the server's own: only one it issued is a position; anything else is a clear 422.

Cursors were base64 JSON: a phone (or anyone) could hand-make one, say a sync position moved back or
one naming another jurisdiction's path, and a deeply nested one answered 500. Now each carries a MAC,
and whatever else arrives as a cursor, at any list, is refused with `invalid-input`."""

from __future__ import annotations

import base64
import json

from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from backend.core.pagination import decode_cursor, encode_cursor
from tests.registry.factories import household_item, make_world, push

LISTS = ["/api/v1/sync/pull", "/api/v1/households"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_an_issued_cursor_reads_back_and_a_changed_one_does_not() -> None:
    cursor = encode_cursor({"r": 41, "p": "/1/2/"})
    assert decode_cursor(cursor) == {"r": 41, "p": "/1/2/"}
    payload, mac = cursor.split(".")
    forged = _b64(json.dumps({"p": "/1/2/", "r": 0}, separators=(",", ":"), sort_keys=True).encode())
    for bad in (payload, f"{forged}.{mac}", f"{payload}.{mac[:-1]}A", f"{payload}.{mac}x", f"{payload}.ñ",
                f"{payload}.\ud800"):
        try:
            decode_cursor(bad)
        except Exception as exc:
            assert getattr(exc, "code", None) == "invalid-input", exc
        else:
            raise AssertionError(f"accepted {bad!r}")


CURSORS = st.one_of(
    st.text(max_size=300),
    st.text(alphabet="[]{}\"", max_size=3000).map(lambda t: _b64(t.encode())),
    st.just(_b64(b"[" * 1000 + b"]" * 1000)),
    st.recursive(st.none() | st.integers() | st.text(max_size=5),
                 lambda inner: st.lists(inner) | st.dictionaries(st.text(max_size=3), inner), max_leaves=20)
    .map(lambda v: _b64(json.dumps(v).encode()) + ".AAAA"),
)


def test_no_cursor_the_server_did_not_issue_is_more_than_a_422(client: TestClient, session: Session) -> None:
    w = make_world(client, session)

    @settings(max_examples=40, deadline=None)
    @given(cursor=CURSORS)
    def check(cursor: str) -> None:
        for path in LISTS:
            resp = client.get(path, params={"cursor": cursor}, headers=w.coordinator.headers)
            assert resp.status_code == 422 or not cursor, (path, cursor, resp.status_code, resp.text[:200])
            if resp.status_code == 422:
                assert resp.json()["code"] == "invalid-input"

    check()


def test_a_sync_position_cannot_be_moved_by_hand(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    push(client, w.volunteer_a, [household_item(0)])
    first = client.get("/api/v1/sync/pull", headers=w.volunteer_a.headers).json()
    payload = first["next_cursor"].split(".")[0]
    position = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    moved = _b64(json.dumps({**position, "r": 0}, separators=(",", ":"), sort_keys=True).encode())
    resp = client.get("/api/v1/sync/pull", params={"cursor": moved}, headers=w.volunteer_a.headers)
    assert resp.status_code == 422 and resp.json()["field"] == "cursor"
    assert client.get("/api/v1/sync/pull", params={"cursor": first["next_cursor"]},
                      headers=w.volunteer_a.headers).status_code == 200
