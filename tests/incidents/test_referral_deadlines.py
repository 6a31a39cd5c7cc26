"""Mandatory reports (强制报告): a station that does not acknowledge or handle in time is reported
to the coordinators over it, once per stage, and the referral shows as overdue until done."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts import service as accounts
from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.core.jobs import run_due_jobs
from backend.notifications.models import Notification
from backend.referrals import service as referrals
from backend.referrals.models import ReferralStatus
from tests.factories import make_town, make_user
from tests.helpers.factories import grid_point, make_child
from tests.notifications.factories import headers_for


def _overdue_notes(session: Session) -> list[Notification]:
    session.expire_all()
    return list(session.execute(select(Notification).where(col(Notification.kind) == "referral.overdue")
                                .order_by(col(Notification.id))).scalars())


def test_a_referral_not_acknowledged_in_time_is_reported_once_and_shown_overdue(
    client: TestClient, session: Session
) -> None:
    clock.freeze(datetime.now(UTC) - timedelta(days=10))  # tokens must not be issued "in the future" (iat)
    town = make_town(session)
    coordinator = make_user(session, town.town, Role.coordinator)
    police = make_user(session, town.town, Role.police)
    volunteer = make_user(session, town.villages[0], Role.volunteer)
    child = make_child(session, town.grids[0][0], at=grid_point(0, 0), name="李小雨")
    with Session(get_engine(), expire_on_commit=False) as s:
        actor = accounts.principal_for(s, volunteer.id or 0, device_id=None, ip=None)
        assert actor is not None
        referral = referrals.create_from_visit(s, visit_id=9001, household_id=child.household_id or 0,
                                               org_unit_id=child.org_unit_id, child_ids=[child.id or 0],
                                               reasons=[{"rule": "abuse_signs"}], actor=actor)
        s.commit()
    settings = get_settings()
    clock.advance(timedelta(hours=settings.referral_receive_hours) - timedelta(minutes=1))
    run_due_jobs()
    assert _overdue_notes(session) == []
    clock.advance(timedelta(minutes=2))
    run_due_jobs()
    [note] = _overdue_notes(session)
    assert note.user_id == coordinator.id
    assert note.data == {"referral_id": str(referral.id), "stage": "receive"}
    assert "李小雨" not in note.body_zh + note.title_zh
    clock.advance(timedelta(minutes=5))
    run_due_jobs()
    assert len(_overdue_notes(session)) == 1  # told once
    listed = client.get("/api/v1/escalations/referrals", headers=headers_for(session, coordinator)).json()
    assert [(o["referral_id"], o["stage"]) for o in listed] == [(referral.id, "receive")]
    assert listed[0]["escalated_at"] is not None and listed[0]["due_at"].endswith("+08:00")

    # The station acknowledges late: the receive stage is off the list; handling still has its own deadline.
    with Session(get_engine(), expire_on_commit=False) as s:
        officer = accounts.principal_for(s, police.id or 0, device_id=None, ip=None)
        assert officer is not None
        referrals.advance(s, officer, referral.id or 0, ReferralStatus.received, None)
        s.commit()
    assert client.get("/api/v1/escalations/referrals", headers=headers_for(session, coordinator)).json() == []
    clock.advance(timedelta(hours=settings.referral_handle_hours))
    run_due_jobs()
    notes = _overdue_notes(session)
    assert [n.data["stage"] for n in notes] == ["receive", "handle"]
