"""A pull sends each record exactly as the REST API shows it, whoever writes the JSON.

On PostgreSQL the pull's households, persons and visits are written as JSON by the database
(backend/sync/pg_records.py), on SQLite by the Python builders that the REST API uses too. A phone
must not see a record change shape, a time change spelling or a field go missing because the server
it syncs with changed backend or setting: for any stored values, the pull written by the database,
the pull written by Python and the REST records are the same JSON."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from backend.accounts import service as accounts
from backend.accounts.models import User, UserRole
from backend.accounts.permissions import Role
from backend.core.config import get_settings
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.registry import service as registry
from backend.registry.models import Guardianship, Household, Person, PersonRole, RiskLevel
from backend.sync import pull as pulls
from backend.sync import revisions
from backend.sync.models import SyncRemoval
from backend.visits.models import Visit
from tests.factories import make_town, make_user

# Text a phone may type: any character a database can store (no NUL, no lone surrogate), with the
# characters JSON must escape well represented.
TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from('"\\/\b\f\n\r\t\x01\x1f\u2028\u2029é张😀'),
        st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
    ),
    max_size=20,
)
OPTIONAL_TEXT = st.none() | TEXT
# Instants with and without microseconds: Python writes ".ffffff" only when there are any.
INSTANT = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)) | (
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC))
    .map(lambda t: t.replace(microsecond=0))
)
LEVEL = st.none() | st.sampled_from([level.value for level in RiskLevel])
REASON = st.fixed_dictionaries(
    {"code": TEXT},
    optional={"level": LEVEL, "source": TEXT, "score": st.integers(-10, 10) | st.floats(-5, 5, allow_nan=False)},
)


@st.composite
def families(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "household": {
            "address": draw(TEXT.filter(bool)),
            "head_name": draw(OPTIONAL_TEXT),
            "contact": draw(OPTIONAL_TEXT),
            "lon": draw(st.none() | st.floats(-180, 180, allow_nan=False)),
            "lat": draw(st.none() | st.floats(-90, 90, allow_nan=False)),
            "note": draw(OPTIONAL_TEXT),
            "version": draw(st.integers(1, 2**31 - 1)),
            "updated_at": draw(INSTANT),
            "counted_at": draw(INSTANT),
            "clock_suspect": draw(st.booleans()),
        },
        "child": {
            "name": draw(TEXT.filter(bool)),
            "id_masked": draw(st.none() | st.just("990101********9664")),
            "sex": draw(st.none() | st.sampled_from(["male", "female"])),
            "birth_date": draw(st.none() | st.dates(date(1990, 1, 1), date(2030, 12, 31))),
            "hukou_place": draw(OPTIONAL_TEXT),
            "residence": draw(OPTIONAL_TEXT),
            "in_school": draw(st.none() | st.booleans()),
            "contact": draw(OPTIONAL_TEXT),
            "categories": draw(st.lists(TEXT, max_size=3)),
            "groups": draw(st.lists(TEXT, max_size=3)),
            "signs": draw(OPTIONAL_TEXT),
            "task_force": draw(OPTIONAL_TEXT),
            "assistance": draw(OPTIONAL_TEXT),
            "key_minor": draw(st.booleans()),
            "vulnerable": draw(st.booleans()),
            "risk_level": draw(LEVEL),
            "risk_reasons": draw(st.lists(REASON, max_size=3)),
            "version": draw(st.integers(1, 1000)),
            "updated_at": draw(INSTANT),
            "counted_at": draw(INSTANT),
            "clock_suspect": draw(st.booleans()),
        },
        "guardians": draw(st.lists(st.tuples(TEXT.filter(bool), OPTIONAL_TEXT, st.none() | TEXT), max_size=2)),
        "visit": {
            "device_time": draw(INSTANT),
            "received_at": draw(INSTANT),
            "counted_at": draw(st.datetimes(min_value=datetime(2026, 11, 1), max_value=datetime(2026, 11, 28),
                                            timezones=st.just(UTC))),
            "clock_suspect": draw(st.booleans()),
            "outcome": draw(st.sampled_from(["visited", "nobody_home", "refused"])),
            "location_mismatch": draw(st.booleans()),
            "risk_level": draw(LEVEL),
        },
    }


@contextmanager
def _json_in_database(on: bool, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HULEI_SYNC_PULL_JSON_IN_DATABASE", "true" if on else "false")
    get_settings.cache_clear()
    try:
        yield
    finally:
        monkeypatch.delenv("HULEI_SYNC_PULL_JSON_IN_DATABASE")
        get_settings.cache_clear()


def _store(session: Session, unit_id: int, user_id: int, family: dict[str, Any]) -> None:
    h = Household(uuid=uuid.uuid4(), org_unit_id=unit_id, content_hash="x", rev=revisions.allocate(session),
                  **family["household"])
    session.add(h)
    session.flush()
    child = Person(uuid=uuid.uuid4(), role=PersonRole.child.value, household_id=h.id, org_unit_id=unit_id,
                   content_hash="x", rev=revisions.allocate(session), **family["child"])
    session.add(child)
    session.flush()
    for name, contact, relation in family["guardians"]:
        guardian = Person(uuid=uuid.uuid4(), role=PersonRole.guardian.value, household_id=h.id,
                          org_unit_id=unit_id, name=name, contact=contact, content_hash="x",
                          rev=revisions.allocate(session))
        session.add(guardian)
        session.flush()
        session.add(Guardianship(child_id=child.id or 0, guardian_id=guardian.id or 0, relation=relation))
    v = family["visit"]
    session.add(Visit(client_uuid=uuid.uuid4(), content_hash="x", household_id=h.id or 0, org_unit_id=unit_id,
                      recorded_by=user_id, template_code="six_looks", template_version=1, answers={},
                      children_seen=[], rev=revisions.allocate(session), **v))
    session.commit()


def _pulled(session: Session, user_id: int) -> list[dict[str, Any]]:
    principal = accounts.principal_for(session, user_id, device_id=None, ip=None)
    assert principal is not None
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = orjson.loads(orjson.dumps(pulls.pull(session, principal, cursor, 5000)))
        items += page["items"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            session.commit()  # the pull's audit entry, and the built-in template it may have made
            return items


def _rest_record(session: Session, kind: str, record_id: int, *, birth_date: bool) -> dict[str, Any]:
    if kind == "household":
        h = session.get(Household, record_id)
        assert h is not None
        return orjson.loads(orjson.dumps(registry.household_public(h)))
    p = session.get(Person, record_id)
    assert p is not None
    guardians = registry.guardians_of(session, [record_id]) if p.role == PersonRole.child.value else {}
    record = registry.person_public(p, guardians.get(record_id, []), birth_date=birth_date)
    return orjson.loads(orjson.dumps(record))


def _town(session: Session) -> tuple[int, dict[Role, int]]:
    """A grid, and a town coordinator (who sees exact birth dates) and volunteer (who does not); made
    once: hypothesis calls the test many times on one database."""
    def user(role: Role) -> int | None:
        return session.execute(
            select(User.id).join(UserRole, col(UserRole.user_id) == col(User.id)).where(UserRole.role == role.value)
        ).scalar()

    if user(Role.coordinator) is None:
        town = make_town(session)
        for role in (Role.coordinator, Role.volunteer):
            make_user(session, town.town, role)
    grid = session.execute(select(OrgUnit.id).where(OrgUnit.level == OrgLevel.grid.value).limit(1)).scalar()
    users = {role: user(role) for role in (Role.coordinator, Role.volunteer)}
    assert grid is not None
    return grid, {role: uid for role, uid in users.items() if uid is not None}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(family=families())
def test_pull_records_are_the_rest_records_whoever_writes_them(
    session: Session, monkeypatch: pytest.MonkeyPatch, family: dict[str, Any]
) -> None:
    grid, users = _town(session)
    _store(session, grid, users[Role.coordinator], family)

    for role, user_id in users.items():
        with _json_in_database(True, monkeypatch):
            by_database = _pulled(session, user_id)
        with _json_in_database(False, monkeypatch):
            by_python = _pulled(session, user_id)
        assert len(by_database) == len(by_python)
        for written, built in zip(by_database, by_python, strict=True):
            assert written == built

        kinds = {item["kind"] for item in by_database}
        assert {"household", "person", "visit"} <= kinds
        for item in by_database:
            if item["kind"] in {"household", "person"}:
                rest = _rest_record(session, item["kind"], item["record"]["id"], birth_date=role is Role.coordinator)
                assert item["record"] == rest


def _removal(session: Session, unit_id: int) -> None:
    """A tombstone of a household that is gone, addressed to the unit, as the database writes one."""
    session.add(SyncRemoval(rev=revisions.allocate(session), kind="household", record_uuid=uuid.uuid4(),
                            record_id=10**9 + revisions.current(session), org_unit_id=unit_id,
                            created_at=datetime.now(UTC)))
    session.commit()


def _pages(session: Session, user_id: int, limit: int) -> list[list[dict[str, Any]]]:
    principal = accounts.principal_for(session, user_id, device_id=None, ip=None)
    assert principal is not None
    pages, cursor = [], None
    while True:
        page = orjson.loads(orjson.dumps(pulls.pull(session, principal, cursor, limit)))
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if not page["has_more"]:
            session.commit()
            return pages


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(families=st.lists(families(), min_size=1, max_size=2), removals=st.lists(st.integers(0, 3), max_size=4),
       limit=st.sampled_from([1, 2, 3, 5, 5000]))
def test_items_built_in_python_fall_between_those_the_database_joins(
    session: Session, monkeypatch: pytest.MonkeyPatch, families: list[dict[str, Any]], removals: list[int],
    limit: int,
) -> None:
    """On PostgreSQL the database joins a page's households, persons and visits into runs of ready JSON
    and the items built in Python (removals, templates, assignments) go between them: every page holds
    the same items, in the same order, as when Python builds them all, whatever the page size."""
    grid, users = _town(session)
    removals = [min(at, len(families)) for at in removals]
    for i, family in enumerate(families):
        for _ in range(removals.count(i)):
            _removal(session, grid)
        _store(session, grid, users[Role.coordinator], family)
    for _ in range(removals.count(len(families))):
        _removal(session, grid)

    coordinator = users[Role.coordinator]
    with _json_in_database(True, monkeypatch):
        by_database = _pages(session, coordinator, limit)
    with _json_in_database(False, monkeypatch):
        by_python = _pages(session, coordinator, limit)
    assert by_database == by_python
    revs = [item["rev"] for page in by_database for item in page]
    assert revs == sorted(revs) and len(set(revs)) == len(revs)
    if session.get_bind().dialect.name == "postgresql" and removals:
        assert any(item["kind"] == "removal" for page in by_database for item in page)
