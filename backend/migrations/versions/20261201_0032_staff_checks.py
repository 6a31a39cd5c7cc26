"""Staff background checks (从业查询): staff members of institutions and their checks (issue 18).

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0032'
down_revision: str | None = '0031'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'staff_member',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('institution_id', sa.Integer(), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column('id_cipher', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('id_key_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('id_index', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('id_masked', sqlmodel.sql.sqltypes.AutoString(length=18), nullable=False),
        sa.Column('position', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column('hire_date', sa.Date(), nullable=True),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('flagged', sa.Boolean(), nullable=False),
        sa.Column('last_check_date', sa.Date(), nullable=True),
        sa.Column('reminded_due_date', sa.Date(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['institution_id'], ['institution.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('institution_id', 'id_index'),
    )
    op.create_index(op.f('ix_staff_member_institution_id'), 'staff_member', ['institution_id'], unique=False)
    op.create_index(op.f('ix_staff_member_id_index'), 'staff_member', ['id_index'], unique=False)
    op.create_index(op.f('ix_staff_member_status'), 'staff_member', ['status'], unique=False)
    op.create_table(
        'staff_check',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('check_date', sa.Date(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('result', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('checked_by_user_id', sa.Integer(), nullable=False),
        sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['checked_by_user_id'], ['app_user.id']),
        sa.ForeignKeyConstraint(['member_id'], ['staff_member.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_staff_check_member_id'), 'staff_check', ['member_id'], unique=False)


def downgrade() -> None:
    op.drop_table('staff_check')
    op.drop_table('staff_member')
