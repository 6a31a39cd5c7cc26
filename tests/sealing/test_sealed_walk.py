"""A sealed record is found nowhere: every operation of the API, as every role, over HTTP.

The walk reads the app's OpenAPI document and calls every operation as every role with the calls of
the endpoint matrix (tests/test_endpoint_matrix.py), on a world whose own side holds a 附件2 entry of a
16-year-old entered by the police (sealed) beside an adult's. Every response is searched (JSON and
problem+json, text, CSV, calendars, .xlsx opened with openpyxl) for the sealed person's name and
full ID number (the masked form shows only the region code, shared by everyone there); finding either
fails. The only answer that may carry them is the audited opening (POST /risk-persons/{id}/open-sealed),
which the walk never calls for this record; test_the_opening_is_the_only_way_in calls it.

Beside what the responses show, every SQL statement the app runs while answering is looked at: a
SELECT from a sealable table whose conditions do not name `sealed` fails, so a new read that forgets
the condition fails here even when the walk's data happened not to expose it.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.core import clock
from backend.core.db import get_engine, metadata
from backend.main import create_app
from backend.models import import_all_models
from backend.registry import idnumber
from backend.registry.models import RiskPerson
from backend.sealing.service import SEALABLE
from tests import matrix_support as m
from tests.factories import make_user
from tests.matrix_support import World
from tests.media.conftest import media_root  # noqa: F401 (a fixture)
from tests.notifications.factories import headers_for
from tests.registry.factories import add_risk_person, born_years_ago
from tests.test_endpoint_matrix import PUBLIC, ROWS, _world
from tests.xlsx_support import read_workbook

API = "/api/v1"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
REGION = "990199"  # a synthetic region code
_n = itertools.count(1)
_SEALED_TABLES = tuple(model.__tablename__ for model in SEALABLE.values())  # type: ignore[attr-defined]


def _text(resp: httpx.Response) -> str:
    kind = resp.headers.get("content-type", "")
    body = resp.content
    if not body:
        return ""
    if "json" in kind:
        return json.dumps(json.loads(body), ensure_ascii=False)
    if kind.startswith(XLSX):
        book = read_workbook(body, read_only=True)
        return "\n".join(str(v) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)
                         for v in row if v is not None)
    if kind.startswith("text/") or "csv" in kind or "calendar" in kind:
        return body.decode("utf-8", errors="replace")
    return body.decode("utf-8", errors="ignore")  # images and tiles: any text they hold is searched too


@dataclass
class Sealed:
    """The sealed person of one world, and what identifies them."""

    record_id: int
    markers: tuple[str, ...]


def seal_one(w: World) -> Sealed:
    """A 16-year-old put on 附件2 by the police, and an adult beside them, on the world's own side."""
    n = next(_n)
    session = m.s(w)
    number = idnumber.make(REGION, born_years_ago(16), n % 900 + 1)
    grid = m.grid(w, True)
    minor = add_risk_person(session, grid, name=f"封存走查{n}号", id_number=number)
    adult = idnumber.make(REGION, born_years_ago(45), n % 900 + 1)
    add_risk_person(session, grid, name=f"成年走查{n}号", id_number=adult)
    assert minor.id is not None
    # The masked number shows the region code only (shared by everyone there): not a marker of this person.
    return Sealed(minor.id, (minor.name, number))


def _conditions(statement: str, table: str) -> str | None:
    """What follows `FROM <table>` in a SELECT (its joins and conditions), or None when it reads no such table."""
    flat = " ".join(statement.split())
    if not flat.lower().lstrip("( ").startswith(("select", "with")):
        return None
    found = re.search(rf"\b(from|join)\s+\"?{table}\"?\b", flat, flags=re.IGNORECASE)
    return flat[found.end():] if found else None


@dataclass
class Walker:
    """Searches every response for the sealed person and every statement for the sealing condition."""

    sealed: list[Sealed] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    who: str = ""
    responses: int = 0
    active: bool = False

    def hook(self, client: TestClient) -> None:
        client.event_hooks = {"request": [self._on_request], "response": [self._on_response]}

    def _on_request(self, request: httpx.Request) -> None:
        self.active = True

    def _on_response(self, resp: httpx.Response) -> None:
        resp.read()
        self.active = False
        self.responses += 1
        text = _text(resp)
        for one in self.sealed:
            found = [marker for marker in one.markers if marker in text]
            if found:
                self.failures.append(f"{self.who}: {resp.request.method} {resp.request.url.path} answered "
                                     f"{resp.status_code} carrying the sealed {found}")

    def on_statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not self.active:
            return
        for table in _SEALED_TABLES:
            after = _conditions(statement, table)
            if after is not None and "sealed" not in after:
                self.failures.append(f"{self.who}: a read of {table} without the sealing condition: {statement[:300]}")


@pytest.fixture(scope="module")
def walk_app() -> FastAPI:
    return create_app()


