"""The police case register, its weekly new-case report, one-case-one-review (issue 16).

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30 00:00:00

- `police_case` (立案: unique case number per station), `police_case_event` (its history) and
  `police_case_link` (child cases, 附件2 suspects and venues involved, by id).
- `police_weekly_submission`: a station's weekly new-case report as submitted, figures frozen; a
  resubmission is a new row (the history).
- `case_review` (一案一倒查、一案一剖析、一案一整治) with its findings and rectification tasks.
- `venue_problem` gains `source` (inspection | case_review) and `case_review_id`, and
  `found_in_inspection_id` becomes nullable: a review's task on a venue is a problem of the existing
  loop without an inspection. SQLite cannot drop a NOT NULL, so the table is rebuilt (batch mode); it
  is referenced by `venue_penalty.problem_id`, and with foreign keys enforced SQLite refuses to drop a
  referenced table holding rows, so that reference is taken off `venue_penalty` for the rebuild and
  put back after it (two more rebuilds of that small table). PostgreSQL alters in place.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0023'
down_revision: str | None = '0022'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENALTY_FK = 'fk_venue_penalty_problem_id_venue_problem'


def _sqlite() -> bool:
    return op.get_bind().dialect.name == 'sqlite'


def _without_penalty_reference() -> None:
    if _sqlite():
        with op.batch_alter_table('venue_penalty') as batch:
            batch.drop_constraint(_PENALTY_FK, type_='foreignkey')


def _with_penalty_reference() -> None:
    if _sqlite():
        with op.batch_alter_table('venue_penalty') as batch:
            batch.create_foreign_key(_PENALTY_FK, 'venue_problem', ['problem_id'], ['id'])


def upgrade() -> None:
    op.create_table('police_case',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('station_unit_id', sa.Integer(), nullable=False),
    sa.Column('case_number', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('filed_date', sa.Date(), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('summary', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('victims', sa.Integer(), nullable=False),
    sa.Column('referral_id', sa.Integer(), nullable=True),
    sa.Column('close_reason', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('close_note', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['station_unit_id'], ['org_unit.id'], name=op.f('fk_police_case_station_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['referral_id'], ['referral.id'], name=op.f('fk_police_case_referral_id_referral')),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], name=op.f('fk_police_case_created_by_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_police_case')),
    sa.UniqueConstraint('station_unit_id', 'case_number', name=op.f('uq_police_case_station_unit_id_case_number'))
    )
    op.create_index(op.f('ix_police_case_station_unit_id'), 'police_case', ['station_unit_id'], unique=False)
    op.create_index(op.f('ix_police_case_filed_date'), 'police_case', ['filed_date'], unique=False)
    op.create_index(op.f('ix_police_case_status'), 'police_case', ['status'], unique=False)
    op.create_index(op.f('ix_police_case_referral_id'), 'police_case', ['referral_id'], unique=False)

    op.create_table('police_case_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('police_case_id', sa.Integer(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('from_status', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('to_status', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['police_case_id'], ['police_case.id'],
                            name=op.f('fk_police_case_event_police_case_id_police_case'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['actor_user_id'], ['app_user.id'],
                            name=op.f('fk_police_case_event_actor_user_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_police_case_event'))
    )
    op.create_index(op.f('ix_police_case_event_police_case_id'), 'police_case_event', ['police_case_id'],
                    unique=False)

    op.create_table('police_case_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('police_case_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['police_case_id'], ['police_case.id'],
                            name=op.f('fk_police_case_link_police_case_id_police_case'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_police_case_link')),
    sa.UniqueConstraint('police_case_id', 'kind', 'target_id',
                        name=op.f('uq_police_case_link_police_case_id_kind_target_id'))
    )
    op.create_index(op.f('ix_police_case_link_police_case_id'), 'police_case_link', ['police_case_id'], unique=False)
    op.create_index('ix_police_case_link_kind_target_id', 'police_case_link', ['kind', 'target_id'], unique=False)

    op.create_table('police_weekly_submission',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('station_unit_id', sa.Integer(), nullable=False),
    sa.Column('week', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('week_start_date', sa.Date(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_by', sa.Integer(), nullable=True),
    sa.Column('on_time', sa.Boolean(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['station_unit_id'], ['org_unit.id'],
                            name=op.f('fk_police_weekly_submission_station_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['submitted_by'], ['app_user.id'],
                            name=op.f('fk_police_weekly_submission_submitted_by_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_police_weekly_submission'))
    )
    op.create_index(op.f('ix_police_weekly_submission_week'), 'police_weekly_submission', ['week'], unique=False)
    op.create_index('ix_police_weekly_submission_station_week', 'police_weekly_submission',
                    ['station_unit_id', 'week'], unique=False)

    op.create_table('case_review',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('police_case_id', sa.Integer(), nullable=True),
    sa.Column('child_case_id', sa.Integer(), nullable=True),
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('analysis', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['police_case_id'], ['police_case.id'],
                            name=op.f('fk_case_review_police_case_id_police_case')),
    sa.ForeignKeyConstraint(['child_case_id'], ['child_case.id'], name=op.f('fk_case_review_child_case_id_child_case')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_case_review_org_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], name=op.f('fk_case_review_created_by_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_review'))
    )
    op.create_index(op.f('ix_case_review_police_case_id'), 'case_review', ['police_case_id'], unique=False)
    op.create_index(op.f('ix_case_review_child_case_id'), 'case_review', ['child_case_id'], unique=False)
    op.create_index(op.f('ix_case_review_org_unit_id'), 'case_review', ['org_unit_id'], unique=False)

    op.create_table('case_review_finding',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('review_id', sa.Integer(), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('venue_id', sa.Integer(), nullable=True),
    sa.Column('org_unit_id', sa.Integer(), nullable=True),
    sa.Column('agency', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('finding', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['review_id'], ['case_review.id'],
                            name=op.f('fk_case_review_finding_review_id_case_review'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['venue_id'], ['venue.id'], name=op.f('fk_case_review_finding_venue_id_venue')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'],
                            name=op.f('fk_case_review_finding_org_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], name=op.f('fk_case_review_finding_created_by_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_review_finding'))
    )
    op.create_index(op.f('ix_case_review_finding_review_id'), 'case_review_finding', ['review_id'], unique=False)
    op.create_index(op.f('ix_case_review_finding_venue_id'), 'case_review_finding', ['venue_id'], unique=False)

    # A review's task on a venue is a problem of the problem loop (see the module docstring).
    _without_penalty_reference()
    with op.batch_alter_table('venue_problem') as batch:
        batch.alter_column('found_in_inspection_id', existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column('source', sa.String(length=16), nullable=False, server_default='inspection'))
        batch.add_column(sa.Column('case_review_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f('fk_venue_problem_case_review_id_case_review'), 'case_review',
                                 ['case_review_id'], ['id'])
        batch.create_index(op.f('ix_venue_problem_case_review_id'), ['case_review_id'], unique=False)
    _with_penalty_reference()

    op.create_table('case_review_task',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('review_id', sa.Integer(), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('venue_id', sa.Integer(), nullable=True),
    sa.Column('problem_id', sa.Integer(), nullable=True),
    sa.Column('org_unit_id', sa.Integer(), nullable=True),
    sa.Column('agency', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('deadline_date', sa.Date(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('done_note', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('done_by', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['review_id'], ['case_review.id'],
                            name=op.f('fk_case_review_task_review_id_case_review'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['venue_id'], ['venue.id'], name=op.f('fk_case_review_task_venue_id_venue')),
    sa.ForeignKeyConstraint(['problem_id'], ['venue_problem.id'],
                            name=op.f('fk_case_review_task_problem_id_venue_problem')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_case_review_task_org_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['done_by'], ['app_user.id'], name=op.f('fk_case_review_task_done_by_app_user')),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], name=op.f('fk_case_review_task_created_by_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_review_task'))
    )
    op.create_index(op.f('ix_case_review_task_review_id'), 'case_review_task', ['review_id'], unique=False)
    op.create_index(op.f('ix_case_review_task_problem_id'), 'case_review_task', ['problem_id'], unique=False)
    op.create_index(op.f('ix_case_review_task_org_unit_id'), 'case_review_task', ['org_unit_id'], unique=False)


def downgrade() -> None:
    op.drop_table('case_review_task')
    # Problems raised by reviews have no inspection: they go with the reviews (a penalty naming one
    # keeps the penalty, without the problem).
    op.execute("UPDATE venue_penalty SET problem_id = NULL WHERE problem_id IN "
               "(SELECT id FROM venue_problem WHERE found_in_inspection_id IS NULL)")
    op.execute("DELETE FROM venue_problem WHERE found_in_inspection_id IS NULL")
    _without_penalty_reference()
    with op.batch_alter_table('venue_problem') as batch:
        batch.drop_index(op.f('ix_venue_problem_case_review_id'))
        batch.drop_constraint(op.f('fk_venue_problem_case_review_id_case_review'), type_='foreignkey')
        batch.drop_column('case_review_id')
        batch.drop_column('source')
        batch.alter_column('found_in_inspection_id', existing_type=sa.Integer(), nullable=False)
    _with_penalty_reference()
    op.drop_table('case_review_finding')
    op.drop_table('case_review')
    op.drop_table('police_weekly_submission')
    op.drop_table('police_case_link')
    op.drop_table('police_case_event')
    op.drop_table('police_case')
