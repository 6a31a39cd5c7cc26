"""Inspection checklists as versioned templates a county edits (issue 17): a county coordinator publishes
the county's next version; the county's officers and phones use it, other counties keep the national
one; a phone offline since then still syncs against the version it used; published versions never change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.core import clock
from backend.core.geo import point
from backend.demo.town import DemoTown
from backend.inspections import checklist_templates, checklists
from backend.inspections.models import InspectionChecklistVersion
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.venues.models import Venue, VenueType
from tests.factories import SignedIn, make_town, user_client
from tests.races import together as _together
from tests.venues.factories import answers_for, credit_code, grid_point, inspection_body, make_venue

API = "/api/v1"
LIST = f"{API}/inspection-checklists"


@dataclass
class TwoCounties:
    home: DemoTown
    other: OrgUnit  # a neighbouring county (its officers sit at the county itself)


def _two_counties(session: Session) -> TwoCounties:
    home = make_town(session)
    other = orgunits.create_unit(session, code="990102000000", name="邻县", level=OrgLevel.county, parent=home.city)
    session.commit()
    return TwoCounties(home, other)


def _venue_in(session: Session, unit: OrgUnit) -> Venue:
    assert unit.id is not None
    venue = Venue(venue_type=VenueType.hotel.value, name="邻县宾馆", credit_code=credit_code(), address="邻县地址",
                  location=point(*grid_point((0, 0))), owner_name="负责人", owner_phone="19900009998",
                  org_unit_id=unit.id)
    session.add(venue)
    session.commit()
    return venue


def _county_coordinator(client: TestClient, session: Session, town: DemoTown) -> SignedIn:
    return user_client(client, session, town.county, Role.coordinator, agency=Agency.government)


def _officer(client: TestClient, session: Session, town: DemoTown) -> SignedIn:
    return user_client(client, session, town.town, Role.market_officer, agency=Agency.market_supervision)


def _current(client: TestClient, who: SignedIn, venue_type: str = "hotel") -> dict[str, Any]:
    resp = client.get(LIST, params={"venue_type": venue_type}, headers=who.headers)
    assert resp.status_code == 200, resp.text
    [found] = resp.json()
    return found  # type: ignore[no-any-return]


def _edited(current: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The body a coordinator sends after copying `current`: its items, minus the first, plus a new one."""
    items = [{"code": i["code"], "text_zh": i["text_zh"], "text_en": i["text_en"],
              "measure_zh": i["default_measure_zh"], "deadline_days": i["deadline_days"]} for i in current["items"]]
    items = [*items[1:], {"code": "county.cctv", "text_zh": "前台监控录像保存不少于30日",
                          "text_en": "Front-desk CCTV is kept for at least 30 days",
                          "measure_zh": "完善监控设备并延长保存期限", "deadline_days": 10}]
    return {"title_zh": current["title_zh"] + "（本县版）", "items": items, **changes}


def _publish(client: TestClient, who: SignedIn, code: str, body: dict[str, Any]) -> Response:
    resp: Response = client.post(f"{LIST}/{code}/versions", json=body, headers=who.headers)
    return resp


