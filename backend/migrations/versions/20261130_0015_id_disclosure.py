"""Masked ID numbers keep the region only; phones get every person again.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 00:00:00

The masked form was the first 6 and last 4 characters (990101********9664): beside the birth date,
stored and sent in plaintext, it rebuilt the whole number. It is now the region only
(990101************), so the sequence digits live only in the cipher. The new form is cut from the
old one (no key needed). Every person gets a new sync revision, so phones replace the copies they
hold (old masked form, and the exact birth date that roles without the reveal permission no longer
receive) on their next pull.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("person", "risk_person"):
        op.execute(
            f"UPDATE {table} SET id_masked = substr(id_masked, 1, 6) || '************' "  # noqa: S608
            "WHERE id_masked IS NOT NULL AND length(id_masked) = 18"
        )
    # New revisions above every one handed out (person ids are unique, so counter + id are too), then
    # the counter moves past them.
    op.execute("INSERT INTO sync_counter (id, value) SELECT 1, 0 WHERE NOT EXISTS (SELECT 1 FROM sync_counter)")
    op.execute("UPDATE person SET rev = (SELECT value FROM sync_counter WHERE id = 1) + id")
    op.execute(
        "UPDATE sync_counter SET value = value + coalesce((SELECT max(id) FROM person), 0) WHERE id = 1"
    )


def downgrade() -> None:
    # The last 4 characters cannot be cut back out of the region-only form without the key; the
    # shorter mask stays (it hides more, and the code of every revision reads it).
    pass
