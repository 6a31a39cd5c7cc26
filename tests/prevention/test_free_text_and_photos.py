"""What an activity may carry (outside test round 3, 6 and 9): no personal data in its note (it is read
by every activity reader of the area, market officers and judicial staff included, and pulled to
phones), and only photos its recorder uploaded for it; through REST and the sync push alike, where a
refused item is a per-item rejection and the others are stored."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.permissions import Role
from tests.factories import make_town, make_user
from tests.helpers.factories import make_child
from tests.media.conftest import media_root  # noqa: F401 (a fixture)
from tests.notifications.factories import headers_for
from tests.prevention.factories import item, village_data
from tests.prevention.test_photos_and_pull import upload

API = "/api/v1"
NOTE = "演示儿童0041 / 19900000006 / 990101198003037712"


def test_a_pushed_or_posted_note_with_personal_data_is_refused_item_by_item(
        client: TestClient, session: Session) -> None:
    town = make_town(session)
    make_child(session, town.grids[0][0], name="演示儿童0041")
    h = headers_for(session, make_user(session, town.villages[0], Role.volunteer))
    v0 = town.villages[0].id or 0
    posted = client.post(f"{API}/activities", headers=h, json={"client_uuid": str(uuid.uuid4()),
                                                              **village_data(v0, note=NOTE)})
    assert posted.status_code == 422 and posted.json()["code"] == "text-personal-data", posted.text
    assert posted.json()["field"] == "note"
    notes = [NOTE, "宣讲对象：演示儿童〇〇肆壹", "家长电话壹玖玖零零零零零零零陆", "宣讲防性侵知识，家长讲座一场。"]
    items = [item(village_data(v0, note=n)) for n in notes]
    results = client.post(f"{API}/sync/push", json={"items": items}, headers=h).json()["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected", "rejected", "created"], results
    assert [r["problem"]["kind"] for r in results[:3]] == ["id_number", "name", "phone"]
    assert {r["problem"]["code"] for r in results[:3]} == {"text-personal-data"}
    assert all(r["problem"]["field"] == "note" for r in results[:3])
    listed = client.get(f"{API}/activities", headers=h).json()["items"]
    assert [a["note"] for a in listed] == [notes[3]]


def test_an_activity_type_name_carries_no_personal_data(client: TestClient, session: Session) -> None:
    town = make_town(session)
    h = headers_for(session, make_user(session, town.county, Role.coordinator))
    resp = client.post(f"{API}/activity-types", headers=h, json={
        "code": "hotline", "name_zh": "热线19900000006宣传", "name_en": "Hotline"})
    assert resp.status_code == 422 and resp.json()["field"] == "name_zh", resp.text


@pytest.mark.usefixtures("media_root")
def test_an_activity_lists_only_photos_its_recorder_uploaded_for_it(client: TestClient, session: Session) -> None:
    town = make_town(session)
    v0 = town.villages[0].id or 0
    mine = headers_for(session, make_user(session, town.villages[0], Role.volunteer))
    other = headers_for(session, make_user(session, town.villages[0], Role.volunteer))
    theirs = item(village_data(v0))
    their_photo = upload(client, other, theirs["client_uuid"])
    assert client.post(f"{API}/sync/push", json={"items": [{**theirs, "data": {**theirs["data"], "photos": [
        their_photo]}}]}, headers=other).json()["results"][0]["status"] == "created"

    # Another user's photo (of their own activity, or taken for this one) is refused, REST and push.
    posted = client.post(f"{API}/activities", headers=mine, json={
        "client_uuid": str(uuid.uuid4()), **village_data(v0, photos=[their_photo])})
    assert posted.status_code == 422 and posted.json()["code"] == "activity-photo-not-recorders", posted.text
    assert posted.json()["field"] == "photos"
    claimed = item(village_data(v0))
    for_this = upload(client, other, claimed["client_uuid"])
    own_elsewhere_parent = item(village_data(v0))
    own_elsewhere = upload(client, mine, own_elsewhere_parent["client_uuid"])
    mixed = [{**claimed, "data": {**claimed["data"], "photos": [for_this]}},
             {**item(village_data(v0)), "data": {**village_data(v0), "photos": [own_elsewhere]}}]
    results = client.post(f"{API}/sync/push", json={"items": mixed}, headers=mine).json()["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected"], results
    assert {r["problem"]["code"] for r in results} == {"activity-photo-not-recorders"}

    # Its own photos, sent first, and photos not on the server yet (sent after the record) are listed.
    ok = item(village_data(v0))
    early = upload(client, mine, ok["client_uuid"])
    later = str(uuid.uuid4())
    [result] = client.post(f"{API}/sync/push", json={"items": [
        {**ok, "data": {**ok["data"], "photos": [early, later]}}]}, headers=mine).json()["results"]
    assert result["status"] == "created" and sorted(result["record"]["photos"]) == sorted([early, later]), result


@pytest.mark.usefixtures("media_root")
def test_a_reader_of_an_activity_cannot_take_the_photo_slot_it_lists(client: TestClient, session: Session) -> None:
    # The activity lists a photo its recorder has not sent yet; a market officer who reads the activity
    # sees the photo's id and tried to upload its own image under it (outside tester, issue 18 re-attack).
    from tests.prevention.test_photos_and_pull import JPEG, photo_row

    town = make_town(session)
    v0 = town.villages[0].id or 0
    recorder = headers_for(session, make_user(session, town.villages[0], Role.volunteer))
    reader = headers_for(session, make_user(session, town.town, Role.market_officer))
    pending = str(uuid.uuid4())
    activity = item(village_data(v0, photos=[pending]))
    [stored] = client.post(f"{API}/sync/push", json={"items": [activity]}, headers=recorder).json()["results"]
    assert stored["status"] == "created", stored
    params = {"parent_kind": "activity", "parent_uuid": activity["client_uuid"]}
    squat = client.put(f"{API}/media/{pending}", content=JPEG, headers=reader, params=params)
    assert squat.status_code == 403 and squat.json()["code"] == "media-parent-not-authors", squat.text
    own = client.put(f"{API}/media/{pending}", content=JPEG, headers=recorder, params=params)
    assert own.status_code == 201, own.text
    assert photo_row(session, pending).linked_at is not None
