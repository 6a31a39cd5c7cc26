"""Review of field work (审核): review states on visits and inspections, the review history, the town's approved-only setting.

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-30 00:00:00

`visit.review_state` and `inspection.review_state` (pending until a coordinator decides; indexed, the
coverage query filters on it), `review_event` (every decision, with a sync revision: the recorder's
phone pulls them), `review_setting` (a town counts only approved visits in coverage) and the grid
summary's approved-only figures (`coverage_grid_stat.visited_approved`, `never_visited_approved`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0026'
down_revision: str | None = '0025'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ('visit', 'inspection'):
        op.add_column(table, sa.Column('review_state', sa.String(length=16), server_default='pending',
                                       nullable=False))
        op.create_index(op.f(f'ix_{table}_review_state'), table, ['review_state'], unique=False)
    for column in ('visited_approved', 'never_visited_approved'):
        op.add_column('coverage_grid_stat', sa.Column(column, sa.Integer(), server_default='0', nullable=False))
    op.create_table('review_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('record_kind', sa.String(length=16), nullable=False),
    sa.Column('record_id', sa.BigInteger(), nullable=False),
    sa.Column('record_uuid', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('recorded_by', sa.Integer(), nullable=False),
    sa.Column('from_state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('to_state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('comment', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('decided_by', sa.Integer(), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answer_note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rev', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_review_event_org_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['recorded_by'], ['app_user.id'], name=op.f('fk_review_event_recorded_by_app_user')),
    sa.ForeignKeyConstraint(['decided_by'], ['app_user.id'], name=op.f('fk_review_event_decided_by_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_event'))
    )
    op.create_index('ix_review_event_record', 'review_event', ['record_kind', 'record_id'], unique=False)
    op.create_index(op.f('ix_review_event_org_unit_id'), 'review_event', ['org_unit_id'], unique=False)
    op.create_index(op.f('ix_review_event_recorded_by'), 'review_event', ['recorded_by'], unique=False)
    op.create_index(op.f('ix_review_event_rev'), 'review_event', ['rev'], unique=False)
    op.create_table('review_setting',
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('approved_only', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('set_by', sa.Integer(), nullable=False),
    sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_review_setting_org_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['set_by'], ['app_user.id'], name=op.f('fk_review_setting_set_by_app_user')),
    sa.PrimaryKeyConstraint('org_unit_id', name=op.f('pk_review_setting'))
    )


def downgrade() -> None:
    op.drop_table('review_setting')
    op.drop_index('ix_review_event_record', table_name='review_event')
    for column in ('org_unit_id', 'recorded_by', 'rev'):
        op.drop_index(op.f(f'ix_review_event_{column}'), table_name='review_event')
    op.drop_table('review_event')
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy of these tables would drop their sync triggers.
    for column in ('visited_approved', 'never_visited_approved'):
        op.execute(f"ALTER TABLE coverage_grid_stat DROP COLUMN {column}")
    for table in ('visit', 'inspection'):
        op.drop_index(op.f(f'ix_{table}_review_state'), table_name=table)
        op.execute(f"ALTER TABLE {table} DROP COLUMN review_state")
