"""A helper's phone follows its assignments: the database tells it when a child enters or leaves its view.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 00:00:00

A helper sees the children with an accepted assignment to it, their households and those households'
visits (backend/accounts/scope.py). Those records are older than the helper's cursor when the help
begins, and do not change when it ends, so the database does what a move does for a volunteer
(migration 0009), in triggers no code path can bypass:

- **Entering** (an assignment becomes accepted, by any UPDATE or INSERT; or an accepted child changes
  household): the child, its household and the household's visits get new revisions, so every
  phone that may see them (the helper's among them) pulls them again.
- **Leaving** (an accepted assignment ends, lapses, is deleted, or goes to another helper or child;
  or an accepted child leaves its household): tombstones addressed to the helper's user
  (`sync_removal.user_id`, no unit) for the child and its household. The pull turns them into
  removals for that user unless it still sees the record (a sibling keeps the household; the helper
  is also the child's volunteer), and the phone drops the household's visits with the household.

Each tombstone and each restamped row takes its own revision from the sync counter.
"""

# ruff: noqa: S608 - the SQL is built from this module's own constants and column names, never from input

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPENS = "'accepted'"  # the status that opens a child's records to its helper (scope.OPENS_RECORDS)
_ASSIGNMENT_CHANGED = "OLD.helper_id IS NOT NEW.helper_id OR OLD.child_id IS NOT NEW.child_id"

# ---------------------------------------------------------------- SQLite: statements inside triggers

_SQLITE_COUNTER = ("INSERT INTO sync_counter (id, value) SELECT 1, 0 "
                   "WHERE NOT EXISTS (SELECT 1 FROM sync_counter WHERE id = 1);")
_SQLITE_BUMP = "UPDATE sync_counter SET value = value + 1 WHERE id = 1;"
_SQLITE_REV = "(SELECT value FROM sync_counter WHERE id = 1)"


def _sqlite_restamp_household(household: str) -> str:
    """New revisions for a household and its visits (in id order, one each)."""
    return f"""
        {_SQLITE_BUMP}
        UPDATE household SET rev = {_SQLITE_REV} WHERE id = {household};
        UPDATE sync_counter SET value = value + (SELECT count(*) FROM visit WHERE household_id = {household})
            WHERE id = 1;
        UPDATE visit SET rev = {_SQLITE_REV} - (SELECT count(*) FROM visit v2
            WHERE v2.household_id = visit.household_id AND v2.id > visit.id)
            WHERE household_id = {household};
    """


def _sqlite_enter(child: str) -> str:
    household = f"(SELECT household_id FROM person WHERE id = {child})"
    return f"""
        {_SQLITE_COUNTER}
        {_SQLITE_BUMP}
        UPDATE person SET rev = {_SQLITE_REV} WHERE id = {child};
        {_sqlite_restamp_household(household)}
    """


def _sqlite_leave(child: str, helper: str) -> str:
    return f"""
        {_SQLITE_COUNTER}
        {_SQLITE_BUMP}
        INSERT INTO sync_removal (rev, kind, record_uuid, record_id, org_unit_id, user_id, created_at)
            SELECT {_SQLITE_REV}, 'person', (SELECT uuid FROM person WHERE id = {child}), {child}, NULL,
                   hp.user_id, CURRENT_TIMESTAMP
            FROM helper_profile hp WHERE hp.id = {helper};
        {_SQLITE_BUMP}
        INSERT INTO sync_removal (rev, kind, record_uuid, record_id, org_unit_id, user_id, created_at)
            SELECT {_SQLITE_REV}, 'household', h.uuid, h.id, NULL, hp.user_id, CURRENT_TIMESTAMP
            FROM helper_profile hp, person p JOIN household h ON h.id = p.household_id
            WHERE hp.id = {helper} AND p.id = {child};
    """


