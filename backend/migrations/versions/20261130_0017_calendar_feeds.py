"""Calendar feed URLs can be revoked per user.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 00:00:00

A calendar subscription URL carries its own credential (phone calendars send no bearer token). Its
token is now an HMAC, under a key of its own derived from the master secret, over the user and a
generation stored here; revoking raises the generation, so every URL handed out before stops
working. No row is generation 0, so existing users need none. (URLs handed out before this release
were signed with the master secret itself and stop working with it: officers fetch theirs again.)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('calendar_feed',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by_user_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_calendar_feed_user_id_app_user'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['revoked_by_user_id'], ['app_user.id'],
                            name=op.f('fk_calendar_feed_revoked_by_user_id_app_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_calendar_feed'))
    )


def downgrade() -> None:
    op.drop_table('calendar_feed')
