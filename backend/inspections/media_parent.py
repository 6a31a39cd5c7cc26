"""Photos taken on an inspection: how the media domain finds the inspection a photo names."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlmodel import Session, col

from backend.core.geo import point_lon_lat
from backend.inspections.models import Inspection
from backend.media.parents import ParentRecord, register_parent_kind
from backend.venues.models import Venue


def resolve_inspection(session: Session, client_uuid: uuid.UUID) -> ParentRecord | None:
    """The inspection's org unit and its venue's point (WGS-84), or None while it has not synced."""
    row = session.execute(
        select(col(Inspection.org_unit_id), col(Venue.location))
        .join(Venue, col(Venue.id) == col(Inspection.venue_id))
        .where(col(Inspection.client_uuid) == str(client_uuid))
    ).first()
    if row is None:
        return None
    org_unit_id, venue_location = row
    lon_lat = point_lon_lat(venue_location)
    return ParentRecord(kind="inspection", client_uuid=client_uuid, org_unit_id=org_unit_id,
                        lon=lon_lat[0] if lon_lat else None, lat=lon_lat[1] if lon_lat else None)


register_parent_kind("inspection", resolve_inspection)
