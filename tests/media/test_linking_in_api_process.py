"""A photo is linked to its visit by the API request that completes the second of the two, in a
real `hulei serve` process with no worker running: the phone (and the coordinator's map) must not
wait for a background sweep, nor depend on which modules that process happened to import."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session

from backend.accounts.permissions import Role
from scripts.cluster import Cluster
from tests.factories import TEST_PASSWORD, make_town, make_user
from tests.media.conftest import camera_jpeg
from tests.registry.factories import fine_answers, grid_centre, household_item, visit_item


def _visit_naming(home_uuid: str, photo: uuid.UUID) -> dict[str, Any]:
    """A visit at the door whose first answer names the photo taken there."""
    answers = fine_answers()
    first = next(iter(answers))
    answers[first] = {**answers[first], "photos": [str(photo)]}
    return visit_item(home_uuid, answers=answers, at=grid_centre(0))


def _push(http: httpx.Client, items: list[dict[str, Any]]) -> None:
    answer = http.post("/api/v1/sync/push", json={"items": items})
    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == ["created"] * len(items), answer.text


def _upload(http: httpx.Client, photo: uuid.UUID, visit_uuid: str, lon: float, lat: float) -> dict[str, Any]:
    answer = http.put(f"/api/v1/media/{photo}", params={"parent_kind": "visit", "parent_uuid": visit_uuid},
                      content=camera_jpeg(320, 240, lon=lon, lat=lat), headers={"Content-Type": "image/jpeg"})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_photo_and_visit_are_linked_at_once_in_either_order_without_a_worker(
    database_url: str, session: Session, tmp_path: Path
) -> None:
    town = make_town(session)
    volunteer = make_user(session, town.villages[0], Role.volunteer)
    home = household_item(0)
    lon, lat = home["data"]["lon"], home["data"]["lat"]
    with Cluster(database_url, tmp_path / "cluster", apis=1, workers=0) as cluster, \
            httpx.Client(base_url=cluster.urls[0], timeout=30, trust_env=False) as http:
        signed_in = http.post("/api/v1/auth/login", json={"phone": volunteer.phone, "password": TEST_PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        http.headers["Authorization"] = f"Bearer {signed_in.json()['access_token']}"
        _push(http, [home])

        # The visit first, then its photo: the upload's own answer says it is linked.
        photo = uuid.uuid4()
        visit = _visit_naming(home["client_uuid"], photo)
        _push(http, [visit])
        uploaded = _upload(http, photo, visit["client_uuid"], lon, lat)
        assert uploaded["linked"] is True, uploaded

        # The photo first (it had signal before the visit did), then the visit: the push links it.
        early = uuid.uuid4()
        later = _visit_naming(home["client_uuid"], early)
        assert _upload(http, early, later["client_uuid"], lon, lat)["linked"] is False
        _push(http, [later])
        shown = http.get(f"/api/v1/media/{early}")
        assert shown.status_code == 200, shown.text
        assert shown.json()["linked"] is True, shown.json()
        assert cluster.api_procs[0].alive()
