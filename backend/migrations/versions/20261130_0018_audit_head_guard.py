"""The audit chain head is protected like the entries: it only ever moves forward to the newest entry

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30 00:00:00

`audit.service.record()` inserts entry n+1 (whose prev_hash is the head's hash), then moves the head
from n to n+1 with that entry's hash. The triggers allow exactly that UPDATE and nothing else: no
INSERT (the one row is made by 0001), no DELETE or TRUNCATE, and an UPDATE only when the head moves
by one entry, to an entry that exists, carries the new hash and links to the old one. Deleting the
newest entries and resetting the head therefore needs the triggers switched off (superuser,
`session_replication_role = replica` on PostgreSQL, or DROP TRIGGER on SQLite), which the signed
checkpoints outside the database catch (backend/audit/checkpoints.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The one move record() makes: to the next entry, which exists with the new hash and links to the old.
_FORWARD = """
    NEW.id = OLD.id
    AND NEW.last_entry_id = OLD.last_entry_id + 1
    AND EXISTS (SELECT 1 FROM audit_entry e WHERE e.id = NEW.last_entry_id
                AND e.entry_hash = NEW.last_hash AND e.prev_hash = OLD.last_hash)
"""

POSTGRES = [
    f"""
    CREATE OR REPLACE FUNCTION audit_chain_head_forward_only() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN  -- NEW and OLD exist only here
            IF {_FORWARD} THEN
                RETURN NEW;
            END IF;
        END IF;
        RAISE EXCEPTION 'audit_chain_head only moves forward, one appended entry at a time (%)', TG_OP;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER audit_chain_head_guard BEFORE INSERT OR UPDATE OR DELETE ON audit_chain_head
    FOR EACH ROW EXECUTE FUNCTION audit_chain_head_forward_only()
    """,
    """
    CREATE TRIGGER audit_chain_head_no_truncate BEFORE TRUNCATE ON audit_chain_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_head_forward_only()
    """,
]
SQLITE = [
    f"""
    CREATE TRIGGER audit_chain_head_forward_only BEFORE UPDATE ON audit_chain_head
    WHEN NOT ({_FORWARD})
    BEGIN SELECT RAISE(ABORT, 'audit_chain_head only moves forward, one appended entry at a time'); END
    """,
    """
    CREATE TRIGGER audit_chain_head_no_insert BEFORE INSERT ON audit_chain_head
    BEGIN SELECT RAISE(ABORT, 'audit_chain_head has exactly one row'); END
    """,
    """
    CREATE TRIGGER audit_chain_head_no_delete BEFORE DELETE ON audit_chain_head
    BEGIN SELECT RAISE(ABORT, 'audit_chain_head cannot be deleted'); END
    """,
]


def upgrade() -> None:
    for statement in SQLITE if op.get_bind().dialect.name == "sqlite" else POSTGRES:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("audit_chain_head_forward_only", "audit_chain_head_no_insert", "audit_chain_head_no_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        return
    op.execute("DROP TRIGGER IF EXISTS audit_chain_head_guard ON audit_chain_head")
    op.execute("DROP TRIGGER IF EXISTS audit_chain_head_no_truncate ON audit_chain_head")
    op.execute("DROP FUNCTION IF EXISTS audit_chain_head_forward_only()")
