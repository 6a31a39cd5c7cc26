"""Photos of an activity: how the media domain finds the activity a photo names (by client UUID)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from backend.accounts.models import User
from backend.media.parents import ParentRecord, register_parent_kind
from backend.orgunits.models import OrgUnit
from backend.prevention.models import Activity

_PLACE = aliased(OrgUnit)
_RECORDER = aliased(OrgUnit)


def resolve_activity(session: Session, client_uuid: uuid.UUID) -> ParentRecord | None:
    """The unit the activity's photos belong to and its point (WGS-84; none for a school or a village),
    or None while it has not synced. The unit is the place's, unless the place lies above the recorder's
    unit (a grid worker's activity in its village): then the recorder's, so the photos it took link."""
    row = session.execute(
        select(col(Activity.org_unit_id), col(_PLACE.path), col(User.org_unit_id), col(_RECORDER.path),
               col(Activity.lon), col(Activity.lat), col(Activity.recorded_by))
        .join(_PLACE, col(_PLACE.id) == col(Activity.org_unit_id))
        .join(User, col(User.id) == col(Activity.recorded_by))
        .join(_RECORDER, col(_RECORDER.id) == col(User.org_unit_id))
        .where(col(Activity.client_uuid) == client_uuid)
    ).first()
    if row is None:
        return None
    place_id, place_path, recorder_unit_id, recorder_path, lon, lat, recorded_by = row
    unit_id = place_id if place_path.startswith(recorder_path) else recorder_unit_id
    return ParentRecord(kind="activity", client_uuid=client_uuid, org_unit_id=unit_id, lon=lon, lat=lat,
                        author_user_id=recorded_by)


register_parent_kind("activity", resolve_activity)
