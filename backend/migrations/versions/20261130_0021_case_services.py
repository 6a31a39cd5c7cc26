"""Service plans of cases and referrals between units (issue 16).

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-30 00:00:00

- `service_kind`: the kinds of service, seeded with the seeds' list (法律援助, 司法救助, 生活救助, 医疗救治,
  心理干预, 转学安置, 临时监护, 家庭教育指导, 督促监护令) and the agency that usually provides each;
  coordinators add more.
- `case_service`: each service of a case with its providing unit (org unit + agency), status, due date,
  outcome, and a sync revision (`rev`) for the phones.
- `case_service_step`: every transition of a service (when it happened and when the server recorded it).
- `agency_referral`: a unit refers a case or one service to another unit, sharing chosen fields only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (code, name_zh, name_en, default agency): the seeds' list, as backend/service_plans/models.py has it.
SEED_KINDS = (
    ("legal_aid", "法律援助", "Legal aid", "judicial"),
    ("judicial_aid", "司法救助", "Judicial assistance", "judicial"),
    ("living_aid", "生活救助", "Living assistance", "civil_affairs"),
    ("medical", "医疗救治", "Medical treatment", "health"),
    ("psychological", "心理干预", "Psychological intervention", "health"),
    ("school_transfer", "转学安置", "School transfer", "education"),
    ("temporary_guardianship", "临时监护", "Temporary guardianship", "civil_affairs"),
    ("family_education", "家庭教育指导", "Family education guidance", "womens_federation"),
    ("guardianship_order", "督促监护令", "Guardianship supervision order", "judicial"),
)


def upgrade() -> None:
    op.create_table('service_kind',
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('name_zh', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('name_en', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('default_agency', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], name=op.f('fk_service_kind_created_by_app_user')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_service_kind'))
    )
    op.create_table('case_service',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('provider_unit_id', sa.Integer(), nullable=False),
    sa.Column('provider_agency', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decline_reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('overdue_notified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('client_uuid', sa.Uuid(), nullable=True),
    sa.Column('rev', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['child_case.id'], name=op.f('fk_case_service_case_id_child_case'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], name=op.f('fk_case_service_created_by_app_user')),
    sa.ForeignKeyConstraint(['kind'], ['service_kind.code'], name=op.f('fk_case_service_kind_service_kind')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_case_service_org_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['provider_unit_id'], ['org_unit.id'],
                            name=op.f('fk_case_service_provider_unit_id_org_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_service')),
    sa.UniqueConstraint('client_uuid', name=op.f('uq_case_service_client_uuid'))
    )
    op.create_index(op.f('ix_case_service_case_id'), 'case_service', ['case_id'], unique=False)
    op.create_index(op.f('ix_case_service_org_unit_id'), 'case_service', ['org_unit_id'], unique=False)
    op.create_index(op.f('ix_case_service_provider_unit_id'), 'case_service', ['provider_unit_id'], unique=False)
    op.create_index(op.f('ix_case_service_rev'), 'case_service', ['rev'], unique=False)
    op.create_index(op.f('ix_case_service_status'), 'case_service', ['status'], unique=False)
    op.create_table('agency_referral',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=True),
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('from_unit_id', sa.Integer(), nullable=False),
    sa.Column('from_agency', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('from_user_id', sa.Integer(), nullable=True),
    sa.Column('to_unit_id', sa.Integer(), nullable=False),
    sa.Column('to_agency', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('previous_unit_id', sa.Integer(), nullable=True),
    sa.Column('previous_agency', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('shared_fields', sa.JSON(), nullable=False),
    sa.Column('message', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_by', sa.Integer(), nullable=True),
    sa.Column('decline_reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_by', sa.Integer(), nullable=True),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['answered_by'], ['app_user.id'], name=op.f('fk_agency_referral_answered_by_app_user')),
    sa.ForeignKeyConstraint(['case_id'], ['child_case.id'], name=op.f('fk_agency_referral_case_id_child_case'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['completed_by'], ['app_user.id'],
                            name=op.f('fk_agency_referral_completed_by_app_user')),
    sa.ForeignKeyConstraint(['from_unit_id'], ['org_unit.id'],
                            name=op.f('fk_agency_referral_from_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['from_user_id'], ['app_user.id'],
                            name=op.f('fk_agency_referral_from_user_id_app_user')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_agency_referral_org_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['previous_unit_id'], ['org_unit.id'],
                            name=op.f('fk_agency_referral_previous_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['service_id'], ['case_service.id'],
                            name=op.f('fk_agency_referral_service_id_case_service'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['to_unit_id'], ['org_unit.id'], name=op.f('fk_agency_referral_to_unit_id_org_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agency_referral'))
    )
    for column in ('case_id', 'from_unit_id', 'org_unit_id', 'service_id', 'status', 'to_unit_id'):
        op.create_index(op.f(f'ix_agency_referral_{column}'), 'agency_referral', [column], unique=False)
    op.create_table('case_service_step',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('from_status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=True),
    sa.Column('to_status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('client_uuid', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['actor_user_id'], ['app_user.id'],
                            name=op.f('fk_case_service_step_actor_user_id_app_user')),
    sa.ForeignKeyConstraint(['service_id'], ['case_service.id'],
                            name=op.f('fk_case_service_step_service_id_case_service'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_service_step')),
    sa.UniqueConstraint('client_uuid', name=op.f('uq_case_service_step_client_uuid'))
    )
    op.create_index(op.f('ix_case_service_step_service_id'), 'case_service_step', ['service_id'], unique=False)
    kinds = sa.table('service_kind', sa.column('code', sa.String), sa.column('name_zh', sa.String),
                     sa.column('name_en', sa.String), sa.column('default_agency', sa.String),
                     sa.column('created_at', sa.DateTime(timezone=True)))
    now = datetime.now(UTC)
    op.bulk_insert(kinds, [{"code": c, "name_zh": zh, "name_en": en, "default_agency": agency, "created_at": now}
                           for c, zh, en, agency in SEED_KINDS])


def downgrade() -> None:
    op.drop_index(op.f('ix_case_service_step_service_id'), table_name='case_service_step')
    op.drop_table('case_service_step')
    for column in ('to_unit_id', 'status', 'service_id', 'org_unit_id', 'from_unit_id', 'case_id'):
        op.drop_index(op.f(f'ix_agency_referral_{column}'), table_name='agency_referral')
    op.drop_table('agency_referral')
    for column in ('status', 'rev', 'provider_unit_id', 'org_unit_id', 'case_id'):
        op.drop_index(op.f(f'ix_case_service_{column}'), table_name='case_service')
    op.drop_table('case_service')
    op.drop_table('service_kind')
