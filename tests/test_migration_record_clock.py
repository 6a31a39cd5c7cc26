"""Migration 0010 places the rows stored before it by the rule new records follow, on both backends."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from backend.core import clock
from backend.core.db import create_db_engine, dispose_engines
from backend.core.migrate import upgrade

TS = sa.DateTime(timezone=True)
RECEIVED = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


@pytest.fixture
def fresh_url(backend_name: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the run's backend, for migrating step by step."""
    if backend_name == "spatialite":
        yield f"sqlite:///{tmp_path / 'steps.db'}"
        dispose_engines()
        return
    admin = make_url(os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")).set(
        drivername="postgresql+psycopg")
    name = f"hulei_steps_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin_engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.set(database=name).render_as_string(hide_password=False)
    with sa.create_engine(url).begin() as conn:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
    try:
        yield url
    finally:
        dispose_engines()
        with admin_engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


def _table(name: str, *columns: sa.ColumnClause[object]) -> sa.TableClause:
    return sa.table(name, sa.column("id", sa.Integer()), *columns)


def test_rows_stored_before_placement_are_counted_as_before_and_impossible_phone_times_are_flagged(
    fresh_url: str,
) -> None:
    upgrade(fresh_url, "0009")
    engine = create_db_engine(fresh_url)
    created = datetime(2026, 10, 31, 15, 0, tzinfo=UTC)
    unit = _table("org_unit", sa.column("code"), sa.column("name"), sa.column("level"), sa.column("path"),
                  sa.column("created_at", TS), sa.column("updated_at", TS))
    user = _table("app_user", sa.column("phone"), sa.column("display_name"), sa.column("password_hash"),
                  sa.column("org_unit_id"), sa.column("is_active", sa.Boolean()), sa.column("created_at", TS),
                  sa.column("updated_at", TS))
    household = _table("household", sa.column("uuid", sa.Uuid()), sa.column("org_unit_id"), sa.column("address"),
                       sa.column("version"), sa.column("content_hash"), sa.column("rev"),
                       sa.column("created_at", TS), sa.column("updated_at", TS))
    person = _table("person", sa.column("uuid", sa.Uuid()), sa.column("role"), sa.column("household_id"),
                    sa.column("org_unit_id"), sa.column("name"), sa.column("categories", sa.JSON()),
                    sa.column("groups", sa.JSON()), sa.column("key_minor", sa.Boolean()),
                    sa.column("vulnerable", sa.Boolean()), sa.column("risk_reasons", sa.JSON()),
                    sa.column("version"), sa.column("content_hash"), sa.column("rev"),
                    sa.column("created_at", TS), sa.column("updated_at", TS))
    visit = _table("visit", sa.column("client_uuid", sa.Uuid()), sa.column("content_hash"),
                   sa.column("household_id"), sa.column("org_unit_id"), sa.column("recorded_by"),
                   sa.column("template_code"), sa.column("template_version"), sa.column("outcome"),
                   sa.column("answers", sa.JSON()), sa.column("children_seen", sa.JSON()),
                   sa.column("device_time", TS), sa.column("received_at", TS),
                   sa.column("location_mismatch", sa.Boolean()), sa.column("risk_reasons", sa.JSON()))
    phone_times = {
        "offline a week": RECEIVED - timedelta(days=7),
        "1970": datetime(1970, 1, 1, tzinfo=UTC),
        "a year ahead": RECEIVED + timedelta(days=400),
        "five minutes fast": RECEIVED + timedelta(minutes=5),
    }
    with engine.begin() as conn:
        conn.execute(unit.insert().values(id=1, code="990101", name="测试村", level="village", path="/1/",
                                          created_at=created, updated_at=created))
        conn.execute(user.insert().values(id=1, phone="19800000001", display_name="测试", password_hash="x",
                                          org_unit_id=1, is_active=True, created_at=created, updated_at=created))
        conn.execute(household.insert().values(id=1, uuid=uuid.uuid4(), org_unit_id=1, address="1号", version=1,
                                               content_hash="0" * 64, rev=1, created_at=created, updated_at=created))
        conn.execute(person.insert().values(id=1, uuid=uuid.uuid4(), role="child", household_id=1, org_unit_id=1,
                                            name="儿童", categories=[], groups=[], key_minor=False, vulnerable=False,
                                            risk_reasons=[], version=1, content_hash="0" * 64, rev=2,
                                            created_at=created, updated_at=created))
        for n, at in enumerate(phone_times.values(), start=1):
            conn.execute(visit.insert().values(
                id=n, client_uuid=uuid.uuid4(), content_hash="0" * 64, household_id=1, org_unit_id=1, recorded_by=1,
                template_code="six-looks-six-asks", template_version=1, outcome="visited", answers={},
                children_seen=[], device_time=at, received_at=RECEIVED, location_mismatch=False, risk_reasons=[]))
    engine.dispose()

    upgrade(fresh_url)
    engine = create_db_engine(fresh_url)

    def placed(name: str) -> sa.Select[tuple[object, ...]]:
        t = _table(name, sa.column("counted_at", TS), sa.column("clock_suspect", sa.Boolean()))
        return sa.select(*t.c).order_by(t.c.id)

    with engine.connect() as conn:
        visits = conn.execute(placed("visit")).all()
        registry = [conn.execute(placed(t)).one() for t in ("household", "person")]
    engine.dispose()
    assert [(clock.as_utc(at), bool(suspect)) for _, at, suspect in visits] == [
        (phone_times["offline a week"], False),
        (RECEIVED, True),
        (RECEIVED, True),
        (RECEIVED, False),  # a clock running fast is trusted, but nothing counts after it was received
    ]
    assert [(clock.as_utc(at), bool(suspect)) for _, at, suspect in registry] == [(created, False), (created, False)]
