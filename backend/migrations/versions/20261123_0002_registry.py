"""Registry, checklists, visits, referrals and the sync change counter (issue 3).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 21:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from geoalchemy2 import Geometry

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('sync_counter',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_counter'))
    )
    op.create_table('checklist_template',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('title_zh', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('title_en', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('rev', sa.BigInteger(), nullable=False),
    sa.Column('published_by', sa.Integer(), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['published_by'], ['app_user.id'], name=op.f('fk_checklist_template_published_by_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checklist_template')),
    sa.UniqueConstraint('code', 'version', name=op.f('uq_checklist_template_code_version'))
    )
    op.create_index(op.f('ix_checklist_template_code'), 'checklist_template', ['code'], unique=False)
    op.create_index(op.f('ix_checklist_template_rev'), 'checklist_template', ['rev'], unique=False)
    op.create_geospatial_table('household',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uuid', sa.Uuid(), nullable=False),
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('head_name', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True),
    sa.Column('contact', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('location', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('rev', sa.BigInteger(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], name=op.f('fk_household_created_by_app_user')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_household_org_unit_id_org_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_household'))
    )
    op.create_geospatial_index('idx_household_location', 'household', ['location'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_household_org_unit_id'), 'household', ['org_unit_id'], unique=False)
    op.create_index(op.f('ix_household_rev'), 'household', ['rev'], unique=False)
    op.create_index(op.f('ix_household_uuid'), 'household', ['uuid'], unique=True)
    op.create_table('risk_person',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('id_cipher', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('id_key_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('id_index', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('id_masked', sqlmodel.sql.sqltypes.AutoString(length=18), nullable=True),
    sa.Column('sex', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('hukou_place', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('residence', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('contact', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('risk_level', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('control_measures', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], name=op.f('fk_risk_person_created_by_app_user')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_risk_person_org_unit_id_org_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_person'))
    )
    op.create_index(op.f('ix_risk_person_org_unit_id'), 'risk_person', ['org_unit_id'], unique=False)
    op.create_index('uq_risk_person_id_index', 'risk_person', ['id_index'], unique=True, postgresql_where=sa.text('id_index IS NOT NULL'), sqlite_where=sa.text('id_index IS NOT NULL'))
    op.create_table('person',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uuid', sa.Uuid(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=True),
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('id_cipher', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('id_key_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('id_index', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('id_masked', sqlmodel.sql.sqltypes.AutoString(length=18), nullable=True),
    sa.Column('sex', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('hukou_place', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('residence', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('in_school', sa.Boolean(), nullable=True),
    sa.Column('contact', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('groups', sa.JSON(), nullable=False),
    sa.Column('signs', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('task_force', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('assistance', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('key_minor', sa.Boolean(), nullable=False),
    sa.Column('vulnerable', sa.Boolean(), nullable=False),
    sa.Column('risk_level', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('risk_reasons', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('rev', sa.BigInteger(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], name=op.f('fk_person_created_by_app_user')),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_person_household_id_household')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_person_org_unit_id_org_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_person'))
    )
    op.create_index(op.f('ix_person_household_id'), 'person', ['household_id'], unique=False)
    op.create_index(op.f('ix_person_org_unit_id'), 'person', ['org_unit_id'], unique=False)
    op.create_index(op.f('ix_person_rev'), 'person', ['rev'], unique=False)
    op.create_index(op.f('ix_person_uuid'), 'person', ['uuid'], unique=True)
    op.create_index('uq_person_id_index', 'person', ['id_index'], unique=True, postgresql_where=sa.text('id_index IS NOT NULL'), sqlite_where=sa.text('id_index IS NOT NULL'))
    op.create_table('referral',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=False),
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('police_unit_id', sa.Integer(), nullable=True),
    sa.Column('child_ids', sa.JSON(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('receive_due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('handle_due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('received_by', sa.Integer(), nullable=True),
    sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('handled_by', sa.Integer(), nullable=True),
    sa.Column('outcome_note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.ForeignKeyConstraint(['handled_by'], ['app_user.id'], name=op.f('fk_referral_handled_by_app_user')),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_referral_household_id_household')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_referral_org_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['police_unit_id'], ['org_unit.id'], name=op.f('fk_referral_police_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['received_by'], ['app_user.id'], name=op.f('fk_referral_received_by_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral')),
    sa.UniqueConstraint('visit_id', name=op.f('uq_referral_visit_id'))
    )
    op.create_index(op.f('ix_referral_household_id'), 'referral', ['household_id'], unique=False)
    op.create_index(op.f('ix_referral_org_unit_id'), 'referral', ['org_unit_id'], unique=False)
    op.create_index(op.f('ix_referral_police_unit_id'), 'referral', ['police_unit_id'], unique=False)
    op.create_index(op.f('ix_referral_status'), 'referral', ['status'], unique=False)
    op.create_table('visit',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('client_uuid', sa.Uuid(), nullable=False),
    sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('amends_id', sa.Integer(), nullable=True),
    sa.Column('household_id', sa.Integer(), nullable=False),
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('recorded_by', sa.Integer(), nullable=False),
    sa.Column('template_code', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('template_version', sa.Integer(), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('children_seen', sa.JSON(), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('device_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('accuracy_m', sa.Float(), nullable=True),
    sa.Column('reported_crs', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('distance_m', sa.Float(), nullable=True),
    sa.Column('location_mismatch', sa.Boolean(), nullable=False),
    sa.Column('risk_level', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('risk_reasons', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_visit_household_id_household')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_visit_org_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['recorded_by'], ['app_user.id'], name=op.f('fk_visit_recorded_by_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visit')),
    sa.UniqueConstraint('client_uuid', name=op.f('uq_visit_client_uuid'))
    )
    op.create_index(op.f('ix_visit_amends_id'), 'visit', ['amends_id'], unique=False)
    op.create_index(op.f('ix_visit_household_id'), 'visit', ['household_id'], unique=False)
    op.create_index(op.f('ix_visit_location_mismatch'), 'visit', ['location_mismatch'], unique=False)
    op.create_index(op.f('ix_visit_org_unit_id'), 'visit', ['org_unit_id'], unique=False)
    op.create_index(op.f('ix_visit_recorded_by'), 'visit', ['recorded_by'], unique=False)
    op.create_table('guardianship',
    sa.Column('child_id', sa.Integer(), nullable=False),
    sa.Column('guardian_id', sa.Integer(), nullable=False),
    sa.Column('relation', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.ForeignKeyConstraint(['child_id'], ['person.id'], name=op.f('fk_guardianship_child_id_person'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['guardian_id'], ['person.id'], name=op.f('fk_guardianship_guardian_id_person'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('child_id', 'guardian_id', name=op.f('pk_guardianship'))
    )
    op.create_index(op.f('ix_guardianship_guardian_id'), 'guardianship', ['guardian_id'], unique=False)
    op.create_table('risk_level_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('previous_level', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('level', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=True),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_risk_level_change_person_id_person'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_level_change'))
    )
    op.create_index(op.f('ix_risk_level_change_person_id'), 'risk_level_change', ['person_id'], unique=False)
    op.create_index(op.f('ix_risk_level_change_visit_id'), 'risk_level_change', ['visit_id'], unique=False)
    op.execute(sa.text("INSERT INTO sync_counter (id, value) VALUES (1, 0)"))


def downgrade() -> None:
    op.drop_index(op.f('ix_risk_level_change_visit_id'), table_name='risk_level_change')
    op.drop_index(op.f('ix_risk_level_change_person_id'), table_name='risk_level_change')
    op.drop_table('risk_level_change')
    op.drop_index(op.f('ix_guardianship_guardian_id'), table_name='guardianship')
    op.drop_table('guardianship')
    op.drop_index(op.f('ix_visit_recorded_by'), table_name='visit')
    op.drop_index(op.f('ix_visit_org_unit_id'), table_name='visit')
    op.drop_index(op.f('ix_visit_location_mismatch'), table_name='visit')
    op.drop_index(op.f('ix_visit_household_id'), table_name='visit')
    op.drop_index(op.f('ix_visit_amends_id'), table_name='visit')
    op.drop_table('visit')
    op.drop_index(op.f('ix_referral_status'), table_name='referral')
    op.drop_index(op.f('ix_referral_police_unit_id'), table_name='referral')
    op.drop_index(op.f('ix_referral_org_unit_id'), table_name='referral')
    op.drop_index(op.f('ix_referral_household_id'), table_name='referral')
    op.drop_table('referral')
    op.drop_index('uq_person_id_index', table_name='person', postgresql_where=sa.text('id_index IS NOT NULL'), sqlite_where=sa.text('id_index IS NOT NULL'))
    op.drop_index(op.f('ix_person_uuid'), table_name='person')
    op.drop_index(op.f('ix_person_rev'), table_name='person')
    op.drop_index(op.f('ix_person_org_unit_id'), table_name='person')
    op.drop_index(op.f('ix_person_household_id'), table_name='person')
    op.drop_table('person')
    op.drop_index('uq_risk_person_id_index', table_name='risk_person', postgresql_where=sa.text('id_index IS NOT NULL'), sqlite_where=sa.text('id_index IS NOT NULL'))
    op.drop_index(op.f('ix_risk_person_org_unit_id'), table_name='risk_person')
    op.drop_table('risk_person')
    op.drop_index(op.f('ix_household_uuid'), table_name='household')
    op.drop_index(op.f('ix_household_rev'), table_name='household')
    op.drop_index(op.f('ix_household_org_unit_id'), table_name='household')
    op.drop_geospatial_index('idx_household_location', table_name='household', postgresql_using='gist', column_name='location')
    op.drop_geospatial_table('household')
    op.drop_index(op.f('ix_checklist_template_rev'), table_name='checklist_template')
    op.drop_index(op.f('ix_checklist_template_code'), table_name='checklist_template')
    op.drop_table('checklist_template')
    op.drop_table('sync_counter')
