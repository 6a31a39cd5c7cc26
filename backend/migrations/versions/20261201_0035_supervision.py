"""Supervision of any unit (issue 18): the problem loop for any subject, 挂牌督办, typical-case notices.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-01 00:00:00

- `venue_problem` (the one problem ledger) gains its subject: `subject` (venue | institution | unit,
  existing rows: venue), `institution_id`, `responsible_agency`; `venue_id` becomes nullable. It also
  gains who raised it and from which unit, the reported rectification, who verified it, and the
  supervision (挂牌督办) by a unit above: `supervised_unit_id`, `supervised_level`, `supervised_at`,
  `supervised_by_user_id`. `source` widens to 24 characters (unannounced_check). SQLite cannot drop a
  NOT NULL, so the table is rebuilt (batch mode); as in 0023, the references to it from
  `venue_penalty` and `case_review_task` are taken off for the rebuild and put back after it.
- `problem_escalation`: each unit told that a supervised problem is overdue, once per problem.
- `notice`, `notice_recipient`, `notice_receipt`: typical-case notices, their addressed units and the
  users' read receipts.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0035'
down_revision: str | None = '0034'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, constraint name) of the references to venue_problem.
_REFERENCES = (('venue_penalty', 'fk_venue_penalty_problem_id_venue_problem'),
               ('case_review_task', 'fk_case_review_task_problem_id_venue_problem'))
_USER_FKS = ('raised_by_user_id', 'rectified_by_user_id', 'verified_by_user_id', 'supervised_by_user_id')


def _sqlite() -> bool:
    return op.get_bind().dialect.name == 'sqlite'


def _without_references() -> None:
    if _sqlite():
        for table, name in _REFERENCES:
            with op.batch_alter_table(table) as batch:
                batch.drop_constraint(name, type_='foreignkey')


def _with_references() -> None:
    if _sqlite():
        for table, name in _REFERENCES:
            with op.batch_alter_table(table) as batch:
                batch.create_foreign_key(name, 'venue_problem', ['problem_id'], ['id'])


def upgrade() -> None:
    _without_references()
    with op.batch_alter_table('venue_problem') as batch:
        batch.alter_column('venue_id', existing_type=sa.Integer(), nullable=True)
        batch.alter_column('source', existing_type=sqlmodel.sql.sqltypes.AutoString(length=16),
                           type_=sa.String(length=24), existing_nullable=False, existing_server_default='inspection')
        batch.add_column(sa.Column('subject', sa.String(length=16), nullable=False, server_default='venue'))
        batch.add_column(sa.Column('institution_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('responsible_agency', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch.add_column(sa.Column('raised_by_user_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('raised_unit_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('rectification', sa.String(length=2000), nullable=False, server_default=''))
        batch.add_column(sa.Column('rectified_by_user_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('verified_by_user_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('supervised_unit_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('supervised_level', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch.add_column(sa.Column('supervised_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('supervised_by_user_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f('fk_venue_problem_institution_id_institution'), 'institution',
                                 ['institution_id'], ['id'])
        batch.create_foreign_key(op.f('fk_venue_problem_raised_unit_id_org_unit'), 'org_unit',
                                 ['raised_unit_id'], ['id'])
        batch.create_foreign_key(op.f('fk_venue_problem_supervised_unit_id_org_unit'), 'org_unit',
                                 ['supervised_unit_id'], ['id'])
        for column in _USER_FKS:
            batch.create_foreign_key(op.f(f'fk_venue_problem_{column}_app_user'), 'app_user', [column], ['id'])
        batch.create_index(op.f('ix_venue_problem_subject'), ['subject'], unique=False)
        batch.create_index(op.f('ix_venue_problem_institution_id'), ['institution_id'], unique=False)
        batch.create_index(op.f('ix_venue_problem_supervised_unit_id'), ['supervised_unit_id'], unique=False)
    _with_references()

    op.create_table('problem_escalation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('problem_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('notified_unit_id', sa.Integer(), nullable=False),
    sa.Column('days_overdue', sa.Integer(), nullable=False),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['problem_id'], ['venue_problem.id'],
                            name=op.f('fk_problem_escalation_problem_id_venue_problem'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['notified_unit_id'], ['org_unit.id'],
                            name=op.f('fk_problem_escalation_notified_unit_id_org_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_problem_escalation')),
    sa.UniqueConstraint('problem_id', 'notified_unit_id', name=op.f('uq_problem_escalation_problem_id_notified_unit_id')),
    )
    op.create_index(op.f('ix_problem_escalation_problem_id'), 'problem_escalation', ['problem_id'], unique=False)

    op.create_table('notice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('body', sa.String(length=4000), nullable=False),
    sa.Column('publisher_user_id', sa.Integer(), nullable=False),
    sa.Column('publisher_unit_id', sa.Integer(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['publisher_user_id'], ['app_user.id'], name=op.f('fk_notice_publisher_user_id_app_user')),
    sa.ForeignKeyConstraint(['publisher_unit_id'], ['org_unit.id'], name=op.f('fk_notice_publisher_unit_id_org_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notice')),
    )
    op.create_index(op.f('ix_notice_publisher_unit_id'), 'notice', ['publisher_unit_id'], unique=False)
    op.create_index(op.f('ix_notice_published_at'), 'notice', ['published_at'], unique=False)

    op.create_table('notice_recipient',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('agency', sa.String(length=32), nullable=False, server_default=''),
    sa.ForeignKeyConstraint(['notice_id'], ['notice.id'], name=op.f('fk_notice_recipient_notice_id_notice'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_notice_recipient_org_unit_id_org_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notice_recipient')),
    sa.UniqueConstraint('notice_id', 'org_unit_id', 'agency', name=op.f('uq_notice_recipient_notice_id_org_unit_id_agency')),
    )
    op.create_index(op.f('ix_notice_recipient_notice_id'), 'notice_recipient', ['notice_id'], unique=False)
    op.create_index(op.f('ix_notice_recipient_org_unit_id'), 'notice_recipient', ['org_unit_id'], unique=False)

    op.create_table('notice_receipt',
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['notice_id'], ['notice.id'], name=op.f('fk_notice_receipt_notice_id_notice'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_notice_receipt_user_id_app_user')),
    sa.PrimaryKeyConstraint('notice_id', 'user_id', name=op.f('pk_notice_receipt')),
    )


def downgrade() -> None:
    op.drop_table('notice_receipt')
    op.drop_table('notice_recipient')
    op.drop_table('notice')
    op.drop_table('problem_escalation')
    # Problems of other subjects than venues cannot be kept without a venue: they go (a penalty or a
    # review task naming one keeps itself, without the problem).
    op.execute("UPDATE venue_penalty SET problem_id = NULL WHERE problem_id IN "
               "(SELECT id FROM venue_problem WHERE venue_id IS NULL)")
    op.execute("UPDATE case_review_task SET problem_id = NULL WHERE problem_id IN "
               "(SELECT id FROM venue_problem WHERE venue_id IS NULL)")
    op.execute("DELETE FROM venue_problem WHERE venue_id IS NULL")
    _without_references()
    with op.batch_alter_table('venue_problem') as batch:
        batch.drop_index(op.f('ix_venue_problem_supervised_unit_id'))
        batch.drop_index(op.f('ix_venue_problem_institution_id'))
        batch.drop_index(op.f('ix_venue_problem_subject'))
        for column in _USER_FKS:
            batch.drop_constraint(op.f(f'fk_venue_problem_{column}_app_user'), type_='foreignkey')
        batch.drop_constraint(op.f('fk_venue_problem_supervised_unit_id_org_unit'), type_='foreignkey')
        batch.drop_constraint(op.f('fk_venue_problem_raised_unit_id_org_unit'), type_='foreignkey')
        batch.drop_constraint(op.f('fk_venue_problem_institution_id_institution'), type_='foreignkey')
        for column in ('supervised_by_user_id', 'supervised_at', 'supervised_level', 'supervised_unit_id',
                       'verified_by_user_id', 'rectified_by_user_id', 'rectification', 'raised_unit_id',
                       'raised_by_user_id', 'responsible_agency', 'institution_id', 'subject'):
            batch.drop_column(column)
        batch.alter_column('source', existing_type=sa.String(length=24),
                           type_=sqlmodel.sql.sqltypes.AutoString(length=16), existing_nullable=False,
                           existing_server_default='inspection')
        batch.alter_column('venue_id', existing_type=sa.Integer(), nullable=False)
    _with_references()
