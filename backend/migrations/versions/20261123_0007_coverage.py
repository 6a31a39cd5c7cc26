"""Coverage: campaigns and phases, the per-grid coverage summary, monthly reports.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 22:00:00

Only org units and users are referenced, so this branch depends on the foundation alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('campaign',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('org_unit_id', sa.Integer(), nullable=True),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], name=op.f('fk_campaign_created_by_app_user')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_campaign_org_unit_id_org_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign'))
    )
    op.create_index(op.f('ix_campaign_code'), 'campaign', ['code'], unique=True)
    op.create_index(op.f('ix_campaign_org_unit_id'), 'campaign', ['org_unit_id'], unique=False)
    op.create_table('campaign_phase',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('name_zh', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('name_en', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_campaign_phase_campaign_id_campaign'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_phase')),
    sa.UniqueConstraint('campaign_id', 'code', name=op.f('uq_campaign_phase_campaign_id_code'))
    )
    op.create_index(op.f('ix_campaign_phase_campaign_id'), 'campaign_phase', ['campaign_id'], unique=False)
    op.create_table('coverage_grid_stat',
    sa.Column('period_key', sa.String(length=80), nullable=False),
    sa.Column('grid_id', sa.Integer(), nullable=False),
    sa.Column('households', sa.Integer(), nullable=False),
    sa.Column('visited', sa.Integer(), nullable=False),
    sa.Column('never_visited', sa.Integer(), nullable=False),
    sa.Column('mismatch_visits', sa.Integer(), nullable=False),
    sa.Column('risk_low', sa.Integer(), nullable=False),
    sa.Column('risk_general', sa.Integer(), nullable=False),
    sa.Column('risk_major', sa.Integer(), nullable=False),
    sa.Column('risk_severe', sa.Integer(), nullable=False),
    sa.Column('risk_none', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['grid_id'], ['org_unit.id'], name=op.f('fk_coverage_grid_stat_grid_id_org_unit'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('period_key', 'grid_id', name=op.f('pk_coverage_grid_stat'))
    )
    op.create_index(op.f('ix_coverage_grid_stat_grid_id'), 'coverage_grid_stat', ['grid_id'], unique=False)
    op.create_table('coverage_summary_state',
    sa.Column('period_key', sa.String(length=80), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('refreshed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('grids', sa.Integer(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('period_key', name=op.f('pk_coverage_summary_state'))
    )
    op.create_table('monthly_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('month', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('xlsx_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('xlsx_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('xlsx_bytes', sa.Integer(), nullable=False),
    sa.Column('png_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('png_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('png_bytes', sa.Integer(), nullable=False),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.Column('generated_by', sa.Integer(), nullable=True),
    sa.Column('generated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_by', sa.Integer(), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['generated_by'], ['app_user.id'], name=op.f('fk_monthly_report_generated_by_app_user')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_monthly_report_org_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['submitted_by'], ['app_user.id'], name=op.f('fk_monthly_report_submitted_by_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monthly_report')),
    sa.UniqueConstraint('org_unit_id', 'month', name=op.f('uq_monthly_report_org_unit_id_month'))
    )
    op.create_index(op.f('ix_monthly_report_org_unit_id'), 'monthly_report', ['org_unit_id'], unique=False)
    op.create_index(op.f('ix_monthly_report_month'), 'monthly_report', ['month'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_monthly_report_month'), table_name='monthly_report')
    op.drop_index(op.f('ix_monthly_report_org_unit_id'), table_name='monthly_report')
    op.drop_table('monthly_report')
    op.drop_table('coverage_summary_state')
    op.drop_index(op.f('ix_coverage_grid_stat_grid_id'), table_name='coverage_grid_stat')
    op.drop_table('coverage_grid_stat')
    op.drop_index(op.f('ix_campaign_phase_campaign_id'), table_name='campaign_phase')
    op.drop_table('campaign_phase')
    op.drop_index(op.f('ix_campaign_org_unit_id'), table_name='campaign')
    op.drop_index(op.f('ix_campaign_code'), table_name='campaign')
    op.drop_table('campaign')
