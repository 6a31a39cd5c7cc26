"""Refresh grace window and revocation of access tokens.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 00:00:00

A `sign_in` row per refresh-token family: access tokens carry its id and every request checks it is
not revoked, so ending a sign-in ends its access tokens at once. Existing families get their row
(revoked when every token of the family is). `refresh_token.used_device_id` records which device
spent a token: only that device may retry it inside the grace window.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'sign_in',
        sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_sign_in_user_id_app_user'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in')),
    )
    op.create_index(op.f('ix_sign_in_user_id'), 'sign_in', ['user_id'], unique=False)
    op.add_column('refresh_token',
                  sa.Column('used_device_id', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True))
    # count(revoked_at) counts the revoked tokens: a family all of whose tokens are revoked was ended.
    op.execute(
        'INSERT INTO sign_in (id, user_id, created_at, revoked_at) '
        'SELECT family_id, min(user_id), min(issued_at), '
        'CASE WHEN count(revoked_at) = count(*) THEN max(revoked_at) END '
        'FROM refresh_token GROUP BY family_id'
    )


def downgrade() -> None:
    with op.batch_alter_table('refresh_token') as batch:
        batch.drop_column('used_device_id')
    op.drop_index(op.f('ix_sign_in_user_id'), table_name='sign_in')
    op.drop_table('sign_in')
