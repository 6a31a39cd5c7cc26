"""Transitions that race: each is checked and made under a lock, so two people acting at the same moment
get one result and one refusal, never a state no single order could give (found by a black-box tester:
a helper's acceptance written over a closing; two officers' receipts each opening a child's case)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Agency, User
from backend.accounts.permissions import Role
from backend.cases.models import Case
from backend.helpers.models import Assignment, HelperProfile
from backend.referrals.models import Referral
from tests.factories import make_user
from tests.helpers.factories import make_child, make_helper
from tests.notifications.factories import headers_for
from tests.races import together as _together
from tests.registry.factories import make_world

API = "/api/v1"
ROUNDS = 3


def test_a_helper_accepting_while_the_case_closes_never_leaves_live_help_on_a_closed_case(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    coordinator = w.coordinator.headers
    for n in range(ROUNDS):
        child = make_child(session, w.town.grids[0][n])
        make_helper(session, w.town.town, sex="female")
        case = client.post(f"{API}/cases", json={"child_id": child.id, "reason": "研判"}, headers=coordinator).json()
        offers = client.post(f"{API}/helpers/proposals", params={"child_id": child.id}, headers=coordinator).json()
        [offer] = [a for a in offers if a["child_id"] == child.id]
        profile = session.get(HelperProfile, offer["helper_id"])
        assert profile is not None
        helper = headers_for(session, session.get(User, profile.user_id))  # type: ignore[arg-type]
        assert client.post(f"{API}/helpers/assignments/{offer['id']}/confirm", headers=coordinator).is_success
        accept, close = _together(
            lambda c, i=offer["id"]: c.post(f"{API}/helpers/assignments/{i}/accept", headers=helper),
            lambda c, k=case["id"]: c.post(f"{API}/cases/{k}/close", json={"reason": "risk_lowered"},
                                           headers=coordinator),
        )
        assert close.status_code == 200, close.text
        assert accept.status_code in (200, 409), accept.text
        session.expire_all()
        help_ = session.get(Assignment, offer["id"])
        stored = session.get(Case, case["id"])
        assert stored is not None and stored.status == "closed"
        assert help_ is not None and (help_.status, help_.end_reason) == ("ended", "case_closed"), (
            f"round {n}: accept {accept.status_code}, help {help_.status if help_ else None}")
        assert client.get(f"{API}/cases/{case['id']}", headers=helper).status_code == 404


def test_two_officers_acknowledging_one_report_make_one_receipt_and_one_childs_case(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    teacher = headers_for(session, make_user(session, w.town.villages[0], Role.agency_staff, agency=Agency.education))
    officers = [headers_for(session, make_user(session, w.town.town, Role.police, agency=Agency.police))
                for _ in range(2)]
    for n in range(ROUNDS):
        children = [make_child(session, w.town.grids[1][n]), make_child(session, w.town.grids[1][n])]
        filed = client.post(f"{API}/mandatory-reports", headers=teacher, json={
            "description": "发现孩子身上有伤", "place": "学校", "seen_at": "2026-11-01T09:00:00+08:00"})
        assert filed.status_code == 201, filed.text
        rid = filed.json()["id"]
        answers = _together(*[
            (lambda c, h=h, kid=kid.id: c.post(f"{API}/referrals/{rid}/receive", json={"child_id": kid}, headers=h))
            for h, kid in zip(officers, children, strict=True)])
        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        session.expire_all()
        report = session.get(Referral, rid)
        assert report is not None and report.status == "received" and len(report.child_ids) == 1
        opened: list[Any] = list(session.execute(select(col(Case.child_id)).where(
            col(Case.opened_from) == "mandatory_report", col(Case.source_id) == rid)).scalars())
        assert opened == report.child_ids


def test_a_service_planned_while_the_case_closes_is_never_left_live_on_the_closed_case(
    client: TestClient, session: Session
) -> None:
    from backend.service_plans.models import CaseService
    from tests.service_plans.factories import ensure_service_kinds

    w = make_world(client, session)
    ensure_service_kinds(session)
    coordinator = w.coordinator.headers
    for n in range(ROUNDS):
        child = make_child(session, w.town.grids[2][n])
        case = client.post(f"{API}/cases", json={"child_id": child.id, "reason": "研判"}, headers=coordinator).json()
        close, planned = _together(
            lambda c, k=case["id"]: c.post(f"{API}/cases/{k}/close", json={"reason": "risk_lowered"},
                                           headers=coordinator),
            lambda c, k=case["id"]: c.post(f"{API}/cases/{k}/services", json={"kind": "medical"},
                                           headers=coordinator),
        )
        assert close.status_code == 200, close.text
        assert planned.status_code in (201, 409), planned.text
        session.expire_all()
        live = session.execute(select(CaseService).where(
            col(CaseService.case_id) == case["id"],
            col(CaseService.status).in_(("planned", "referred", "in_progress")))).scalars().all()
        assert live == [], f"round {n}: plan {planned.status_code}, live services {[s.id for s in live]}"


def test_reopening_a_case_while_a_new_one_opens_gives_one_open_case_and_no_5xx(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    coordinator = w.coordinator.headers
    county = headers_for(session, make_user(session, w.town.county, Role.coordinator, agency=Agency.government))
    for n in range(ROUNDS):
        child = make_child(session, w.town.grids[3][n])
        case = client.post(f"{API}/cases", json={"child_id": child.id, "reason": "研判"}, headers=coordinator).json()
        assert client.post(f"{API}/cases/{case['id']}/close", json={"reason": "risk_lowered"},
                           headers=coordinator).status_code == 200
        reopen, opened = _together(
            lambda c, k=case["id"]: c.post(f"{API}/cases/{k}/reopen", json={"reason": "再次发现"}, headers=coordinator),
            lambda c, kid=child.id: c.post(f"{API}/cases", json={"child_id": kid, "reason": "新线索"}, headers=county),
        )
        assert reopen.status_code in (200, 409) and opened.status_code in (200, 201), (reopen.text, opened.text)
        session.expire_all()
        still_open = session.execute(select(col(Case.id)).where(
            col(Case.child_id) == child.id, col(Case.status) != "closed")).scalars().all()
        assert len(still_open) == 1
