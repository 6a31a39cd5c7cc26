"""Institutions in close contact with minors (密切接触未成年人单位): the register of issue 18.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0031'
down_revision: str | None = '0030'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'institution',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column('org_unit_id', sa.Integer(), nullable=False),
        sa.Column('supervising_agency', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('venue_id', sa.Integer(), nullable=True),
        sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('student_count', sa.Integer(), nullable=True),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id']),
        sa.ForeignKeyConstraint(['venue_id'], ['venue.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('venue_id'),
    )
    op.create_index(op.f('ix_institution_kind'), 'institution', ['kind'], unique=False)
    op.create_index(op.f('ix_institution_org_unit_id'), 'institution', ['org_unit_id'], unique=False)
    op.create_index(op.f('ix_institution_supervising_agency'), 'institution', ['supervising_agency'], unique=False)


def downgrade() -> None:
    op.drop_table('institution')
