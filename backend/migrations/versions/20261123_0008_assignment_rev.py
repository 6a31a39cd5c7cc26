"""Helper assignments carry a sync revision, so helpers' phones pull them like registry records.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 00:00:00

Existing assignments get revisions after every revision handed out so far (in id order), and the
counter moves past them, so a phone's stored cursor picks them all up on its next pull.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The server default only fills existing rows (SQLite adds a NOT NULL column no other way without
    # copying the table); the application always writes the column.
    op.add_column('helper_assignment', sa.Column('rev', sa.BigInteger(), nullable=False, server_default='0'))
    bind = op.get_bind()
    ids = [row[0] for row in bind.execute(sa.text('SELECT id FROM helper_assignment ORDER BY id'))]
    if ids:
        bind.execute(sa.text('INSERT INTO sync_counter (id, value) SELECT 1, 0 WHERE NOT EXISTS '
                             '(SELECT 1 FROM sync_counter WHERE id = 1)'))
        last = bind.execute(sa.text('UPDATE sync_counter SET value = value + :n WHERE id = 1 RETURNING value'),
                            {'n': len(ids)}).scalar_one()
        first = int(last) - len(ids) + 1
        bind.execute(sa.text('UPDATE helper_assignment SET rev = :rev WHERE id = :id'),
                     [{'rev': first + n, 'id': i} for n, i in enumerate(ids)])
    op.create_index(op.f('ix_helper_assignment_rev'), 'helper_assignment', ['rev'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_helper_assignment_rev'), table_name='helper_assignment')
    with op.batch_alter_table('helper_assignment') as batch:
        batch.drop_column('rev')