@pytest.fixture
def walker(walk_app: FastAPI, database_url: str) -> Iterator[tuple[TestClient, Walker]]:
    walk = Walker()
    engine: Engine = get_engine()
    event.listen(engine, "before_cursor_execute", walk.on_statement)
    try:
        with TestClient(walk_app) as c:
            walk.hook(c)
            yield c, walk
    finally:
        event.remove(engine, "before_cursor_execute", walk.on_statement)


def _as_every_role(c: TestClient, walk: Walker, session: Session, op: str, w: World) -> None:
    row = ROWS[op]
    for role in Role:
        caller = make_user(session, row.caller(w.town), role)
        walk.who = f"{role.value} {op}"
        row.call(c, headers_for(session, caller), replace(w, caller_id=caller.id or 0), True)


@pytest.mark.usefixtures("media_root")
@pytest.mark.parametrize("op", sorted(ROWS))
def test_no_operation_shows_a_sealed_record_to_any_role(
    walker: tuple[TestClient, Walker], session: Session, op: str
) -> None:
    c, walk = walker
    w = _world(session)
    walk.sealed.append(seal_one(w))
    _as_every_role(c, walk, session, op, w)
    assert walk.responses, f"{op}: nothing was called"
    assert not walk.failures, f"{op}:\n" + "\n".join(walk.failures)


@pytest.mark.usefixtures("media_root")
@pytest.mark.parametrize("op", sorted(PUBLIC))
def test_public_operations_show_no_sealed_record(walker: tuple[TestClient, Walker], session: Session, op: str) -> None:
    c, walk = walker
    w = _world(session)
    walk.sealed.append(seal_one(w))
    walk.who = "public"
    PUBLIC[op](c, w)
    assert not walk.failures, f"{op}:\n" + "\n".join(walk.failures)


@pytest.mark.usefixtures("media_root")
def test_every_ledger_list_report_and_pull_leaves_the_sealed_record_out(
    walker: tuple[TestClient, Walker], session: Session
) -> None:
    """Beyond each operation's one matrix call: every annex, both list forms, the sealed record's own
    paths, a report of the month and a whole pull, as every role."""
    c, walk = walker
    w = _world(session)
    one = seal_one(w)
    walk.sealed.append(one)
    month = clock.now().astimezone(clock.SHANGHAI).strftime("%Y-%m")
    for role in Role:
        caller = make_user(session, w.town.town, role)
        h = headers_for(session, caller)
        walk.who = role.value
        for annex in ("1", "2", "3"):
            c.get(f"{API}/ledgers/{annex}.xlsx", headers=h)
        c.get(f"{API}/risk-persons", headers=h)
        c.get(f"{API}/risk-persons", params={"paged": True, "limit": 1}, headers=h)
        assert c.get(f"{API}/risk-persons/{one.record_id}", headers=h).status_code == 404
        assert c.put(f"{API}/risk-persons/{one.record_id}", json={"version": 1, "name": "改"},
                     headers=h).status_code == 404
        made = c.post(f"{API}/reports/monthly", json={"month": month}, headers=h)
        if made.is_success:
            c.get(f"{API}/reports/monthly/{made.json()['id']}/report.xlsx", headers=h)
        c.get(f"{API}/reports/monthly", params={"month": month}, headers=h)
        c.get(f"{API}/sync/pull", params={"limit": 5000}, headers=h)
        c.get(f"{API}/audit", headers=h)
        c.get(f"{API}/coverage", headers=h)
    assert not walk.failures, "\n".join(walk.failures)


def test_the_opening_is_the_only_way_in(walker: tuple[TestClient, Walker], session: Session) -> None:
    """The same person, opened by the police with a reason: the answer carries them and is audited."""
    c, walk = walker
    w = _world(session)
    one = seal_one(w)
    police = make_user(session, w.town.town, Role.police)
    opened = c.post(f"{API}/risk-persons/{one.record_id}/open-sealed", json={"reason": "核查前科，案件编号A-1"},
                    headers=headers_for(session, police))
    assert opened.status_code == 200, opened.text
    assert opened.json()["name"] == one.markers[0] and opened.json()["sealed"] is True
    entry = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "sealed.open")).scalar_one()
    assert (entry.object_id, entry.details["reason"]) == (str(one.record_id), "核查前科，案件编号A-1")
    assert not walk.failures, "\n".join(walk.failures)


def test_the_walk_catches_a_read_that_forgets(walker: tuple[TestClient, Walker], session: Session) -> None:
    """The statement check: a SELECT of risk_person without the condition is named."""
    _c, walk = walker
    walk.active, walk.who = True, "probe"
    with Session(get_engine()) as other:
        other.execute(select(RiskPerson.name)).all()
        other.execute(select(RiskPerson.name).where(col(RiskPerson.sealed).is_(False))).all()
    walk.active = False
    assert len(walk.failures) == 1 and "without the sealing condition" in walk.failures[0]


def test_every_table_with_a_sealed_column_is_sealable() -> None:
    import_all_models()
    with_column = {t.name for t in metadata.tables.values() if "sealed" in t.columns}
    assert with_column == set(_SEALED_TABLES)
