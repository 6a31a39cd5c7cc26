"""Rotation of the ID-number encryption key: re-seal values written under older keys.

Rotation is: add the new key to HULEI_ID_NUMBER_KEYS, make it HULEI_ID_NUMBER_ACTIVE_KEY (new
values use it at once, old ones still open with their listed key), run `hulei reseal-id-numbers`
until it reports nothing left, then drop the old key from the list. The blind index does not
change, so duplicate detection and lookups keep working throughout.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from backend.audit import service as audit
from backend.core import crypto
from backend.registry.models import Person, RiskPerson
from backend.staff_checks.models import StaffMember


def reseal_id_numbers(session: Session, *, batch: int = 500) -> int:
    """Re-encrypt up to `batch` stored ID numbers per table that are not under the active key;
    returns how many were rewritten (0 when rotation is complete). The caller commits."""
    active = crypto.keyring().active
    rewritten = 0
    # Staff of institutions (从业查询, issue 18) hold ID numbers sealed the same way.
    for model in (Person, RiskPerson, StaffMember):
        rows = session.execute(
            select(model)
            .where(col(model.id_cipher).is_not(None), col(model.id_key_id) != active)
            .order_by(col(model.id))
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).scalars().all()
        for row in rows:
            assert row.id_cipher is not None
            sealed = crypto.encrypt(crypto.decrypt(row.id_cipher))
            row.id_cipher, row.id_key_id = sealed.token, sealed.key_id
            session.add(row)
        rewritten += len(rows)
    if rewritten:
        audit.record(session, actor=None, action="registry.reseal_id_numbers", object_type="id_number",
                     details={"rewritten": rewritten, "key_id": active})
    session.flush()
    return rewritten
