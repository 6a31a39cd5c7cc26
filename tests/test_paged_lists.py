"""Every list endpoint answers in the one page shape too: v1's bare arrays stay as they were for
phones that have not updated, and `?paged=true` (or a `cursor`) answers `{"items", "next_cursor"}`.
Walking the pages gives exactly the bare list, each record once, in a stable order; a cursor the
server did not issue is a 422 naming `cursor`. The first test fails, naming it, when an operation
answers a bare array without the paged form or without a row in LISTINGS here."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col

from backend.accounts.models import User
from backend.accounts.permissions import Role
from backend.core import clock
from backend.helpers.models import AssignmentStatus
from backend.inspections.models import Problem
from backend.main import create_app
from backend.orgunits.models import OrgUnit
from backend.service_plans.models import CaseService
from tests import matrix_support as m
from tests.awareness.factories import SURVEY_VERSION
from tests.factories import make_town, make_user
from tests.helpers.factories import make_helper
from tests.media.conftest import media_root  # noqa: F401 (a fixture)
from tests.notifications.factories import add_device, headers_for
from tests.registry.factories import child_item, household_item
from tests.venues import factories as venue_factories

API = "/api/v1"
MONTH = clock.now().strftime("%Y-%m")


@dataclass
class Seeded:
    """A town with a few records behind every list, and the users who read them."""

    world: m.World
    users: dict[str, User]
    ids: dict[str, Any]

    def headers(self, who: str) -> dict[str, str]:
        return headers_for(m.s(self.world), self.users[who])


@dataclass(frozen=True)
class Listing:
    who: str  # which seeded user reads it
    url: Callable[[Seeded], str]
    params: Callable[[Seeded], dict[str, Any]] = lambda _: {}
    # Lists that carry a v1 `limit`: the bare array is read at its largest, to compare with the pages.
    v1_limit: int | None = None


LISTINGS: dict[str, Listing] = {
    "/api/v1/activity-types": Listing("coordinator", lambda s: f"{API}/activity-types"),
    "/api/v1/audit": Listing("admin", lambda s: f"{API}/audit", v1_limit=500),
    "/api/v1/campaigns": Listing("coordinator", lambda s: f"{API}/campaigns"),
    "/api/v1/case-reviews": Listing("coordinator", lambda s: f"{API}/case-reviews"),
    "/api/v1/cases": Listing("coordinator", lambda s: f"{API}/cases"),  # the seeded referrals opened cases
    "/api/v1/cases/{case_id}/services": Listing(
        "coordinator", lambda s: f"{API}/cases/{s.ids['served_case']}/services"),
    "/api/v1/agency-referrals": Listing("coordinator", lambda s: f"{API}/agency-referrals"),
    "/api/v1/service-kinds": Listing("coordinator", lambda s: f"{API}/service-kinds"),
    "/api/v1/services": Listing("coordinator", lambda s: f"{API}/services"),
    "/api/v1/checklists": Listing("coordinator", lambda s: f"{API}/checklists"),
    "/api/v1/devices": Listing("coordinator", lambda s: f"{API}/devices"),
    "/api/v1/escalations/referrals": Listing("coordinator", lambda s: f"{API}/escalations/referrals"),
    "/api/v1/helpers": Listing("coordinator", lambda s: f"{API}/helpers"),
    "/api/v1/helpers/assignments": Listing("coordinator", lambda s: f"{API}/helpers/assignments"),
    "/api/v1/helpers/followups/overdue": Listing("coordinator", lambda s: f"{API}/helpers/followups/overdue"),
    "/api/v1/households/{household_id}/members": Listing(
        "coordinator", lambda s: f"{API}/households/{s.ids['household']}/members"),
    "/api/v1/incidents": Listing("county", lambda s: f"{API}/incidents"),
    "/api/v1/inspection-checklists": Listing("coordinator", lambda s: f"{API}/inspection-checklists"),
    "/api/v1/inspections": Listing("market", lambda s: f"{API}/inspections",
                                   lambda s: {"venue_id": s.ids["venue"]}, v1_limit=200),
    "/api/v1/media": Listing("coordinator", lambda s: f"{API}/media",
                             lambda s: {"parent_kind": "visit", "parent_uuid": s.ids["photo_parent"]}),
    "/api/v1/org-units/{unit_id}/children": Listing(
        "coordinator", lambda s: f"{API}/org-units/{s.world.town.town.id}/children"),
    "/api/v1/penalties": Listing("market", lambda s: f"{API}/penalties", lambda s: {"venue_id": s.ids["venue"]}),
    "/api/v1/police-cases": Listing("coordinator", lambda s: f"{API}/police-cases"),
    "/api/v1/police-cases/categories": Listing("coordinator", lambda s: f"{API}/police-cases/categories"),
    "/api/v1/police-cases/weekly/status": Listing("county", lambda s: f"{API}/police-cases/weekly/status",
                                                  lambda s: {"week": "2026-W40"}),
    "/api/v1/police-cases/weekly/{week}/submissions": Listing(
        "coordinator", lambda s: f"{API}/police-cases/weekly/2026-W40/submissions"),
    "/api/v1/persons/{person_id}/risk-history": Listing(
        "coordinator", lambda s: f"{API}/persons/{s.ids['child']}/risk-history"),
    "/api/v1/problems": Listing("market", lambda s: f"{API}/problems", v1_limit=500),
    "/api/v1/supervision/problems": Listing("coordinator", lambda s: f"{API}/supervision/problems"),
    "/api/v1/notices": Listing("coordinator", lambda s: f"{API}/notices", lambda s: {"view": "published"}),
    "/api/v1/problems/overdue": Listing("market", lambda s: f"{API}/problems/overdue", v1_limit=500),
    "/api/v1/referrals": Listing("coordinator", lambda s: f"{API}/referrals"),
    "/api/v1/reports/monthly": Listing("coordinator", lambda s: f"{API}/reports/monthly"),
    "/api/v1/reports/monthly/status": Listing("coordinator", lambda s: f"{API}/reports/monthly/status",
                                              lambda s: {"month": MONTH}),
    "/api/v1/report-submissions": Listing("coordinator", lambda s: f"{API}/report-submissions"),
    "/api/v1/report-submissions/status": Listing("coordinator", lambda s: f"{API}/report-submissions/status",
                                                 lambda s: {"kind": "monthly", "period": MONTH}),
    "/api/v1/risk-persons": Listing("coordinator", lambda s: f"{API}/risk-persons"),
    "/api/v1/risk-persons/overdue": Listing("coordinator", lambda s: f"{API}/risk-persons/overdue"),
    "/api/v1/schedules": Listing("coordinator", lambda s: f"{API}/schedules",
                                 lambda s: {"org_unit_id": s.ids["plan_unit"]}),
    "/api/v1/schedules/{plan_id}/check": Listing("coordinator", lambda s: f"{API}/schedules/{s.ids['plan']}/check"),
    "/api/v1/visits": Listing("coordinator", lambda s: f"{API}/visits", v1_limit=500),
    "/api/v1/reviews/queue": Listing("county", lambda s: f"{API}/reviews/queue", lambda s: {"state": "approved"}),
    "/api/v1/visits/{visit_id}/reviews": Listing("county", lambda s: f"{API}/visits/{s.ids['reviewed_visit']}/reviews"),
    "/api/v1/inspections/{inspection_id}/reviews": Listing(
        "county", lambda s: f"{API}/inspections/{s.ids['reviewed_inspection']}/reviews"),
    "/api/v1/awareness/questionnaires": Listing("coordinator", lambda s: f"{API}/awareness/questionnaires"),
    "/api/v1/awareness/rounds": Listing("coordinator", lambda s: f"{API}/awareness/rounds"),
}


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return _resolve(spec, spec["components"]["schemas"][ref.split("/")[-1]]) if ref else schema


def _bare_array_operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """GET operations whose 200 answer may be a bare JSON array (sync pull has its own shape)."""
    found = {}
    for path, ops in spec["paths"].items():
        get = ops.get("get")
        content = (get or {}).get("responses", {}).get("200", {}).get("content", {}).get("application/json")
        if not content:
            continue
        schema = _resolve(spec, content.get("schema", {}))
        shapes = [_resolve(spec, s) for s in schema.get("anyOf", [schema])]
        if any(s.get("type") == "array" for s in shapes):
            found[path] = get
    return found


def test_every_bare_array_list_documents_the_paged_form() -> None:
    spec = create_app().openapi()
    operations = _bare_array_operations(spec)
    assert set(operations) == set(LISTINGS), "a list endpoint without the paged form or without a row here"
    for path, op in operations.items():
        params = {p["name"]: p for p in op.get("parameters", [])}
        assert {"paged", "cursor", "limit"} <= set(params), path
        shapes = _resolve(spec, op["responses"]["200"]["content"]["application/json"]["schema"])["anyOf"]
        pages = [_resolve(spec, s) for s in shapes if _resolve(spec, s).get("type") == "object"]
        assert len(pages) == 1 and set(pages[0]["properties"]) == {"items", "next_cursor"}, path


@pytest.fixture
def seeded(client: TestClient, session: Session, media_root: Any) -> Seeded:  # noqa: F811
    town = make_town(session)
    users = {
        "admin": make_user(session, town.province, Role.admin),
        "coordinator": make_user(session, town.town, Role.coordinator),
        "county": make_user(session, town.county, Role.coordinator),
        "market": make_user(session, town.town, Role.market_officer),
        "police": make_user(session, town.town, Role.police),
        "volunteer": make_user(session, town.villages[0], Role.volunteer),
        "foreign": make_user(session, town.villages[1], Role.volunteer),
    }
    w = m.World(town, users["volunteer"].id or 0, users["foreign"].id or 0, session=session,
                caller_id=users["coordinator"].id or 0)
    s = Seeded(w, users, {})
    volunteer = s.headers("volunteer")
    home = household_item(0, 2)
    kid = child_item(home["client_uuid"])
    guardian = child_item(home["client_uuid"], name="监护人", role="guardian", id_number=None)
    pushed = client.post(f"{API}/sync/push", json={"items": [home, guardian, kid]}, headers=volunteer).json()
    assert [r["status"] for r in pushed["results"]] == ["created"] * 3, pushed
    s.ids["household"] = pushed["results"][0]["record"]["id"]
    s.ids["child"] = pushed["results"][2]["record"]["id"]
    for level in ("general", "major", "severe"):
        assert client.post(f"{API}/persons/{s.ids['child']}/risk-level", json={"level": level, "reason": "核实"},
                           headers=s.headers("coordinator")).status_code == 200
    for _ in range(3):
        m.visit(client, w, True)
    for _ in range(2):
        m.referral(client, w, True)
    for _ in range(3):
        m.risk_person(w, True)
        m.overdue_risk_person(w, True)
    for n in range(3):
        add_device(session, users["coordinator"], f"paged-device-{n}")
        make_helper(session, town.town, sex="female")
        m.assignment(w, True, AssignmentStatus.proposed)
        m.incident(w, True)
    s.ids["photo_parent"] = str(uuid.uuid4())
    for _ in range(3):
        m.photo(client, w, True, s.ids["photo_parent"])
    venue = venue_factories.make_venue(session, town)
    s.ids["venue"] = venue.id
    market = s.headers("market")
    for _ in range(3):
        body = venue_factories.inspection_body(venue, no=("five_musts.identity",))
        assert client.post(f"{API}/inspections", json=body, headers=market).status_code == 201
    for n in range(2):
        resp = client.post(f"{API}/penalties", headers=market,
                           json={"venue_id": venue.id, "kind": "warning", "decision_number": f"罚{n}"})
        assert resp.status_code == 201, resp.text
    for _ in range(3):
        m.problem(w, True)
    for own in (True, True, False):  # problems of units and notices (issue 18; the foreign ones in the town too)
        m.supervised_problem(w, own)
        m.notice(w, own)
    session.execute(update(Problem).where(col(Problem.venue_id) != venue.id)
                    .values(deadline_date=clock.now().date() - timedelta(days=2)))
    session.commit()
    for _ in range(3):  # the police case register, its reviews, a week submitted three times
        m.case_review(w, True)
        resp = client.post(f"{API}/police-cases/weekly/2026-W40/submit", headers=s.headers("police"))
        assert resp.status_code == 201, resp.text
    served = m.case_service(client, w, True)  # services of one case, referrals of cases (issue 16)
    for kind in ("medical", "psychological"):
        session.add(CaseService(case_id=served.case_id, org_unit_id=served.org_unit_id, kind=kind,
                                provider_unit_id=served.provider_unit_id, provider_agency=served.provider_agency))
    session.commit()
    s.ids["served_case"] = served.case_id
    for _ in range(3):
        m.agency_referral(client, w, True)
    s.ids["plan_unit"] = m.unit_id(w, True)
    s.ids["plan"] = m.plan(w, True)
    m.plan(w, True)
    # Decisions of review (审核): three visits approved, one visit and one inspection decided three times.
    county = s.headers("county")
    visits = [v["id"] for v in client.get(f"{API}/visits", headers=county).json()][:3]
    inspection = client.get(f"{API}/inspections", params={"venue_id": venue.id}, headers=market).json()[0]["id"]
    for kind, record_id in [("visits", v) for v in visits] + [("inspections", inspection)]:
        steps = [("approved", None), ("has_issues", "approved"), ("rejected", "has_issues")]
        for state, expected in (steps if record_id in (visits[0], inspection) else steps[:1]):
            body = {"state": state, "comment": "核实", **({"expected_state": expected} if expected else {})}
            resp = client.post(f"{API}/{kind}/{record_id}/review", json=body, headers=county)
            assert resp.status_code == 201, resp.text
    s.ids["reviewed_visit"], s.ids["reviewed_inspection"] = visits[0], inspection
    for _ in range(3):  # awareness surveys (issue 18): rounds at three schools, two county versions
        m.survey_round(client, w, True)
    for _ in range(2):
        resp = client.post(f"{API}/awareness/questionnaires", json=SURVEY_VERSION, headers=county)
        assert resp.status_code == 201, resp.text
    return s


def _walk(client: TestClient, url: str, params: dict[str, Any], headers: dict[str, str], limit: int) -> list[Any]:
    items: list[Any] = []
    query: dict[str, Any] = {**params, "paged": "true", "limit": limit}
    for _ in range(200):
        resp = client.get(url, params=query, headers=headers)
        assert resp.status_code == 200, (url, resp.text)
        page = resp.json()
        assert set(page) == {"items", "next_cursor"}, url
        assert len(page["items"]) <= limit, url
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items
        assert page["items"], f"{url}: an empty page that is not the last"
        query = {**params, "cursor": page["next_cursor"], "limit": limit}  # a cursor implies paged
    raise AssertionError(f"{url}: pages never end")


def _canonical(items: list[Any]) -> Counter[str]:
    return Counter(json.dumps(i, sort_keys=True, ensure_ascii=False) for i in items)


def test_walking_the_pages_of_every_list_gives_its_bare_array_each_record_once(
    client: TestClient, seeded: Seeded
) -> None:
    for path, listing in LISTINGS.items():
        url, params, headers = listing.url(seeded), listing.params(seeded), seeded.headers(listing.who)
        first = _walk(client, url, params, headers, limit=2)
        again = _walk(client, url, params, headers, limit=2)
        bare_params = {**params, "limit": listing.v1_limit} if listing.v1_limit else params
        bare = client.get(url, params=bare_params, headers=headers)
        assert bare.status_code == 200, (path, bare.text)
        assert isinstance(bare.json(), list), path
        if path == "/api/v1/audit":  # reading may itself be audited: the log only grows at its end
            assert _canonical(first) - _canonical(bare.json()) == Counter(), path
            continue
        assert _canonical(first) == _canonical(bare.json()), path
        assert [json.dumps(i, sort_keys=True) for i in first] == [json.dumps(i, sort_keys=True) for i in again], path
        most = listing.v1_limit or 500
        one_page = client.get(url, params={**params, "paged": "true", "limit": most}, headers=headers).json()
        assert one_page["items"] == first and one_page["next_cursor"] is None, path
    seen = {path: len(_walk(client, listing.url(seeded), listing.params(seeded), seeded.headers(listing.who),
                            listing.v1_limit or 500))
            for path, listing in LISTINGS.items()}
    # The walk is not vacuous: most lists hold several records.
    assert sum(1 for n in seen.values() if n >= 3) >= 12, seen


def test_a_cursor_the_server_did_not_issue_is_a_422_naming_cursor(client: TestClient, seeded: Seeded) -> None:
    elsewhere = client.get(f"{API}/users", params={"limit": 1}, headers=seeded.headers("coordinator")).json()
    for cursor in ("not-a-cursor", "eyJrIjpbInRleHQiXX0", elsewhere["next_cursor"]):
        for path in ("/api/v1/visits", "/api/v1/risk-persons", "/api/v1/inspections", "/api/v1/campaigns"):
            listing = LISTINGS[path]
            resp = client.get(listing.url(seeded), params={**listing.params(seeded), "cursor": cursor},
                              headers=seeded.headers(listing.who))
            assert resp.status_code == 422, (path, cursor, resp.text)
            assert resp.json()["field"] == "cursor", resp.text


def test_a_visit_recorded_between_pages_neither_repeats_nor_hides_older_ones(
    client: TestClient, seeded: Seeded
) -> None:
    headers = seeded.headers("coordinator")
    before = [v["id"] for v in client.get(f"{API}/visits", headers=headers).json()]
    page = client.get(f"{API}/visits", params={"paged": "true", "limit": 2}, headers=headers).json()
    m.visit(client, seeded.world, True)  # newest first: it lands before the cursor, not after it
    walked = [v["id"] for v in page["items"]]
    cursor = page["next_cursor"]
    while cursor:
        page = client.get(f"{API}/visits", params={"cursor": cursor, "limit": 2}, headers=headers).json()
        walked.extend(v["id"] for v in page["items"])
        cursor = page["next_cursor"]
    assert walked == before


def test_a_paged_list_goes_past_the_v1_cap(client: TestClient, seeded: Seeded, session: Session) -> None:
    headers = seeded.headers("coordinator")
    bare = client.get(f"{API}/visits", params={"limit": 1}, headers=headers).json()
    walked = _walk(client, f"{API}/visits", {}, headers, limit=1)
    assert len(bare) == 1 and len(walked) == len(client.get(f"{API}/visits", headers=headers).json()) >= 5


def test_a_unit_the_caller_may_not_see_stays_hidden_in_the_paged_form(client: TestClient, seeded: Seeded,
                                                                      session: Session) -> None:
    foreign = session.get(OrgUnit, seeded.world.town.villages[1].id)
    assert foreign is not None
    volunteer = seeded.headers("volunteer")
    resp = client.get(f"{API}/org-units/{foreign.id}/children", params={"paged": "true"}, headers=volunteer)
    assert resp.status_code == 404, resp.text
