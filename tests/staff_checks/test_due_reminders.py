"""Periodic checks falling due: the scheduled job tells the police and the supervising agency's staff
once per member and due date (ids and a count only), whatever the number of runs; the clock moves
and a new check moves the due date. The overview and the never-checked list count by unit."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.core.jobs import registered_jobs, run_due_jobs
from backend.institutions.models import InstitutionKind
from backend.notifications.models import Notification
from backend.registries import load_all
from backend.staff_checks import service
from backend.staff_checks.models import StaffStatus
from tests.factories import make_town, make_user
from tests.institutions.factories import make_institution
from tests.notifications.factories import headers_for
from tests.staff_checks.factories import make_member

API = "/api/v1"


def _told(session: Session) -> list[tuple[int, dict[str, Any]]]:
    session.expire_all()
    return sorted((n.user_id, n.data) for n in session.execute(
        select(Notification).where(col(Notification.kind) == "staff_check.due")).scalars())


def test_a_due_check_is_told_once_per_due_date_to_police_and_the_supervising_agency(session: Session) -> None:
    town = make_town(session)
    school = make_institution(session, town.villages[0].id or 0)
    police = make_user(session, town.town, Role.police, agency=Agency.police)
    teacher_office = make_user(session, town.town, Role.agency_staff, agency=Agency.education)
    make_user(session, town.town, Role.agency_staff, agency=Agency.health)  # another agency: not told
    make_user(session, town.town, Role.coordinator, agency=Agency.government)  # not told either
    interval = get_settings().staff_check_interval_days
    today = service.today()
    member = make_member(session, school, last_check=today)
    make_member(session, school, status=StaffStatus.candidate)  # candidates have no periodic check
    make_member(session, school, status=StaffStatus.left)
    assert service.notify_due(session) == 0
    session.commit()

    clock.advance(timedelta(days=interval - 1))
    assert service.notify_due(session) == 0  # the day before: not yet
    session.commit()
    clock.advance(timedelta(days=1))
    assert service.notify_due(session) == 1
    session.commit()
    data = {"institution_id": str(school.id), "members": "1"}
    assert _told(session) == sorted([(police.id, data), (teacher_office.id, data)])
    for _ in range(3):  # more runs, days later: the same due date is not told again
        clock.advance(timedelta(days=3))
        assert service.notify_due(session) == 0
        session.commit()
    assert len(_told(session)) == 2

    # A check moves the due date; the next one is told when it comes.
    session.refresh(member)
    member.last_check_date = service.today()
    session.add(member)
    session.commit()
    assert service.notify_due(session) == 0
    clock.advance(timedelta(days=interval))
    assert service.notify_due(session) == 1
    session.commit()
    assert len(_told(session)) == 4


def test_the_worker_runs_the_reminder_and_two_runs_at_once_tell_once(session: Session) -> None:
    """Two workers' runs (each its own connection) racing over the same due members: each member is
    claimed once, so each institution is told once."""
    load_all()
    assert "staff_checks.notify_due" in {j.name for j in registered_jobs()}
    town = make_town(session)
    hotel = make_institution(session, town.villages[0].id or 0, InstitutionKind.hotel)
    police = make_user(session, town.villages[0], Role.police, agency=Agency.police)
    for _ in range(3):
        make_member(session, hotel)  # never checked: due at once
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def run() -> None:
        with Session(get_engine(), expire_on_commit=False) as own:
            barrier.wait()
            counts.append(service.notify_due(own))
            own.commit()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(counts) == [0, 3]
    assert _told(session) == [(police.id, {"institution_id": str(hotel.id), "members": "3"})]
    assert "staff_checks.notify_due" in run_due_jobs()  # the worker runs it: nothing new to tell
    clock.advance(timedelta(hours=2))
    run_due_jobs()
    assert len(_told(session)) == 1


def test_the_overview_and_the_never_checked_list_count_by_unit(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = headers_for(session, make_user(session, town.town, Role.coordinator, agency=Agency.government))
    today = service.today()
    checked = make_institution(session, town.villages[0].id or 0, name="全查小学")
    make_member(session, checked, last_check=today)
    half = make_institution(session, town.villages[0].id or 0, name="半查小学")
    make_member(session, half, last_check=today)
    make_member(session, half)
    make_member(session, half, status=StaffStatus.candidate)
    empty = make_institution(session, town.villages[1].id or 0, name="无名单小学")
    at_town = make_institution(session, town.town.id or 0, InstitutionKind.secondary_school, name="镇中学")
    make_member(session, at_town, last_check=today - timedelta(days=get_settings().staff_check_interval_days))
    overview = client.get(f"{API}/staff-checks/overview", headers=coordinator)
    assert overview.status_code == 200, overview.text
    by_unit = {u["unit_id"]: u for u in overview.json()["units"]}
    village = by_unit[town.villages[0].id]
    assert (village["institutions"], village["institutions_not_all_checked"], village["members"],
            village["members_never_checked"], village["members_due"]) == (2, 1, 4, 2, 1)
    assert by_unit[town.villages[1].id]["institutions_without_staff_list"] == 1
    assert by_unit[town.town.id]["members_due"] == 1  # the town's own secondary school, due today
    assert by_unit[town.villages[2].id]["institutions"] == 0
    total = overview.json()["total"]
    assert (total["institutions"], total["members"], total["members_due"]) == (4, 5, 2)
    listed = client.get(f"{API}/staff-checks/unchecked", headers=coordinator).json()["items"]
    assert [(i["institution_id"], i["members"], i["members_never_checked"]) for i in listed] == [
        (half.id, 3, 2), (empty.id, 0, 0)]
    in_village = client.get(f"{API}/staff-checks/unchecked", headers=coordinator,
                            params={"unit_id": town.villages[1].id}).json()["items"]
    assert [i["institution_id"] for i in in_village] == [empty.id]
    village_coordinator = headers_for(session, make_user(session, town.villages[0], Role.coordinator))
    assert client.get(f"{API}/staff-checks/overview", headers=village_coordinator,
                      params={"unit_id": town.villages[1].id}).status_code == 404
