"""Editing a record changes what the edit names and nothing else (sync.md, "Editing a record").

A phone holds only what it was given (a masked ID number, never the full one), so an edit that
sends back everything the phone holds, or only the fields that changed, must never erase a field the
phone could not see. Both paths, sync push and PUT, share one rule."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from backend.registry import idnumber
from tests.factories import SignedIn
from tests.registry.factories import (
    World,
    child_id,
    child_item,
    household_item,
    make_world,
    push,
    seed_household,
    statuses,
)

# The data fields a phone holds of a child after a pull (person_public less ids, versions and times).
PHONE_HELD = ["role", "name", "sex", "birth_date", "hukou_place", "residence", "in_school", "contact",
              "categories", "groups", "signs", "task_force", "assistance", "key_minor", "vulnerable"]


def _reveal(client: TestClient, w: World, person_id: int) -> str | None:
    resp = client.post(f"/api/v1/persons/{person_id}/reveal-id", json={"reason": "核对"}, headers=w.police.headers)
    assert resp.status_code == 200, resp.text
    value: str | None = resp.json()["id_number"]
    return value


def _child(client: TestClient, w: World, who: SignedIn, **extra: Any) -> tuple[dict[str, Any], str]:
    h = household_item(0)
    number = child_id()
    kid = child_item(h["client_uuid"], id_number=number, contact="13900000000", signs="常独自在家", **extra)
    body = push(client, who, [h, kid])
    assert statuses(body) == ["created", "created"], body
    return body["results"][1]["record"], number


def _held(record: dict[str, Any]) -> dict[str, Any]:
    """What an app sends back when it re-sends every field it holds."""
    data = {k: record[k] for k in PHONE_HELD}
    data["guardians"] = [{"uuid": g["uuid"], "relation": g["relation"]} for g in record.get("guardians", [])]
    return data


def test_an_app_that_sends_back_every_field_it_holds_keeps_the_id_number(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    record, number = _child(client, w, w.volunteer_a)
    edit = {**_held(record), "name": "改名儿童", "in_school": False}
    body = push(client, w.volunteer_a, [{"kind": "person", "client_uuid": record["uuid"], "base_version": 1,
                                         "data": edit}])
    assert statuses(body) == ["updated"], body
    stored = body["results"][0]["record"]
    assert stored["id_number_masked"] == record["id_number_masked"]
    assert (stored["name"], stored["in_school"], stored["version"]) == ("改名儿童", False, 2)
    assert _reveal(client, w, record["id"]) == number


def test_the_masked_number_sent_back_keeps_the_stored_one(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    record, number = _child(client, w, w.volunteer_a)
    edit = {**_held(record), "id_number": record["id_number_masked"], "signs": "已好转"}
    body = push(client, w.volunteer_a, [{"kind": "person", "client_uuid": record["uuid"], "base_version": 1,
                                         "data": edit}])
    assert statuses(body) == ["updated"], body
    assert _reveal(client, w, record["id"]) == number


def test_a_masked_form_of_an_older_app_sent_back_keeps_the_stored_one(client: TestClient, session: Session) -> None:
    # Until 2026-11-30 the masked form kept the last 4 characters too; phones still hold copies.
    w = make_world(client, session)
    record, number = _child(client, w, w.volunteer_a)
    edit = {**_held(record), "id_number": number[:6] + "********" + number[-4:], "signs": "已好转"}
    body = push(client, w.volunteer_a, [{"kind": "person", "client_uuid": record["uuid"], "base_version": 1,
                                         "data": edit}])
    assert statuses(body) == ["updated"], body
    assert _reveal(client, w, record["id"]) == number


def test_put_without_the_id_number_changes_only_what_it_names(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    record, number = _child(client, w, w.volunteer_a)
    resp = client.put(f"/api/v1/persons/{record['id']}", json={"version": 1, "residence": "县城"},
                      headers=w.volunteer_a.headers)
    assert resp.status_code == 200, resp.text
    after = resp.json()
    assert after["residence"] == "县城"
    assert {k: after[k] for k in PHONE_HELD if k != "residence"} == {k: record[k] for k in PHONE_HELD
                                                                     if k != "residence"}
    assert _reveal(client, w, record["id"]) == number


def test_null_clears_an_id_number_only_for_a_role_that_may_see_it(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    record, number = _child(client, w, w.volunteer_a)
    resp = client.put(f"/api/v1/persons/{record['id']}", json={"version": 1, "id_number": None, "contact": None},
                      headers=w.volunteer_a.headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["contact"] is None  # a field the volunteer sees is cleared by null
    assert _reveal(client, w, record["id"]) == number  # one it never saw is not
    resp = client.put(f"/api/v1/persons/{record['id']}", json={"version": 2, "id_number": None},
                      headers=w.coordinator.headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["id_number_masked"] is None and _reveal(client, w, record["id"]) is None


def test_an_edit_cannot_contradict_the_stored_id_number(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    record, _ = _child(client, w, w.volunteer_a)
    resp = client.put(f"/api/v1/persons/{record['id']}", json={"version": 1, "birth_date": "2015-01-01"},
                      headers=w.coordinator.headers)
    assert resp.status_code == 422 and resp.json()["field"] == "birth_date"


def test_a_birth_date_guessed_by_a_role_that_sees_only_the_month_is_not_checked(
    client: TestClient, session: Session
) -> None:
    # A check would be an oracle: thirty guesses give the day, and with the day only the number's
    # sequence stays hidden. Where the ID number fixes the date, the guess is ignored.
    w = make_world(client, session)
    record, number = _child(client, w, w.volunteer_a)
    born = f"{number[6:10]}-{number[10:12]}-{number[12:14]}"
    answers = []
    for version, guess in enumerate((born, "2015-01-01"), start=1):
        resp = client.put(f"/api/v1/persons/{record['id']}", json={"version": version, "birth_date": guess},
                          headers=w.volunteer_a.headers)
        assert resp.status_code == 200, resp.text
        answers.append({k: v for k, v in resp.json().items() if k not in {"version", "updated_at"}})
    assert answers[0] == answers[1] and answers[0]["birth_date"] is None
    assert answers[0]["birth_month"] == born[:7]
    seen = client.get(f"/api/v1/persons/{record['id']}", headers=w.coordinator.headers).json()
    assert seen["birth_date"] == born


def test_a_phone_sending_back_the_null_birth_date_it_was_given_keeps_the_date(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a, children=0)
    resp = client.post("/api/v1/persons", json={"household_uuid": home["uuid"], "name": "无证儿童",
                                                "birth_date": "2016-03-09"}, headers=w.volunteer_a.headers)
    assert resp.status_code == 201, resp.text
    held = resp.json()
    assert held["birth_date"] is None and held["birth_month"] == "2016-03"
    resp = client.put(f"/api/v1/persons/{held['id']}", json={**_held(held), "version": 1, "residence": "新址"},
                      headers=w.volunteer_a.headers)
    assert resp.status_code == 200, resp.text
    assert client.get(f"/api/v1/persons/{held['id']}", headers=w.coordinator.headers).json()["birth_date"] == (
        "2016-03-09")


def test_an_edit_that_nulls_a_required_field_is_rejected_and_stores_nothing(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    record, _ = _child(client, w, w.volunteer_a)
    body = push(client, w.volunteer_a, [{"kind": "person", "client_uuid": record["uuid"], "base_version": 1,
                                         "data": {"name": None}}])
    assert statuses(body) == ["rejected"]
    assert [e["field"] for e in body["results"][0]["problem"]["errors"]] == ["name"]
    again = client.get(f"/api/v1/persons/{record['id']}", headers=w.volunteer_a.headers).json()
    assert (again["name"], again["version"]) == (record["name"], 1)


def test_a_household_edit_keeps_its_grid_point_and_other_fields(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    h = household_item(0, 2, note="门口有狗")
    created = push(client, w.volunteer_a, [h])["results"][0]["record"]
    body = push(client, w.volunteer_a, [{"kind": "household", "client_uuid": created["uuid"], "base_version": 1,
                                         "data": {"address": "青山村2组8号"}}])
    assert statuses(body) == ["updated"], body
    after = body["results"][0]["record"]
    unchanged = ["org_unit_id", "lon", "lat", "head_name", "contact", "note"]
    assert {k: after[k] for k in unchanged} == {k: created[k] for k in unchanged}
    assert after["address"] == "青山村2组8号"


def test_an_edit_by_the_new_village_keeps_a_household_the_coordinator_placed_by_grid(
    client: TestClient, session: Session
) -> None:
    """The point still lies in village 1; village 2's volunteer sends it back unchanged with a new address."""
    w = make_world(client, session)
    created = push(client, w.volunteer_a, [household_item(0)])["results"][0]["record"]
    grid_b = w.town.grids[1][0].id
    moved = client.put(f"/api/v1/households/{created['id']}", json={"version": 1, "grid_id": grid_b},
                       headers=w.coordinator.headers).json()
    body = push(client, w.volunteer_b, [{"kind": "household", "client_uuid": created["uuid"], "base_version": 2,
                                         "data": {"address": "溪口村1号", "lon": moved["lon"], "lat": moved["lat"]}}])
    assert statuses(body) == ["updated"], body
    assert body["results"][0]["record"]["org_unit_id"] == grid_b


