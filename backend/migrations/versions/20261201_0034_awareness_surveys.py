"""Awareness surveys (知晓率): questionnaire versions, rounds at schools, anonymous responses, throttle.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0034'
down_revision: str | None = '0033'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported: a migration must not change when the model module does.
NOT_CLOSED = "closed_at IS NULL"


def upgrade() -> None:
    op.create_table(
        'awareness_questionnaire',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column('org_unit_id', sa.Integer(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('title_zh', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column('title_en', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column('pass_mark', sa.Integer(), nullable=False),
        sa.Column('questions', sa.JSON(), nullable=False),
        sa.Column('published_by', sa.Integer(), nullable=True),
        sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'],
                                name=op.f('fk_awareness_questionnaire_org_unit_id_org_unit')),
        sa.ForeignKeyConstraint(['published_by'], ['app_user.id'],
                                name=op.f('fk_awareness_questionnaire_published_by_app_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_awareness_questionnaire')),
        sa.UniqueConstraint('owner', 'version', name=op.f('uq_awareness_questionnaire_owner_version')),
    )
    op.create_index(op.f('ix_awareness_questionnaire_owner'), 'awareness_questionnaire', ['owner'], unique=False)
    op.create_index(op.f('ix_awareness_questionnaire_org_unit_id'), 'awareness_questionnaire', ['org_unit_id'],
                    unique=False)
    op.create_table(
        'awareness_round',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('institution_id', sa.Integer(), nullable=False),
        sa.Column('org_unit_id', sa.Integer(), nullable=False),
        sa.Column('questionnaire_id', sa.Integer(), nullable=False),
        sa.Column('token_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('response_cap', sa.Integer(), nullable=False),
        sa.Column('response_count', sa.Integer(), nullable=False),
        sa.Column('opened_by', sa.Integer(), nullable=False),
        sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('closes_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('closed_by', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['closed_by'], ['app_user.id'], name=op.f('fk_awareness_round_closed_by_app_user')),
        sa.ForeignKeyConstraint(['institution_id'], ['institution.id'],
                                name=op.f('fk_awareness_round_institution_id_institution')),
        sa.ForeignKeyConstraint(['opened_by'], ['app_user.id'], name=op.f('fk_awareness_round_opened_by_app_user')),
        sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_awareness_round_org_unit_id_org_unit')),
        sa.ForeignKeyConstraint(['questionnaire_id'], ['awareness_questionnaire.id'],
                                name=op.f('fk_awareness_round_questionnaire_id_awareness_questionnaire')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_awareness_round')),
        sa.UniqueConstraint('token_digest', name=op.f('uq_awareness_round_token_digest')),
    )
    op.create_index(op.f('ix_awareness_round_institution_id'), 'awareness_round', ['institution_id'], unique=False)
    op.create_index(op.f('ix_awareness_round_org_unit_id'), 'awareness_round', ['org_unit_id'], unique=False)
    op.create_index('uq_awareness_round_school_open', 'awareness_round', ['institution_id'], unique=True,
                    postgresql_where=sa.text(NOT_CLOSED), sqlite_where=sa.text(NOT_CLOSED))
    op.create_table(
        'awareness_response',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('round_id', sa.Integer(), nullable=False),
        sa.Column('response_uuid', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column('body_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('answers', sa.JSON(), nullable=False),
        sa.Column('score', sa.Integer(), nullable=False),
        sa.Column('knows', sa.Boolean(), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['round_id'], ['awareness_round.id'],
                                name=op.f('fk_awareness_response_round_id_awareness_round'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_awareness_response')),
        sa.UniqueConstraint('response_uuid', name=op.f('uq_awareness_response_response_uuid')),
    )
    op.create_index(op.f('ix_awareness_response_round_id'), 'awareness_response', ['round_id'], unique=False)
    op.create_table(
        'awareness_throttle',
        sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column('hits', sa.Integer(), nullable=False),
        sa.Column('window_started_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_awareness_throttle')),
    )


def downgrade() -> None:
    op.drop_table('awareness_throttle')
    op.drop_index(op.f('ix_awareness_response_round_id'), table_name='awareness_response')
    op.drop_table('awareness_response')
    op.drop_index('uq_awareness_round_school_open', table_name='awareness_round',
                  postgresql_where=sa.text(NOT_CLOSED), sqlite_where=sa.text(NOT_CLOSED))
    op.drop_index(op.f('ix_awareness_round_org_unit_id'), table_name='awareness_round')
    op.drop_index(op.f('ix_awareness_round_institution_id'), table_name='awareness_round')
    op.drop_table('awareness_round')
    op.drop_index(op.f('ix_awareness_questionnaire_org_unit_id'), table_name='awareness_questionnaire')
    op.drop_index(op.f('ix_awareness_questionnaire_owner'), table_name='awareness_questionnaire')
    op.drop_table('awareness_questionnaire')
