"""The awareness rate (知晓率) per school and unit against the 100 % target, and who may read it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.models import Agency
from backend.accounts.permissions import PERMISSIONS, Action, Role
from backend.core import clock
from backend.institutions.models import InstitutionKind
from tests.awareness.factories import API, answer, open_round, right_answers, school, sheet, wrong_answers
from tests.factories import make_town, make_user, sign_in, user_client
from tests.institutions.factories import make_institution


def _rates(client: TestClient, headers: dict[str, str], unit_id: int, period: str | None = None) -> dict[str, Any]:
    params: dict[str, object] = {"unit_id": unit_id}
    if period:
        params["period"] = period
    resp = client.get(f"{API}/rates", params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_rates_per_school_and_child_unit_and_the_schools_without_a_survey(client: TestClient,
                                                                          session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    a = school(session, town.villages[0], students=10)
    b = school(session, town.villages[0], students=20)
    c = school(session, town.villages[1], students=30)
    silent = school(session, town.villages[2], students=40)
    secondary = school(session, town.town, students=100, kind=InstitutionKind.secondary_school)  # at the town itself
    make_institution(session, town.villages[2].id or 0, InstitutionKind.hotel)  # not a school: never counted
    for place, right, wrong in ((a, 4, 1), (b, 2, 2), (c, 3, 0), (secondary, 0, 1)):
        code = open_round(client, coordinator.headers, place)["code"]
        for _ in range(right):
            assert answer(client, code, sheet()).status_code == 201
        for _ in range(wrong):
            assert answer(client, code, sheet(wrong_answers(2))).status_code == 201  # 6 of 8: does not know

    got = _rates(client, coordinator.headers, town.town.id or 0)

    assert got["target"] == 1.0
    assert got["totals"]["responses"] == 13
    assert (got["totals"]["knowing"], got["totals"]["rate"]) == (9, round(9 / 13, 4))
    assert got["totals"]["schools"] == 5 and got["totals"]["schools_without_survey"] == 1
    assert got["totals"]["meets_target"] is False
    units = {u["unit_id"]: u for u in got["units"]}
    assert (units[town.villages[0].id]["responses"], units[town.villages[0].id]["knowing"]) == (9, 6)
    assert units[town.villages[1].id]["rate"] == 1.0
    assert units[town.villages[2].id]["rate"] is None and units[town.villages[2].id]["schools_without_survey"] == 1
    assert units[town.town.id]["own_level"] is True and units[town.town.id]["rate"] == 0.0
    assert len([u for u in got["units"] if not u["own_level"]]) == len(town.villages)
    schools = {s["institution_id"]: s for s in got["schools"]}
    assert schools[a.id]["rate"] == 0.8 and schools[a.id]["participation"] == 0.5
    assert [s["institution_id"] for s in got["schools_without_survey"]] == [silent.id]


def test_a_resurvey_replaces_the_first_round_of_the_period(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    place = school(session, town.villages[0], students=10)
    first = open_round(client, coordinator.headers, place)
    for _ in range(3):
        answer(client, first["code"], sheet(wrong_answers(4)))
    client.post(f"{API}/rounds/{first['id']}/close", headers=coordinator.headers)
    clock.advance(timedelta(seconds=5))
    try:
        second = open_round(client, coordinator.headers, place)
        for _ in range(2):
            answer(client, second["code"], sheet(right_answers()))
        client.post(f"{API}/rounds/{second['id']}/close", headers=coordinator.headers)  # replaces once closed
        got = _rates(client, coordinator.headers, town.villages[0].id or 0)
    finally:
        clock.reset()
    assert [(s["round_id"], s["responses"], s["rate"]) for s in got["schools"]] == [(second["id"], 2, 1.0)]


def test_rounds_count_in_the_period_they_opened_in_china_time(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = make_user(session, town.town, Role.coordinator)
    place = school(session, town.villages[0], students=10)
    # 16:30 UTC on 31 March is 00:30 on 1 April in China: the round belongs to April.
    clock.freeze(datetime.fromisoformat("2026-03-31T16:30:00+00:00"))
    try:
        headers = sign_in(client, coordinator).headers
        code = open_round(client, headers, place)["code"]
        answer(client, code, sheet())
        april = _rates(client, headers, town.town.id or 0, "2026-04")
        march = _rates(client, headers, town.town.id or 0, "2026-03")
        quarter = _rates(client, headers, town.town.id or 0, "2026-Q2")
    finally:
        clock.reset()
    assert april["totals"]["responses"] == 1 and quarter["totals"]["responses"] == 1
    assert march["totals"]["responses"] == 0 and march["totals"]["schools_without_survey"] == 1


def test_a_malformed_period_is_refused(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    resp = client.get(f"{API}/rates", params={"unit_id": town.town.id, "period": "2026-13"},
                      headers=coordinator.headers)
    assert resp.status_code == 422 and resp.json()["code"] == "awareness-invalid-period"


READERS = sorted((r for r in Role if Action.survey_read in PERMISSIONS[r]), key=lambda r: r.value)


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_rates_scope_walk(client: TestClient, session: Session, role: Role) -> None:
    """Every role at village 0: its own village's rates, never village 1's (404), and nothing without the right."""
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    own, foreign = school(session, town.villages[0]), school(session, town.villages[1])
    for place in (own, foreign):
        answer(client, open_round(client, coordinator.headers, place)["code"], sheet())
    caller = sign_in(client, make_user(session, town.villages[0], role, agency=Agency.education)).headers

    mine = client.get(f"{API}/rates", params={"unit_id": town.villages[0].id}, headers=caller)
    theirs = client.get(f"{API}/rates", params={"unit_id": town.villages[1].id}, headers=caller)
    above = client.get(f"{API}/rates", params={"unit_id": town.town.id}, headers=caller)

    if role not in READERS:
        assert (mine.status_code, theirs.status_code) == (403, 403)
        return
    assert mine.status_code == 200
    assert [s["institution_id"] for s in mine.json()["schools"]] == [own.id]
    assert theirs.status_code == 404 and above.status_code == 404