EDITABLE: dict[str, st.SearchStrategy[Any]] = {
    "name": st.sampled_from(["小明", "小红", "李某某"]),
    "hukou_place": st.one_of(st.none(), st.sampled_from(["青山村", "县城"])),
    "residence": st.one_of(st.none(), st.sampled_from(["青山村", "镇上"])),
    "in_school": st.one_of(st.none(), st.booleans()),
    "contact": st.one_of(st.none(), st.sampled_from(["13900000001", "13900000002"])),
    "categories": st.lists(st.sampled_from(["不良行为", "心理困境", "生活困境"]), unique=True, max_size=2),
    "groups": st.lists(st.sampled_from(["留守", "流动", "单亲"]), unique=True, max_size=2),
    "signs": st.one_of(st.none(), st.sampled_from(["常独自在家", "情绪低落"])),
    "vulnerable": st.booleans(),
    "id_number": st.sampled_from(["<absent>", "<null>", "<masked>"]),
}


def test_no_edit_by_a_volunteer_changes_a_field_it_did_not_name_or_erases_the_id_number(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)  # one town; each example edits a child of its own

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(edit=st.fixed_dictionaries({}, optional=EDITABLE), via_sync=st.booleans())
    def check(edit: dict[str, Any], via_sync: bool) -> None:
        record, number = _child(client, w, w.volunteer_a)
        data = dict(edit)
        marker = data.pop("id_number", "<absent>")
        if marker == "<null>":
            data["id_number"] = None
        elif marker == "<masked>":
            data["id_number"] = record["id_number_masked"]
        if via_sync:
            body = push(client, w.volunteer_a, [{"kind": "person", "client_uuid": record["uuid"], "base_version": 1,
                                                 "data": data}])
            assert statuses(body) == ["updated"], body
            after = body["results"][0]["record"]
        else:
            resp = client.put(f"/api/v1/persons/{record['id']}", json={"version": 1, **data},
                              headers=w.volunteer_a.headers)
            assert resp.status_code == 200, resp.text
            after = resp.json()
        for field in PHONE_HELD:
            expected = data.get(field, record[field])
            if field == "key_minor":
                expected = record["key_minor"] or bool(data.get("categories", record["categories"]))
            assert after[field] == expected, (field, data)
        assert _reveal(client, w, record["id"]) == number

    check()


