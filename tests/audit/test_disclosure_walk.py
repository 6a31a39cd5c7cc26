"""Every response that carries a person's record leaves an audit entry naming that record.

The walk reads the app's OpenAPI document and calls every operation over HTTP as every role, on
data made so that the operation succeeds where the role is allowed (the calls of the endpoint matrix,
tests/test_endpoint_matrix.py, on a world with its own side seeded with people who have names, ID
numbers, a guardian and a 附件2 entry). Every response the app gives during the walk is looked at,
including those to the calls that make data (pushes by volunteers): JSON, problem+json, text,
CSV and .xlsx (opened with openpyxl). A response carries a person-bearing record when it holds

- the name, uuid or masked ID number of a known person (child or guardian), 附件2 risk person, or
  the uuid, address or head's name of a known household;
- a known person's id under a key that names one (`child_id`, `child_ids`, `person_id`), a visit
  (an object with `client_uuid` and `household_id`) or a referral (`child_ids` with `police_unit_id`);
- or, answering 2xx, it is the answer about one record named in its path (`{person_id}`,
  `{household_id}`, `{risk_person_id}`, `{visit_id}`, `{referral_id}`): a risk history, a revealed
  ID number.

For each such response the audit entries written while it was served must name every record it
carried (backend/audit/disclosure.py: `details.read` / `details.changed` as compact id lists, or the
entry's object). A new operation without a way to call it fails here as in the endpoint matrix; one
that returns person data without going through a builder that declares it fails the walk, as the
route made up in `test_the_walk_catches_an_operation_that_forgets` shows.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Uuid, func, literal, select, union_all
from sqlmodel import Session, col

from backend.accounts.deps import current_principal
from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.core import clock
from backend.core.db import SessionDep
from backend.helpers.models import Assignment, AssignmentStatus
from backend.main import create_app
from backend.registry import idnumber
from backend.registry import service as registry
from backend.registry.models import (
    ChildCategory,
    Guardianship,
    Household,
    Person,
    PersonRole,
    RiskPerson,
    RiskPersonCategory,
)
from backend.staff_checks.models import StaffMember
from tests import matrix_support as m
from tests.factories import make_user
from tests.helpers.factories import ensure_sync_counter
from tests.matrix_support import World
from tests.media.conftest import media_root  # noqa: F401 (a fixture)
from tests.notifications.factories import headers_for
from tests.test_endpoint_matrix import PUBLIC, ROWS, Row, _world
from tests.xlsx_support import read_workbook

API = "/api/v1"
# Path parameters that name one person-bearing record: a 2xx answer about it discloses it.
PATH_KINDS = {"person_id": "person", "household_id": "household", "risk_person_id": "risk_person",
              "visit_id": "visit", "referral_id": "referral", "agency_referral_id": "agency_referral",
              "member_id": "staff_member"}
# JSON keys that name a person by id.
PERSON_KEYS = ("child_id", "person_id")
# The audit log names records by id (and helpers' assignment events name the child): reading it is the
# auditor's act on the log, not a disclosure of anyone's record, so ids under keys are not counted there.
NO_KEY_RULE = {"GET /api/v1/audit"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def expand(compact: str) -> set[int]:
    """"1-3,7" -> {1, 2, 3, 7} (the compact id lists of audit details)."""
    out: set[int] = set()
    for part in filter(None, compact.split(",")):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return out


def named_by(entries: list[AuditEntry]) -> set[tuple[str, int]]:
    """Every (kind, id) the entries name: their read and changed lists, and their object."""
    named: set[tuple[str, int]] = set()
    for entry in entries:
        for section in ("read", "changed"):
            for kind, compact in (entry.details.get(section) or {}).items():
                named |= {(kind, i) for i in expand(str(compact))}
        if entry.object_id is not None and entry.object_id.isdigit():
            named.add((entry.object_type, int(entry.object_id)))
    return named


@dataclass(frozen=True)
class Carried:
    """A record a response carried: any one of the candidates (a name may belong to several people)."""

    candidates: frozenset[tuple[str, int]]
    why: str


def _texts(resp: httpx.Response) -> tuple[str, Any]:
    """The body as searchable text, and the parsed JSON when it is JSON."""
    kind = resp.headers.get("content-type", "")
    body = resp.content
    if not body:
        return "", None
    if "json" in kind:
        parsed = json.loads(body)
        return json.dumps(parsed, ensure_ascii=False), parsed
    if kind.startswith(XLSX):
        book = read_workbook(body, read_only=True)
        cells = [str(v) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)
                 for v in row if v is not None]
        return "\n".join(cells), None
    if kind.startswith("text/") or "csv" in kind or "calendar" in kind:
        return body.decode("utf-8", errors="replace"), None
    return "", None  # images and vector tiles carry no text to search


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from _objects(v)
    elif isinstance(value, list):
        for v in value:
            yield from _objects(v)


@dataclass
class Known:
    """Everything stored that identifies a person-bearing record, read afresh for each response."""

    markers: dict[str, set[tuple[str, int]]] = field(default_factory=dict)
    persons: set[int] = field(default_factory=set)

    def add(self, text: Any, record: tuple[str, int]) -> None:
        if text is not None and len(str(text)) >= 2:
            self.markers.setdefault(str(text), set()).add(record)

    @classmethod
    def load(cls, session: Session) -> Known:
        known = cls()
        no_uuid = literal(None, type_=Uuid)
        rows = session.execute(union_all(  # one round trip: this runs for every response
            select(literal("person"), col(Person.id), col(Person.uuid), col(Person.name), col(Person.id_masked)),
            select(literal("risk_person"), col(RiskPerson.id), no_uuid, col(RiskPerson.name),
                   col(RiskPerson.id_masked)),
            select(literal("household"), col(Household.id), col(Household.uuid), col(Household.address),
                   col(Household.head_name)),
            # Staff of institutions (从业查询, issue 18): their masked numbers look like everyone's of the region.
            select(literal("staff_member"), col(StaffMember.id), no_uuid, col(StaffMember.name),
                   col(StaffMember.id_masked)),
        ))
        for kind, rid, ruid, *texts in rows:
            if kind == "person":
                known.persons.add(rid)
            for text in (str(ruid) if ruid is not None else None, *texts):
                known.add(text, (kind, rid))
        return known


def carried(resp: httpx.Response, operation: str | None, path_params: dict[str, str], known: Known) -> list[Carried]:
    """Every person-bearing record the response carries (see the module's docstring)."""
    text, parsed = _texts(resp)
    found = [Carried(frozenset(records), f"text {marker!r}") for marker, records in known.markers.items()
             if marker in text]
    for obj in _objects(parsed):
        if operation not in NO_KEY_RULE:
            for key in PERSON_KEYS:
                if isinstance(obj.get(key), int) and obj[key] in known.persons:
                    found.append(Carried(frozenset({("person", obj[key])}), f"{key} {obj[key]}"))
            for pid in obj.get("child_ids") or []:
                if isinstance(pid, int) and pid in known.persons:
                    found.append(Carried(frozenset({("person", pid)}), f"child_ids {pid}"))
        if {"client_uuid", "household_id"} <= obj.keys() and isinstance(obj.get("id"), int):
            found.append(Carried(frozenset({("visit", obj["id"])}), f"visit {obj['id']}"))
        if "child_ids" in obj and "police_unit_id" in obj and isinstance(obj.get("id"), int):
            found.append(Carried(frozenset({("referral", obj["id"])}), f"referral {obj['id']}"))
    if resp.is_success:
        for name, value in path_params.items():
            if name in PATH_KINDS and value.isdigit():
                found.append(Carried(frozenset({(PATH_KINDS[name], int(value))}), f"path {{{name}}}={value}"))
    return found


def _templates(app: FastAPI) -> list[tuple[str, str, re.Pattern[str]]]:
    """(method, path template, regex) of every operation, most specific first."""
    out = []
    for path, ops in app.openapi()["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")
        out += [(method.upper(), path, pattern) for method in ops]
    return sorted(out, key=lambda t: (t[1].count("{"), -len(t[1])))


class Walker:
    """Looks at every response its client gets and notes those that carried records nobody audited."""

    def __init__(self, app: FastAPI, session: Session) -> None:
        self.session = session
        self.templates = _templates(app)
        self.failures: list[str] = []
        self.who = ""
        self.responses = 0
        self._before = 0

    def hook(self, client: TestClient) -> None:
        client.event_hooks = {"request": [self._on_request], "response": [self._on_response]}

    def _last_entry(self) -> int:
        return int(self.session.execute(select(func.coalesce(func.max(col(AuditEntry.id)), 0))).scalar_one())

    def _on_request(self, request: httpx.Request) -> None:
        self._before = self._last_entry()

    def _operation(self, request: httpx.Request) -> tuple[str | None, dict[str, str]]:
        for method, path, pattern in self.templates:
            found = pattern.match(request.url.path)
            if found and method == request.method:
                return f"{method} {path}", found.groupdict()
        return None, {}

    def _on_response(self, resp: httpx.Response) -> None:
        resp.read()
        self.responses += 1
        operation, params = self._operation(resp.request)
        records = carried(resp, operation, params, Known.load(self.session))
        if not records:
            return
        entries = list(self.session.execute(
            select(AuditEntry).where(col(AuditEntry.id) > self._before).order_by(col(AuditEntry.id))).scalars())
        named = named_by(entries)
        missing = sorted({c.why for c in records if not c.candidates & named})
        if missing:
            self.failures.append(
                f"{self.who}: {resp.request.method} {resp.request.url.path} answered {resp.status_code} carrying "
                f"{missing[:6]}{' ...' if len(missing) > 6 else ''} with "
                f"{[(e.action, e.details) for e in entries] or 'no audit entry'}")


_n = iter(range(1, 10_000))


def seed(w: World) -> None:
    """People with every identifying field on the own side: a household with its head, a child with an
    ID number and a guardian, a 附件2 entry (the rows' own records have names only)."""
    session = m.s(w)
    ensure_sync_counter(session)
    n = next(_n)
    grid = m.grid(w, True)
    home = Household(uuid=uuid.uuid4(), org_unit_id=grid.id or 0, address=f"审计路{n}号", head_name=f"审计户主{n}",
                     content_hash="0" * 64, rev=0)
    session.add(home)
    session.flush()

    def person(role: PersonRole, name: str, number: str) -> Person:
        sealed = registry.seal_id(number)
        child = role is PersonRole.child  # on 附件1 and 附件3, so the ledgers carry it
        row = Person(uuid=uuid.uuid4(), role=role.value, household_id=home.id, org_unit_id=grid.id or 0, name=name,
                     content_hash="0" * 64, rev=0, id_cipher=sealed.cipher, id_key_id=sealed.key_id,
                     id_index=sealed.index, id_masked=sealed.masked, key_minor=child, vulnerable=child,
                     categories=[ChildCategory.psychological.value] if child else [])
        session.add(row)
        session.flush()
        return row

    kid = person(PersonRole.child, f"审计儿童{n}", idnumber.make("990101", date(2015, 1, 1) + timedelta(days=n), 7))
    guardian = person(PersonRole.guardian, f"审计监护人{n}",
                      idnumber.make("990101", date(1985, 1, 1) + timedelta(days=n), 8))
    session.add(Guardianship(child_id=kid.id or 0, guardian_id=guardian.id or 0, relation="母亲"))
    # A helper of the village holds the child, so pulls and lists carry an assignment too.
    helper = m.helper_profile(w, make_user(session, w.town.villages[0], Role.helper))
    session.add(Assignment(child_id=kid.id or 0, helper_id=helper.id or 0, org_unit_id=grid.id or 0,
                           mode="one_to_one", status=AssignmentStatus.accepted.value, answered_at=clock.now()))
    sealed = registry.seal_id(idnumber.make("990101", date(1980, 1, 1) + timedelta(days=n), 9))
    session.add(RiskPerson(org_unit_id=grid.id or 0, name=f"审计风险人员{n}", id_cipher=sealed.cipher,
                           id_key_id=sealed.key_id, id_index=sealed.index, id_masked=sealed.masked,
                           categories=[RiskPersonCategory.community_correction.value]))
    session.commit()


@pytest.fixture(scope="module")
def walk_app() -> FastAPI:
    return create_app()


@pytest.fixture
def walker(walk_app: FastAPI, database_url: str) -> Iterator[TestClient]:
    # Not made with the test's session: it must be closed before the app's shutdown disposes the engine.
    with TestClient(walk_app) as c:
        yield c


def walk_operation(c: TestClient, walk: Walker, session: Session, row: Row, base: World | None = None) -> None:
    """The row's call as every role, on the own side of a seeded world."""
    if base is None:
        base = _world(session)
        seed(base)
    for role in Role:
        caller = make_user(session, row.caller(base.town), role)
        walk.who = f"{role.value}"
        row.call(c, headers_for(session, caller), replace(base, caller_id=caller.id or 0), True)


def test_the_walk_has_a_call_for_every_operation(walk_app: FastAPI) -> None:
    served = {f"{method.upper()} {path}" for path, ops in walk_app.openapi()["paths"].items() for method in ops}
    assert not served - set(ROWS) - set(PUBLIC), "operations the walk cannot call (add a row to the endpoint matrix)"


@pytest.mark.usefixtures("media_root")
@pytest.mark.parametrize("op", sorted(ROWS))
def test_every_response_with_person_data_is_audited(walker: TestClient, session: Session, op: str) -> None:
    c, walk = walker, Walker(walker.app, session)  # type: ignore[arg-type]
    walk.hook(c)
    walk_operation(c, walk, session, ROWS[op])
    assert walk.responses, f"{op}: nothing was called"
    assert not walk.failures, f"{op}:\n" + "\n".join(walk.failures)


@pytest.mark.usefixtures("media_root")
@pytest.mark.parametrize("op", sorted(PUBLIC))
def test_public_operations_are_walked_too(walker: TestClient, session: Session, op: str) -> None:
    c, walk = walker, Walker(walker.app, session)  # type: ignore[arg-type]
    walk.hook(c)
    world = _world(session)
    seed(world)
    walk.who = "public"
    PUBLIC[op](c, world)
    assert not walk.failures, f"{op}:\n" + "\n".join(walk.failures)


def _forgetful_app() -> FastAPI:
    """The app with one operation more: a child's name read straight from the table, declared nowhere."""
    app = create_app()
    extra = APIRouter(prefix=API)

    @extra.get("/walk-test/forgetful/{person_id}")
    def forgetful(person_id: int, session: SessionDep) -> dict[str, Any]:
        found = session.get(Person, person_id)
        return {"name": found.name if found else None}

    app.include_router(extra, dependencies=[Depends(current_principal)])
    app.openapi_schema = None
    return app


def test_the_walk_catches_an_operation_that_forgets(session: Session, database_url: str) -> None:
    app = _forgetful_app()
    world = _world(session)
    seed(world)
    kid = session.execute(select(Person).where(col(Person.name).like("审计儿童%"))).scalars().first()
    assert kid is not None
    known = Known.load(session).markers  # what the walk looks for, as the API writes it
    assert {str(kid.uuid), kid.name, kid.id_masked} <= known.keys() and ("person", kid.id) in known[str(kid.uuid)]
    walk = Walker(app, session)

    def call(c: TestClient, h: dict[str, str], w: World, own: bool) -> httpx.Response:
        return c.get(f"{API}/walk-test/forgetful/{kid.id}", headers=h)

    with TestClient(app) as c:
        walk.hook(c)
        walk_operation(c, walk, session, Row(call, ()), world)
        session.close()  # before the app's shutdown disposes the engine its connection came from
    assert walk.failures and all("forgetful" in f and "no audit entry" in f for f in walk.failures), walk.failures
    assert len(walk.failures) == len(Role)
