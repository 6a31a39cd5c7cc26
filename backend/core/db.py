"""Engines and sessions for both backends: PostgreSQL/PostGIS and SQLite/SpatiaLite.

One code path serves both. SQLite specifics live here only: SpatiaLite is loaded on every
connection through pysqlite3 (the interpreter's own sqlite3 cannot load extensions), and every
transaction starts with BEGIN IMMEDIATE so two writers queue on the busy timeout instead of
failing halfway through with "database is locked".
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, cast

import orjson
from fastapi import Depends
from sqlalchemy import ColumnElement, DateTime, Engine, MetaData, any_, bindparam, create_engine, event
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, SQLModel

from backend.core.config import get_settings
from backend.core.errors import run_aftermath

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata: MetaData = SQLModel.metadata


def normalise_url(raw: str) -> URL:
    """Accept postgres://, postgresql:// and sqlite:/// URLs; pick our drivers."""
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw[len("postgres://") :]
    url = make_url(raw)
    if url.get_backend_name() == "postgresql":
        return url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() == "sqlite":
        return url.set(drivername="sqlite+pysqlite")
    raise ValueError(f"unsupported database URL: {url.render_as_string(hide_password=True)}")


def is_sqlite(engine_or_url: Engine | URL) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else engine_or_url
    return url.get_backend_name() == "sqlite"


class _UtcSqliteDateTime(sqlite.DATETIME):
    """SQLite keeps no time zone, so DateTime(timezone=True) columns are written in UTC and read back
    as aware UTC datetimes, exactly as PostgreSQL returns them: one code path and one JSON shape
    ("...+00:00") for both backends. Columns without timezone=True are left naive."""

    def bind_processor(self, dialect: Any) -> Any:
        process = super().bind_processor(dialect)
        if not self.timezone:
            return process

        def to_utc(value: Any) -> Any:
            if isinstance(value, datetime) and value.tzinfo is not None:
                value = value.astimezone(UTC)
            return process(value) if process else value

        return to_utc

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        process = super().result_processor(dialect, coltype)
        if not self.timezone:
            return process

        def aware(value: Any) -> Any:
            value = process(value) if process else value
            if isinstance(value, datetime) and value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return value

        return aware


def _sqlite_engine(url: URL, *, autocommit: bool = False) -> Engine:
    import pysqlite3.dbapi2 as sqlite_module

    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        module=sqlite_module,
        connect_args={"timeout": 30, "check_same_thread": False},
        pool_size=8,
        max_overflow=16,
    )
    engine.dialect.colspecs = {**engine.dialect.colspecs, DateTime: _UtcSqliteDateTime}
    library = get_settings().spatialite_library
    os.environ.setdefault("SPATIALITE_LIBRARY_PATH", library)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Autocommit at the driver level: SQLAlchemy's "begin" event below opens transactions.
        dbapi_conn.isolation_level = None
        dbapi_conn.enable_load_extension(True)
        dbapi_conn.load_extension(library)
        dbapi_conn.enable_load_extension(False)
        dbapi_conn.execute("PRAGMA foreign_keys = ON")
        dbapi_conn.execute("PRAGMA journal_mode = WAL")
        dbapi_conn.execute("PRAGMA synchronous = NORMAL")
        dbapi_conn.execute("PRAGMA busy_timeout = 30000")

    if not autocommit:

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_db_engine(raw_url: str | None = None, *, sqlite_autocommit: bool = False) -> Engine:
    """A new engine for the configured (or given) database. `sqlite_autocommit` makes every
    statement its own transaction (for inspection tools and tests that must not hold the lock)."""
    url = normalise_url(raw_url or get_settings().database_url)
    if is_sqlite(url):
        return _sqlite_engine(url, autocommit=sqlite_autocommit)
    # orjson decodes the JSON columns (categories, answers, reasons) several times faster than the
    # standard library: a town's first sync pull reads a hundred thousand of them.
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, json_deserializer=orjson.loads)


_engines: dict[str, Engine] = {}
# Several app instances may share the process (threads in tests, one per worker thread).
_engines_lock = threading.Lock()


def get_engine() -> Engine:
    """The process-wide engine for the configured database."""
    raw = get_settings().database_url
    with _engines_lock:
        engine = _engines.get(raw)
        if engine is None:
            engine = _engines[raw] = create_db_engine(raw)
        return engine


_running_apps = 0


def app_started() -> None:
    """An application in this process began serving (its lifespan started)."""
    global _running_apps
    with _engines_lock:
        _running_apps += 1


def app_stopped() -> None:
    """An application stopped serving; the last one to stop closes the pooled connections.

    Engines are shared by every app in the process. Disposing them while a sibling app (the race
    tests run several, one per thread) still held a connection orphaned that connection's pool: the
    connection went back to a pool nothing would ever close, and a later app start froze it out of
    the collector's reach (gc.freeze), so connections piled up until PostgreSQL refused new clients.
    """
    global _running_apps
    with _engines_lock:
        _running_apps = max(_running_apps - 1, 0)
        last = _running_apps == 0
    if last:
        dispose_engines()


def dispose_engines() -> None:
    """Close every pooled connection (tests, shutdown)."""
    with _engines_lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.dispose()


def session_scope() -> Session:
    """A session outside a request (CLI, worker). The caller commits."""
    return Session(get_engine(), expire_on_commit=False)


def get_session() -> Iterator[Session]:
    """One session per request: committed when the handler returns, rolled back on error. Before the
    commit, the request's audit entry (the person-bearing records it disclosed or changed) is appended
    in the same transaction, so a change is never kept without its entry nor an answer sent without
    it (backend/audit/disclosure.py); a refusal that carried records is audited after the rollback."""
    from backend.audit import disclosure  # the audit log lives on top of this module

    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            disclosure.flush(session)
            session.commit()
        except BaseException as exc:
            session.rollback()
            disclosure.after_failure(session, exc)
            if getattr(exc, "aftermath", None) is not None:
                # What a refusal keeps (its audit entry, a notification) is written after the rollback,
                # in a transaction of its own; the caller gets the refusal whatever becomes of it.
                run_aftermath(session, exc)
                try:
                    session.commit()
                except Exception:
                    session.rollback()
                    log.exception("could not keep the aftermath of %s", type(exc).__name__)
            raise


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def dialect_insert(session: OrmSession) -> Any:
    """INSERT with ON CONFLICT support for whichever backend the session is bound to."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def one_of(session: OrmSession, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN values` for a batch lookup. On PostgreSQL it is `column = ANY(:array)`: one bound
    parameter, so the statement text is the same for every batch size and the driver parses it once,
    instead of rendering and splitting hundreds of placeholders per sync push."""
    wanted = list(values)
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return cast(ColumnElement[bool], column == any_(bindparam(None, wanted, type_=ARRAY(column.type))))
    return cast(ColumnElement[bool], column.in_(wanted))


def one_of_param(dialect_name: str, column: Any, name: str) -> ColumnElement[bool]:
    """one_of for a statement built once per dialect and run many times: the list is bound at
    execution, as `{name: values}`. Building a statement costs more than running a cached one, and
    a sync push runs several per batch."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return cast(ColumnElement[bool], column == any_(bindparam(name, type_=ARRAY(column.type))))
    return cast(ColumnElement[bool], column.in_(bindparam(name, expanding=True)))
