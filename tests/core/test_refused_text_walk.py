"""Every operation with a JSON request body refuses text holding U+0001 (a character Hulei does not
accept, backend/core/text.py): 422 naming the fields, never a 500, and nothing in the database
changed (issue 15).

The walk is the endpoint matrix's (tests/test_endpoint_matrix.py): each operation is called the way
its row calls it, by a role allowed to, on its own record; the matrix's calls make whatever the
operation needs first. The one request of the operation itself is spoilt on its way out (every
string in its JSON body gets U+0001 appended) and the whole database is compared before and after it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, SQLModel

from backend.accounts.permissions import PERMISSIONS, Role
from backend.core.db import get_engine
from backend.main import create_app
from tests.factories import make_user
from tests.media.conftest import media_root  # noqa: F401 (a fixture)
from tests.notifications.factories import headers_for
from tests.test_endpoint_matrix import PUBLIC, ROWS, _world

BAD = "\x01"
PUSH = "/api/v1/sync/push"


@pytest.fixture(scope="module")
def walk_app() -> FastAPI:
    return create_app()


@pytest.fixture
def client(walk_app: FastAPI, database_url: str) -> Iterator[TestClient]:
    with TestClient(walk_app) as c:
        yield c


def _json_operations(app: FastAPI) -> list[str]:
    return sorted(f"{method.upper()} {path}" for path, ops in app.openapi()["paths"].items()
                  for method, op in ops.items()
                  if "application/json" in op.get("requestBody", {}).get("content", {}))


JSON_OPERATIONS = _json_operations(create_app())


def _spoil(value: Any) -> tuple[Any, int]:
    """`value` with U+0001 appended to every string (keys left alone), and how many were spoilt."""
    if isinstance(value, str):
        return value + BAD, 1
    if isinstance(value, dict):
        pairs = [(k, _spoil(v)) for k, v in value.items()]
        return {k: v for k, (v, _) in pairs}, sum(n for _, (_, n) in pairs)
    if isinstance(value, list):
        items = [_spoil(v) for v in value]
        return [v for v, _ in items], sum(n for _, n in items)
    return value, 0


def _plain(value: Any) -> Any:
    """A column's value as comparable data (a geometry is an object whose repr names its address)."""
    value = getattr(value, "data", value)
    return bytes(value) if isinstance(value, memoryview) else value


def _database() -> dict[str, str]:
    """A digest of every row of each table of the app."""
    digests = {}
    with get_engine().connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            digest = hashlib.sha256()
            for row in sorted(repr(tuple(_plain(v) for v in row)) for row in conn.execute(select(table))):
                digest.update(row.encode("utf-8", "backslashreplace"))
            digests[table.name] = digest.hexdigest()
    return digests


class Spoiler(httpx.BaseTransport):
    """Sends the first request of one operation with a spoilt JSON body, noting what it changed."""

    def __init__(self, inner: httpx.BaseTransport, op: str) -> None:
        method, path = op.split(" ", 1)
        self.inner, self.method = inner, method
        self.pattern = re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)))
        self.seen: list[tuple[Any, int, httpx.Response, list[str]]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.seen or request.method != self.method or not self.pattern.fullmatch(request.url.path):
            return self.inner.handle_request(request)
        body = json.loads(request.read() or b"{}")
        if request.url.path == PUSH:  # the items' data, which the push judges item by item
            spoilt, count = body, 0
            for item in spoilt["items"]:
                item["data"], n = _spoil(item["data"])
                count += n
        else:
            spoilt, count = _spoil(body)
        if count == 0 and isinstance(spoilt, dict):  # no string member: a key of its own instead
            spoilt, count = {**spoilt, "note" + BAD: BAD}, 2  # the key and its value
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        headers["content-type"] = "application/json"
        sent = httpx.Request(request.method, request.url, headers=headers, content=json.dumps(spoilt).encode())
        before = _database()
        resp = self.inner.handle_request(sent)
        resp.read()
        after = _database()
        self.seen.append((spoilt, count, resp, sorted(t for t in before if before[t] != after.get(t))))
        return resp


def _allowed_role(op: str) -> Role:
    return next(role for role in Role if set(ROWS[op].guard) <= PERMISSIONS[role])


@pytest.mark.usefixtures("media_root")
@pytest.mark.parametrize("op", JSON_OPERATIONS)
def test_u0001_in_any_string_of_a_json_body_is_refused_and_changes_nothing(
    client: TestClient, session: Session, op: str
) -> None:
    world = _world(session)
    spoiler = Spoiler(client._transport, op)
    client._transport = spoiler
    # The calls assert what a clean request answers; past the spoilt request their flow may break.
    with contextlib.suppress(Exception):
        if op in PUBLIC:
            PUBLIC[op](client, world)
        else:
            row = ROWS[op]
            caller = make_user(session, row.caller(world.town), _allowed_role(op))
            row.call(client, headers_for(session, caller), replace(world, caller_id=caller.id or 0), True)
    assert spoiler.seen, f"{op}: the matrix's call never sent the operation's request"
    spoilt, count, resp, changed = spoiler.seen[0]
    if op == f"POST {PUSH}":  # only the items holding the text are rejected: here every one
        assert resp.status_code == 200, resp.text
        problems = [r["problem"] for r in resp.json()["results"] if r["status"] == "rejected"]
        assert len(problems) == len(spoilt["items"]), resp.text
    else:
        assert resp.status_code == 422, f"{op}: {resp.status_code} {resp.text[:300]}"
        problems = [resp.json()]
    for problem in problems:
        assert problem["code"] == "invalid-input", problem
        assert problem["errors"] and all(e["type"] == "unstorable_text" and "U+0001" in e["message"]
                                         for e in problem["errors"]), problem
    assert sum(len(p["errors"]) for p in problems) == min(count, 20 * len(problems)), (spoilt, problems)
    if op == f"POST {PUSH}":  # a push is audited (what it carried and what was refused), whatever its items
        changed = [t for t in changed if t not in ("audit_entry", "audit_chain_head")]
    assert not changed, f"{op}: the refused request changed these tables: {changed}"
