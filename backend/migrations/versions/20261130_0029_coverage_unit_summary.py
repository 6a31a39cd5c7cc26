"""The coverage summary keeps one row per unit (grids and every unit above them), not per grid.

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-30 00:00:00

`coverage_grid_stat` becomes `coverage_unit_stat`: the worker's refresh adds each grid's figures to
every unit on its path, so a map request reads one row per unit it shows (a 50,000-household town in
milliseconds). The old rows are dropped and the periods' refresh times forgotten, so no request reads
an empty summary as fresh: until the worker's next run (every 10 minutes) figures are counted live.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0029'
down_revision: str | None = '0028'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FIGURES = ("households", "visited", "never_visited", "visited_approved", "never_visited_approved",
            "mismatch_visits", "risk_low", "risk_general", "risk_major", "risk_severe", "risk_none")


def _table(name: str, key: str) -> None:
    op.create_table(
        name,
        sa.Column("period_key", sa.String(length=80), nullable=False),
        sa.Column(key, sa.Integer(), nullable=False),
        *[sa.Column(f, sa.Integer(), nullable=False) for f in _FIGURES],
        sa.ForeignKeyConstraint([key], ["org_unit.id"], name=op.f(f"fk_{name}_{key}_org_unit"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("period_key", key, name=op.f(f"pk_{name}")),
    )
    op.create_index(op.f(f"ix_{name}_{key}"), name, [key], unique=False)


def upgrade() -> None:
    op.execute("DELETE FROM coverage_summary_state")
    op.drop_index(op.f("ix_coverage_grid_stat_grid_id"), table_name="coverage_grid_stat")
    op.drop_table("coverage_grid_stat")
    _table("coverage_unit_stat", "unit_id")


def downgrade() -> None:
    op.execute("DELETE FROM coverage_summary_state")
    op.drop_index(op.f("ix_coverage_unit_stat_unit_id"), table_name="coverage_unit_stat")
    op.drop_table("coverage_unit_stat")
    _table("coverage_grid_stat", "grid_id")
