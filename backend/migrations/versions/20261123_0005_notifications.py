"""Notifications (inbox and push outbox) and "2112" incidents (issue 6).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

def upgrade() -> None:

    op.create_table('incident',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('summary', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
    sa.Column('source_url', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('origin_unit_id', sa.Integer(), nullable=False),
    sa.Column('current_unit_id', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('feedback_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('feedback_by', sa.Integer(), nullable=True),
    sa.Column('feedback_note', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.Integer(), nullable=True),
    sa.Column('close_note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.ForeignKeyConstraint(['closed_by'], ['app_user.id'], name=op.f('fk_incident_closed_by_app_user')),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], name=op.f('fk_incident_created_by_app_user')),
    sa.ForeignKeyConstraint(['current_unit_id'], ['org_unit.id'], name=op.f('fk_incident_current_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['feedback_by'], ['app_user.id'], name=op.f('fk_incident_feedback_by_app_user')),
    sa.ForeignKeyConstraint(['origin_unit_id'], ['org_unit.id'], name=op.f('fk_incident_origin_unit_id_org_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident'))
    )
    op.create_index(op.f('ix_incident_current_unit_id'), 'incident', ['current_unit_id'], unique=False)
    op.create_index(op.f('ix_incident_origin_unit_id'), 'incident', ['origin_unit_id'], unique=False)
    op.create_index(op.f('ix_incident_status'), 'incident', ['status'], unique=False)
    op.create_table('notification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('title_zh', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('title_en', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('body_zh', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('body_en', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_notification_user_id_app_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification'))
    )
    op.create_index('ix_notification_user_id_id', 'notification', ['user_id', 'id'], unique=False)
    op.create_table('incident_deadline',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('met_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('escalated_to_unit_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['escalated_to_unit_id'], ['org_unit.id'], name=op.f('fk_incident_deadline_escalated_to_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], name=op.f('fk_incident_deadline_incident_id_incident'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['unit_id'], ['org_unit.id'], name=op.f('fk_incident_deadline_unit_id_org_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_deadline')),
    sa.UniqueConstraint('incident_id', 'step', name=op.f('uq_incident_deadline_incident_id_step'))
    )
    op.create_index(op.f('ix_incident_deadline_incident_id'), 'incident_deadline', ['incident_id'], unique=False)
    op.create_table('incident_handoff',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('from_unit_id', sa.Integer(), nullable=False),
    sa.Column('to_unit_id', sa.Integer(), nullable=False),
    sa.Column('handed_by', sa.Integer(), nullable=False),
    sa.Column('handed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.ForeignKeyConstraint(['from_unit_id'], ['org_unit.id'], name=op.f('fk_incident_handoff_from_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['handed_by'], ['app_user.id'], name=op.f('fk_incident_handoff_handed_by_app_user')),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], name=op.f('fk_incident_handoff_incident_id_incident'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['to_unit_id'], ['org_unit.id'], name=op.f('fk_incident_handoff_to_unit_id_org_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_handoff'))
    )
    op.create_index(op.f('ix_incident_handoff_incident_id'), 'incident_handoff', ['incident_id'], unique=False)
    op.create_index(op.f('ix_incident_handoff_to_unit_id'), 'incident_handoff', ['to_unit_id'], unique=False)
    op.create_table('notification_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('provider_message_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['device.id'], name=op.f('fk_notification_outbox_device_id_device'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['notification_id'], ['notification.id'], name=op.f('fk_notification_outbox_notification_id_notification'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_notification_outbox_user_id_app_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_outbox'))
    )
    op.create_index(op.f('ix_notification_outbox_device_id'), 'notification_outbox', ['device_id'], unique=False)
    op.create_index(op.f('ix_notification_outbox_notification_id'), 'notification_outbox', ['notification_id'], unique=False)
    op.create_index('ix_notification_outbox_status_next_attempt_at', 'notification_outbox', ['status', 'next_attempt_at'], unique=False)
    # ### end Alembic commands ###


def downgrade() -> None:

    op.drop_index('ix_notification_outbox_status_next_attempt_at', table_name='notification_outbox')
    op.drop_index(op.f('ix_notification_outbox_notification_id'), table_name='notification_outbox')
    op.drop_index(op.f('ix_notification_outbox_device_id'), table_name='notification_outbox')
    op.drop_table('notification_outbox')
    op.drop_index(op.f('ix_incident_handoff_to_unit_id'), table_name='incident_handoff')
    op.drop_index(op.f('ix_incident_handoff_incident_id'), table_name='incident_handoff')
    op.drop_table('incident_handoff')
    op.drop_index(op.f('ix_incident_deadline_incident_id'), table_name='incident_deadline')
    op.drop_table('incident_deadline')
    op.drop_index('ix_notification_user_id_id', table_name='notification')
    op.drop_table('notification')
    op.drop_index(op.f('ix_incident_status'), table_name='incident')
    op.drop_index(op.f('ix_incident_origin_unit_id'), table_name='incident')
    op.drop_index(op.f('ix_incident_current_unit_id'), table_name='incident')
    op.drop_table('incident')
    # ### end Alembic commands ###
