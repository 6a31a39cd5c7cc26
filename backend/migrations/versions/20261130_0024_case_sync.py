"""Cases, follow-ups and service steps on helpers' phones (issue 16).

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-30 00:00:00

- `child_case.rev`: cases are pulled by phones (the "case" pull kind). Existing cases get revisions
  after every revision handed out so far, as assignments did in 0008.
- `helper_followup.client_uuid` (unique; empty for follow-ups recorded before), `device_time` and
  `clock_suspect`: follow-ups pushed from the phone (the "followup" push kind) are stored once.
- Triggers, as in 0016, so no code path can forget a phone: a helper sees the cases of the children
  it accepted (backend/accounts/scope.py), and the services of those cases. When an accepted
  assignment ends, lapses, is deleted or goes to another helper or child, each case and service of
  the child gets a tombstone addressed to the helper's user; when one becomes accepted they get new
  revisions, so the helper's phone pulls them although they are older than its cursor. A case or
  service deleted or moved to another unit leaves a tombstone of its unit, like households (0009).

Each tombstone and each restamped row takes its own revision from the sync counter.
"""

# ruff: noqa: S608 - the SQL is built from this module's own constants and column names, never from input

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0024'
down_revision: str | None = '0023'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPENS = "'accepted'"  # the status that opens a child's records to its helper (scope.OPENS_RECORDS)
_ASSIGNMENT_CHANGED = "OLD.helper_id IS NOT NEW.helper_id OR OLD.child_id IS NOT NEW.child_id"

# The kinds a helper sees through the child it accepted: (kind, table, rows of child `c` as `alias`).
_BY_CHILD: list[tuple[str, str, Callable[[str, str], str]]] = [
    ("case", "child_case", lambda alias, c: f"{alias}.child_id = {c}"),
    ("service", "case_service", lambda alias, c: f"{alias}.case_id IN (SELECT id FROM child_case WHERE child_id = {c})"),
]
# The kinds whose rows leave a unit's view when deleted or moved to another unit: (kind, table).
_BY_UNIT = [("case", "child_case"), ("service", "case_service")]

# ---------------------------------------------------------------- SQLite

_SQLITE_COUNTER = ("INSERT INTO sync_counter (id, value) SELECT 1, 0 "
                   "WHERE NOT EXISTS (SELECT 1 FROM sync_counter WHERE id = 1);")
_SQLITE_REV = "(SELECT value FROM sync_counter WHERE id = 1)"


def _sqlite_leave(child: str, helper: str) -> str:
    """A tombstone per row of each kind, addressed to the helper's user, each its own revision."""
    out = [_SQLITE_COUNTER]
    for kind, table, rows in _BY_CHILD:
        out.append(f"""
            UPDATE sync_counter SET value = value + (SELECT count(*) FROM {table} t0 WHERE {rows("t0", child)})
                WHERE id = 1;
            INSERT INTO sync_removal (rev, kind, record_uuid, record_id, org_unit_id, user_id, created_at)
                SELECT {_SQLITE_REV} - (SELECT count(*) FROM {table} t2 WHERE {rows("t2", child)} AND t2.id > t.id),
                       '{kind}', NULL, t.id, NULL, hp.user_id, CURRENT_TIMESTAMP
                FROM {table} t, helper_profile hp WHERE {rows("t", child)} AND hp.id = {helper};
        """)
    return "\n".join(out)


def _sqlite_enter(child: str) -> str:
    """New revisions for every row of each kind (in id order, one each)."""
    out = [_SQLITE_COUNTER]
    for _kind, table, rows in _BY_CHILD:
        out.append(f"""
            UPDATE sync_counter SET value = value + (SELECT count(*) FROM {table} t0 WHERE {rows("t0", child)})
                WHERE id = 1;
            UPDATE {table} SET rev = {_SQLITE_REV} - (SELECT count(*) FROM {table} t2
                WHERE {rows("t2", child)} AND t2.id > {table}.id)
                WHERE {rows(table, child)};
        """)
    return "\n".join(out)


def _sqlite_unit_tombstone(kind: str) -> str:
    return f"""
        {_SQLITE_COUNTER}
        UPDATE sync_counter SET value = value + 1 WHERE id = 1;
        INSERT INTO sync_removal (rev, kind, record_uuid, record_id, org_unit_id, user_id, created_at)
            SELECT value, '{kind}', NULL, OLD.id, OLD.org_unit_id, NULL, CURRENT_TIMESTAMP FROM sync_counter
            WHERE id = 1;
    """


