"""Which clock places a record in a period.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 00:00:00

Visits, households, persons and inspections get `counted_at` (the instant that puts them in a
reporting period) and `clock_suspect`. Existing rows are placed by the rule new ones follow
(backend/core/placement.py): visits by device_time and inspections by started_at when plausible
against their receipt time, else by that receipt time and flagged; households and persons, which
carried no device time before, by created_at.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.core import clock
from backend.core.placement import place

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, the phone's time, the receipt time); households and persons have no phone time yet.
_TABLES: tuple[tuple[str, str | None, str], ...] = (
    ('visit', 'device_time', 'received_at'),
    ('household', None, 'created_at'),
    ('person', None, 'created_at'),
    ('inspection', 'started_at', 'created_at'),
)
_INDEXED = ('visit', 'inspection')  # period queries range-scan these by counted_at


def _place_existing(table: str, device: str, received: str) -> None:
    """Flag and re-place the rows whose phone time the rule would not have trusted (few, if any)."""
    bind = op.get_bind()
    ts = sa.DateTime(timezone=True)
    t = sa.table(table, sa.column('id', sa.BigInteger()), sa.column(device, ts), sa.column(received, ts),
                 sa.column('counted_at', ts), sa.column('clock_suspect', sa.Boolean()))
    changes: list[dict[str, object]] = []
    rows = bind.execute(sa.select(t.c.id, t.c[device], t.c[received]).execution_options(yield_per=5000))
    for row_id, device_time, received_at in rows:
        placed = place(device_time, received_at)
        if placed.clock_suspect or placed.counted_at != clock.as_utc(device_time):
            changes.append({'row_id': row_id, 'at': placed.counted_at, 'suspect': placed.clock_suspect})
    for start in range(0, len(changes), 5000):
        bind.execute(
            t.update().where(t.c.id == sa.bindparam('row_id'))
            .values(counted_at=sa.bindparam('at', type_=ts), clock_suspect=sa.bindparam('suspect')),
            changes[start:start + 5000],
        )


def upgrade() -> None:
    for table, device, received in _TABLES:
        # SQLite adds a NOT NULL column only with a default, so a constant one fills existing rows until
        # the backfill below; the application always writes the column. PostgreSQL drops the default
        # afterwards; SQLite keeps it (removing it would copy the table and its geometry).
        op.add_column(table, sa.Column('counted_at', sa.DateTime(timezone=True), nullable=False,
                                       server_default=sa.text("'1970-01-01 00:00:00'")))
        op.add_column(table, sa.Column('clock_suspect', sa.Boolean(), nullable=False, server_default=sa.false()))
        t = sa.table(table, sa.column('counted_at'), sa.column(device or received))
        op.execute(t.update().values(counted_at=t.c[device or received]))
        if device is not None:
            _place_existing(table, device, received)
        if op.get_bind().dialect.name == 'postgresql':
            op.alter_column(table, 'counted_at', server_default=None)
        if table in _INDEXED:
            op.create_index(op.f(f'ix_{table}_counted_at'), table, ['counted_at'], unique=False)


def downgrade() -> None:
    for table, _, _ in reversed(_TABLES):
        if table in _INDEXED:
            op.drop_index(op.f(f'ix_{table}_counted_at'), table_name=table)
        op.drop_column(table, 'clock_suspect')
        op.drop_column(table, 'counted_at')
