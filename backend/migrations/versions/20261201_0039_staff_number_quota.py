"""A per-user daily cap on full ID numbers typed into staff writes (issue 18, outside tester).

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-01 05:15:00

- `staff_number_quota`: per user and China day, the full ID numbers typed into staff writes that match
  by number (POST of a member, the rows of a real staff-list import); the cap
  (`HULEI_STAFF_TYPED_NUMBERS_PER_DAY`) is taken in one conditional UPDATE.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0039'
down_revision: str | None = '0038'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('staff_number_quota',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('typed', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_staff_number_quota_user_id_app_user'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'day', name=op.f('pk_staff_number_quota')),
    )


def downgrade() -> None:
    op.drop_table('staff_number_quota')
