"""The edit history of a 附件2 entry: each changed field, who changed it, when, before and after.

Kept apart from the service so that every writer of an entry (the registry's edit, the 附件2 ledger
import) records its changes the same way without importing the service.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from backend.core import clock
from backend.registry.models import RiskPerson, RiskPersonChange, risk_level_code

# The fields an edit may change, as the history names them. The ID number is kept only in its masked
# form (the history is read by whoever reads the entry, who sees only the masked number); whether it
# changed is told by its blind index, since two numbers of one region mask alike.
TRACKED: tuple[str, ...] = (
    "name", "id_number", "sex", "hukou_place", "residence", "contact", "categories", "risk_level",
    "control_measures", "note", "control_status", "org_unit_id",
)


def snapshot(r: RiskPerson) -> dict[str, Any]:
    """The tracked fields of an entry as they are now (and the ID number's blind index, to compare)."""
    values = {name: getattr(r, name) for name in TRACKED if name != "id_number"}
    values["id_number"] = r.id_masked
    values["categories"] = list(r.categories or [])
    values[_ID_INDEX] = r.id_index
    return values


_ID_INDEX = "_id_index"


def _differs(name: str, before: dict[str, Any], after: dict[str, Any]) -> bool:
    if name == "id_number":
        return bool(before.get(_ID_INDEX) != after[_ID_INDEX])
    return bool(before.get(name) != after[name])


def record(session: Session, r: RiskPerson, before: dict[str, Any], *, actor_user_id: int | None) -> int:
    """Append a row per field that differs from `before`; the number of rows appended."""
    after = snapshot(r)
    now = clock.now()
    rows = [
        RiskPersonChange(risk_person_id=r.id or 0, version=r.version, field_name=name, before=before.get(name),
                         after=after[name], actor_user_id=actor_user_id, changed_at=now)
        for name in TRACKED
        if _differs(name, before, after)
    ]
    session.add_all(rows)
    return len(rows)


def history(session: Session, risk_person_id: int) -> list[dict[str, Any]]:
    """Every recorded change of an entry, oldest first."""
    rows = session.execute(
        select(RiskPersonChange).where(col(RiskPersonChange.risk_person_id) == risk_person_id)
        .order_by(col(RiskPersonChange.id))
    ).scalars()
    out = []
    for c in rows:
        item: dict[str, Any] = {
            "id": c.id,
            "version": c.version,
            "field": c.field_name,
            "before": c.before,
            "after": c.after,
            "actor_user_id": c.actor_user_id,
            "changed_at": clock.as_utc(c.changed_at).isoformat(),
        }
        if c.field_name == "risk_level":
            item["before_code"], item["after_code"] = risk_level_code(c.before), risk_level_code(c.after)
        out.append(item)
    return out
