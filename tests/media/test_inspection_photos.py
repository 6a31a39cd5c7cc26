"""Photos taken on a venue inspection: linked to the inspection by whichever request arrives second."""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.media.models import MediaItem
from backend.venues.models import VenueType
from tests.media.conftest import camera_jpeg
from tests.media.test_uploads import put
from tests.registry.factories import push, statuses
from tests.venues.factories import grid_point, inspection_body, make_venue, make_world


def test_a_photo_sent_before_its_inspection_is_linked_when_the_inspection_arrives(
    client: TestClient, session: Session, media_root: Path
) -> None:
    w = make_world(client, session)
    hotel, bar = make_venue(session, w.town, venue_type=VenueType.hotel), make_venue(session, w.town,
                                                                                      venue_type=VenueType.bar)
    at = grid_point((0, 0))
    by_post, by_sync = inspection_body(hotel, at=at), inspection_body(bar, at=at)
    first, second = uuid.uuid4(), uuid.uuid4()
    for photo, body in ((first, by_post), (second, by_sync)):
        sent = put(client, w.market.headers, photo, camera_jpeg(lon=at[0], lat=at[1]),
                   parent=uuid.UUID(body["client_uuid"]), kind="inspection")
        assert sent.status_code == 201 and sent.json()["linked"] is False, sent.text

    # One inspection through POST /inspections, the other through the phone's sync push.
    assert client.post("/api/v1/inspections", json=by_post, headers=w.market.headers).status_code == 201
    synced = {"kind": "inspection", "client_uuid": by_sync["client_uuid"],
              "data": {k: v for k, v in by_sync.items() if k != "client_uuid"}}
    assert statuses(push(client, w.market, [synced])) == ["created"]

    for photo, venue in ((first, hotel), (second, bar)):
        shown = client.get(f"/api/v1/media/{photo}", headers=w.market.headers).json()
        assert shown["linked"] is True, shown
        stored = session.execute(select(MediaItem).where(col(MediaItem.client_uuid) == photo)).scalar_one()
        assert stored.org_unit_id == venue.org_unit_id  # now governed by the inspection's unit
