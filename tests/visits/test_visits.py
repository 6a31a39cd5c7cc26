"""The 六看六问 visit: location check, risk rules, referrals, amendments, template versions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session, col

from backend.audit.models import AuditEntry
from backend.core import clock
from backend.core.geo import wgs84_to_gcj02
from backend.visits import risk_rules
from backend.visits.models import Visit
from tests.registry.factories import fine_answers, grid_centre, make_world, push, seed_household, statuses, visit_item


def _abuse_answers() -> dict[str, Any]:
    answers = fine_answers()
    answers["look1"] = {"value": "yes", "note": "手臂有淤青，孩子回避"}
    return answers


def test_fix_near_the_household_is_not_flagged(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    lon, lat = home["lon"] + 0.0005, home["lat"]  # about 48 m east
    record = push(client, w.volunteer_a, [visit_item(home["uuid"], at=(lon, lat))])["results"][0]["record"]
    assert record["location_mismatch"] is False
    assert 40 < record["distance_m"] < 60


def test_far_or_inaccurate_fix_is_kept_and_flagged_for_coordinators(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    far = visit_item(home["uuid"], at=(home["lon"] + 0.01, home["lat"]))  # about 960 m
    vague = visit_item(home["uuid"], at=(home["lon"], home["lat"]), accuracy_m=500)
    body = push(client, w.volunteer_a, [far, vague])
    assert statuses(body) == ["created", "created"]
    assert [r["record"]["location_mismatch"] for r in body["results"]] == [True, True]
    flagged = client.get("/api/v1/visits", params={"location_mismatch": True}, headers=w.coordinator.headers).json()
    assert {v["client_uuid"] for v in flagged} == {far["client_uuid"], vague["client_uuid"]}


def test_gcj02_fix_is_stored_in_wgs84(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    glon, glat = wgs84_to_gcj02(home["lon"], home["lat"])  # GCJ-02 shifts by ~500 m here
    record = push(client, w.volunteer_a, [visit_item(home["uuid"], at=(glon, glat), crs="gcj02")])["results"][0][
        "record"
    ]
    assert record["location_mismatch"] is False
    assert abs(record["lon"] - home["lon"]) < 1e-6 and record["reported_crs"] == "gcj02"


def test_look1_abuse_answer_creates_a_referral_visible_to_police_only(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, kids = seed_household(client, w.volunteer_a)
    body = push(
        client,
        w.volunteer_a,
        [visit_item(home["uuid"], answers=_abuse_answers(), at=grid_centre(0), children_seen=[kids[0]["uuid"]])],
    )
    visit = body["results"][0]["record"]
    assert visit["risk_level"] == "重大风险"
    referrals = client.get("/api/v1/referrals", headers=w.police.headers).json()
    assert len(referrals) == 1
    referral = referrals[0]
    assert referral["visit_id"] == visit["id"] and referral["status"] == "new"
    assert referral["police_unit_id"] == w.town.town.id
    assert referral["child_ids"] == [kids[0]["id"]]
    assert referral["receive_due_at"] < referral["handle_due_at"]
    # Invisible to the volunteer who recorded it: as if it did not exist.
    assert client.get("/api/v1/referrals", headers=w.volunteer_a.headers).status_code == 404
    assert client.get(f"/api/v1/referrals/{referral['id']}", headers=w.volunteer_a.headers).status_code == 404
    assert client.get(f"/api/v1/referrals/{referral['id']}", headers=w.coordinator.headers).status_code == 200
    # Police move it along: new -> received -> handled.
    rid = referral["id"]
    assert client.post(f"/api/v1/referrals/{rid}/handle", json={}, headers=w.police.headers).status_code == 409
    assert client.post(f"/api/v1/referrals/{rid}/receive", headers=w.police.headers).json()["status"] == "received"
    done = client.post(f"/api/v1/referrals/{rid}/handle", json={"note": "已立案"}, headers=w.police.headers).json()
    assert done["status"] == "handled"
    actions = set(session.execute(select(AuditEntry.action)).scalars())
    assert {"referral.create", "referral.received", "referral.handled"} <= actions


def test_resending_the_abuse_visit_does_not_open_a_second_referral(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    item = visit_item(home["uuid"], answers=_abuse_answers(), at=grid_centre(0))
    push(client, w.volunteer_a, [item])
    assert statuses(push(client, w.volunteer_a, [item])) == ["duplicate"]
    assert len(client.get("/api/v1/referrals", headers=w.police.headers).json()) == 1


def test_risk_rules_raise_the_child_and_keep_history_with_coordinator_override(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    home, kids = seed_household(client, w.volunteer_a)
    answers = fine_answers()
    answers["ask3"] = {"value": "no"}  # not sleeping apart from an opposite-sex guardian
    answers["ask5"] = {"value": "yes"}  # truancy
    record = push(client, w.volunteer_a, [visit_item(home["uuid"], answers=answers, at=grid_centre(0))])["results"][0][
        "record"
    ]
    assert record["risk_level"] == "较大风险"
    assert [r["rule"] for r in record["risk_reasons"]] == ["shares_bed", "truancy_dropout"]
    child = client.get(f"/api/v1/persons/{kids[0]['id']}", headers=w.volunteer_a.headers).json()
    assert child["risk_level"] == "较大风险"
    # A volunteer may not override; a coordinator may, with a reason.
    body = {"level": "一般风险", "reason": "已转学并与祖母同住"}
    assert (
        client.post(f"/api/v1/persons/{kids[0]['id']}/risk-level", json=body, headers=w.volunteer_a.headers).status_code
        == 403
    )
    resp = client.post(f"/api/v1/persons/{kids[0]['id']}/risk-level", json=body, headers=w.coordinator.headers)
    assert resp.status_code == 200 and resp.json()["risk_level"] == "一般风险"
    history = client.get(f"/api/v1/persons/{kids[0]['id']}/risk-history", headers=w.coordinator.headers).json()
    assert [(h["source"], h["previous_level"], h["level"]) for h in history] == [
        ("visit", None, "较大风险"),
        ("override", "较大风险", "一般风险"),
    ]


def test_rule_table_never_lowers_and_ignores_closed_doors() -> None:
    assert risk_rules.assess("nobody_home", {"look1": {"value": "yes"}}).level is None
    assert risk_rules.raised("重大风险", risk_rules.assess("visited", {"ask6": "no"}).level) is None
    assert risk_rules.assess("visited", {"look1": "yes"}).referral is True


def test_missing_required_answers_reject_the_visit_with_the_items_named(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    answers = fine_answers()
    del answers["ask4"]
    body = push(
        client,
        w.volunteer_a,
        [
            visit_item(home["uuid"], answers=answers, at=grid_centre(0)),
            visit_item(home["uuid"], answers={}, outcome="nobody_home", at=grid_centre(0)),
        ],
    )
    assert statuses(body) == ["rejected", "created"]
    assert "ask4" in body["results"][0]["problem"]["detail"]


def test_amendment_references_the_original_which_stays_unchanged(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    original = visit_item(home["uuid"], at=grid_centre(0), note="原记录")
    first = push(client, w.volunteer_a, [original])["results"][0]["record"]
    amendment = visit_item(
        home["uuid"], at=grid_centre(0), note="更正：孩子已返校", kind="amendment", amends_uuid=original["client_uuid"]
    )
    amended = push(client, w.volunteer_a, [amendment])["results"][0]
    assert amended["status"] == "created"
    assert amended["record"]["amends_id"] == first["id"]
    assert client.get(f"/api/v1/visits/{first['id']}", headers=w.volunteer_a.headers).json()["note"] == "原记录"
    orphan = visit_item(home["uuid"], at=grid_centre(0), kind="amendment", amends_uuid=home["uuid"])
    assert push(client, w.volunteer_a, [orphan])["results"][0]["problem"]["status"] == 404


def test_publishing_a_new_template_version_keeps_old_visits_valid(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    v1 = client.get("/api/v1/checklists/six-looks-six-asks/1", headers=w.volunteer_a.headers).json()
    assert len(v1["items"]) == 12 and v1["items"][0]["label_zh"].startswith("看是否面临性侵")
    assert v1["items"][0]["label_en"]
    items = [
        *v1["items"],
        {"id": "extra1", "label_zh": "看是否使用手机上网过度", "label_en": "Too much screen time", "required": False},
    ]
    body = {"title_zh": "六看六问", "title_en": "Six looks, six asks", "items": items}
    assert (
        client.post("/api/v1/checklists/six-looks-six-asks", json=body, headers=w.volunteer_a.headers).status_code
        == 403
    )
    v2 = client.post("/api/v1/checklists/six-looks-six-asks", json=body, headers=w.coordinator.headers).json()
    assert v2["version"] == 2
    old = push(client, w.volunteer_a, [visit_item(home["uuid"], at=grid_centre(0))])
    new = push(client, w.volunteer_a, [visit_item(home["uuid"], at=grid_centre(0), template_version=2)])
    assert statuses(old) == statuses(new) == ["created"]
    unknown = push(client, w.volunteer_a, [visit_item(home["uuid"], at=grid_centre(0), template_version=9)])
    assert unknown["results"][0]["problem"]["code"] == "checklist-template-not-found"


def test_visits_outside_jurisdiction_and_for_market_officers_are_404(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_b, village=1)
    record = push(client, w.volunteer_b, [visit_item(home["uuid"], at=grid_centre(1))])["results"][0]["record"]
    assert client.get(f"/api/v1/visits/{record['id']}", headers=w.volunteer_a.headers).status_code == 404
    assert client.get(f"/api/v1/visits/{record['id']}", headers=w.market.headers).status_code == 404
    assert client.get(f"/api/v1/visits/{record['id']}", headers=w.police.headers).status_code == 200
    # A helper sees the visits of the households of the children it helps only (tests/helpers/test_helper_scope.py).
    assert client.get(f"/api/v1/visits/{record['id']}", headers=w.helper.headers).status_code == 404


def test_media_finds_a_synced_visit_with_its_households_point(client: TestClient, session: Session) -> None:
    import uuid

    from backend.visits.media_parent import resolve_visit

    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    item = visit_item(home["uuid"], at=grid_centre(0))
    assert resolve_visit(session, uuid.UUID(item["client_uuid"])) is None
    push(client, w.volunteer_a, [item])
    parent = resolve_visit(session, uuid.UUID(item["client_uuid"]))
    assert parent is not None
    assert (parent.kind, parent.org_unit_id, parent.lon, parent.lat) == (
        "visit",
        home["org_unit_id"],
        home["lon"],
        home["lat"],
    )


def test_a_phone_time_with_a_china_offset_is_stored_as_the_same_instant_on_every_backend(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    home, _ = seed_household(client, w.volunteer_a)
    item = visit_item(home["uuid"], at=grid_centre(0), device_time="2026-11-20T23:30:00+08:00")
    record = push(client, w.volunteer_a, [item])["results"][0]["record"]
    read = client.get(f"/api/v1/visits/{record['id']}", headers=w.volunteer_a.headers).json()
    assert read["device_time"] == "2026-11-20T15:30:00+00:00"
    # The stored column itself holds the UTC instant (SQLite keeps no offset, so it must be UTC).
    stored = session.execute(select(Visit.device_time).where(col(Visit.id) == record["id"])).scalar_one()
    assert clock.as_utc(stored) == datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
    # Counted on the right China day: still 20 November, and before a UTC bound of 16:00.
    before = session.execute(select(func.count()).select_from(Visit).where(
        col(Visit.id) == record["id"], col(Visit.device_time) < datetime(2026, 11, 20, 16, 0, tzinfo=UTC))).scalar_one()
    assert before == 1