def test_a_resent_edit_is_a_duplicate_not_a_second_version(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    record, _ = _child(client, w, w.volunteer_a)
    item = {"kind": "person", "client_uuid": record["uuid"], "base_version": 1, "data": {"signs": "已好转"}}
    assert statuses(push(client, w.volunteer_a, [item])) == ["updated"]
    again = push(client, w.volunteer_a, [item])
    assert statuses(again) == ["duplicate"] and again["results"][0]["record"]["version"] == 2
    assert str(uuid.UUID(record["uuid"])) == record["uuid"]


def test_half_a_point_is_refused_not_dropped(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    lonely = household_item(0)
    del lonely["data"]["lat"]
    body = push(client, w.volunteer_a, [lonely])
    assert statuses(body) == ["rejected"] and body["results"][0]["problem"]["code"] == "invalid-input", body
    home = household_item(0)
    push(client, w.volunteer_a, [home])
    edit = {"kind": "household", "client_uuid": home["client_uuid"], "base_version": 1, "data": {"lon": 1.0}}
    body = push(client, w.volunteer_a, [edit])
    assert statuses(body) == ["rejected"] and body["results"][0]["problem"]["field"] == "lat", body


def test_a_new_number_from_a_role_that_sees_the_month_is_not_checked_against_the_stored_date(
    client: TestClient, session: Session
) -> None:
    # Otherwise "the ID number's birth date does not match" for each wrong day, and something else
    # for the right one, gives the day away in at most 31 edits (even at a stale version, which
    # stores nothing).
    w = make_world(client, session)
    record, number = _child(client, w, w.volunteer_a)
    client.put(f"/api/v1/persons/{record['id']}", json={"version": 1, "residence": "县城"},
               headers=w.volunteer_a.headers)  # version 1 is stale now
    born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    answers = set()
    for day in (born, born.replace(day=1 if born.day != 1 else 2)):
        guess = idnumber.make(number[:6], day, 3)
        resp = client.put(f"/api/v1/persons/{record['id']}", json={"version": 1, "id_number": guess},
                          headers=w.volunteer_a.headers)
        answers.add((resp.status_code, resp.json().get("code")))
    assert answers == {(409, "stale-edit")}, answers
