"""Issue 13: retention. A person leaves the active registry (`retired_at`) and, after the retention
period, is anonymised (`anonymised_at`); leaving it tells the phones that held it.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 00:00:00

The worker job `registry.retention` (backend/registry/retention.py) retires a child on the first day
of the month after its 18th birthday when no case is open, and a guardian whose wards have all
retired. A retired record is outside every pull scope, so the phones that held it must delete it:
the person tombstone trigger of migration 0009 fires on a change of unit only, and here also fires
when `retired_at` is first set (both dialects), so the removal is the database's doing, as every
other removal is. Anonymisation changes neither the unit nor `retired_at`, so it writes no second
tombstone. The trigger function (PostgreSQL) and the body (SQLite) are those of 0009.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MOVED_SQLITE = "OLD.org_unit_id IS NOT NEW.org_unit_id"
_MOVED_PG = "OLD.org_unit_id IS DISTINCT FROM NEW.org_unit_id"
_RETIRED = "(OLD.retired_at IS NULL AND NEW.retired_at IS NOT NULL)"

# Migration 0009's trigger body for persons (SQLite has no trigger functions).
_SQLITE_BODY = """
    INSERT INTO sync_counter (id, value) SELECT 1, 0 WHERE NOT EXISTS (SELECT 1 FROM sync_counter WHERE id = 1);
    UPDATE sync_counter SET value = value + 1 WHERE id = 1;
    INSERT INTO sync_removal (rev, kind, record_uuid, record_id, org_unit_id, user_id, created_at)
    SELECT value, 'person', OLD.uuid, OLD.id, OLD.org_unit_id, NULL, CURRENT_TIMESTAMP
    FROM sync_counter WHERE id = 1;
"""


def _person_update_trigger(dialect: str, condition_sqlite: str, condition_pg: str) -> list[str]:
    if dialect == "sqlite":
        return [
            "DROP TRIGGER IF EXISTS person_sync_removal_update",
            f"CREATE TRIGGER person_sync_removal_update AFTER UPDATE ON person WHEN {condition_sqlite} "
            f"BEGIN {_SQLITE_BODY} END",
        ]
    return [
        "DROP TRIGGER IF EXISTS person_sync_removal_update ON person",
        f"CREATE TRIGGER person_sync_removal_update AFTER UPDATE ON person FOR EACH ROW "
        f"WHEN ({condition_pg}) EXECUTE FUNCTION person_sync_removal()",
    ]


def upgrade() -> None:
    op.add_column('person', sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('person', sa.Column('anonymised_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f('ix_person_retired_at'), 'person', ['retired_at'], unique=False)
    dialect = op.get_bind().dialect.name
    for statement in _person_update_trigger(dialect, f"{_MOVED_SQLITE} OR {_RETIRED}", f"{_MOVED_PG} OR {_RETIRED}"):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    # The trigger goes first: SQLite drops no column a trigger names. Dropped natively (SQLite 3.35+),
    # not by copying the table, which would drop its other triggers and partial indexes.
    for statement in _person_update_trigger(dialect, _MOVED_SQLITE, _MOVED_PG):
        op.execute(statement)
    op.drop_index(op.f('ix_person_retired_at'), table_name='person')
    for column in ('anonymised_at', 'retired_at'):
        if dialect == "sqlite":
            op.execute(f"ALTER TABLE person DROP COLUMN {column}")
        else:
            op.drop_column('person', column)
