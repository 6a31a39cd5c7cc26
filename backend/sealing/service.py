"""Sealing as one mechanism: a stored flag, one SQL condition on every read, and police openings.

- The flag: every sealable record kind (SEALABLE) has a `sealed` column, set by `judge` whenever the
  record is written (created, edited, imported) from the birth date known then and the record's own
  day (sealing/rules.py). It is never set by hand.
- The condition: every read of a sealable kind carries `unsealed(Model)` (lists, counts, exports,
  reports, pulls, duplicate checks), or, for a lookup by id, `visible_to(principal, kind, Model)`,
  which adds the records the caller has opened and whose opening has not expired. A sealed record
  is then absent exactly as a record that does not exist: a lookup answers the same 404, a list
  leaves it out, a count does not count it, and nothing says how many are sealed.
- Opening: `open_record`, police only (Action.sealed_open, a hidden action: everyone else gets 404),
  with a reason; it returns the record, writes `sealed.open` (the reason, until when) to the audit
  log and lets that officer find the record by id for `sealed_opening_minutes`.

tests/sealing/test_sealed_walk.py holds every read to this: it walks every operation as every role
and fails on a response that carries a sealed person or a SELECT of a sealable table without the
condition.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlmodel import Session, SQLModel, col

from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.core import clock
from backend.core.config import get_settings
from backend.core.errors import NotFound
from backend.orgunits import service as orgunits
from backend.registry.models import RiskPerson
from backend.sealing import rules
from backend.sealing.models import SealedOpening

# Every record kind that can be sealed, by the name the audit log gives it. A new kind that names a
# suspect gets a `sealed` column, a line here, `judge` where it is written and the condition where it
# is read (tests/sealing/test_sealed_walk.py fails on a table with the column that is not listed).
SEALABLE: dict[str, type[SQLModel]] = {"risk_person": RiskPerson}

OPEN_ACTION = "sealed.open"


def judge(birth: date | None, record_at: datetime, *, unknown: bool = False) -> bool:
    """The flag of a record made at `record_at` about a person born on `birth`; `unknown` when the
    birth date is not known (a new record: False; an edit: the flag it had)."""
    minor = rules.minor_at(birth, record_at)
    return unknown if minor is None else minor


def unsealed(model: Any) -> ColumnElement[bool]:
    """The condition every read of a sealable kind carries: sealed rows are not there."""
    return col(model.sealed).is_(false())


def _live_openings(principal: Principal, kind: str) -> Any:
    return select(col(SealedOpening.record_id)).where(
        col(SealedOpening.record_kind) == kind,
        col(SealedOpening.user_id) == principal.user_id,
        col(SealedOpening.expires_at) > clock.now(),
    )


def visible_to(principal: Principal, kind: str, model: Any) -> ColumnElement[bool]:
    """The condition of a lookup by id: unsealed, or sealed and opened by this caller (still police)
    within the last `sealed_opening_minutes`."""
    if not principal.can(Action.sealed_open):
        return unsealed(model)
    return or_(unsealed(model), col(model.id).in_(_live_openings(principal, kind)))


def open_record(session: Session, principal: Principal, kind: str, record_id: int, reason: str) -> tuple[Any, datetime]:
    """Open one sealed record of the caller's jurisdiction (police only); the record and until when the
    opening lasts. 404, as for a record that does not exist, for anyone else, for a record outside the
    jurisdiction and for a record that is not sealed."""
    principal.require(Action.sealed_open)
    model: Any = SEALABLE[kind]
    found = session.execute(
        select(model).where(
            col(model.id) == record_id,
            col(model.sealed).is_(true()),
            orgunits.in_jurisdiction(principal, col(model.org_unit_id)),
        )
    ).scalar_one_or_none()
    if found is None:
        raise NotFound()
    now = clock.now()
    until = now + timedelta(minutes=get_settings().sealed_opening_minutes)
    session.add(SealedOpening(record_kind=kind, record_id=record_id, user_id=principal.user_id, opened_at=now,
                              expires_at=until))
    session.flush()
    disclosure.event(session, OPEN_ACTION, actor=principal, object_type=kind, object_id=record_id,
                     org_unit_id=found.org_unit_id, details={"reason": reason, "until": until.isoformat()})
    return found, until
