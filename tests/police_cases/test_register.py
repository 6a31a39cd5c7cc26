"""The police case register (立案): registering with links, validation, status transitions, who sees
which case and what of it, and the audit of every read and change."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.audit import disclosure
from backend.audit.models import AuditEntry
from backend.core import clock
from tests.police_cases.factories import API, SUNDAY_NIGHT, Station, case_body, china_today, register


def _entries(session: Session, action: str) -> list[AuditEntry]:
    return list(session.execute(select(AuditEntry).where(col(AuditEntry.action) == action)
                                .order_by(col(AuditEntry.id))).scalars())


def test_police_register_a_case_with_its_links_and_read_it_back(client: TestClient, session: Session) -> None:
    st = Station(client, session)
    referral_id, case_id = st.referred_case()
    suspect, venue = st.risk_person(), st.venue()
    made = register(st, referral_id=referral_id, child_case_ids=[case_id], risk_person_ids=[suspect],
                    venue_ids=[venue.id], victims=2)
    assert made["station_unit_id"] == st.town.town.id and made["status"] == "filed"
    assert made["filed_date"] == china_today().isoformat()
    assert (made["category"], made["category_zh"]) == ("child_molestation", "猥亵儿童")
    assert (made["referral_id"], made["child_case_ids"], made["risk_person_ids"], made["venue_ids"]) == (
        referral_id, [case_id], [suspect], [venue.id])
    assert made["summary"] == "某宾馆内猥亵儿童" and made["summary_withheld"] is False
    assert made["allowed"] == ["investigating", "closed"]
    assert [e["action"] for e in made["history"]] == ["register"]

    got = client.get(f"{API}/police-cases/{made['id']}", headers=st.headers("police")).json()
    assert got["victims"] == 2 and got["review_ids"] == []
    listed = client.get(f"{API}/police-cases", headers=st.headers("police"), params={"status": "filed"}).json()
    assert [c["id"] for c in listed] == [made["id"]]
    assert client.get(f"{API}/police-cases", headers=st.headers("police"),
                      params={"category": "rape"}).json() == []

    # An edit keeps what it does not name and replaces a list it names.
    edited = client.patch(f"{API}/police-cases/{made['id']}", headers=st.headers("police"),
                          json={"victims": 3, "venue_ids": [], "summary": "更正"}).json()
    assert (edited["victims"], edited["venue_ids"], edited["risk_person_ids"], edited["summary"]) == (
        3, [], [suspect], "更正")
    assert edited["history"][-1]["action"] == "edit"
    assert sorted(edited["history"][-1]["fields"]) == ["summary", "venue_ids", "victims"]
    # A field an edit cannot change (the station; the status has its own call) is refused by name.
    moved = client.patch(f"{API}/police-cases/{made['id']}", headers=st.headers("police"),
                         json={"unit_id": 5, "victims": 4})
    assert moved.status_code == 422 and moved.json()["errors"][0]["field"] == "unit_id", moved.text
    assert client.get(f"{API}/police-cases/{made['id']}", headers=st.headers("police")).json()["victims"] == 3


def test_a_case_number_is_unique_per_station(client: TestClient, session: Session) -> None:
    st = Station(client, session)
    neighbour = st.other_town()
    town = st.town.town.id
    register(st, who="county_police", number="X-1", unit_id=town)
    refused = client.post(f"{API}/police-cases", json=case_body("X-1", unit_id=town),
                          headers=st.headers("county_police"))
    assert refused.status_code == 409 and refused.json()["code"] == "police-case-number-taken", refused.text
    # Another station may use the same number.
    other = client.post(f"{API}/police-cases", json=case_body("X-1", unit_id=neighbour.id),
                        headers=st.headers("county_police"))
    assert other.status_code == 201, other.text
    # So may an edit not take a number its station already used.
    second = register(st, who="county_police", number="X-2", unit_id=town)
    clash = client.patch(f"{API}/police-cases/{second['id']}", json={"case_number": "X-1"},
                         headers=st.headers("county_police"))
    assert clash.status_code == 409 and clash.json()["code"] == "police-case-number-taken"


def test_the_filing_date_is_a_china_date_and_never_in_the_future(client: TestClient, session: Session) -> None:
    clock.freeze(SUNDAY_NIGHT + timedelta(hours=1))  # Monday 30 November, 00:30 China time (Sunday in UTC)
    st = Station(client, session)
    monday = register(st, number="D-1", filed_date="2026-11-30")
    assert monday["filed_date"] == "2026-11-30"
    assert register(st, number="D-2")["filed_date"] == "2026-11-30"
    refused = client.post(f"{API}/police-cases", json=case_body("D-3", filed_date="2026-12-01"),
                          headers=st.headers("police"))
    assert refused.status_code == 422 and refused.json()["code"] == "police-case-date-invalid", refused.text


def test_validation(client: TestClient, session: Session) -> None:
    st = Station(client, session)
    h = st.headers("police")
    assert client.post(f"{API}/police-cases", json=case_body(category="arson"), headers=h).status_code == 422
    assert client.post(f"{API}/police-cases", json=case_body(victims=-1), headers=h).status_code == 422
    assert client.post(f"{API}/police-cases", json=case_body(number="  "), headers=h).status_code == 422
    # The station is a town of the caller's jurisdiction.
    village = client.post(f"{API}/police-cases", json=case_body(unit_id=st.town.villages[0].id), headers=h)
    assert village.status_code == 422 and village.json()["code"] == "police-station-invalid"
    county = client.post(f"{API}/police-cases", json=case_body(unit_id=st.town.county.id), headers=h)
    assert county.status_code == 404
    categories = client.get(f"{API}/police-cases/categories", headers=h).json()
    assert [c["code"] for c in categories] == ["rape", "child_molestation", "forcible_indecency",
                                               "child_prostitution", "child_trafficking", "other"]
    assert categories[3]["label_zh"] == "组织、强迫、引诱未成年人卖淫"


def test_links_the_caller_may_not_see_are_refused_as_if_missing(client: TestClient, session: Session) -> None:
    st = Station(client, session)
    referral_id, case_id = st.referred_case()
    by_hand = st.case_by_hand()  # no referral: police do not see it
    venue, suspect, sealed = st.venue(), st.risk_person(), st.risk_person(sealed=True)
    neighbour = st.police_of(st.other_town())  # everything above lies outside its jurisdiction

    def refused(headers: dict[str, str], **links: object) -> dict[str, object]:
        resp = client.post(f"{API}/police-cases", json=case_body(**links), headers=headers)
        assert resp.status_code == 422, resp.text
        body: dict[str, object] = resp.json()
        assert body["code"] == "police-case-link-not-found"
        return body

    h = st.headers("police")
    missing = refused(h, child_case_ids=[999999])
    hidden = refused(neighbour, child_case_ids=[case_id])
    assert (missing["field"], missing["ids"], hidden["field"], hidden["ids"]) == (
        "child_case_ids", [999999], "child_case_ids", [case_id])
    assert refused(h, child_case_ids=[case_id, by_hand])["ids"] == [by_hand]
    assert refused(neighbour, venue_ids=[venue.id])["field"] == "venue_ids"
    assert refused(neighbour, risk_person_ids=[suspect])["field"] == "risk_person_ids"
    assert refused(h, risk_person_ids=[sealed])["field"] == "risk_person_ids"
    assert refused(neighbour, referral_id=referral_id)["field"] == "referral_id"
    assert refused(h, referral_id=999999)["field"] == "referral_id"
    assert client.get(f"{API}/police-cases", headers=st.headers("county_police")).json() == []


def test_status_moves_on_and_closes_with_a_reason(client: TestClient, session: Session) -> None:
    st = Station(client, session)
    made = register(st)
    url = f"{API}/police-cases/{made['id']}/status"
    h = st.headers("police")
    skip = client.post(url, json={"to": "transferred_for_prosecution"}, headers=h)
    assert skip.status_code == 409 and skip.json()["code"] == "police-case-transition-invalid"
    assert skip.json()["allowed"] == ["investigating", "closed"]
    # RFC 9457: `status` is the HTTP code; the case's status is `current_status`.
    assert (skip.json()["status"], skip.json()["current_status"]) == (409, "filed")
    # The Chinese detail is Chinese throughout: the statuses by their Chinese names.
    assert skip.json()["detail"] == "案件状态为已立案，不能变更为移送起诉；可变更为：侦查中、已结案", skip.text
    english = client.post(url, json={"to": "transferred_for_prosecution"}, headers={**h, "Accept-Language": "en"})
    assert english.json()["detail"] == ("A case in status filed cannot become transferred_for_prosecution; "
                                        "allowed: investigating, closed")
    assert client.post(url, json={"to": "investigating"}, headers=h).json()["status"] == "investigating"
    moved = client.post(url, json={"to": "transferred_for_prosecution"}, headers=h).json()
    assert (moved["status"], moved["status_zh"], moved["allowed"]) == ("transferred_for_prosecution", "移送起诉",
                                                                       ["closed"])
    bad = client.post(url, json={"to": "closed", "reason": "tired"}, headers=h)
    assert bad.status_code == 422 and bad.json()["code"] == "police-close-reason-invalid"
    no_note = client.post(url, json={"to": "closed", "reason": "other"}, headers=h)
    assert no_note.status_code == 422 and no_note.json()["field"] == "note"
    closed = client.post(url, json={"to": "closed", "reason": "judged", "note": "一审判决"}, headers=h).json()
    assert (closed["status"], closed["close_reason"], closed["close_note"], closed["allowed"]) == (
        "closed", "judged", "一审判决", [])
    assert closed["closed_at"] is not None
    assert [(e["from_status"], e["to_status"]) for e in closed["history"]] == [
        (None, "filed"), ("filed", "investigating"), ("investigating", "transferred_for_prosecution"),
        ("transferred_for_prosecution", "closed")]
    assert client.post(url, json={"to": "investigating"}, headers=h).status_code == 409
    edit = client.patch(f"{API}/police-cases/{made['id']}", json={"victims": 4}, headers=h)
    assert edit.status_code == 409 and edit.json()["code"] == "police-case-transition-invalid"
    assert (edit.json()["status"], edit.json()["current_status"], edit.json()["allowed"]) == (409, "closed", [])
    assert edit.json()["detail"] == "案件状态为已结案，不能修改；可变更为：无"
    # A filed case may close at once (撤案).
    other = register(st, number="B-2")
    withdrawn = client.post(f"{API}/police-cases/{other['id']}/status", json={"to": "closed", "reason": "withdrawn"},
                            headers=h)
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "closed"


def test_who_sees_which_case_and_what_of_it(client: TestClient, session: Session) -> None:
    st = Station(client, session)
    referral_id, case_id = st.referred_case()
    by_hand, suspect, sealed, venue = st.case_by_hand(), st.risk_person(), st.risk_person(), st.venue()
    made = register(st, referral_id=referral_id, child_case_ids=[case_id], risk_person_ids=[suspect, sealed],
                    venue_ids=[venue.id])
    url = f"{API}/police-cases/{made['id']}"
    # The town's and the county's police see it; another town's police do not (404, as for a missing id).
    assert client.get(url, headers=st.headers("county_police")).status_code == 200
    neighbour = st.police_of(st.other_town())
    for call in (client.get(url, headers=neighbour),
                 client.patch(url, json={"victims": 2}, headers=neighbour),
                 client.post(f"{url}/status", json={"to": "investigating"}, headers=neighbour)):
        assert call.status_code == 404 and call.json()["code"] == "police-case-not-found", call.text
    assert client.get(f"{API}/police-cases", headers=neighbour).json() == []
    # Roles without the register learn nothing of it.
    for who in ("market", "volunteer", "helper", "agency_staff"):
        assert client.get(url, headers=st.headers(who)).status_code == 404
    # Coordinators read the entry without the summary; they do not edit it.
    seen = client.get(url, headers=st.headers("coordinator")).json()
    assert (seen["summary"], seen["summary_withheld"], seen["case_number"]) == (None, True, "A2026001")
    assert client.patch(url, json={"victims": 2}, headers=st.headers("coordinator")).status_code == 404
    # Links follow the reader's own rights: an entry sealed after linking leaves every answer.
    from backend.registry.models import RiskPerson

    row = session.get(RiskPerson, sealed)
    assert row is not None
    row.sealed = True
    session.add(row)
    session.commit()
    assert client.get(url, headers=st.headers("police")).json()["risk_person_ids"] == [suspect]
    assert client.get(url, headers=st.headers("coordinator")).json()["risk_person_ids"] == [suspect]
    # A coordinator links the case by hand it sees; police reading it do not get that link.
    client.patch(url, json={"child_case_ids": [case_id]}, headers=st.headers("police"))
    from backend.police_cases.models import PoliceCaseLink

    session.add(PoliceCaseLink(police_case_id=made["id"], kind="child_case", target_id=by_hand))
    session.commit()
    assert client.get(url, headers=st.headers("police")).json()["child_case_ids"] == [case_id]
    assert client.get(url, headers=st.headers("coordinator")).json()["child_case_ids"] == sorted([case_id, by_hand])


def test_every_read_and_change_is_audited(client: TestClient, session: Session) -> None:
    st = Station(client, session)
    _, case_id = st.referred_case()
    made = register(st, child_case_ids=[case_id])
    [entry] = _entries(session, "police_case.register")
    assert entry.object_type == "police_case" and entry.object_id == str(made["id"])
    assert entry.details["changed"] == {disclosure.POLICE_CASE: str(made["id"])}
    client.get(f"{API}/police-cases/{made['id']}", headers=st.headers("coordinator"))
    [read] = _entries(session, "police_case.read")
    assert read.details["read"] == {disclosure.CASE: str(case_id), disclosure.POLICE_CASE: str(made["id"])}
    assert read.object_id == str(made["id"]) and read.org_unit_id == st.town.town.id
    client.get(f"{API}/police-cases", headers=st.headers("police"))
    listed = _entries(session, "records.read")[-1]
    assert listed.details["read"][disclosure.POLICE_CASE] == str(made["id"])
    client.post(f"{API}/police-cases/{made['id']}/status", json={"to": "investigating"}, headers=st.headers("police"))
    [moved] = _entries(session, "police_case.status")
    assert moved.details["from"] == "filed" and moved.details["to"] == "investigating"
    client.patch(f"{API}/police-cases/{made['id']}", json={"victims": 5}, headers=st.headers("police"))
    [edited] = _entries(session, "police_case.edit")
    assert edited.details["fields"] == ["victims"]
