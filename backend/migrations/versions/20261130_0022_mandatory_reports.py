"""Mandatory reports (强制报告) from any unit with the duty to report, on the phone too (issue 16).

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-30 00:00:00

The `referral` table takes direct reports beside the visits' clues, so the police keep one queue
with its deadlines, escalation and notifications:

- `visit_id` and `household_id` become nullable (a direct report has no visit, and names a household
  only through a registered child);
- new: `source_kind` (visit for every existing row), the reporter (`reporter_user_id`: for existing
  rows the visit's volunteer, `reporter_unit_id`, `reporter_agency`, `reporter_contact`), what was seen
  (`description`, `seen_at`, `place`, `venue_id`, `lon`, `lat`), the child as named
  (`reported_child_id`, `child_description`), and the phone's `client_uuid` (unique) with the
  report's `content_hash` (a resend is a duplicate, the same uuid with other content a conflict).

SQLite changes a column's nullability only by copying the table, and dropping the old copy deletes
its rows with foreign keys on: `referral_escalation` (ON DELETE CASCADE) would lose its rows, and
the coordinators would be told again. They are kept aside and put back.
"""

# ruff: noqa: S608 - the SQL is built from this module's own constants, never from input

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0022'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ESCALATION_COLUMNS = "id, referral_id, stage, due_at, escalated_at, notified_unit_id"


def _escalations() -> list[sa.Row[tuple[object, ...]]]:
    """The escalation rows, to put back after SQLite's table copy (PostgreSQL alters in place)."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return []
    return list(bind.execute(sa.text(f"SELECT {_ESCALATION_COLUMNS} FROM referral_escalation")).all())


def _restore(rows: list[sa.Row[tuple[object, ...]]]) -> None:
    bind = op.get_bind()
    for row in rows:
        bind.execute(sa.text(
            f"INSERT INTO referral_escalation ({_ESCALATION_COLUMNS}) SELECT :id, :referral_id, :stage, :due_at, "
            ":escalated_at, :notified_unit_id WHERE NOT EXISTS (SELECT 1 FROM referral_escalation WHERE id = :id) "
            "AND EXISTS (SELECT 1 FROM referral WHERE id = :referral_id)"
        ), dict(row._mapping))


def upgrade() -> None:
    kept = _escalations()
    with op.batch_alter_table('referral') as batch:
        batch.alter_column('visit_id', existing_type=sa.Integer(), nullable=True)
        batch.alter_column('household_id', existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column('source_kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False,
                                   server_default='visit'))
        batch.add_column(sa.Column('reporter_user_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('reporter_unit_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('reporter_agency', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch.add_column(sa.Column('reporter_contact', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True))
        batch.add_column(sa.Column('description', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True))
        batch.add_column(sa.Column('seen_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('place', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch.add_column(sa.Column('venue_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('lon', sa.Float(), nullable=True))
        batch.add_column(sa.Column('lat', sa.Float(), nullable=True))
        batch.add_column(sa.Column('reported_child_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('child_description', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('client_uuid', sa.Uuid(), nullable=True))
        batch.add_column(sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch.create_foreign_key(op.f('fk_referral_reporter_user_id_app_user'), 'app_user', ['reporter_user_id'],
                                 ['id'])
        batch.create_foreign_key(op.f('fk_referral_reporter_unit_id_org_unit'), 'org_unit', ['reporter_unit_id'],
                                 ['id'])
        batch.create_foreign_key(op.f('fk_referral_venue_id_venue'), 'venue', ['venue_id'], ['id'])
        batch.create_unique_constraint(op.f('uq_referral_client_uuid'), ['client_uuid'])
        batch.create_index(op.f('ix_referral_source_kind'), ['source_kind'], unique=False)
        batch.create_index(op.f('ix_referral_reporter_user_id'), ['reporter_user_id'], unique=False)
    _restore(kept)
    # The volunteer whose visit opened a referral reported it.
    op.execute("UPDATE referral SET reporter_user_id = (SELECT v.recorded_by FROM visit v WHERE v.id = "
               "referral.visit_id) WHERE visit_id IS NOT NULL")


def downgrade() -> None:
    # Direct reports cannot live in the old table (no visit, no household): they go, with their
    # escalations.
    op.execute("DELETE FROM referral_escalation WHERE referral_id IN (SELECT id FROM referral WHERE visit_id IS NULL "
               "OR household_id IS NULL)")
    op.execute("DELETE FROM referral WHERE visit_id IS NULL OR household_id IS NULL")
    kept = _escalations()
    with op.batch_alter_table('referral') as batch:
        batch.drop_index(op.f('ix_referral_reporter_user_id'))
        batch.drop_index(op.f('ix_referral_source_kind'))
        batch.drop_constraint(op.f('uq_referral_client_uuid'), type_='unique')
        batch.drop_constraint(op.f('fk_referral_venue_id_venue'), type_='foreignkey')
        batch.drop_constraint(op.f('fk_referral_reporter_unit_id_org_unit'), type_='foreignkey')
        batch.drop_constraint(op.f('fk_referral_reporter_user_id_app_user'), type_='foreignkey')
        for column in ('content_hash', 'client_uuid', 'child_description', 'reported_child_id', 'lat', 'lon',
                       'venue_id', 'place', 'seen_at', 'description', 'reporter_contact', 'reporter_agency',
                       'reporter_unit_id', 'reporter_user_id', 'source_kind'):
            batch.drop_column(column)
        batch.alter_column('household_id', existing_type=sa.Integer(), nullable=False)
        batch.alter_column('visit_id', existing_type=sa.Integer(), nullable=False)
    _restore(kept)
