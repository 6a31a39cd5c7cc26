"""The digest of a household's or person's create, so its creator's resend is a duplicate after edits.

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-30 00:00:00

`household.created_hash` and `person.created_hash`: the content digest the record was created with.
A phone that lost the answer to its create and sends it again after someone else edited or moved the
record was answered `conflict` (or refused, once the household left its area); its creator's resend
is now recognised by this digest. Records never edited (version 1) get their current digest; the
others stay null (their resends keep the old rule).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0025'
down_revision: str | None = '0024'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ('household', 'person'):
        op.add_column(table, sa.Column('created_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    op.execute("UPDATE household SET created_hash = content_hash WHERE version = 1")
    op.execute("UPDATE person SET created_hash = content_hash WHERE version = 1")


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+): a batch copy of these tables would drop their sync triggers.
    op.execute("ALTER TABLE household DROP COLUMN created_hash")
    op.execute("ALTER TABLE person DROP COLUMN created_hash")
