"""Helpers, assignments, follow-ups (帮扶) and referral escalations (issue 6). These reference the
registry's person and referral tables, hence this revision follows 0002.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 22:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('helper_profile',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('sex', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('skills', sa.JSON(), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('home_lon', sa.Float(), nullable=True),
    sa.Column('home_lat', sa.Float(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_helper_profile_org_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_helper_profile_user_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_helper_profile')),
    sa.UniqueConstraint('user_id', name=op.f('uq_helper_profile_user_id'))
    )
    op.create_index(op.f('ix_helper_profile_org_unit_id'), 'helper_profile', ['org_unit_id'], unique=False)
    op.create_table('helper_assignment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=False),
    sa.Column('helper_id', sa.Integer(), nullable=False),
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('mode', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('cost', sa.Float(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('proposed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('confirmed_by', sa.Integer(), nullable=True),
    sa.Column('answer_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_followup_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reminded_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['child_id'], ['person.id'], name=op.f('fk_helper_assignment_child_id_person'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['confirmed_by'], ['app_user.id'], name=op.f('fk_helper_assignment_confirmed_by_app_user')),
    sa.ForeignKeyConstraint(['helper_id'], ['helper_profile.id'], name=op.f('fk_helper_assignment_helper_id_helper_profile')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_helper_assignment_org_unit_id_org_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_helper_assignment'))
    )
    op.create_index(op.f('ix_helper_assignment_child_id'), 'helper_assignment', ['child_id'], unique=False)
    op.create_index(op.f('ix_helper_assignment_helper_id'), 'helper_assignment', ['helper_id'], unique=False)
    op.create_index(op.f('ix_helper_assignment_org_unit_id'), 'helper_assignment', ['org_unit_id'], unique=False)
    op.create_index('ix_helper_assignment_status_answer_due_at', 'helper_assignment', ['status', 'answer_due_at'], unique=False)
    op.create_table('referral_escalation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('referral_id', sa.Integer(), nullable=False),
    sa.Column('stage', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('notified_unit_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['notified_unit_id'], ['org_unit.id'], name=op.f('fk_referral_escalation_notified_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['referral_id'], ['referral.id'], name=op.f('fk_referral_escalation_referral_id_referral'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_escalation')),
    sa.UniqueConstraint('referral_id', 'stage', name=op.f('uq_referral_escalation_referral_id_stage'))
    )
    op.create_index(op.f('ix_referral_escalation_referral_id'), 'referral_escalation', ['referral_id'], unique=False)
    op.create_table('helper_followup',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('visited_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['helper_assignment.id'], name=op.f('fk_helper_followup_assignment_id_helper_assignment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_helper_followup'))
    )
    op.create_index(op.f('ix_helper_followup_assignment_id'), 'helper_followup', ['assignment_id'], unique=False)
    # ### end Alembic commands ###


def downgrade() -> None:

    op.drop_index(op.f('ix_helper_followup_assignment_id'), table_name='helper_followup')
    op.drop_table('helper_followup')
    op.drop_index(op.f('ix_referral_escalation_referral_id'), table_name='referral_escalation')
    op.drop_table('referral_escalation')
    op.drop_index('ix_helper_assignment_status_answer_due_at', table_name='helper_assignment')
    op.drop_index(op.f('ix_helper_assignment_org_unit_id'), table_name='helper_assignment')
    op.drop_index(op.f('ix_helper_assignment_helper_id'), table_name='helper_assignment')
    op.drop_index(op.f('ix_helper_assignment_child_id'), table_name='helper_assignment')
    op.drop_table('helper_assignment')
    op.drop_index(op.f('ix_helper_profile_org_unit_id'), table_name='helper_profile')
    op.drop_table('helper_profile')
    # ### end Alembic commands ###
