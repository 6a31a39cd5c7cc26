"""Photos of a real door-knocking visit: linking, the location check and who may fetch them."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col

from backend.core import clock
from backend.core.db import get_engine
from backend.core.jobs import run_due_jobs
from backend.media import service as media
from backend.media.models import MediaItem
from tests.media.conftest import camera_jpeg
from tests.media.test_uploads import put
from tests.registry.factories import grid_centre, make_world, push, seed_household, visit_item


def test_photo_sent_before_its_visit_is_linked_by_the_visits_push_and_its_location_is_checked(
    client: TestClient, session: Session, media_root: Path
) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    visit = visit_item(home["uuid"], at=grid_centre(0))
    near, far = uuid.uuid4(), uuid.uuid4()
    parent = uuid.UUID(visit["client_uuid"])
    # Photos first (the phone uploads whatever has signal first), one at the door, one 2 km away.
    assert put(client, w.volunteer_a.headers, near,
               camera_jpeg(lon=home["lon"] + 0.0002, lat=home["lat"], seed=3), parent=parent).status_code == 201
    assert put(client, w.volunteer_a.headers, far,
               camera_jpeg(lon=home["lon"] + 0.02, lat=home["lat"], seed=4), parent=parent).status_code == 201
    run_due_jobs()
    assert client.get(f"/api/v1/media/{near}", headers=w.volunteer_a.headers).json()["linked"] is False

    push(client, w.volunteer_a, [visit])  # links both at once: no wait for the worker's sweep
    shown = {m: client.get(f"/api/v1/media/{m}", headers=w.volunteer_a.headers).json() for m in (near, far)}
    assert all(s["linked"] and s["state"] == "ready" for s in shown.values()), shown
    assert shown[near]["location_mismatch"] is False
    assert shown[far]["location_mismatch"] is True and shown[far]["distance_m"] > 1500
    # The coordinator of the town sees it; a volunteer of the next village learns nothing.
    assert client.get(f"/api/v1/media/{near}/link", headers=w.coordinator.headers).status_code == 200
    for path in (f"/api/v1/media/{near}", f"/api/v1/media/{near}/link"):
        assert client.get(path, headers=w.volunteer_b.headers).status_code == 404


def test_a_visit_pushed_while_the_worker_processes_its_photo_still_gets_the_location_checked(
    client: TestClient, session: Session, media_root: Path
) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    visit = visit_item(home["uuid"], at=grid_centre(0))
    photo = uuid.uuid4()
    far = camera_jpeg(lon=home["lon"] + 0.02, lat=home["lat"], seed=5)
    assert put(client, w.volunteer_a.headers, photo, far, parent=uuid.UUID(visit["client_uuid"])).status_code == 201

    # A worker takes the photo (as media.process does, one committed step at a time) ...
    with Session(get_engine(), expire_on_commit=False) as worker:
        (item_id,) = media.due_for_processing(worker, 10)
        item = media.start_processing(worker, item_id)
        worker.commit()
        assert item is not None
        # ... and the visit arrives while it reads EXIF: the push links the photo, not knowing its GPS yet.
        push(client, w.volunteer_a, [visit])
        media.process(worker, item)
        worker.commit()

    shown = client.get(f"/api/v1/media/{photo}", headers=w.volunteer_a.headers).json()
    assert shown["linked"] is True and shown["state"] == "ready", shown
    assert shown["location_mismatch"] is True and shown["distance_m"] > 1500, shown


def test_a_photo_left_unlinked_by_two_requests_that_crossed_is_linked_by_the_worker(
    client: TestClient, session: Session, media_root: Path
) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    visit = visit_item(home["uuid"], at=grid_centre(0))
    push(client, w.volunteer_a, [visit])
    photo = uuid.uuid4()
    assert put(client, w.volunteer_a.headers, photo, camera_jpeg(seed=6),
               parent=uuid.UUID(visit["client_uuid"])).status_code == 201
    # What a photo and its visit committed at the same instant through two API processes leave on
    # PostgreSQL: neither request saw the other's row, so the photo is stored unlinked.
    session.execute(update(MediaItem).where(col(MediaItem.client_uuid) == photo).values(linked_at=None))
    session.commit()
    assert client.get(f"/api/v1/media/{photo}", headers=w.volunteer_a.headers).json()["linked"] is False

    clock.advance(timedelta(minutes=6))  # the worker looks for late parents every 5 minutes
    assert "media.link_parents" in run_due_jobs()
    assert client.get(f"/api/v1/media/{photo}", headers=w.volunteer_a.headers).json()["linked"] is True
