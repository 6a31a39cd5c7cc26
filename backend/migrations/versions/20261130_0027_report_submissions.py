"""Reports that go up and come back: the submission, approval and return of monthly, weekly and year-end reports, and the campaign's due rule.

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-30 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0027'
down_revision: str | None = '0026'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The campaign's due rule of monthly reports: seed 002's reading (the 17th of the month itself).
    op.add_column('campaign', sa.Column('report_due_rule', sqlmodel.sql.sqltypes.AutoString(length=16),
                                        nullable=False, server_default='same_month'))
    op.add_column('campaign', sa.Column('report_due_day', sa.Integer(), nullable=False, server_default='17'))

    op.create_table(
        'report_submission',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column('org_unit_id', sa.Integer(), nullable=False),
        sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column('due_date', sa.Date(), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('progress', sa.Text(), nullable=False),
        sa.Column('problems', sa.Text(), nullable=False),
        sa.Column('next_steps', sa.Text(), nullable=False),
        sa.Column('monthly_report_id', sa.Integer(), nullable=True),
        sa.Column('police_weekly_submission_id', sa.Integer(), nullable=True),
        sa.Column('first_submitted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('submitted_by', sa.Integer(), nullable=True),
        sa.Column('on_time', sa.Boolean(), nullable=True),
        sa.Column('returns', sa.Integer(), nullable=False),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decided_by', sa.Integer(), nullable=True),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id']),
        sa.ForeignKeyConstraint(['monthly_report_id'], ['monthly_report.id']),
        sa.ForeignKeyConstraint(['police_weekly_submission_id'], ['police_weekly_submission.id']),
        sa.ForeignKeyConstraint(['submitted_by'], ['app_user.id']),
        sa.ForeignKeyConstraint(['decided_by'], ['app_user.id']),
        sa.ForeignKeyConstraint(['created_by'], ['app_user.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('kind', 'org_unit_id', 'period'),
    )
    op.create_index(op.f('ix_report_submission_kind'), 'report_submission', ['kind'], unique=False)
    op.create_index(op.f('ix_report_submission_org_unit_id'), 'report_submission', ['org_unit_id'], unique=False)
    op.create_index(op.f('ix_report_submission_period'), 'report_submission', ['period'], unique=False)

    op.create_table(
        'report_submission_event',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('submission_id', sa.Integer(), nullable=False),
        sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('from_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column('to_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('comment', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['submission_id'], ['report_submission.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['actor_id'], ['app_user.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_report_submission_event_submission_id'), 'report_submission_event', ['submission_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_report_submission_event_submission_id'), table_name='report_submission_event')
    op.drop_table('report_submission_event')
    op.drop_index(op.f('ix_report_submission_period'), table_name='report_submission')
    op.drop_index(op.f('ix_report_submission_org_unit_id'), table_name='report_submission')
    op.drop_index(op.f('ix_report_submission_kind'), table_name='report_submission')
    op.drop_table('report_submission')
    with op.batch_alter_table('campaign') as batch:
        batch.drop_column('report_due_day')
        batch.drop_column('report_due_rule')
