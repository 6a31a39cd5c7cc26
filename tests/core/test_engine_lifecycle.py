"""Apps sharing a process never strand database connections (CI once ran PostgreSQL out of clients:
each race test's apps closed the shared pools under a sibling's open request)."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from backend.core.db import get_engine
from backend.main import create_app


def _open_connections(database_url: str) -> int:
    """Connections to the test database: server backends on PostgreSQL, open file handles on SQLite."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        target = Path(url.database or "").resolve()
        fds = Path("/proc/self/fd")
        count = 0
        for fd in os.listdir(fds):
            try:
                if Path(os.readlink(fds / fd)) == target:
                    count += 1
            except OSError:
                continue
        return count
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid()").fetchone()
    return int(row[0]) if row else 0


def test_an_app_stopping_while_a_sibling_holds_a_connection_leaves_no_connection_behind(
    database_url: str,
) -> None:
    before = _open_connections(database_url)
    for _ in range(5):
        first, second = TestClient(create_app()), TestClient(create_app())
        first.__enter__()
        second.__enter__()
        held = get_engine().connect()  # the sibling's request in flight
        held.execute(text("SELECT 1"))
        first.__exit__(None, None, None)
        third = TestClient(create_app())
        third.__enter__()  # a later start freezes whatever is alive then
        held.close()
        third.__exit__(None, None, None)
        second.__exit__(None, None, None)
    gc.collect()
    assert _open_connections(database_url) <= before
