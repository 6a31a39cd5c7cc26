"""Photos taken on a visit: how the media domain finds the visit a photo names (by client UUID)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlmodel import Session, col

from backend.media.parents import ParentRecord, register_parent_kind
from backend.registry.models import Household
from backend.visits.models import Visit


def resolve_visit(session: Session, client_uuid: uuid.UUID) -> ParentRecord | None:
    """The visit's org unit and its household's point (WGS-84), or None while it has not synced."""
    row = session.execute(
        select(col(Visit.org_unit_id), col(Household.lon), col(Household.lat))
        .join(Household, col(Household.id) == col(Visit.household_id))
        .where(col(Visit.client_uuid) == client_uuid)
    ).first()
    if row is None:
        return None
    org_unit_id, lon, lat = row
    return ParentRecord(kind="visit", client_uuid=client_uuid, org_unit_id=org_unit_id, lon=lon, lat=lat)


register_parent_kind("visit", resolve_visit)
