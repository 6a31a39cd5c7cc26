"""Questionnaire versions (问卷版本): the national version 1, a county's next version, immutability."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from tests.awareness.factories import API, answer, open_round, school
from tests.factories import make_town, user_client


def _version(pass_mark: int = 1) -> dict[str, Any]:
    return {"title_zh": "示范县问卷", "title_en": "County questionnaire", "pass_mark": pass_mark, "questions": [
        {"id": "k1", "text_zh": "隐私部位可以让别人摸吗？", "options": [
            {"id": "y", "text_zh": "可以"}, {"id": "n", "text_zh": "不可以"}], "correct": ["n"]},
        {"id": "k2", "text_zh": "求助电话有哪些？", "multiple": True, "options": [
            {"id": "a", "text_zh": "110"}, {"id": "b", "text_zh": "12355"}, {"id": "c", "text_zh": "114"}],
         "correct": ["a", "b"]},
    ]}


def test_the_national_version_is_there_from_the_start(client: TestClient, session: Session) -> None:
    town = make_town(session)
    reader = user_client(client, session, town.villages[0], Role.agency_staff, agency=Agency.education)
    listed = client.get(f"{API}/questionnaires", headers=reader.headers).json()
    assert [(q["national"], q["version"]) for q in listed] == [(True, 1)]
    assert len(listed[0]["questions"]) == 8 and listed[0]["pass_mark"] == 7


def test_a_county_publishes_its_next_version_and_its_schools_use_it(client: TestClient, session: Session) -> None:
    town = make_town(session)
    county = user_client(client, session, town.county, Role.coordinator)
    published = client.post(f"{API}/questionnaires", json=_version(), headers=county.headers)
    assert published.status_code == 201, published.text
    made = published.json()
    assert (made["version"], made["org_unit_id"], made["national"]) == (2, town.county.id, False)
    assert made["questions"][0]["text_en"] == made["questions"][0]["text_zh"]  # English falls back to Chinese

    opened = open_round(client, county.headers, school(session, town.villages[0]))
    assert (opened["questionnaire_id"], opened["questionnaire_version"]) == (made["id"], 2)
    form = client.get(opened["answer_path"]).json()
    assert [q["id"] for q in form["questions"]] == ["k1", "k2"]
    assert answer(client, opened["code"], {"response_uuid": "0f8fad5b-d9cb-469f-a165-70867728950e",
                                           "answers": {"k1": ["n"], "k2": ["b", "a"]}}).status_code == 201
    got = client.get(f"{API}/rounds/{opened['id']}", headers=county.headers).json()
    assert got["knowing"] == 1


def test_an_open_round_keeps_the_version_it_opened_with(client: TestClient, session: Session) -> None:
    town = make_town(session)
    county = user_client(client, session, town.county, Role.coordinator)
    opened = open_round(client, county.headers, school(session, town.villages[0]))
    client.post(f"{API}/questionnaires", json=_version(), headers=county.headers)
    form = client.get(f"{API}/answer/{opened['code']}").json()
    assert len(form["questions"]) == 8  # still the national version 1


def test_below_a_county_no_version_is_published(client: TestClient, session: Session) -> None:
    town = make_town(session)
    town_coordinator = user_client(client, session, town.town, Role.coordinator)
    resp = client.post(f"{API}/questionnaires", json=_version(), headers=town_coordinator.headers)
    assert resp.status_code == 403 and resp.json()["code"] == "awareness-publish-level"


def test_a_faulty_version_is_refused_and_nothing_is_published(client: TestClient, session: Session) -> None:
    town = make_town(session)
    county = user_client(client, session, town.county, Role.coordinator)
    resp = client.post(f"{API}/questionnaires", json=_version(pass_mark=3), headers=county.headers)
    assert resp.status_code == 422 and resp.json()["code"] == "awareness-questionnaire-invalid"
    assert len(client.get(f"{API}/questionnaires", headers=county.headers).json()) == 1


def test_versions_are_numbered_one_after_another(client: TestClient, session: Session) -> None:
    town = make_town(session)
    county = user_client(client, session, town.county, Role.coordinator)
    versions = [client.post(f"{API}/questionnaires", json=_version(), headers=county.headers).json()["version"]
                for _ in range(3)]
    assert versions == [2, 3, 4]


def test_a_countys_version_is_seen_below_and_above_it(client: TestClient, session: Session) -> None:
    town = make_town(session)
    county = user_client(client, session, town.county, Role.coordinator)
    made = client.post(f"{API}/questionnaires", json=_version(), headers=county.headers).json()
    village = user_client(client, session, town.villages[0], Role.coordinator)
    # The county is above the village: its version applies there and is seen.
    assert client.get(f"{API}/questionnaires/{made['id']}", headers=village.headers).status_code == 200
    province = user_client(client, session, town.province, Role.coordinator)
    assert client.get(f"{API}/questionnaires/{made['id']}", headers=province.headers).status_code == 200
    assert client.get(f"{API}/questionnaires/99999", headers=province.headers).status_code == 404
