"""Test databases: every test runs against real SpatiaLite or real PostGIS (pytest --backend).

PostGIS: a throwaway database with the postgis extension is created per run at TEST_DATABASE_URL
(default: the local server) and dropped afterwards; tables are emptied between tests.
SpatiaLite: the migrated file is copied afresh for each test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session
from starlette.datastructures import State

from backend.core import clock
from backend.core.config import get_settings
from backend.core.db import create_db_engine, dispose_engines, get_engine
from backend.core.migrate import upgrade
from backend.main import create_app
from backend.registries import load_all

# Tables that hold reference data written by migrations, kept between tests.
KEEP_TABLES = {"alembic_version", "spatial_ref_sys", "audit_chain_head"}


# Cheap argon2 for the suite (the production cost is ~70 ms a hash); set before settings are read.
os.environ.setdefault("HULEI_PASSWORD_HASH_TIME_COST", "1")
os.environ.setdefault("HULEI_PASSWORD_HASH_MEMORY_KIB", "1024")
os.environ.setdefault("HULEI_PASSWORD_HASH_PARALLELISM", "1")
# The suite runs on the development secrets, whatever the shell says; production's refusal of weak
# secrets and its other differences are tried in tests/core/test_secrets.py and test_security_headers.py.
os.environ["HULEI_PRODUCTION"] = "false"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=["spatialite", "postgis"],
        default=os.environ.get("HULEI_TEST_BACKEND", "spatialite"),
        help="database backend for this run",
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"hulei database backend: {config.getoption('--backend')}"


@pytest.fixture(scope="session")
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--backend"))


def _admin_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def database_template(backend_name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database for this run; yields its URL (for SQLite, the template file's URL)."""
    load_all()  # as every real process does at start (backend/registries.py)
    if backend_name == "spatialite":
        path = tmp_path_factory.mktemp("db") / "template.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        yield url
        return
    admin = make_url(_admin_url()).set(drivername="postgresql+psycopg")
    name = f"hulei_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin_engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.set(database=name).render_as_string(hide_password=False)
    with create_engine(url).begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    upgrade(url)
    try:
        yield url
    finally:
        dispose_engines()
        for engine in _cleanup_engines.values():
            engine.dispose()
        _cleanup_engines.clear()
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


# The cleanup between tests has a connection of its own, kept for the run: the app's engine is disposed
# when its lifespan ends, and opening a new connection took longer than emptying the tables.
_cleanup_engines: dict[str, Engine] = {}


def _empty_postgres(url: str) -> None:
    engine = _cleanup_engines.get(url)
    if engine is None:
        engine = _cleanup_engines[url] = create_engine(url, pool_size=1, max_overflow=0)
    with engine.begin() as conn:
        tables = [
            r[0]
            for r in conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
            if r[0] not in KEEP_TABLES
        ]
        # Replica mode skips the audit log's append-only triggers and the foreign-key triggers for
        # this cleanup only, so the tables can be emptied in any order. DELETE on a few rows is far
        # cheaper than TRUNCATE, which makes new files for every table each time.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        if tables:
            conn.exec_driver_sql("; ".join(f'DELETE FROM "{t}"' for t in tables))
        conn.execute(text("UPDATE audit_chain_head SET last_entry_id = 0, last_hash = :h"), {"h": "0" * 64})


@pytest.fixture
def database_url(
    database_template: str, backend_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A clean, migrated database for one test, configured as the app's DATABASE_URL."""
    if backend_name == "spatialite":
        template = Path(make_url(database_template).database or "")
        copy = tmp_path / "hulei.db"
        shutil.copyfile(template, copy)
        url = f"sqlite:///{copy}"
    else:
        url = database_template
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    clock.reset()
    yield url
    clock.reset()
    if backend_name == "postgis":
        _empty_postgres(url)
    dispose_engines()
    get_settings.cache_clear()


@pytest.fixture
def session(database_url: str, backend_name: str) -> Iterator[Session]:
    """A session on the test database; tests commit what the app must see.

    On SQLite every statement of this session is its own transaction: the app's writers take the
    database lock at BEGIN, so a test session holding a transaction open across an HTTP call
    would stall the app. Reads here therefore always see what the app has committed.
    """
    if backend_name == "spatialite":
        engine = create_db_engine(database_url, sqlite_autocommit=True)
        with Session(engine, expire_on_commit=False) as s:
            yield s
        engine.dispose()
        return
    with Session(get_engine(), expire_on_commit=False) as s:
        yield s


# Building an app's routes costs about half a second on the 2-core machine, and some 1,400 tests use
# `client`. An app is made from the code and the settings alone (the database and media storage are
# looked up per request), so tests with the same settings share one, as the matrix tests share one per
# module: each test still starts and stops it (lifespan) and gets new middleware (its counters and
# limiters), no cached OpenAPI document and empty `app.state`. A test whose settings differ in anything
# but these per-request ones, or that patched an attribute or a dict before asking, gets a new app; so
# does the next test after one that added routes, middleware, handlers or dependency overrides.
_PER_REQUEST_SETTINGS = frozenset({"database_url", "media_root"})
_APPS: dict[str, tuple[FastAPI, tuple[int, ...]]] = {}


def _shape(app: FastAPI) -> tuple[int, ...]:
    return (len(app.router.routes), len(app.user_middleware), len(app.exception_handlers),
            len(app.dependency_overrides))


def _app_for(monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    if monkeypatch._setattr or any(target is not os.environ for target, *_ in monkeypatch._setitem):
        return create_app()
    settings = get_settings()
    key = repr([(name, getattr(settings, name)) for name in sorted(type(settings).model_fields)
                if name not in _PER_REQUEST_SETTINGS])
    app, shape = _APPS.get(key, (None, ()))
    if app is None or _shape(app) != shape:
        app = create_app()
        _APPS[key] = (app, _shape(app))
        return app
    app.middleware_stack = None
    app.openapi_schema = None
    app.state = State()
    return app


@pytest.fixture
def client(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The app over HTTP (ASGI, in process)."""
    with TestClient(_app_for(monkeypatch)) as c:
        yield c
