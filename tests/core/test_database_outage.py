"""While the database is away (restart, failover), requests answer 503 `database-unavailable` with
Retry-After, so a phone retries instead of reporting a server fault."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from backend.core import db
from backend.core.config import get_settings
from backend.main import create_app


@pytest.fixture
def unreachable_database(database_url: str) -> Iterator[None]:
    # Its own MonkeyPatch: the test database must be configured again before database_url cleans up.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
        get_settings.cache_clear()
        db.dispose_engines()
        yield
        db.dispose_engines()
    get_settings.cache_clear()


def test_a_request_while_the_database_is_unreachable_answers_retry_later(unreachable_database: None) -> None:
    with TestClient(create_app()) as client:
        resp = client.post("/api/v1/auth/login", json={"phone": "19900000006", "password": "Hulei-demo-2026"},
                           headers={"Accept-Language": "en"})
    assert resp.status_code == 503
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.headers["retry-after"] == "5"
    assert resp.json()["code"] == "database-unavailable"
