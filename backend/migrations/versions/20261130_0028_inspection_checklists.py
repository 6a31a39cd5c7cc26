"""Inspection checklists as versioned templates a county can edit.

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-30 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0028'
down_revision: str | None = '0027'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The built-in national versions are written on first use (backend.inspections.checklists.ensure_builtin),
    # as the visit checklist's are: one source of their text, and an empty test database gets them too.
    op.create_table('inspection_checklist',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('title_zh', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('title_en', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('venue_types', sa.JSON(), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('owner_unit_id', sa.Integer(), nullable=True),
    sa.Column('published_by', sa.Integer(), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_unit_id'], ['org_unit.id'],
                            name=op.f('fk_inspection_checklist_owner_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['published_by'], ['app_user.id'],
                            name=op.f('fk_inspection_checklist_published_by_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inspection_checklist')),
    sa.UniqueConstraint('code', 'version', name=op.f('uq_inspection_checklist_code_version'))
    )
    op.create_index(op.f('ix_inspection_checklist_code'), 'inspection_checklist', ['code'], unique=False)
    op.create_index(op.f('ix_inspection_checklist_owner_unit_id'), 'inspection_checklist', ['owner_unit_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_inspection_checklist_owner_unit_id'), table_name='inspection_checklist')
    op.drop_index(op.f('ix_inspection_checklist_code'), table_name='inspection_checklist')
    op.drop_table('inspection_checklist')
