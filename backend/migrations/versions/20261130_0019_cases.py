"""Cases (个案, issue 16): a case per child at risk or victim, its history, and help that belongs to it.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30 00:00:00

- `child_case`: at most one case per child is not closed (a partial unique index, which also makes
  opening race-safe: INSERT ... ON CONFLICT DO NOTHING on it).
- `child_case_event`: every transition (who, when, from, to, reason, note, source).
- `helper_assignment` gains `case_id` (the case the help belongs to), `end_reason` and `end_note`.
  Existing assignments that hold a helper's place (proposed, offered, accepted) are linked to a case
  made for their child here: active when one of them is accepted, else open; opened from `visit_risk`
  (the matcher proposed them for the child's risk level or 附件3) at the first proposal's time.

`case_id` carries no database foreign key: SQLite can neither add one to an existing table nor drop
the column again (downgrade) without copying the table, which would drop the sync-scope triggers of
migration 0016. The cases service is the only writer of the link.
"""

# ruff: noqa: S608 - the SQL is built from this module's own constants, never from input

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_CLOSED = "status <> 'closed'"
HOLDING = "('proposed', 'offered', 'accepted')"


def _add_assignment_columns() -> None:
    op.add_column('helper_assignment',
                  sa.Column('end_reason', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
    op.add_column('helper_assignment',
                  sa.Column('end_note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True))
    op.add_column('helper_assignment', sa.Column('case_id', sa.Integer(), nullable=True))
    op.create_index(op.f('ix_helper_assignment_case_id'), 'helper_assignment', ['case_id'], unique=False)


def _link_existing_assignments() -> None:
    """A case for every child whose assignments hold a place; those assignments belong to it."""
    bind = op.get_bind()
    now = datetime.now(UTC)
    children = bind.execute(sa.text(f"""
        SELECT a.child_id, COALESCE(h.org_unit_id, p.org_unit_id), MIN(a.proposed_at),
               MIN(CASE WHEN a.status = 'accepted' THEN COALESCE(a.answered_at, a.proposed_at) END)
        FROM helper_assignment a JOIN person p ON p.id = a.child_id
        LEFT JOIN household h ON h.id = p.household_id
        WHERE a.status IN {HOLDING}
        GROUP BY a.child_id, COALESCE(h.org_unit_id, p.org_unit_id)
        ORDER BY a.child_id
    """)).all()
    for child_id, unit_id, opened_at, activated_at in children:
        status = 'active' if activated_at is not None else 'open'
        case_id = bind.execute(sa.text("""
            INSERT INTO child_case (child_id, org_unit_id, status, opened_from, referred, opened_at, activated_at,
                                    updated_at)
            VALUES (:child, :unit, :status, 'visit_risk', :no, :opened, :activated, :now) RETURNING id
        """), {"child": child_id, "unit": unit_id, "status": status, "no": False, "opened": opened_at,
               "activated": activated_at, "now": now}).scalar_one()
        bind.execute(sa.text("""
            INSERT INTO child_case_event (case_id, action, from_status, to_status, at, source, note)
            VALUES (:case, 'open', NULL, :status, :now, 'visit_risk', :note)
        """), {"case": case_id, "status": status, "now": now,
               "note": "为已有帮扶任务建立个案 (a case for help under way before cases existed)"})
        bind.execute(sa.text(f"UPDATE helper_assignment SET case_id = :case WHERE child_id = :child "
                             f"AND status IN {HOLDING}"), {"case": case_id, "child": child_id})


def upgrade() -> None:
    op.create_table('child_case',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=False),
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('opened_from', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=True),
    sa.Column('referred', sa.Boolean(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opened_by', sa.Integer(), nullable=True),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closure_reason', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('closure_note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('closure_proposed_by', sa.Integer(), nullable=True),
    sa.Column('closure_proposed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.Integer(), nullable=True),
    sa.Column('close_reason', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('close_note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['person.id'], name=op.f('fk_child_case_child_id_person'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['closed_by'], ['app_user.id'], name=op.f('fk_child_case_closed_by_app_user')),
    sa.ForeignKeyConstraint(['closure_proposed_by'], ['app_user.id'],
                            name=op.f('fk_child_case_closure_proposed_by_app_user')),
    sa.ForeignKeyConstraint(['opened_by'], ['app_user.id'], name=op.f('fk_child_case_opened_by_app_user')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_unit.id'], name=op.f('fk_child_case_org_unit_id_org_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_child_case'))
    )
    op.create_index(op.f('ix_child_case_child_id'), 'child_case', ['child_id'], unique=False)
    op.create_index(op.f('ix_child_case_org_unit_id'), 'child_case', ['org_unit_id'], unique=False)
    op.create_index(op.f('ix_child_case_status'), 'child_case', ['status'], unique=False)
    op.create_index('uq_child_case_child_not_closed', 'child_case', ['child_id'], unique=True,
                    postgresql_where=sa.text(NOT_CLOSED), sqlite_where=sa.text(NOT_CLOSED))
    op.create_table('child_case_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('from_status', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('to_status', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('source_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['actor_user_id'], ['app_user.id'],
                            name=op.f('fk_child_case_event_actor_user_id_app_user')),
    sa.ForeignKeyConstraint(['case_id'], ['child_case.id'], name=op.f('fk_child_case_event_case_id_child_case'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_child_case_event'))
    )
    op.create_index(op.f('ix_child_case_event_case_id'), 'child_case_event', ['case_id'], unique=False)
    _add_assignment_columns()
    _link_existing_assignments()


def downgrade() -> None:
    op.drop_index(op.f('ix_helper_assignment_case_id'), table_name='helper_assignment')
    for column in ('case_id', 'end_note', 'end_reason'):
        if op.get_bind().dialect.name == "sqlite":
            # Dropped natively (SQLite 3.35+), not by copying the table (its triggers would go with it).
            op.execute(f"ALTER TABLE helper_assignment DROP COLUMN {column}")
        else:
            op.drop_column('helper_assignment', column)
    op.drop_index(op.f('ix_child_case_event_case_id'), table_name='child_case_event')
    op.drop_table('child_case_event')
    op.drop_index('uq_child_case_child_not_closed', table_name='child_case',
                  postgresql_where=sa.text(NOT_CLOSED), sqlite_where=sa.text(NOT_CLOSED))
    op.drop_index(op.f('ix_child_case_status'), table_name='child_case')
    op.drop_index(op.f('ix_child_case_org_unit_id'), table_name='child_case')
    op.drop_index(op.f('ix_child_case_child_id'), table_name='child_case')
    op.drop_table('child_case')