def test_a_county_version_reaches_the_countys_officers_and_not_another_countys(
        client: TestClient, session: Session) -> None:
    world = _two_counties(session)
    home = world.home
    coordinator = _county_coordinator(client, session, home)
    officer = _officer(client, session, home)
    foreign_officer = user_client(client, session, world.other, Role.market_officer, agency=Agency.market_supervision)
    national = _current(client, officer)
    assert (national["code"], national["version"], national["owner_unit_id"]) == ("accommodation", 1, None)

    resp = _publish(client, coordinator, "accommodation", _edited(national))
    assert resp.status_code == 201, resp.text
    published = resp.json()
    assert published["version"] == 2 and published["owner_unit_id"] == home.county.id
    assert [i["code"] for i in published["items"]][-1] == "county.cctv"

    mine = _current(client, officer)
    assert (mine["version"], mine["owner_unit_id"], mine["title_zh"]) == (2, home.county.id, published["title_zh"])
    assert _current(client, officer, "on_demand_cinema")["version"] == 2  # every kind of venue the code covers
    listed = {(c["code"], c["version"]): c["current"] for c in client.get(LIST, headers=officer.headers).json()}
    assert listed[("accommodation", 2)] is True and listed[("accommodation", 1)] is False
    assert listed[("entertainment", 1)] is True

    theirs = _current(client, foreign_officer)
    assert (theirs["version"], theirs["owner_unit_id"]) == (1, None)
    seen = {(c["code"], c["version"]) for c in client.get(LIST, headers=foreign_officer.headers).json()}
    assert ("accommodation", 2) not in seen
    assert client.get(f"{LIST}/accommodation/2", headers=foreign_officer.headers).status_code == 404
    assert client.get(f"{LIST}/accommodation/2", headers=officer.headers).json()["current"] is True

    # An inspection in the county on the new version opens the problem with the county's deadline.
    hotel = make_venue(session, home)
    version2 = checklists.get(session, "accommodation", 2)
    assert version2 is not None
    body = inspection_body(hotel, checklist_version=2, answers=answers_for(
        VenueType.hotel, no=("county.cctv",), checklist=version2))
    done = client.post(f"{API}/inspections", json=body, headers=officer.headers)
    assert done.status_code == 201, done.text
    [problem] = done.json()["problems_opened"]
    today = clock.now().astimezone(clock.SHANGHAI).date()
    assert problem["item_code"] == "county.cctv"
    assert date.fromisoformat(problem["deadline_date"]) == today + timedelta(days=10)

    # Another county's venue may not be inspected against it: the phone is told the version in force there.
    their_hotel = _venue_in(session, world.other)
    body = inspection_body(their_hotel, checklist_version=2, answers=answers_for(VenueType.hotel, checklist=version2))
    refused = client.post(f"{API}/inspections", json=body, headers=foreign_officer.headers)
    assert refused.status_code == 422 and refused.json()["code"] == "unknown-checklist"
    assert (refused.json()["expected_code"], refused.json()["expected_version"]) == ("accommodation", 1)

    audited = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "inspection_checklist.publish")
                              ).scalars().all()
    assert [(a.actor_user_id, a.org_unit_id, a.details["version"]) for a in audited] == [
        (coordinator.user.id, home.county.id, 2)]


