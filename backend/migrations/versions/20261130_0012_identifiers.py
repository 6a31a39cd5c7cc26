"""Phone numbers in one canonical ASCII form.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 00:00:00

Identifiers are now folded to one ASCII form at every boundary (backend/core/identifiers.py). What
was stored before may hold other spellings, because the old checks used `\\d`, which also matches
full-width and other scripts' digits:

- `app_user.phone` (sign-in numbers, unique): rewritten to the 11 canonical digits. A row whose
  canonical number another user already has is left as it is and named in the log: two accounts of
  one number need a person to decide which stays.
- `household.contact`, `person.contact`, `risk_person.contact`, `venue.owner_phone`: a phone number
  in canonical form, other text NFKC-folded. Digits of other scripts, which the new rules refuse,
  were accepted as digits before: here they are turned into their ASCII digits, so no stored value
  stops a later edit of its record. Households and persons that change get a new sync revision, so
  phones pull the stored form.

Credit codes need nothing: their check always refused characters outside the ASCII alphabet.
Resident ID numbers are encrypted and blind-indexed with keys a migration does not hold: run
`hulei canonicalise-id-numbers` after upgrading (README, "The hulei command").

Downgrade keeps the canonical values: they are valid under the old rules too.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

from backend.core import identifiers

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger('alembic.runtime.migration')

# (table, column, its length, has a sync revision)
_CONTACTS: tuple[tuple[str, str, int, bool], ...] = (
    ('household', 'contact', 40, True),
    ('person', 'contact', 40, True),
    ('risk_person', 'contact', 40, False),
    ('venue', 'owner_phone', 20, False),
)


def _ascii_digits(text: str) -> str:
    """Every decimal digit of any script as its ASCII digit (what `\\d` and int() made of it before)."""
    return ''.join(str(unicodedata.decimal(ch)) if unicodedata.decimal(ch, None) is not None else ch for ch in text)


def _contact(value: str) -> str:
    return identifiers.contact(_ascii_digits(value))


def _mobile(value: str) -> str | None:
    try:
        return identifiers.mobile(_ascii_digits(value))
    except ValueError:
        return None


def _allocate(bind: sa.Connection, count: int) -> int:
    """The first of `count` new sync revisions (backend/sync/revisions.py, in plain SQL)."""
    bump = sa.text('UPDATE sync_counter SET value = value + :n WHERE id = 1 RETURNING value')
    last = bind.execute(bump, {'n': count}).scalar_one_or_none()
    if last is None:
        bind.execute(sa.text('INSERT INTO sync_counter (id, value) VALUES (1, 0)'))
        last = bind.execute(bump, {'n': count}).scalar_one()
    return int(last) - count + 1


def _rewrite(table: str, column: str, canonical: Callable[[str], str], *, length: int, revised: bool) -> None:
    bind = op.get_bind()
    t = sa.table(table, sa.column('id', sa.BigInteger()), sa.column(column, sa.String()),
                 sa.column('rev', sa.BigInteger()))
    changes = []
    for row_id, value in bind.execute(sa.select(t.c.id, t.c[column]).where(t.c[column].is_not(None))
                                      .order_by(t.c.id)):
        new = canonical(value)
        if new != value and len(new) <= length:  # NFKC can lengthen text (a ligature, ㍿): kept as it was
            changes.append({'row_id': row_id, 'new': new})
    if not changes:
        return
    first = _allocate(bind, len(changes)) if revised else 0
    for n, change in enumerate(changes):
        values: dict[str, object] = {column: change['new']}
        if revised:
            values['rev'] = first + n
        bind.execute(t.update().where(t.c.id == change['row_id']).values(**values))
    log.info('%s.%s: %d values rewritten in canonical form', table, column, len(changes))


def _rewrite_phones() -> None:
    bind = op.get_bind()
    users = sa.table('app_user', sa.column('id', sa.Integer()), sa.column('phone', sa.String()))
    rows = bind.execute(sa.select(users.c.id, users.c.phone).order_by(users.c.id)).all()
    held = {phone for _, phone in rows}
    for user_id, phone in rows:
        new = _mobile(phone)
        if new is None or new == phone:
            continue
        if new in held:
            log.warning('app_user %s: phone is %s in canonical form, which another user has; left as it is',
                        user_id, new[:3] + '****' + new[-4:])
            continue
        bind.execute(users.update().where(users.c.id == user_id).values(phone=new))
        held.discard(phone)
        held.add(new)


def upgrade() -> None:
    _rewrite_phones()
    for table, column, length, revised in _CONTACTS:
        _rewrite(table, column, _contact, length=length, revised=revised)


def downgrade() -> None:
    pass
