"""Notifications that reach phones in mainland China (issue 19): vendor push channels and SMS fallback.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-01 01:00:00

- `device.channel`: which push service reaches the phone (fcm, huawei, xiaomi, honor, oppo, vivo);
  every phone registered before is an FCM phone.
- `notification_outbox.channel`, `.delivered_at`: the channel a push went through (kept after the
  device goes, for channel health) and when the channel reported it delivered.
- `notification.critical`, `.sms_due_at`, `.delivered_at`: critical notifications fall back to SMS
  when still unread at `sms_due_at`.
- `sms_outbox` (one SMS per notification at most) and `sms_quota` (the daily cap per recipient).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0037'
down_revision: str | None = '0036'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('device') as batch:
        batch.add_column(sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                   server_default='fcm'))
    with op.batch_alter_table('notification_outbox') as batch:
        batch.add_column(sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                   server_default='fcm'))
        batch.add_column(sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('notification') as batch:
        batch.add_column(sa.Column('critical', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('sms_due_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True))
    # The fallback scan looks for unread critical notifications whose time has come.
    op.create_index('ix_notification_sms_due_at', 'notification', ['sms_due_at'])
    op.create_table('sms_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('provider_message_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['notification_id'], ['notification.id'],
                            name=op.f('fk_sms_outbox_notification_id_notification'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_sms_outbox_user_id_app_user'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_outbox')),
    sa.UniqueConstraint('notification_id', name=op.f('uq_sms_outbox_notification_id')),
    )
    op.create_index('ix_sms_outbox_status_next_attempt_at', 'sms_outbox', ['status', 'next_attempt_at'])
    op.create_index(op.f('ix_sms_outbox_user_id'), 'sms_outbox', ['user_id'])
    op.create_table('sms_quota',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('sent', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_sms_quota_user_id_app_user'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'day', name=op.f('pk_sms_quota')),
    )


def downgrade() -> None:
    op.drop_table('sms_quota')
    op.drop_index(op.f('ix_sms_outbox_user_id'), table_name='sms_outbox')
    op.drop_index('ix_sms_outbox_status_next_attempt_at', table_name='sms_outbox')
    op.drop_table('sms_outbox')
    op.drop_index('ix_notification_sms_due_at', table_name='notification')
    with op.batch_alter_table('notification') as batch:
        batch.drop_column('delivered_at')
        batch.drop_column('sms_due_at')
        batch.drop_column('critical')
    with op.batch_alter_table('notification_outbox') as batch:
        batch.drop_column('delivered_at')
        batch.drop_column('channel')
    with op.batch_alter_table('device') as batch:
        batch.drop_column('channel')