def _sqlite_triggers() -> list[str]:
    return [
        f"""CREATE TRIGGER helper_assignment_case_sync_leave AFTER UPDATE ON helper_assignment
            WHEN OLD.status = {OPENS} AND (NEW.status <> {OPENS} OR {_ASSIGNMENT_CHANGED})
            BEGIN {_sqlite_leave("OLD.child_id", "OLD.helper_id")} END""",
        f"""CREATE TRIGGER helper_assignment_case_sync_gone AFTER DELETE ON helper_assignment
            WHEN OLD.status = {OPENS}
            BEGIN {_sqlite_leave("OLD.child_id", "OLD.helper_id")} END""",
        f"""CREATE TRIGGER helper_assignment_case_sync_enter AFTER UPDATE ON helper_assignment
            WHEN NEW.status = {OPENS} AND (OLD.status <> {OPENS} OR {_ASSIGNMENT_CHANGED})
            BEGIN {_sqlite_enter("NEW.child_id")} END""",
        f"""CREATE TRIGGER helper_assignment_case_sync_new AFTER INSERT ON helper_assignment
            WHEN NEW.status = {OPENS}
            BEGIN {_sqlite_enter("NEW.child_id")} END""",
        *(statement for kind, table in _BY_UNIT for statement in (
            f"""CREATE TRIGGER {table}_sync_removal_update AFTER UPDATE ON {table}
                WHEN OLD.org_unit_id IS NOT NEW.org_unit_id
                BEGIN {_sqlite_unit_tombstone(kind)} END""",
            f"CREATE TRIGGER {table}_sync_removal_delete AFTER DELETE ON {table} BEGIN {_sqlite_unit_tombstone(kind)} END",
        )),
    ]


_SQLITE_NAMES = ("helper_assignment_case_sync_leave", "helper_assignment_case_sync_gone",
                 "helper_assignment_case_sync_enter", "helper_assignment_case_sync_new",
                 *(f"{table}_sync_removal_{suffix}" for _, table in _BY_UNIT for suffix in ("update", "delete")))

# ---------------------------------------------------------------- PostgreSQL
# sync_scope_next_rev(n) is migration 0016's: bump the counter (made if missing) and answer the value.


def _pg_functions() -> list[str]:
    leave = "\n".join(f"""
        INSERT INTO sync_removal (rev, kind, record_uuid, record_id, org_unit_id, user_id, created_at)
        SELECT sync_scope_next_rev(), '{kind}', NULL, o.id, NULL, u, now()
        FROM (SELECT t.id FROM {table} t WHERE {rows("t", "child")} ORDER BY t.id) o;""" for kind, table, rows in _BY_CHILD)
    enter = "\n".join(f"""
        UPDATE {table} x SET rev = sync_scope_next_rev()
        FROM (SELECT t.id FROM {table} t WHERE {rows("t", "child")} ORDER BY t.id) o WHERE x.id = o.id;"""
                      for _kind, table, rows in _BY_CHILD)
    return [
        f"""
        CREATE OR REPLACE FUNCTION case_sync_leave(child integer, helper integer) RETURNS void AS $$
        DECLARE u integer;
        BEGIN
            SELECT user_id INTO u FROM helper_profile WHERE id = helper;
            IF u IS NULL THEN RETURN; END IF;
            {leave}
        END;
        $$ LANGUAGE plpgsql
        """,
        f"""
        CREATE OR REPLACE FUNCTION case_sync_enter(child integer) RETURNS void AS $$
        BEGIN
            {enter}
        END;
        $$ LANGUAGE plpgsql
        """,
        f"""
        CREATE OR REPLACE FUNCTION helper_assignment_case_sync() RETURNS trigger AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                IF OLD.status = {OPENS} THEN PERFORM case_sync_leave(OLD.child_id, OLD.helper_id); END IF;
                RETURN NULL;
            END IF;
            IF TG_OP = 'UPDATE' THEN
                IF OLD.status = {OPENS} AND (NEW.status <> {OPENS} OR OLD.helper_id IS DISTINCT FROM NEW.helper_id
                                             OR OLD.child_id IS DISTINCT FROM NEW.child_id) THEN
                    PERFORM case_sync_leave(OLD.child_id, OLD.helper_id);
                END IF;
                IF NEW.status = {OPENS} AND (OLD.status <> {OPENS} OR OLD.helper_id IS DISTINCT FROM NEW.helper_id
                                             OR OLD.child_id IS DISTINCT FROM NEW.child_id) THEN
                    PERFORM case_sync_enter(NEW.child_id);
                END IF;
                RETURN NULL;
            END IF;
            IF NEW.status = {OPENS} THEN PERFORM case_sync_enter(NEW.child_id); END IF;
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql
        """,
        *(f"""
        CREATE OR REPLACE FUNCTION {table}_sync_removal() RETURNS trigger AS $$
        BEGIN
            INSERT INTO sync_removal (rev, kind, record_uuid, record_id, org_unit_id, user_id, created_at)
            VALUES (sync_scope_next_rev(), '{kind}', NULL, OLD.id, OLD.org_unit_id, NULL, now());
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql
        """ for kind, table in _BY_UNIT),
    ]


