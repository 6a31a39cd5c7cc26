"""Helpers for children at risk: who gets proposed, why, and what happens when nobody answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import User
from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.core.jobs import run_due_jobs
from backend.helpers import service as helpers
from backend.helpers.models import Assignment, AssignmentStatus, HelperProfile, Skill
from backend.notifications.delivery import deliver_pending
from backend.notifications.models import Notification
from backend.registry.models import RiskLevel
from tests.factories import make_town, make_user
from tests.helpers.factories import grid_point, make_child, make_helper, raise_risk
from tests.notifications.factories import add_device, headers_for
from tests.notifications.fake_fcm import FakeFcm


def _assignments(session: Session, child_id: int | None = None) -> list[Assignment]:
    session.expire_all()
    query = select(Assignment).order_by(col(Assignment.id))
    if child_id is not None:
        query = query.where(col(Assignment.child_id) == child_id)
    return list(session.execute(query).scalars())


def _user(session: Session, helper: HelperProfile) -> User:
    user = session.get(User, helper.user_id)
    assert user is not None
    return user


def test_a_girl_raised_to_severe_risk_gets_two_helpers_one_a_woman_and_nobody_over_capacity(
    session: Session,
) -> None:
    town = make_town(session)
    home = grid_point(0, 0)
    girl = make_child(session, town.grids[0][0], sex="female", at=home, categories=["心理困境"])
    other = make_child(session, town.grids[0][1], sex="male", at=grid_point(0, 1))
    full_woman = make_helper(session, town.town, sex="female", skills=[Skill.psychology], capacity=1,
                             at=grid_point(0, 0, east=0.4))
    raise_risk(session, other, RiskLevel.major)
    run_due_jobs()  # the nearest woman, capacity 1, takes the other child and is now full
    assert [(a.child_id, a.helper_id) for a in _assignments(session)] == [(other.id, full_woman.id)]
    near_men = [make_helper(session, town.town, sex="male", skills=[Skill.psychology], at=grid_point(0, 0, east=0.6))
                for _ in range(2)]
    far_woman = make_helper(session, town.town, sex="female", at=grid_point(3, 4))

    clock.advance(timedelta(minutes=11))  # the next run of the matcher
    raise_risk(session, girl, RiskLevel.severe)
    assert "helpers.propose" in run_due_jobs()
    proposals = _assignments(session, girl.id)
    assert len(proposals) == 2 and {a.mode for a in proposals} == {"many_to_one"}
    chosen = {a.helper_id for a in proposals}
    assert far_woman.id in chosen  # a woman for a girl, although farther and without the skill
    assert full_woman.id not in chosen  # never above capacity
    assert len(chosen & {h.id for h in near_men}) == 1  # the other place: the best man (near, right skill)
    for a in proposals:
        factors = {r["factor"] for r in a.reasons}
        assert {"distance", "skills", "sex", "load"} <= factors and all(r["zh"] for r in a.reasons)


def test_matching_minimises_total_cost_instead_of_serving_children_first_come(session: Session) -> None:
    town = make_town(session)
    # Child A is a little nearer the psychologist, but only child B needs one.
    a = make_child(session, town.grids[0][0], sex="male", at=grid_point(0, 0))
    b = make_child(session, town.grids[0][2], sex="male", at=grid_point(0, 2), categories=["心理困境"])
    psychologist = make_helper(session, town.town, sex="male", skills=[Skill.psychology], capacity=1,
                               at=grid_point(0, 0, east=0.7))
    teacher = make_helper(session, town.town, sex="male", skills=[Skill.education], capacity=1,
                          at=grid_point(0, 3))
    raise_risk(session, a, RiskLevel.major)
    raise_risk(session, b, RiskLevel.major)
    with Session(get_engine(), expire_on_commit=False) as s:
        created = helpers.propose(s)
        s.commit()
    pairs = {p.child_id: p.helper_id for p in created}
    assert pairs == {a.id: teacher.id, b.id: psychologist.id}
    assert all(p.mode == "one_to_one" for p in created)


def test_a_child_on_the_vulnerable_ledger_gets_a_helper_without_a_high_risk_level(session: Session) -> None:
    town = make_town(session)
    child = make_child(session, town.grids[1][0], sex="female", at=grid_point(1, 0), vulnerable=True)
    woman = make_helper(session, town.villages[1], sex="female", skills=[Skill.psychology, Skill.legal_aid],
                        at=grid_point(1, 1))
    make_helper(session, town.villages[1], sex="female", at=grid_point(1, 1), active=False)
    with Session(get_engine(), expire_on_commit=False) as s:
        [proposal] = helpers.propose(s)
        s.commit()
    assert proposal.child_id == child.id and proposal.helper_id == woman.id


def test_a_decline_proposes_the_next_best_helper_and_never_the_one_who_declined(
    client: TestClient, session: Session
) -> None:
    clock.freeze(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    town = make_town(session)
    coordinator = make_user(session, town.town, Role.coordinator)
    child = make_child(session, town.grids[0][0], sex="male", at=grid_point(0, 0))
    best = make_helper(session, town.town, sex="male", at=grid_point(0, 0, east=0.55))
    second = make_helper(session, town.town, sex="male", at=grid_point(0, 2))
    raise_risk(session, child, RiskLevel.major)
    coord = headers_for(session, coordinator)
    [proposal] = client.post("/api/v1/helpers/proposals", headers=coord).json()
    assert proposal["helper_id"] == best.id and proposal["status"] == "proposed"
    offered = client.post(f"/api/v1/helpers/assignments/{proposal['id']}/confirm", headers=coord).json()
    assert offered["status"] == "offered"
    assert offered["answer_due_at"] == "2026-11-24T10:00:00+08:00"
    mine = client.get("/api/v1/helpers/assignments", headers=headers_for(session, _user(session, best))).json()
    assert [m["id"] for m in mine] == [proposal["id"]]
    # Another helper cannot answer someone else's offer.
    stranger = headers_for(session, _user(session, second))
    assert client.post(f"/api/v1/helpers/assignments/{proposal['id']}/accept", headers=stranger).status_code == 404
    resp = client.post(f"/api/v1/helpers/assignments/{proposal['id']}/decline",
                       headers=headers_for(session, _user(session, best)))
    assert resp.status_code == 204
    rows = _assignments(session, child.id)
    assert [(r.helper_id, r.status) for r in rows] == [(best.id, "declined"), (second.id, "proposed")]
    # When the second declines too, nobody is left: no proposal goes back to the first.
    client.post(f"/api/v1/helpers/assignments/{rows[1].id}/confirm", headers=coord)
    client.post(f"/api/v1/helpers/assignments/{rows[1].id}/decline", headers=stranger)
    assert [r.status for r in _assignments(session, child.id)] == ["declined", "declined"]


def test_an_offer_unanswered_for_24_hours_goes_to_the_next_best_helper(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HULEI_HELPER_AUTO_CONFIRM", "true")  # auto mode: offers go out without a coordinator
    get_settings.cache_clear()
    town = make_town(session)
    child = make_child(session, town.grids[0][0], sex="male", at=grid_point(0, 0))
    best = make_helper(session, town.town, sex="male", at=grid_point(0, 0, east=0.55))
    second = make_helper(session, town.town, sex="male", at=grid_point(0, 2))
    raise_risk(session, child, RiskLevel.major)
    run_due_jobs()
    [offer] = _assignments(session, child.id)
    assert (offer.helper_id, offer.status) == (best.id, AssignmentStatus.offered.value)
    clock.advance(timedelta(hours=23, minutes=50))
    run_due_jobs()
    assert [a.status for a in _assignments(session, child.id)] == ["offered"]
    clock.advance(timedelta(minutes=15))
    run_due_jobs()
    rows = _assignments(session, child.id)
    assert [(r.helper_id, r.status) for r in rows] == [(best.id, "expired"), (second.id, "offered")]
    kinds = [(n.user_id, n.kind) for n in session.execute(select(Notification)).scalars()]
    assert (second.user_id, "assignment.offered") in kinds
    # Running the lapse check again changes nothing.
    run_due_jobs()
    assert len(_assignments(session, child.id)) == 2


def test_the_push_to_a_helper_names_no_child(client: TestClient, session: Session, fcm: FakeFcm) -> None:
    town = make_town(session)
    coordinator = make_user(session, town.town, Role.coordinator)
    child = make_child(session, town.grids[0][0], sex="female", at=grid_point(0, 0), name="王小梅",
                       categories=["家庭监护困境"])
    woman = make_helper(session, town.town, sex="female", at=grid_point(0, 1))
    add_device(session, _user(session, woman), "tok-helper")
    raise_risk(session, child, RiskLevel.major)
    coord = headers_for(session, coordinator)
    [proposal] = client.post("/api/v1/helpers/proposals", headers=coord).json()
    client.post(f"/api/v1/helpers/assignments/{proposal['id']}/confirm", headers=coord)
    with Session(get_engine(), expire_on_commit=False) as worker:
        assert deliver_pending(worker).sent == 1
    [message] = fcm.delivered_to("tok-helper")
    raw = repr(message)
    assert "王小梅" not in raw and "测试地址" not in raw and str(child.uuid) not in raw
    assert message["data"]["kind"] == "assignment.offered"
    assert message["data"]["assignment_id"] == str(proposal["id"])


def test_follow_ups_fall_due_by_risk_level_and_overdue_ones_are_listed_and_reminded_once(
    client: TestClient, session: Session
) -> None:
    # Start weeks in the past: access tokens carry an "iat" that PyJWT refuses when it lies ahead of the wall clock.
    clock.freeze(datetime.now(UTC) - timedelta(days=30))
    town = make_town(session)
    coordinator = make_user(session, town.town, Role.coordinator)
    severe = make_child(session, town.grids[0][0], sex="male", at=grid_point(0, 0))
    major = make_child(session, town.grids[0][1], sex="male", at=grid_point(0, 1))
    helper = make_helper(session, town.town, sex="male", capacity=5, at=grid_point(0, 0, east=0.6))
    helper2 = make_helper(session, town.town, sex="male", capacity=5, at=grid_point(0, 1, east=0.6))
    raise_risk(session, severe, RiskLevel.severe)
    raise_risk(session, major, RiskLevel.major)
    coord = headers_for(session, coordinator)
    for p in client.post("/api/v1/helpers/proposals", headers=coord).json():
        client.post(f"/api/v1/helpers/assignments/{p['id']}/confirm", headers=coord)
    for h in (helper, helper2):
        hh = headers_for(session, _user(session, h))
        for a in client.get("/api/v1/helpers/assignments", headers=hh).json():
            assert client.post(f"/api/v1/helpers/assignments/{a['id']}/accept", headers=hh).status_code == 200
    accepted = _assignments(session)
    assert len(accepted) == 3 and {a.status for a in accepted} == {"accepted"}  # 2 for 重大, 1 for 较大

    clock.advance(timedelta(days=8))  # past a week: the 重大 child's follow-ups are overdue, the 较大 one not yet
    overdue = client.get("/api/v1/helpers/followups/overdue", headers=headers_for(session, coordinator)).json()
    assert {o["child_id"] for o in overdue} == {severe.id} and len(overdue) == 2
    run_due_jobs()
    run_due_jobs()
    reminders = session.execute(select(Notification).where(
        col(Notification.kind) == "assignment.followup_overdue")).scalars().all()
    assert len(reminders) == 2

    # A follow-up visit resets the clock for that assignment.
    a = next(x for x in accepted if x.child_id == severe.id and x.helper_id == helper.id)
    resp = client.post(f"/api/v1/helpers/assignments/{a.id}/followups", json={"note": "已上门"},
                       headers=headers_for(session, _user(session, helper)))
    assert resp.status_code == 201
    overdue = client.get("/api/v1/helpers/followups/overdue", headers=headers_for(session, coordinator)).json()
    assert len(overdue) == 1
    clock.advance(timedelta(days=7))  # 15 days: now the 较大 child is overdue too
    overdue = client.get("/api/v1/helpers/followups/overdue", headers=headers_for(session, coordinator)).json()
    assert major.id in {o["child_id"] for o in overdue}


def test_helper_profiles_are_kept_by_coordinators_of_the_jurisdiction(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = make_user(session, town.town, Role.coordinator)
    person = make_user(session, town.villages[2], Role.helper)
    coord = headers_for(session, coordinator)
    created = client.post("/api/v1/helpers", json={"user_id": person.id, "sex": "female", "capacity": 3,
                                                   "skills": ["psychology", "legal_aid"]}, headers=coord)
    assert created.status_code == 201 and created.json()["load"] == 0
    hid = created.json()["id"]
    patched = client.patch(f"/api/v1/helpers/{hid}", json={"active": False}, headers=coord).json()
    assert patched["active"] is False and patched["capacity"] == 3
    volunteer = make_user(session, town.villages[2], Role.volunteer)
    assert client.get("/api/v1/helpers", headers=headers_for(session, volunteer)).status_code == 403