def test_an_inspection_made_offline_on_v1_syncs_after_v2_and_is_read_against_v1(
        client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator, officer = _county_coordinator(client, session, town), _officer(client, session, town)
    hotel = make_venue(session, town)
    # Recorded on the phone (offline) before the county published v2: v1's items, v1's number.
    offline = inspection_body(hotel, no=("five_musts.identity",), started_at=clock.now() - timedelta(hours=3))
    assert offline["checklist_version"] == 1
    national = _current(client, officer)
    assert _publish(client, coordinator, "accommodation", _edited(national)).status_code == 201
    assert _current(client, officer)["version"] == 2  # v2 drops five_musts.identity, adds county.cctv

    synced = client.post(f"{API}/inspections", json=offline, headers=officer.headers)
    assert synced.status_code == 201, synced.text
    stored = synced.json()
    assert (stored["checklist_code"], stored["checklist_version"]) == ("accommodation", 1)
    [problem] = stored["problems_opened"]
    assert problem["item_code"] == "five_musts.identity"  # an item v2 no longer has: read against v1
    assert "身份查验" in problem["measure"]
    again = client.post(f"{API}/inspections", json=offline, headers=officer.headers)
    assert again.status_code == 200 and again.json()["id"] == stored["id"]
    # v1 answers are checked against v1: v2's new item is not asked, v1's dropped one is.
    mixed = inspection_body(hotel, answers={**answers_for(VenueType.hotel), "county.cctv": "yes"})
    refused = client.post(f"{API}/inspections", json=mixed, headers=officer.headers)
    assert refused.status_code == 422 and refused.json()["unknown"] == ["county.cctv"]


def _item(**changes: Any) -> dict[str, Any]:
    return {"code": "a.one", "text_zh": "第一项", "text_en": "Item one", "measure_zh": "整改", "deadline_days": 7,
            **changes}


INVALID: dict[str, tuple[dict[str, Any], str, str]] = {
    "duplicate item codes": ({"items": [_item(), _item(text_zh="另一项")]}, "duplicate-item-code", "items.1.code"),
    "empty text": ({"items": [_item(text_zh="  ")]}, "empty-text", "items.0.text_zh"),
    "invisible text": ({"items": [_item(text_zh="\u200b\u2060 ")]}, "empty-text", "items.0.text_zh"),
    "empty measure": ({"items": [_item(measure_zh="")]}, "empty-text", "items.0.measure_zh"),
    "deadline of 0 days": ({"items": [_item(deadline_days=0)]}, "deadline-out-of-range", "items.0.deadline_days"),
    "deadline of 91 days": ({"items": [_item(deadline_days=91)]}, "deadline-out-of-range", "items.0.deadline_days"),
    "unknown venue type": ({"venue_types": ["hotel", "casino"], "items": [_item()]}, "unknown-venue-type",
                           "venue_types.1"),
    "no venue type": ({"venue_types": [], "items": [_item()]}, "no-venue-type", "venue_types"),
    "venue type of another checklist": ({"venue_types": ["hotel", "ktv"], "items": [_item()]}, "venue-type-taken",
                                        "venue_types.1"),
    "formula in an item": ({"items": [_item(text_zh='=HYPERLINK("http://x","点击")')]}, "formula-text",
                           "items.0.text_zh"),
    "formula in the measure": ({"items": [_item(measure_zh="@SUM(A1)")]}, "formula-text", "items.0.measure_zh"),
    "formula in the title": ({"title_en": "+cmd", "items": [_item()]}, "formula-text", "title_en"),
    "bad item code": ({"items": [_item(code="A One")]}, "bad-item-code", "items.0.code"),
    "skipped version": ({"version": 9, "items": [_item()]}, "not-next-version", "version"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_a_version_with_a_mistake_is_refused_naming_the_field_and_nothing_is_stored(
        client: TestClient, session: Session, case: str) -> None:
    town = make_town(session)
    coordinator = _county_coordinator(client, session, town)
    body, reason, field = INVALID[case]
    resp = _publish(client, coordinator, "accommodation", body)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    problem = resp.json()
    assert (problem["code"], problem["reason"], problem["field"]) == ("inspection-checklist-invalid", reason, field)
    assert problem["detail"]
    assert checklists.get(session, "accommodation", 2) is None


def test_who_may_publish_where(client: TestClient, session: Session) -> None:
    world = _two_counties(session)
    home = world.home
    coordinator = _county_coordinator(client, session, home)
    town_coordinator = user_client(client, session, home.town, Role.coordinator, agency=Agency.government)
    officer = _officer(client, session, home)
    body = {"items": [_item()]}
    assert _publish(client, officer, "accommodation", body).status_code == 403
    # A town is not a county; the county is outside a town coordinator's reach.
    not_county = _publish(client, town_coordinator, "accommodation", body)
    assert not_county.status_code == 422 and not_county.json()["reason"] == "not-a-county"
    assert _publish(client, town_coordinator, "accommodation", {**body, "unit_id": home.county.id}).status_code == 404
    assert _publish(client, coordinator, "accommodation", {**body, "unit_id": world.other.id}).status_code == 404
    assert _publish(client, coordinator, "no-such-list", body).status_code == 404
    assert session.execute(select(func.count()).select_from(InspectionChecklistVersion).where(
        col(InspectionChecklistVersion.owner_unit_id).is_not(None))).scalar_one() == 0


def _rows(session: Session) -> list[tuple[Any, ...]]:
    session.expire_all()
    return [(r.id, r.code, r.version, r.title_zh, r.title_en, r.venue_types, r.items, r.owner_unit_id,
             r.published_by, r.published_at)
            for r in session.execute(select(InspectionChecklistVersion).order_by(col(InspectionChecklistVersion.id))
                                     ).scalars()]


def test_no_path_changes_a_published_version(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = _county_coordinator(client, session, town)
    national = _current(client, coordinator)
    assert _publish(client, coordinator, "accommodation", _edited(national)).status_code == 201
    before = _rows(session)

    for version in (1, 2):
        again = _publish(client, coordinator, "accommodation", _edited(national, version=version, title_zh="改写"))
        assert again.status_code == 409, again.text
        assert again.json()["code"] == "inspection-checklist-published" and again.json()["expected_version"] == 3
        for method in ("PUT", "PATCH", "DELETE"):
            resp = client.request(method, f"{LIST}/accommodation/{version}", json=_edited(national),
                                  headers=coordinator.headers)
            assert resp.status_code == 405, (method, resp.text)
    draft = _publish(client, coordinator, "accommodation", _edited(national, dry_run=True, title_zh="草稿"))
    assert draft.status_code == 200 and draft.json()["version"] == 3 and draft.json()["current"] is False
    assert _rows(session) == before
    # The built-in versions are written once: reading again does not touch them.
    checklists.ensure_builtin(session)
    session.commit()
    assert _rows(session) == before


def test_two_coordinators_publishing_at_once_never_make_two_rows_of_one_version(
        client: TestClient, session: Session) -> None:
    world = _two_counties(session)
    first = _county_coordinator(client, session, world.home)
    second = user_client(client, session, world.other, Role.coordinator, agency=Agency.government)
    national = _current(client, first)
    for n in range(6):
        answers = _together(*[
            (lambda c, who=who, k=k: _publish(c, who, "accommodation", _edited(national, title_zh=f"第{n}轮{k}")))
            for k, who in enumerate((first, second))])
        codes = sorted(a.status_code for a in answers)
        assert codes in ([201, 201], [201, 409]), [a.text for a in answers]
        for refused in (a for a in answers if a.status_code == 409):
            assert refused.json()["code"] == "inspection-checklist-published"
    versions = session.execute(select(col(InspectionChecklistVersion.version)).where(
        col(InspectionChecklistVersion.code) == "accommodation")).scalars().all()
    assert len(versions) == len(set(versions)) and sorted(versions) == list(range(1, len(versions) + 1))


def test_the_database_refuses_a_second_row_with_the_same_version(session: Session) -> None:
    checklists.ensure_builtin(session)
    session.commit()
    session.add(InspectionChecklistVersion(code="generic", version=1, title_zh="复制", title_en="Copy",
                                           venue_types=["training"], items=[]))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


_PROPERTY_WORLD: dict[str, Any] = {}
_TEXT = st.sampled_from(["检查项", "Item", " 前后空格 "]) | st.text(alphabet=st.sampled_from(list("ab =+-@检查\t")),
                                                                  max_size=5)


def _model_accepts(items: list[dict[str, Any]]) -> bool:
    """The rules, stated plainly: a lowercase code used once, texts neither empty nor formula-like, 1–90 days."""
    codes = [i["code"].strip() for i in items]
    texts = [i[k].strip() for i in items for k in ("text_zh", "text_en", "measure_zh")]
    return (len(set(codes)) == len(codes) and all(checklist_templates.ITEM_CODE.match(c) for c in codes)
            and all(t and t[0] not in "=+-@" for t in texts) and all(1 <= i["deadline_days"] <= 90 for i in items))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(st.fixed_dictionaries({
    "code": st.sampled_from(["a.one", "a.two", "b_3", "c.4", "A1", "", " a.five"]),
    "text_zh": _TEXT, "text_en": _TEXT, "measure_zh": _TEXT,
    "deadline_days": st.sampled_from([0, 1, 7, 90, 91]) | st.integers(-2, 95),
}), min_size=1, max_size=4))
def test_any_edit_is_either_published_exactly_as_sent_or_refused_and_nothing_stored(
        client: TestClient, session: Session, items: list[dict[str, Any]]) -> None:
    if _PROPERTY_WORLD.get("session") is not session:  # one town per test run, not per example
        _PROPERTY_WORLD.update(session=session, who=_county_coordinator(client, session, make_town(session)))
        checklists.ensure_builtin(session)
        session.commit()
    who: SignedIn = _PROPERTY_WORLD["who"]
    before = _rows(session)
    resp = _publish(client, who, "generic", {"items": items})
    if _model_accepts(items):
        assert resp.status_code == 201, resp.text
        stored = client.get(f"{LIST}/generic/{resp.json()['version']}", headers=who.headers).json()
        assert [(i["code"], i["text_zh"], i["text_en"], i["default_measure_zh"], i["deadline_days"])
                for i in stored["items"]] == [
            (i["code"].strip(), i["text_zh"].strip(), i["text_en"].strip(), i["measure_zh"].strip(),
             i["deadline_days"]) for i in items]
        assert len(_rows(session)) == len(before) + 1
    else:
        assert resp.status_code == 422, resp.text
        assert resp.json()["code"] == "inspection-checklist-invalid"
        assert _rows(session) == before



def test_a_county_version_covering_fewer_venue_types_leaves_the_others_on_the_national_one(
        client: TestClient, session: Session) -> None:
    """A phone choosing its checklist by `current_for` finds one for every kind of venue."""
    home = _two_counties(session).home
    coordinator = _county_coordinator(client, session, home)
    officer = _officer(client, session, home)
    national = _current(client, officer)
    assert len(national["venue_types"]) > 1 and national["current_for"] == national["venue_types"]
    kept = national["venue_types"][0]
    resp = _publish(client, coordinator, "accommodation", _edited(national, venue_types=[kept]))
    assert resp.status_code == 201, resp.text
    listed = client.get(LIST, headers=officer.headers).json()
    in_force = {t: (c["code"], c["version"]) for c in listed for t in c["current_for"]}
    assert in_force[kept] == ("accommodation", resp.json()["version"])
    for other in national["venue_types"][1:]:
        assert in_force[other] == ("accommodation", national["version"])