def _sqlite_triggers() -> list[str]:
    accepted_children = f"SELECT 1 FROM helper_assignment WHERE child_id = NEW.id AND status = {OPENS}"
    return [
        f"""CREATE TRIGGER helper_assignment_sync_scope_leave AFTER UPDATE ON helper_assignment
            WHEN OLD.status = {OPENS} AND (NEW.status <> {OPENS} OR {_ASSIGNMENT_CHANGED})
            BEGIN {_sqlite_leave("OLD.child_id", "OLD.helper_id")} END""",
        f"""CREATE TRIGGER helper_assignment_sync_scope_gone AFTER DELETE ON helper_assignment
            WHEN OLD.status = {OPENS}
            BEGIN {_sqlite_leave("OLD.child_id", "OLD.helper_id")} END""",
        f"""CREATE TRIGGER helper_assignment_sync_scope_enter AFTER UPDATE ON helper_assignment
            WHEN NEW.status = {OPENS} AND (OLD.status <> {OPENS} OR {_ASSIGNMENT_CHANGED})
            BEGIN {_sqlite_enter("NEW.child_id")} END""",
        f"""CREATE TRIGGER helper_assignment_sync_scope_new AFTER INSERT ON helper_assignment
            WHEN NEW.status = {OPENS}
            BEGIN {_sqlite_enter("NEW.child_id")} END""",
        # An accepted child moves to another household: the old one leaves its helpers' view (one
        # tombstone per helper, each its own revision), the new one and its visits enter it.
        f"""CREATE TRIGGER person_sync_scope_household AFTER UPDATE OF household_id ON person
            WHEN OLD.household_id IS NOT NEW.household_id AND EXISTS ({accepted_children})
            BEGIN
                {_SQLITE_COUNTER}
                UPDATE sync_counter SET value = value + (SELECT count(*) FROM helper_assignment
                    WHERE child_id = NEW.id AND status = {OPENS}) WHERE id = 1;
                INSERT INTO sync_removal (rev, kind, record_uuid, record_id, org_unit_id, user_id, created_at)
                    SELECT {_SQLITE_REV} - (SELECT count(*) FROM helper_assignment a2 WHERE a2.child_id = NEW.id
                               AND a2.status = {OPENS} AND a2.id > a.id),
                           'household', h.uuid, h.id, NULL, hp.user_id, CURRENT_TIMESTAMP
                    FROM helper_assignment a JOIN helper_profile hp ON hp.id = a.helper_id
                    JOIN household h ON h.id = OLD.household_id
                    WHERE a.child_id = NEW.id AND a.status = {OPENS};
                {_sqlite_restamp_household("NEW.household_id")}
            END""",
    ]


_SQLITE_NAMES = ("helper_assignment_sync_scope_leave", "helper_assignment_sync_scope_gone",
                 "helper_assignment_sync_scope_enter", "helper_assignment_sync_scope_new",
                 "person_sync_scope_household")

# ---------------------------------------------------------------- PostgreSQL: functions

