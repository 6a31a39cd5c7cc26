"""Prevention and education activities (宣传教育) and the counties' own activity types (issue 18).

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0033'
down_revision: str | None = '0032'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'activity_type',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('name_zh', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column('name_en', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column('owner_unit_id', sa.Integer(), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['created_by'], ['app_user.id']),
        sa.ForeignKeyConstraint(['owner_unit_id'], ['org_unit.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('code'),
    )
    op.create_index(op.f('ix_activity_type_owner_unit_id'), 'activity_type', ['owner_unit_id'], unique=False)
    op.create_table(
        'activity',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('client_uuid', sa.Uuid(), nullable=False),
        sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('type_code', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('organiser_unit_id', sa.Integer(), nullable=False),
        sa.Column('organiser_agency', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column('held_date', sa.Date(), nullable=False),
        sa.Column('place_kind', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column('institution_id', sa.Integer(), nullable=True),
        sa.Column('org_unit_id', sa.Integer(), nullable=False),
        sa.Column('place_name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column('lon', sa.Float(), nullable=True),
        sa.Column('lat', sa.Float(), nullable=True),
        sa.Column('reported_crs', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
        sa.Column('students', sa.Integer(), nullable=False),
        sa.Column('parents', sa.Integer(), nullable=False),
        sa.Column('villagers', sa.Integer(), nullable=False),
        sa.Column('others', sa.Integer(), nullable=False),
        sa.Column('photos', sa.JSON(), nullable=False),
        sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column('recorded_by', sa.Integer(), nullable=False),
        sa.Column('device_time', sa.DateTime(timezone=True), nullable=True),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('rev', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['institution_id'], ['institution.id']),
        sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id']),
        sa.ForeignKeyConstraint(['organiser_unit_id'], ['org_unit.id']),
        sa.ForeignKeyConstraint(['recorded_by'], ['app_user.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('client_uuid'),
    )
    op.create_index('ix_activity_unit_date', 'activity', ['org_unit_id', 'held_date'], unique=False)
    op.create_index(op.f('ix_activity_held_date'), 'activity', ['held_date'], unique=False)
    op.create_index(op.f('ix_activity_institution_id'), 'activity', ['institution_id'], unique=False)
    op.create_index(op.f('ix_activity_recorded_by'), 'activity', ['recorded_by'], unique=False)
    op.create_index(op.f('ix_activity_rev'), 'activity', ['rev'], unique=False)
    op.create_index(op.f('ix_activity_type_code'), 'activity', ['type_code'], unique=False)


def downgrade() -> None:
    op.drop_table('activity')
    op.drop_table('activity_type')
