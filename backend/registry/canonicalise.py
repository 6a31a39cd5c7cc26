"""Stored resident ID numbers in their canonical ASCII form (`hulei canonicalise-id-numbers`).

Before identifiers were folded at every boundary (backend/core/identifiers.py), an ID number typed
with full-width digits ("１１０１０５…２X") or digits of another script passed the checks, which used
`\\d` and int(), and was stored as typed: encrypted, masked and blind-indexed in that spelling. So
the same number could be stored twice, and such a record is not found by its ASCII number.

The numbers are encrypted, so a migration cannot see them; this command, run once with the keys
after upgrading to revision 0012, does. Each stored number that is not canonical (ASCII digits of any
script, NFKC, upper-case X) is re-sealed under the active key with its canonical blind index and
mask, and the person gets a new sync revision. A number whose canonical form another record already
holds is a duplicate stored before the fix: it is left as it is, reported, and written to the audit
log (`registry.id_number_duplicate_stored`, both records named) for a coordinator to merge the two.
Running it again changes nothing more.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlmodel import Session, col

from backend.audit import service as audit
from backend.core import crypto, identifiers
from backend.registry import idnumber
from backend.registry.models import Person, RiskPerson
from backend.sync import revisions


def canonical_id_number(value: str) -> str:
    """A stored number in canonical form: every decimal digit as ASCII (they were read as digits when
    it was stored), then folded."""
    digits = "".join(str(unicodedata.decimal(ch)) if unicodedata.decimal(ch, None) is not None else ch for ch in value)
    return identifiers.fold(digits)


@dataclass
class CanonicaliseReport:
    rewritten: int = 0
    duplicates: list[tuple[str, int, int]] = field(default_factory=list)  # (table, row, the holder's row)


def canonicalise_id_numbers(session: Session, *, batch: int = 1000) -> CanonicaliseReport:
    """Rewrite every stored ID number that is not in canonical form (module docstring). The caller
    commits."""
    report = CanonicaliseReport()
    for model in (Person, RiskPerson):
        after = 0
        while True:
            rows = session.execute(
                select(model).where(col(model.id_cipher).is_not(None), col(model.id) > after)
                .order_by(col(model.id)).limit(batch)
            ).scalars().all()
            if not rows:
                break
            after = rows[-1].id or after
            for row in rows:
                _canonicalise(session, model, row, report)
    session.flush()
    if report.rewritten or report.duplicates:
        audit.record(session, actor=None, action="registry.canonicalise_id_numbers", object_type="id_number",
                     details={"rewritten": report.rewritten, "duplicates": len(report.duplicates)})
    return report


def _canonicalise(session: Session, model: type[Person] | type[RiskPerson], row: Person | RiskPerson,
                  report: CanonicaliseReport) -> None:
    assert row.id_cipher is not None and row.id is not None
    stored = crypto.decrypt(row.id_cipher)
    value = canonical_id_number(stored)
    if value == stored:
        return
    index = crypto.blind_index(value)
    holder = session.execute(
        select(col(model.id)).where(col(model.id_index) == index, col(model.id) != row.id)).scalar()
    if holder is not None:
        report.duplicates.append((str(model.__tablename__), row.id, int(holder)))
        audit.record(session, actor=None, action="registry.id_number_duplicate_stored",
                     object_type="risk_person" if model is RiskPerson else "person", object_id=row.id,
                     org_unit_id=row.org_unit_id, details={"holder_id": int(holder)})
        return
    sealed = crypto.encrypt(value)
    row.id_cipher, row.id_key_id = sealed.token, sealed.key_id
    row.id_index, row.id_masked = index, idnumber.mask(value)
    if isinstance(row, Person):
        row.rev = revisions.allocate(session)
    session.add(row)
    session.flush()
    report.rewritten += 1
