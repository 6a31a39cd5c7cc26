"""Room on each page of the outboxes for their claim updates (issue 19, outbox speed).

Revision ID: 0040
Revises: 0039
Create Date: 2026-12-01 10:20:00

A worker claims a batch by writing `claimed_by` and `claimed_until`, which no index holds: with free
room on the row's page PostgreSQL writes the new version there (a HOT update) and touches none of the
table's four indexes. Pages filled to the brim made every claim a new tuple elsewhere and four index
entries per row; at fillfactor 70 a claim of 500 rows measured 3.5 ms instead of 8.5 ms. Pages written
from now on keep the room; SQLite has no such setting.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0040'
down_revision: str | None = '0039'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OUTBOXES = ("notification_outbox", "sms_outbox")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in _OUTBOXES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in _OUTBOXES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