_PG_TRIGGERS = [
    "CREATE TRIGGER helper_assignment_case_sync AFTER INSERT OR UPDATE OR DELETE ON helper_assignment "
    "FOR EACH ROW EXECUTE FUNCTION helper_assignment_case_sync()",
    *(statement for _, table in _BY_UNIT for statement in (
        f"CREATE TRIGGER {table}_sync_removal_update AFTER UPDATE ON {table} FOR EACH ROW "
        f"WHEN (OLD.org_unit_id IS DISTINCT FROM NEW.org_unit_id) EXECUTE FUNCTION {table}_sync_removal()",
        f"CREATE TRIGGER {table}_sync_removal_delete AFTER DELETE ON {table} FOR EACH ROW "
        f"EXECUTE FUNCTION {table}_sync_removal()",
    )),
]
_PG_FUNCTION_NAMES = ("helper_assignment_case_sync()", *(f"{table}_sync_removal()" for _, table in _BY_UNIT),
                      "case_sync_leave(integer, integer)", "case_sync_enter(integer)")


def _backfill_case_revisions() -> None:
    bind = op.get_bind()
    ids = [row[0] for row in bind.execute(sa.text('SELECT id FROM child_case ORDER BY id'))]
    if not ids:
        return
    bind.execute(sa.text('INSERT INTO sync_counter (id, value) SELECT 1, 0 WHERE NOT EXISTS '
                         '(SELECT 1 FROM sync_counter WHERE id = 1)'))
    last = bind.execute(sa.text('UPDATE sync_counter SET value = value + :n WHERE id = 1 RETURNING value'),
                        {'n': len(ids)}).scalar_one()
    first = int(last) - len(ids) + 1
    bind.execute(sa.text('UPDATE child_case SET rev = :rev WHERE id = :id'),
                 [{'rev': first + n, 'id': i} for n, i in enumerate(ids)])


def upgrade() -> None:
    # The server default fills existing rows and the cases service's INSERT ... ON CONFLICT (which
    # the ORM listener restamps at once); the application writes the column on every change.
    op.add_column('child_case', sa.Column('rev', sa.BigInteger(), nullable=False, server_default='0'))
    _backfill_case_revisions()
    op.create_index(op.f('ix_child_case_rev'), 'child_case', ['rev'], unique=False)

    op.add_column('helper_followup', sa.Column('client_uuid', sa.Uuid(), nullable=True))
    op.add_column('helper_followup', sa.Column('device_time', sa.DateTime(timezone=True), nullable=True))
    op.add_column('helper_followup', sa.Column('clock_suspect', sa.Boolean(), nullable=False,
                                               server_default=sa.false()))
    op.create_index(op.f('ix_helper_followup_client_uuid'), 'helper_followup', ['client_uuid'], unique=True)

    if op.get_bind().dialect.name == "sqlite":
        for statement in _sqlite_triggers():
            op.execute(statement)
        return
    for statement in [*_pg_functions(), *_PG_TRIGGERS]:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in _SQLITE_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        op.execute("DROP TRIGGER IF EXISTS helper_assignment_case_sync ON helper_assignment")
        for _, table in _BY_UNIT:
            for suffix in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_sync_removal_{suffix} ON {table}")
        for name in _PG_FUNCTION_NAMES:
            op.execute(f"DROP FUNCTION IF EXISTS {name}")
    op.drop_index(op.f('ix_helper_followup_client_uuid'), table_name='helper_followup')
    with op.batch_alter_table('helper_followup') as batch:
        batch.drop_column('clock_suspect')
        batch.drop_column('device_time')
        batch.drop_column('client_uuid')
    op.drop_index(op.f('ix_child_case_rev'), table_name='child_case')
    with op.batch_alter_table('child_case') as batch:
        batch.drop_column('rev')
