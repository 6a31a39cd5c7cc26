"""Joint enforcement beyond two agencies (issue 18): per-county enforcement duties.

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-01 00:00:00

- `enforcement_duty` (执法职责): per county, which agency (公安, 市场监管, 文旅, 教育, 综合执法, 卫健)
  inspects which venue type, at least every `interval_days` days. A county without rows uses the
  national default written in backend/schedules/duties.py, so nothing is seeded here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0036'
down_revision: str | None = '0035'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('enforcement_duty',
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('agency', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('venue_type', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('interval_days', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by_user_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_enforcement_duty_org_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['updated_by_user_id'], ['app_user.id'],
                            name=op.f('fk_enforcement_duty_updated_by_user_id_app_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('org_unit_id', 'agency', 'venue_type', name=op.f('pk_enforcement_duty'))
    )


def downgrade() -> None:
    op.drop_table('enforcement_duty')