_PG_FUNCTIONS = [
    """
    CREATE OR REPLACE FUNCTION sync_scope_next_rev(n integer DEFAULT 1) RETURNS bigint AS $$
    DECLARE r bigint;
    BEGIN
        INSERT INTO sync_counter (id, value) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
        UPDATE sync_counter SET value = value + n WHERE id = 1 RETURNING value INTO r;
        RETURN r;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE FUNCTION sync_scope_restamp_household(hh integer) RETURNS void AS $$
    DECLARE r bigint; n integer;
    BEGIN
        IF hh IS NULL THEN RETURN; END IF;
        UPDATE household SET rev = sync_scope_next_rev() WHERE id = hh;
        SELECT count(*) INTO n FROM visit WHERE household_id = hh;
        IF n > 0 THEN
            r := sync_scope_next_rev(n);
            UPDATE visit v SET rev = r - n + o.k
            FROM (SELECT id, row_number() OVER (ORDER BY id) AS k FROM visit WHERE household_id = hh) o
            WHERE v.id = o.id;
        END IF;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE FUNCTION sync_scope_enter(child integer) RETURNS void AS $$
    DECLARE hh integer;
    BEGIN
        UPDATE person SET rev = sync_scope_next_rev() WHERE id = child RETURNING household_id INTO hh;
        PERFORM sync_scope_restamp_household(hh);
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE FUNCTION sync_scope_leave_household(hh integer, u integer) RETURNS void AS $$
    BEGIN
        IF hh IS NULL OR u IS NULL THEN RETURN; END IF;
        INSERT INTO sync_removal (rev, kind, record_uuid, record_id, org_unit_id, user_id, created_at)
        SELECT sync_scope_next_rev(), 'household', h.uuid, h.id, NULL, u, now() FROM household h WHERE h.id = hh;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE FUNCTION sync_scope_leave(child integer, helper integer) RETURNS void AS $$
    DECLARE u integer; pu uuid; hh integer;
    BEGIN
        SELECT user_id INTO u FROM helper_profile WHERE id = helper;
        IF u IS NULL THEN RETURN; END IF;
        SELECT uuid, household_id INTO pu, hh FROM person WHERE id = child;
        INSERT INTO sync_removal (rev, kind, record_uuid, record_id, org_unit_id, user_id, created_at)
        VALUES (sync_scope_next_rev(), 'person', pu, child, NULL, u, now());
        PERFORM sync_scope_leave_household(hh, u);
    END;
    $$ LANGUAGE plpgsql
    """,
    f"""
    CREATE OR REPLACE FUNCTION helper_assignment_sync_scope() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            IF OLD.status = {OPENS} THEN PERFORM sync_scope_leave(OLD.child_id, OLD.helper_id); END IF;
            RETURN NULL;
        END IF;
        IF TG_OP = 'UPDATE' THEN
            IF OLD.status = {OPENS} AND (NEW.status <> {OPENS} OR OLD.helper_id IS DISTINCT FROM NEW.helper_id
                                         OR OLD.child_id IS DISTINCT FROM NEW.child_id) THEN
                PERFORM sync_scope_leave(OLD.child_id, OLD.helper_id);
            END IF;
            IF NEW.status = {OPENS} AND (OLD.status <> {OPENS} OR OLD.helper_id IS DISTINCT FROM NEW.helper_id
                                         OR OLD.child_id IS DISTINCT FROM NEW.child_id) THEN
                PERFORM sync_scope_enter(NEW.child_id);
            END IF;
            RETURN NULL;
        END IF;
        IF NEW.status = {OPENS} THEN PERFORM sync_scope_enter(NEW.child_id); END IF;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql
    """,
    f"""
    CREATE OR REPLACE FUNCTION person_sync_scope() RETURNS trigger AS $$
    DECLARE u integer; held boolean := false;
    BEGIN
        FOR u IN SELECT hp.user_id FROM helper_assignment a JOIN helper_profile hp ON hp.id = a.helper_id
                 WHERE a.child_id = NEW.id AND a.status = {OPENS} ORDER BY a.id LOOP
            held := true;
            PERFORM sync_scope_leave_household(OLD.household_id, u);
        END LOOP;
        IF held THEN PERFORM sync_scope_restamp_household(NEW.household_id); END IF;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql
    """,
]

_PG_TRIGGERS = [
    "CREATE TRIGGER helper_assignment_sync_scope AFTER INSERT OR UPDATE OR DELETE ON helper_assignment "
    "FOR EACH ROW EXECUTE FUNCTION helper_assignment_sync_scope()",
    "CREATE TRIGGER person_sync_scope AFTER UPDATE OF household_id ON person FOR EACH ROW "
    "WHEN (OLD.household_id IS DISTINCT FROM NEW.household_id) EXECUTE FUNCTION person_sync_scope()",
]
_PG_FUNCTION_NAMES = ("helper_assignment_sync_scope()", "person_sync_scope()", "sync_scope_leave(integer, integer)",
                      "sync_scope_leave_household(integer, integer)", "sync_scope_enter(integer)",
                      "sync_scope_restamp_household(integer)", "sync_scope_next_rev(integer)")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in _sqlite_triggers():
            op.execute(statement)
        return
    for statement in [*_PG_FUNCTIONS, *_PG_TRIGGERS]:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in _SQLITE_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        return
    op.execute("DROP TRIGGER IF EXISTS helper_assignment_sync_scope ON helper_assignment")
    op.execute("DROP TRIGGER IF EXISTS person_sync_scope ON person")
    for name in _PG_FUNCTION_NAMES:
        op.execute(f"DROP FUNCTION IF EXISTS {name}")
