"""Migration 0040 leaves room on the outboxes' pages for the claim updates (PostgreSQL: fillfactor 70,
so a claim writes the row's new version beside it and no index entry); SQLite has no such setting and
passes through the migration both ways unchanged."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from backend.core.db import create_db_engine
from backend.core.migrate import alembic_config, upgrade
from tests.test_migration_record_clock import fresh_url  # noqa: F401 (the fixture)


def _fillfactors(url: str) -> dict[str, list[str] | None]:
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name != "postgresql":
                names = [r[0] for r in conn.execute(sa.text(
                    "SELECT name FROM sqlite_master WHERE name IN ('notification_outbox', 'sms_outbox')"))]
                return {name: None for name in names}
            return {str(name): list(options or []) for name, options in conn.execute(sa.text(
                "SELECT relname, reloptions FROM pg_class WHERE relname IN ('notification_outbox', 'sms_outbox')"))}
    finally:
        engine.dispose()


def test_the_outboxes_keep_room_for_claims_and_give_it_back_on_downgrade(fresh_url: str,  # noqa: F811
                                                                          backend_name: str) -> None:
    upgrade(fresh_url, "0040")
    after = _fillfactors(fresh_url)
    command.downgrade(alembic_config(fresh_url), "0039")
    before = _fillfactors(fresh_url)
    if backend_name == "postgis":
        assert after == {"notification_outbox": ["fillfactor=70"], "sms_outbox": ["fillfactor=70"]}
        assert before == {"notification_outbox": [], "sms_outbox": []}
    else:
        assert after == before == {"notification_outbox": None, "sms_outbox": None}
