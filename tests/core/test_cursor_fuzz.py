"""No cursor is ever more than a 422: every operation of the app's OpenAPI document that takes a
`cursor`, called as in the endpoint matrix by a user allowed to call it, answers a bad cursor with
422 problem+json `invalid-input` and never 500.

The bad cursors: hand-made base64 JSON ({"id":"x"}, {"k":[{}]}, nested arrays), huge strings,
non-base64, a real payload with a wrong MAC, and payloads of the wrong shape signed with the
server's own key (a cursor of another list, or one a leaked key could make): the last reach each
list's own reading of its position, which is why they are read into one typed shape
(backend/core/pagination.py) instead of trusted.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from typing import Any

import httpx
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from backend.accounts.permissions import PERMISSIONS, Role
from backend.core.pagination import cursor_scope, encode_cursor
from backend.main import create_app
from tests.factories import make_user
from tests.matrix_support import World
from tests.media.conftest import media_root  # noqa: F401 (a fixture)
from tests.notifications.factories import headers_for
from tests.test_endpoint_matrix import ROWS, _world


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _hand_made(value: Any) -> str:
    return _b64(json.dumps(value).encode())


def _signed(value: Any) -> str:
    """A payload of any shape carrying a valid MAC, bound to no list (as tools and tests make them)."""
    return encode_cursor(value)


def _of_another_list(value: Any) -> str:
    """A cursor as another list issues it (a phone sending one list's next_cursor to another)."""
    with cursor_scope("/api/v1/some-other-list"):
        return encode_cursor(value)


def _cursor_operations() -> list[str]:
    spec = create_app().openapi()
    return sorted(f"{method.upper()} {path}" for path, ops in spec["paths"].items() for method, op in ops.items()
                  if any(p["name"] == "cursor" and p["in"] == "query" for p in op.get("parameters", [])))


OPERATIONS = _cursor_operations()
# Members of the wrong type, signed: refused by the typed shape wherever they arrive.
WRONG_TYPES: list[Any] = [
    {"id": "x"}, {"id": [1]}, {"id": {"id": 1}}, {"id": True}, {"id": None}, {"id": 1.5}, {"id": 2**80},
    {"after": "x"}, {"after": -(2**70)}, {"rank": "a", "id": 1}, {"k": [{}]}, {"k": [[1]]}, {"k": []},
    {"k": [True]}, {"k": [1, 2, 3, 4, 5, 6, 7, 8, 9]}, {"k": ["x" * 300]}, {"r": -1, "p": "/", "k": "x"},
    {"r": "1", "p": "/1/"}, {"r": 1, "p": 7}, {"p": ["/"]}, {"unknown": 1}, {}, [], [1], "x", 1, None,
]
# Well-typed positions of other lists: refused because they were issued elsewhere.
OTHER_LISTS: list[Any] = [
    {"id": 1}, {"after": 1}, {"rank": 1, "id": 1}, {"r": 1, "p": "/1/", "k": "household"}, {"k": [1]},
    {"k": ["2026-13-45T99:00:00"]}, {"k": ["2026-01-01T00:00:00+00:00", 1]},
]
HAND_MADE: list[str] = [
    _hand_made({"id": "x"}), _hand_made({"k": [{}]}), _hand_made({"r": 0, "p": "/"}),
    _b64(b"[" * 1000 + b"]" * 1000), "x" * 5000, "not base64!!", "%%%.%%%", ".", "..", "a.b.c",
    _signed({"id": 1}).split(".")[0] + ".AAAAAAAAAAAAAAAAAAAAAA", _signed({"id": 1}) + "x",
    *(_signed(value) for value in WRONG_TYPES), *(_of_another_list(value) for value in OTHER_LISTS),
]
JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                           st.sampled_from(["id", "after", "rank", "r", "p", "k", "x"]), inner, max_size=4),
                       max_leaves=12)
CURSORS = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(_b64),
    JSONISH.map(_hand_made),
    JSONISH.map(lambda v: _hand_made(v) + ".AAAAAAAAAAAAAAAAAAAAAA"),
    JSONISH.map(_of_another_list),
)


