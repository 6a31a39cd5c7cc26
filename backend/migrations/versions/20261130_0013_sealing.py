"""Issue 13: sealing (犯罪记录封存) of records of a person who was a minor at the time.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 00:00:00

`risk_person.sealed` (附件2 entries; backend/sealing): true when the person was under 18 on the day
the entry was made, in China (backend/sealing/rules.py). Existing entries are judged here by that
rule: the birth date is read from the ID number (decrypted with the configured keys, so the keys must
be those of the database), the day from `created_at`; an entry without an ID number has no known
birth date and stays unsealed. The unique index on the ID number's blind index now covers unsealed
entries only (a sealed entry must not make a new one of the same number fail, which would give it
away). `sealed_opening` holds police openings of sealed records while they last.

Downgrade drops the openings and the flag and restores the old unique index, which fails while a
sealed entry and a later one share an ID number (nothing is deleted to make it pass).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
import sqlmodel
from alembic import op

from backend.core import crypto
from backend.sealing.rules import minor_at

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNSEALED = 'id_index IS NOT NULL AND NOT sealed'
_ANY = 'id_index IS NOT NULL'


def _birth(number: str) -> date | None:
    """The birth date in an ID number (digits 7-14), None if it holds none."""
    try:
        return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return None


def _seal_existing() -> int:
    """Set `sealed` on the entries whose person was a minor on the entry's day; how many."""
    bind = op.get_bind()
    t = sa.table('risk_person', sa.column('id', sa.Integer()), sa.column('id_cipher', sa.String()),
                 sa.column('created_at', sa.DateTime(timezone=True)), sa.column('sealed', sa.Boolean()))
    minors = [
        row_id
        for row_id, cipher, created_at in bind.execute(
            sa.select(t.c.id, t.c.id_cipher, t.c.created_at).where(t.c.id_cipher.is_not(None))
        )
        if minor_at(_birth(crypto.decrypt(cipher)), created_at)
    ]
    for start in range(0, len(minors), 1000):
        bind.execute(t.update().where(t.c.id.in_(minors[start:start + 1000])).values(sealed=True))
    return len(minors)


def upgrade() -> None:
    op.add_column('risk_person', sa.Column('sealed', sa.Boolean(), nullable=False, server_default=sa.false()))
    _seal_existing()
    op.drop_index('uq_risk_person_id_index', table_name='risk_person')
    op.create_index('uq_risk_person_id_index', 'risk_person', ['id_index'], unique=True,
                    postgresql_where=sa.text(_UNSEALED), sqlite_where=sa.text(_UNSEALED))
    op.create_table('sealed_opening',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('record_kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_sealed_opening_user_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sealed_opening'))
    )
    op.create_index('ix_sealed_opening_record', 'sealed_opening', ['record_kind', 'record_id', 'user_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_sealed_opening_record', table_name='sealed_opening')
    op.drop_table('sealed_opening')
    op.drop_index('uq_risk_person_id_index', table_name='risk_person')
    op.create_index('uq_risk_person_id_index', 'risk_person', ['id_index'], unique=True,
                    postgresql_where=sa.text(_ANY), sqlite_where=sa.text(_ANY))
    with op.batch_alter_table('risk_person') as batch:
        batch.drop_column('sealed')
