"""Several workers process photos at the same time (media.process is not exclusive), each photo once."""

from __future__ import annotations

import threading
import uuid

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from backend.core.db import session_scope
from backend.media import scheduled
from backend.media.models import MediaItem
from tests.media.conftest import World, camera_jpeg
from tests.media.test_uploads import put

PHOTOS = 12


def test_two_workers_draining_one_backlog_process_each_photo_once(
    client: TestClient, world: World, session: Session
) -> None:
    for n in range(PHOTOS):
        assert put(client, world.volunteer.headers, uuid.uuid4(), camera_jpeg(900, 600, seed=n)).status_code == 201
    start = threading.Barrier(2)
    handled: list[int] = []

    def worker() -> None:
        start.wait()
        with session_scope() as s:
            handled.append(scheduled.process_received(s))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    session.expire_all()
    rows = session.execute(select(MediaItem)).scalars().all()
    assert [r.state for r in rows] == ["ready"] * PHOTOS
    assert [r.attempts for r in rows] == [1] * PHOTOS  # no photo started by both
    assert sum(handled) == PHOTOS