def _pattern(op: str) -> re.Pattern[str]:
    path = op.split(" ", 1)[1]
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")


def _role_for(op: str) -> Role:
    """A role allowed to call the operation (not a helper, whose access to lists of children depends on
    assignments the row makes or not)."""
    guard = set(ROWS[op].guard)
    allowed = [r for r in Role if guard <= PERMISSIONS[r]]
    assert allowed, op
    return next((r for r in allowed if r is not Role.helper), allowed[0])


@contextmanager
def cursor_on(client: TestClient, op: str, cursor: str) -> Iterator[list[httpx.Response]]:
    """While the block runs, every GET of `op`'s path carries `cursor`; its answers are collected."""
    pattern = _pattern(op)
    answers: list[httpx.Response] = []

    def add(request: httpx.Request) -> None:
        if request.method == "GET" and pattern.match(request.url.path):
            request.url = request.url.copy_set_param("cursor", cursor)

    def keep(response: httpx.Response) -> None:
        if response.request.method == "GET" and pattern.match(response.request.url.path):
            response.read()
            answers.append(response)

    hooks = client.event_hooks
    client.event_hooks = {"request": [*hooks.get("request", []), add], "response": [*hooks.get("response", []), keep]}
    try:
        yield answers
    finally:
        client.event_hooks = hooks


class Callers:
    """One world, and for each operation a user allowed to call it, made once."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.base: World = _world(session)
        self.made: dict[str, tuple[World, dict[str, str]]] = {}

    def __call__(self, op: str) -> tuple[World, dict[str, str]]:
        if op not in self.made:
            user = make_user(self.session, ROWS[op].caller(self.base.town), _role_for(op))
            self.made[op] = (replace(self.base, caller_id=user.id or 0), headers_for(self.session, user))
        return self.made[op]


def refused(client: TestClient, callers: Callers, op: str, cursor: str) -> list[str]:
    """What is wrong with the answers of `op` to `cursor` (nothing when each is a 422 invalid-input)."""
    world, headers = callers(op)
    # The row's own checks of a success it did not get may fail; the answers collected tell.
    with cursor_on(client, op, cursor) as answers, suppress(AssertionError, KeyError, TypeError):
        ROWS[op].call(client, headers, world, True)
    if not answers:
        return [f"{op}: never called"]
    problems = []
    for resp in answers:
        body = resp.json() if resp.headers.get("content-type", "").endswith("json") else {}
        if resp.status_code != 422 or resp.headers["content-type"] != "application/problem+json" \
                or body.get("code") != "invalid-input":
            problems.append(f"{op} cursor={cursor[:80]!r}: {resp.status_code} {resp.text[:200]}")
    return problems


def test_every_cursor_taking_operation_is_in_the_endpoint_matrix() -> None:
    assert len(OPERATIONS) >= 25
    assert set(OPERATIONS) <= set(ROWS)


def test_hand_made_and_wrongly_shaped_cursors_are_422_on_every_list(
    session: Session, media_root: Any  # noqa: F811
) -> None:
    callers = Callers(session)
    failures: list[str] = []
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        # Every list gets the first three kinds and a quarter of the others, each kind reaching a
        # quarter of the lists in turn: the lists share one cursor reader (backend/core/pagination.py),
        # and every kind on every list took half a minute of the suite.
        for n, cursor in enumerate(HAND_MADE):
            for op in OPERATIONS if n < 3 else OPERATIONS[n % 4::4]:
                failures += refused(client, callers, op, cursor)
    assert not failures, f"{len(failures)} answers:\n" + "\n".join(failures[:40])


def test_no_generated_cursor_is_more_than_a_422_anywhere(session: Session, media_root: Any) -> None:  # noqa: F811
    callers = Callers(session)
    with TestClient(create_app(), raise_server_exceptions=False) as client:

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(op=st.sampled_from(OPERATIONS), cursor=CURSORS.filter(bool))
        def check(op: str, cursor: str) -> None:
            failures = refused(client, callers, op, cursor)
            assert not failures, failures

        check()
