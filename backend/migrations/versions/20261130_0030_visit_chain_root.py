"""Every amendment of a visit names the first visit of its chain.

Revision ID: 0030
Revises: 0029
Create Date: 2026-11-30 00:00:00

An amendment of an amendment named the version it amended; which version counts is now read over the
chain with review states (a rejected amendment is skipped), and a skipped link cut the chain: the
amendment after it never replaced the first visit. Stored chains are re-pointed to their first visit,
one level per round, until none is left (chains are short: rounds are few).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0030'
down_revision: str | None = '0029'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    for _ in range(1000):
        moved = bind.exec_driver_sql(
            "UPDATE visit SET amends_id = (SELECT o.amends_id FROM visit o WHERE o.id = visit.amends_id) "
            "WHERE amends_id IN (SELECT id FROM visit WHERE amends_id IS NOT NULL)"
        ).rowcount
        if not moved:
            break


def downgrade() -> None:
    pass  # the first visit of each chain is a valid target for every amendment of it
