"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session

from backend.core.migrate import head_revisions


def test_healthz_answers_without_the_database(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_the_schema_at_head(client: TestClient) -> None:
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert set(resp.json()["migration"]) == set(head_revisions())


def test_readyz_refuses_when_migrations_are_behind(client: TestClient, session: Session) -> None:
    session.connection().execute(text("UPDATE alembic_version SET version_num = '0000'"))
    session.commit()
    try:
        resp = client.get("/readyz")
        assert resp.status_code == 503
        assert resp.json()["migration"] == ["0000"]
    finally:
        session.connection().execute(text("DELETE FROM alembic_version"))
        for head in head_revisions():
            session.connection().execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": head})
        session.commit()


def test_readyz_refuses_when_the_database_is_unreachable(client: TestClient, monkeypatch: object) -> None:
    import pytest

    from backend.core import db
    from backend.core.config import get_settings

    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
        get_settings.cache_clear()
        resp = client.get("/readyz")
        assert resp.status_code == 503
        assert resp.json()["database"] == "unreachable"
    finally:
        mp.undo()
        get_settings.cache_clear()
        db.dispose_engines()
