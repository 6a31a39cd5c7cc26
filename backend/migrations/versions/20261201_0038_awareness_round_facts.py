"""Awareness rounds keep the facts their figure rests on (issue 18, outside tester round 3, finding 3).

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-01 05:00:00

- `awareness_round.students`: the enrolment when the round opened; participation is read against it,
  not against the school's current student count. Rounds opened before are given the school's student
  count at migration time (the best figure there is; 0 when none is recorded).
- `awareness_round.opened_by_unit_id`: the unit the opener acted for; a round opened lower down never
  replaces a higher unit's figure. Rounds opened before are given the opener's unit at migration time.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0038'
down_revision: str | None = '0037'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('awareness_round') as batch:
        batch.add_column(sa.Column('students', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('opened_by_unit_id', sa.Integer(), nullable=True))
    op.execute(
        "UPDATE awareness_round SET "
        "students = COALESCE((SELECT institution.student_count FROM institution "
        "WHERE institution.id = awareness_round.institution_id), 0), "
        "opened_by_unit_id = COALESCE((SELECT app_user.org_unit_id FROM app_user "
        "WHERE app_user.id = awareness_round.opened_by), awareness_round.org_unit_id)"
    )
    with op.batch_alter_table('awareness_round') as batch:
        batch.alter_column('students', existing_type=sa.Integer(), nullable=False)
        batch.alter_column('opened_by_unit_id', existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(op.f('fk_awareness_round_opened_by_unit_id_org_unit'), 'org_unit',
                                 ['opened_by_unit_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('awareness_round') as batch:
        batch.drop_constraint(op.f('fk_awareness_round_opened_by_unit_id_org_unit'), type_='foreignkey')
        batch.drop_column('opened_by_unit_id')
        batch.drop_column('students')
