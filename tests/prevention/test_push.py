"""Activities recorded offline reach the server exactly once (push kind `activity`), like visits."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlmodel import Session, col

from backend.accounts.permissions import Role
from backend.accounts.principal import Principal
from backend.audit.models import AuditEntry
from backend.core import clock
from backend.demo.town import grid_box
from backend.institutions.models import InstitutionKind
from backend.prevention.models import Activity
from backend.prevention.schemas import ActivityData
from backend.prevention.service import content_digest
from tests.factories import make_town, make_user
from tests.institutions.factories import make_institution
from tests.notifications.factories import headers_for
from tests.prevention.factories import item, point_data, school_data, today, village_data

PUSH = "/api/v1/sync/push"
RECORDER = Principal(user_id=7, roles=frozenset({Role.volunteer}), org_unit_id=5, org_path="/1/2/3/4/5/",
                     agency="womens_federation")


def push(client: TestClient, headers: dict[str, str], *items: dict[str, Any]) -> list[dict[str, Any]]:
    resp = client.post(PUSH, json={"items": list(items)}, headers=headers)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["results"])


def stored(session: Session, client_uuid: str) -> int:
    session.expire_all()
    return int(session.execute(select(func.count()).select_from(Activity)
                               .where(col(Activity.client_uuid) == uuid.UUID(client_uuid))).scalar_one())


@pytest.fixture
def field(client: TestClient, session: Session) -> dict[str, Any]:
    town = make_town(session)
    school = make_institution(session, town.villages[0].id or 0)
    volunteer = make_user(session, town.villages[0], Role.volunteer)
    return {"town": town, "school": school, "volunteer": volunteer, "headers": headers_for(session, volunteer)}


def test_a_new_activity_is_created_with_its_place_and_audience_and_audited(
        client: TestClient, session: Session, field: dict[str, Any]) -> None:
    one = item(school_data(field["school"].id, students=250, note="讲解防性侵知识"))
    [result] = push(client, field["headers"], one)
    assert result["status"] == "created", result
    record = result["record"]
    assert record["institution_id"] == field["school"].id
    assert record["org_unit_id"] == field["town"].villages[0].id
    assert record["place_name"] == field["school"].name
    assert record["audience"] == {"students": 250, "parents": 8, "villagers": 0, "others": 0, "total": 258}
    assert record["type_zh"] == "进校园"
    entry = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "activity.create",
                                                     col(AuditEntry.object_id) == str(record["id"]))).scalar_one()
    assert entry.actor_user_id == field["volunteer"].id and entry.details["via"] == "sync"


def test_the_same_batch_resent_creates_nothing_new(client: TestClient, session: Session,
                                                   field: dict[str, Any]) -> None:
    batch = [item(school_data(field["school"].id)), item(village_data(field["town"].villages[0].id))]
    first = push(client, field["headers"], *batch)
    again = push(client, field["headers"], *batch)
    assert [r["status"] for r in first] == ["created", "created"]
    assert [r["status"] for r in again] == ["duplicate", "duplicate"]
    assert [r["record"]["id"] for r in again] == [r["record"]["id"] for r in first]
    assert all(stored(session, i["client_uuid"]) == 1 for i in batch)


def test_a_resend_written_differently_by_the_app_is_a_duplicate(client: TestClient, session: Session,
                                                               field: dict[str, Any]) -> None:
    """Another offset for the same instant, integers for floats, explicit nulls and empty defaults."""
    lon, lat = 108.3051, 30.0021
    at = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    data = point_data(lon, lat, device_time=at.isoformat())
    resent = {**data, "device_time": at.astimezone(clock.SHANGHAI).isoformat(), "note": None, "photos": [],
              "point": {"lon": lon, "lat": lat, "crs": "wgs84"},
              "audience": {"villagers": 300, "students": 0}, "organiser_unit_id": None}
    one = item(data)
    assert push(client, field["headers"], one)[0]["status"] == "created"
    assert push(client, field["headers"], {**one, "data": resent})[0]["status"] == "duplicate"
    assert stored(session, one["client_uuid"]) == 1


def test_the_same_uuid_with_other_content_is_a_conflict_and_nothing_is_overwritten(
        client: TestClient, session: Session, field: dict[str, Any]) -> None:
    one = item(school_data(field["school"].id, students=100))
    push(client, field["headers"], one)
    changed = {**one, "data": school_data(field["school"].id, students=101)}
    [result] = push(client, field["headers"], changed)
    assert result["status"] == "conflict" and result["problem"]["code"] == "activity-conflict"
    session.expire_all()
    row = session.execute(select(Activity).where(col(Activity.client_uuid) == uuid.UUID(one["client_uuid"]))
                          ).scalar_one()
    assert row.students == 100


def test_one_bad_item_is_rejected_alone_with_its_reason(client: TestClient, session: Session,
                                                        field: dict[str, Any]) -> None:
    town = field["town"]
    foreign_school = make_institution(session, town.villages[1].id or 0)
    hotel = make_institution(session, town.villages[0].id or 0, InstitutionKind.hotel)
    good = item(village_data(town.villages[0].id))
    bad = [
        item(school_data(foreign_school.id)),  # another village's school
        item(school_data(hotel.id)),  # not a school
        item(village_data(town.villages[1].id)),  # another village
        item(village_data(town.grids[0][0].id)),  # a grid is no village
        item(school_data(field["school"].id, type_code="no_such_type")),
        item(school_data(field["school"].id, held_date=(today() + timedelta(days=3)).isoformat())),
        item(school_data(field["school"].id, held_date=(today() - timedelta(days=400)).isoformat())),
        item(school_data(field["school"].id, audience={"students": -1})),
        item(school_data(field["school"].id, audience={"students": 100_001})),
        item({**village_data(town.villages[0].id), "institution_id": field["school"].id}),
        item(point_data(108.3, 30.0, place_name=" \u200b ")),
        item(school_data(field["school"].id, unexpected="x")),
    ]
    results = push(client, field["headers"], *bad[:6], good, *bad[6:])
    statuses = [r["status"] for r in results]
    assert statuses == ["rejected"] * 6 + ["created"] + ["rejected"] * 6, results
    codes = [r["problem"]["code"] for r in results if r["status"] == "rejected"]
    assert codes[:7] == ["activity-place-not-found"] * 4 + ["activity-type-unknown"] + ["activity-date-invalid"] * 2
    assert all(stored(session, i["client_uuid"]) == 0 for i in bad)


def test_a_phone_offline_for_days_syncs_last_weeks_activities(client: TestClient, session: Session,
                                                              field: dict[str, Any]) -> None:
    """Recorded nine days ago, device time from then, pushed now: stored with the date it was held."""
    recorded = (clock.now() - timedelta(days=9)).astimezone(clock.SHANGHAI)
    data = school_data(field["school"].id, days_ago=9, device_time=recorded.isoformat())
    [result] = push(client, field["headers"], item(data))
    assert result["status"] == "created"
    assert result["record"]["held_date"] == (today() - timedelta(days=9)).isoformat()


def test_roles_without_the_right_are_refused_per_item(client: TestClient, session: Session,
                                                      field: dict[str, Any]) -> None:
    helper = make_user(session, field["town"].villages[0], Role.helper)
    [result] = push(client, headers_for(session, helper), item(village_data(field["town"].villages[0].id)))
    assert result["status"] == "rejected" and result["problem"]["status"] == 403


def test_a_grid_worker_records_in_its_own_village_and_at_its_school(client: TestClient, session: Session,
                                                                    field: dict[str, Any]) -> None:
    town = field["town"]
    worker = make_user(session, town.grids[0][1], Role.grid_worker)
    headers = headers_for(session, worker)
    results = push(client, headers, item(village_data(town.villages[0].id)), item(school_data(field["school"].id)),
                   item(village_data(town.villages[1].id)))
    assert [r["status"] for r in results] == ["created", "created", "rejected"]
    own = client.get(f"/api/v1/activities/{results[0]['record']['id']}", headers=headers)
    assert own.status_code == 200  # the recorder sees its own, though the village is above its grid


def test_a_point_counts_in_the_village_it_lies_in(client: TestClient, session: Session,
                                                  field: dict[str, Any]) -> None:
    town = field["town"]
    coordinator = make_user(session, town.town, Role.coordinator)
    west, south, east, north = grid_box(2, 1)
    [result] = push(client, headers_for(session, coordinator),
                    item(point_data((west + east) / 2, (south + north) / 2)))
    assert result["status"] == "created" and result["record"]["org_unit_id"] == town.villages[2].id


def test_rest_and_push_share_one_exactly_once(client: TestClient, session: Session, field: dict[str, Any]) -> None:
    data = school_data(field["school"].id)
    client_uuid = str(uuid.uuid4())
    first = client.post("/api/v1/activities", json={**data, "client_uuid": client_uuid}, headers=field["headers"])
    assert first.status_code == 201, first.text
    again = client.post("/api/v1/activities", json={**data, "client_uuid": client_uuid}, headers=field["headers"])
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert push(client, field["headers"], item(data, client_uuid))[0]["status"] == "duplicate"
    other = client.post("/api/v1/activities", json={**data, "client_uuid": client_uuid, "note": "改"},
                        headers=field["headers"])
    assert other.status_code == 409 and other.json()["code"] == "activity-conflict"
    assert stored(session, client_uuid) == 1


def test_two_phones_racing_with_one_uuid_store_it_once(client: TestClient, session: Session,
                                                       field: dict[str, Any]) -> None:
    """Two requests at once through the real app: one creates, the other is a duplicate, never a 500."""
    one = item(school_data(field["school"].id))
    answers: list[str] = []
    barrier = threading.Barrier(2)

    def send() -> None:
        barrier.wait()
        resp = client.post(PUSH, json={"items": [one]}, headers=field["headers"])
        answers.append(resp.json()["results"][0]["status"] if resp.status_code == 200 else str(resp.status_code))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(answers) == ["created", "duplicate"], answers
    assert stored(session, one["client_uuid"]) == 1


_texts = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N")), min_size=1, max_size=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(students=st.integers(0, 100_000), lon=st.floats(100, 120), lat=st.floats(20, 40), name=_texts,
       offset=st.integers(-12, 14), note=st.one_of(st.none(), _texts))
def test_any_reserialisation_has_the_digest_of_its_record_and_any_change_another(
        students: int, lon: float, lat: float, name: str, offset: int, note: str | None) -> None:
    """The digest decides duplicate or conflict: the same record written any way must match, and
    changing any field must not."""
    from datetime import timezone
    at = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
    base = {"type_code": "market_day", "held_date": "2026-10-01", "place_kind": "point", "place_name": name,
            "point": {"lon": lon, "lat": lat}, "audience": {"students": students}, "note": note,
            "device_time": at.isoformat()}
    # The copy the server answered: the defaults it applied (the recorder's unit and agency) written
    # out, a blank note, the photos in another order.
    photos = sorted(str(uuid.UUID(int=i + 1)) for i in range(3))
    base["photos"] = photos
    rewritten = {**base, "device_time": at.astimezone(timezone(timedelta(hours=offset))).isoformat(),
                 "audience": {"students": students, "parents": 0, "villagers": 0, "others": 0},
                 "point": {"lon": lon, "lat": lat, "crs": "wgs84"}, "photos": photos[::-1],
                 "organiser_unit_id": RECORDER.org_unit_id, "organiser_agency": RECORDER.agency,
                 "note": note if note is not None else "  \u200b "}
    digest = content_digest(ActivityData.model_validate(base), RECORDER)
    assert content_digest(ActivityData.model_validate(rewritten), RECORDER) == digest
    changed = {**base, "audience": {"students": students + 1 if students < 100_000 else 0}}
    assert content_digest(ActivityData.model_validate(changed), RECORDER) != digest
    assert content_digest(ActivityData.model_validate({**base, "place_name": name + "X"}), RECORDER) != digest
    assert content_digest(ActivityData.model_validate({**base, "organiser_agency": "judicial"}), RECORDER) != digest


def test_a_point_in_another_village_or_outside_the_area_is_refused_not_filed_under_the_recorder(
        client: TestClient, session: Session, field: dict[str, Any]) -> None:
    """A volunteer of village 0 cannot make a market day in village 1 (or in Beijing) count for village
    0, whether or not it names its own village: the point decides where an activity counts."""
    town = field["town"]
    west, south, east, north = grid_box(1, 2)
    in_village_1 = ((west + east) / 2, (south + north) / 2)
    own_id = town.villages[0].id
    attempts = [item(point_data(*in_village_1)), item(point_data(*in_village_1, org_unit_id=own_id)),
                item(point_data(116.4, 39.9)), item(point_data(116.4, 39.9, org_unit_id=own_id))]
    results = push(client, field["headers"], *attempts)
    assert [r["status"] for r in results] == ["rejected"] * 4, results
    assert {r["problem"]["code"] for r in results} == {"activity-place-not-found"}
    assert all(stored(session, i["client_uuid"]) == 0 for i in attempts)
    # The town's coordinator may record it: it counts for village 1, not for the coordinator's town.
    coordinator = make_user(session, town.town, Role.coordinator)
    [ok] = push(client, headers_for(session, coordinator), item(point_data(*in_village_1)))
    assert ok["status"] == "created" and ok["record"]["org_unit_id"] == town.villages[1].id
    [far] = push(client, headers_for(session, coordinator), item(point_data(116.4, 39.9)))
    assert far["status"] == "rejected" and far["problem"]["code"] == "activity-place-not-found"


def test_the_copy_the_server_answered_resent_is_a_duplicate(client: TestClient, session: Session,
                                                            field: dict[str, Any]) -> None:
    """A phone that stores the server's answer and resends it (the defaults the server applied written
    out, a blank note, photos in another order) must not be told `conflict`: the spec tells it to
    record a conflicting activity again under a new UUID, which would count it twice."""
    photos = [str(uuid.uuid4()) for _ in range(3)]
    one = item(village_data(field["town"].villages[0].id, photos=photos))
    [created] = push(client, field["headers"], one)
    assert created["status"] == "created", created
    record = created["record"]
    for resent in ({"organiser_unit_id": record["organiser_unit_id"]},
                   {"organiser_agency": record["organiser_agency"]},
                   {"note": ""}, {"note": "   "}, {"photos": photos[::-1]}):
        [again] = push(client, field["headers"], {**one, "data": {**one["data"], **resent}})
        assert again["status"] == "duplicate", (resent, again)
    assert stored(session, one["client_uuid"]) == 1


def test_a_point_activity_resent_as_the_server_stored_it_is_a_duplicate(client: TestClient, session: Session,
                                                                        field: dict[str, Any]) -> None:
    """The stored copy of a point names the unit the point lies in and keeps seven decimals in WGS-84;
    a phone resending that copy (the unit written out, the coordinates as stored) is not a conflict."""
    lon, lat = 108.30512345678, 30.01234567891
    one = item(point_data(lon, lat))
    [created] = push(client, field["headers"], one)
    assert created["status"] == "created", created
    record = created["record"]
    point = {"lon": round(lon, 7), "lat": round(lat, 7), "crs": "wgs84"}
    for resent in ({"org_unit_id": record["org_unit_id"]}, {"point": point},
                   {"point": point, "org_unit_id": record["org_unit_id"]}):
        [again] = push(client, field["headers"], {**one, "data": {**one["data"], **resent}})
        assert again["status"] == "duplicate", (resent, again)
    [other] = push(client, field["headers"], {**one, "data": {**one["data"], "place_name": "别处"}})
    assert other["status"] == "conflict"
    assert stored(session, one["client_uuid"]) == 1
