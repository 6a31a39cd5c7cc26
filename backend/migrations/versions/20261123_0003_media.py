"""Media: geotagged photos, resumable uploads, derivatives (issue 4).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 21:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('media_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_uuid', sa.Uuid(), nullable=False),
    sa.Column('parent_kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('parent_uuid', sa.Uuid(), nullable=False),
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('uploader_user_id', sa.Integer(), nullable=False),
    sa.Column('uploader_org_unit_id', sa.Integer(), nullable=False),
    sa.Column('linked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('link_error', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True),
    sa.Column('link_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reject_code', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('reject_reason', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.Column('total_bytes', sa.Integer(), nullable=False),
    sa.Column('received_bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('original_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('display_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('thumbnail_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('gps_lon', sa.Float(), nullable=True),
    sa.Column('gps_lat', sa.Float(), nullable=True),
    sa.Column('gps_alt_m', sa.Float(), nullable=True),
    sa.Column('gps_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('orientation', sa.Integer(), nullable=True),
    sa.Column('distance_m', sa.Float(), nullable=True),
    sa.Column('location_mismatch', sa.Boolean(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('processing_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_media_item_org_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['uploader_org_unit_id'], ['org_unit.id'],
                            name=op.f('fk_media_item_uploader_org_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['uploader_user_id'], ['app_user.id'],
                            name=op.f('fk_media_item_uploader_user_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media_item')),
    sa.UniqueConstraint('client_uuid', name=op.f('uq_media_item_client_uuid'))
    )
    op.create_index('ix_media_item_parent', 'media_item', ['parent_kind', 'parent_uuid'], unique=False)
    op.create_index('ix_media_item_state', 'media_item', ['state'], unique=False)
    op.create_index(op.f('ix_media_item_org_unit_id'), 'media_item', ['org_unit_id'], unique=False)
    op.create_index(op.f('ix_media_item_uploader_user_id'), 'media_item', ['uploader_user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_media_item_uploader_user_id'), table_name='media_item')
    op.drop_index(op.f('ix_media_item_org_unit_id'), table_name='media_item')
    op.drop_index('ix_media_item_state', table_name='media_item')
    op.drop_index('ix_media_item_parent', table_name='media_item')
    op.drop_table('media_item')
