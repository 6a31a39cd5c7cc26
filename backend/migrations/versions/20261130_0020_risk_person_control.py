"""附件2 risk persons under control: edit history, control check-ins, the household they live in.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30 00:00:00

`risk_person` gains the police's note, the control status (every existing entry is under control)
and when it was last checked in on; `risk_person_change` keeps every edited field (before/after),
`risk_person_check_in` the police's check-ins, and `risk_person_household` the links to households
(at most one current per person: a partial unique index; ended links stay as the history).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('risk_person', sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True))
    op.add_column('risk_person', sa.Column('control_status', sa.String(length=16), nullable=False,
                                           server_default='controlled'))
    op.add_column('risk_person', sa.Column('last_check_in_at', sa.DateTime(timezone=True), nullable=True))

    op.create_table('risk_person_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('risk_person_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('field_name', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['risk_person_id'], ['risk_person.id'],
                            name=op.f('fk_risk_person_change_risk_person_id_risk_person'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['actor_user_id'], ['app_user.id'],
                            name=op.f('fk_risk_person_change_actor_user_id_app_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_person_change'))
    )
    op.create_index(op.f('ix_risk_person_change_risk_person_id'), 'risk_person_change', ['risk_person_id'],
                    unique=False)

    op.create_table('risk_person_check_in',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('risk_person_id', sa.Integer(), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('method', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('place', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('finding', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('officer_user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['risk_person_id'], ['risk_person.id'],
                            name=op.f('fk_risk_person_check_in_risk_person_id_risk_person'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['officer_user_id'], ['app_user.id'],
                            name=op.f('fk_risk_person_check_in_officer_user_id_app_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_person_check_in'))
    )
    op.create_index(op.f('ix_risk_person_check_in_risk_person_id'), 'risk_person_check_in', ['risk_person_id'],
                    unique=False)

    op.create_table('risk_person_household',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('risk_person_id', sa.Integer(), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=False),
    sa.Column('linked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('linked_by', sa.Integer(), nullable=True),
    sa.Column('raised_child_ids', sa.JSON(), nullable=False),
    sa.Column('notified_user_ids', sa.JSON(), nullable=False),
    sa.Column('unlinked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unlinked_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['risk_person_id'], ['risk_person.id'],
                            name=op.f('fk_risk_person_household_risk_person_id_risk_person'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'],
                            name=op.f('fk_risk_person_household_household_id_household'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['linked_by'], ['app_user.id'],
                            name=op.f('fk_risk_person_household_linked_by_app_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['unlinked_by'], ['app_user.id'],
                            name=op.f('fk_risk_person_household_unlinked_by_app_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_person_household'))
    )
    op.create_index(op.f('ix_risk_person_household_risk_person_id'), 'risk_person_household', ['risk_person_id'],
                    unique=False)
    op.create_index(op.f('ix_risk_person_household_household_id'), 'risk_person_household', ['household_id'],
                    unique=False)
    op.create_index('uq_risk_person_household_current', 'risk_person_household', ['risk_person_id'], unique=True,
                    postgresql_where=sa.text('unlinked_at IS NULL'), sqlite_where=sa.text('unlinked_at IS NULL'))


def downgrade() -> None:
    op.drop_index('uq_risk_person_household_current', table_name='risk_person_household',
                  postgresql_where=sa.text('unlinked_at IS NULL'), sqlite_where=sa.text('unlinked_at IS NULL'))
    op.drop_index(op.f('ix_risk_person_household_household_id'), table_name='risk_person_household')
    op.drop_index(op.f('ix_risk_person_household_risk_person_id'), table_name='risk_person_household')
    op.drop_table('risk_person_household')
    op.drop_index(op.f('ix_risk_person_check_in_risk_person_id'), table_name='risk_person_check_in')
    op.drop_table('risk_person_check_in')
    op.drop_index(op.f('ix_risk_person_change_risk_person_id'), table_name='risk_person_change')
    op.drop_table('risk_person_change')
    with op.batch_alter_table('risk_person') as batch:
        batch.drop_column('last_check_in_at')
        batch.drop_column('control_status')
        batch.drop_column('note')
