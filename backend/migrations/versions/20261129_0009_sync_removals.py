"""Sync removals: a tombstone, written by the database, whenever a record a phone may hold leaves its
audience; and a sync revision on visits, so phones pull their households' visit history.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 00:00:00

The tombstones are written by triggers, not by application code, so no code path (a coordinator's
move, a bulk UPDATE, a cascade, a future job) can change a record's audience without the phones that
held it being told. Each tombstone takes its own revision from the sync counter, so every pull item
has a distinct revision and a page cut never splits one.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Assignment statuses that keep a helper's place (backend/helpers/models.py HOLDING): leaving them
# takes the assignment off the phones that held it.
_HOLDING = "('proposed', 'offered', 'accepted')"

# (table, kind, condition on UPDATE that means "left its audience", helper user of the old row)
_SCOPED = [
    ("household", "household", "OLD.org_unit_id IS NOT NEW.org_unit_id", "NULL"),
    ("person", "person", "OLD.org_unit_id IS NOT NEW.org_unit_id", "NULL"),
    (
        "helper_assignment",
        "assignment",
        f"OLD.helper_id IS NOT NEW.helper_id OR OLD.org_unit_id IS NOT NEW.org_unit_id "
        f"OR (OLD.status IN {_HOLDING} AND NEW.status NOT IN {_HOLDING})",
        "(SELECT hp.user_id FROM helper_profile hp WHERE hp.id = OLD.helper_id)",
    ),
]


def _uuid_of(table: str) -> str:
    return "NULL" if table == "helper_assignment" else "OLD.uuid"


def _sqlite_triggers() -> list[str]:
    statements = []
    for table, kind, changed, user in _SCOPED:
        body = f"""
            INSERT INTO sync_counter (id, value) SELECT 1, 0 WHERE NOT EXISTS (SELECT 1 FROM sync_counter WHERE id = 1);
            UPDATE sync_counter SET value = value + 1 WHERE id = 1;
            INSERT INTO sync_removal (rev, kind, record_uuid, record_id, org_unit_id, user_id, created_at)
            SELECT value, '{kind}', {_uuid_of(table)}, OLD.id, OLD.org_unit_id, {user}, CURRENT_TIMESTAMP
            FROM sync_counter WHERE id = 1;
        """  # noqa: S608 - constant names from _SCOPED
        statements.append(
            f"CREATE TRIGGER {table}_sync_removal_update AFTER UPDATE ON {table} WHEN {changed} BEGIN {body} END"
        )
        statements.append(f"CREATE TRIGGER {table}_sync_removal_delete AFTER DELETE ON {table} BEGIN {body} END")
    return statements


def _postgres_triggers() -> list[str]:
    statements = []
    for table, kind, changed, user in _SCOPED:
        changed_pg = changed.replace(" IS NOT ", " IS DISTINCT FROM ")
        statements.append(f"""
            CREATE OR REPLACE FUNCTION {table}_sync_removal() RETURNS trigger AS $$
            DECLARE r bigint;
            BEGIN
                INSERT INTO sync_counter (id, value) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
                UPDATE sync_counter SET value = value + 1 WHERE id = 1 RETURNING value INTO r;
                INSERT INTO sync_removal (rev, kind, record_uuid, record_id, org_unit_id, user_id, created_at)
                VALUES (r, '{kind}', {_uuid_of(table)}, OLD.id, OLD.org_unit_id, {user}, now());
                RETURN NULL;
            END;
            $$ LANGUAGE plpgsql
        """)  # noqa: S608 - constant names from _SCOPED
        statements.append(
            f"CREATE TRIGGER {table}_sync_removal_update AFTER UPDATE ON {table} FOR EACH ROW "
            f"WHEN ({changed_pg}) EXECUTE FUNCTION {table}_sync_removal()"
        )
        statements.append(
            f"CREATE TRIGGER {table}_sync_removal_delete AFTER DELETE ON {table} FOR EACH ROW "
            f"EXECUTE FUNCTION {table}_sync_removal()"
        )
    return statements


def upgrade() -> None:
    op.create_table(
        'sync_removal',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('rev', sa.BigInteger(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('record_uuid', sa.Uuid(), nullable=True),
        sa.Column('record_id', sa.BigInteger(), nullable=False),
        sa.Column('org_unit_id', sa.Integer(), nullable=True),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_removal')),
    )
    op.create_index(op.f('ix_sync_removal_rev'), 'sync_removal', ['rev'], unique=True)

    # Visits get revisions after every revision handed out so far (in id order), as assignments did in 0008.
    op.add_column('visit', sa.Column('rev', sa.BigInteger(), nullable=False, server_default='0'))
    bind = op.get_bind()
    bind.execute(sa.text('INSERT INTO sync_counter (id, value) SELECT 1, 0 WHERE NOT EXISTS '
                         '(SELECT 1 FROM sync_counter WHERE id = 1)'))
    count = bind.execute(sa.text('SELECT count(*) FROM visit')).scalar_one()
    if count:
        last = bind.execute(sa.text('UPDATE sync_counter SET value = value + :n WHERE id = 1 RETURNING value'),
                            {'n': count}).scalar_one()
        first = int(last) - int(count) + 1
        ids = [row[0] for row in bind.execute(sa.text('SELECT id FROM visit ORDER BY id'))]
        bind.execute(sa.text('UPDATE visit SET rev = :rev WHERE id = :id'),
                     [{'rev': first + n, 'id': i} for n, i in enumerate(ids)])
    op.create_index(op.f('ix_visit_rev'), 'visit', ['rev'], unique=False)

    for statement in _sqlite_triggers() if bind.dialect.name == "sqlite" else _postgres_triggers():
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    for table, _, _, _ in _SCOPED:
        for suffix in ("update", "delete"):
            if bind.dialect.name == "sqlite":
                op.execute(f"DROP TRIGGER IF EXISTS {table}_sync_removal_{suffix}")
            else:
                op.execute(f"DROP TRIGGER IF EXISTS {table}_sync_removal_{suffix} ON {table}")
        if bind.dialect.name != "sqlite":
            op.execute(f"DROP FUNCTION IF EXISTS {table}_sync_removal()")
    op.drop_index(op.f('ix_visit_rev'), table_name='visit')
    with op.batch_alter_table('visit') as batch:
        batch.drop_column('rev')
    op.drop_index(op.f('ix_sync_removal_rev'), table_name='sync_removal')
    op.drop_table('sync_removal')
