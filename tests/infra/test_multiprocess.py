"""Stateless and scaled out: two API processes and two workers (real processes, real ports) on one
database behave as one service. Runs on both backends: PostGIS is the production shape; on
SpatiaLite the same processes share one database file (the embedded default run as several
processes), which must hold the same guarantees."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlmodel import Session, col

from backend.accounts import service as accounts
from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.db import get_engine
from backend.escalations.models import ReferralEscalation
from backend.notifications.models import Notification, PushOutbox, PushStatus
from backend.referrals import service as referrals
from backend.visits.models import Visit
from scripts.cluster import Cluster, fake_fcm
from tests.factories import TEST_PASSWORD, make_town, make_user
from tests.helpers.factories import grid_point, make_child
from tests.notifications.factories import add_device
from tests.registry.factories import grid_centre, household_item, visit_item

REFERRALS = 3
VISITS = 8


def _overdue_referrals(session: Session, town: Any) -> list[int]:
    """Referrals whose acknowledgement deadline passed an hour ago (made with the clock moved back)."""
    volunteer = make_user(session, town.villages[0], Role.volunteer)
    ids = []
    clock.freeze(datetime.now(UTC) - timedelta(hours=2))
    try:
        for n in range(REFERRALS):
            child = make_child(session, town.grids[0][0], at=grid_point(0, 0))
            with Session(get_engine(), expire_on_commit=False) as s:
                actor = accounts.principal_for(s, volunteer.id or 0, device_id=None, ip=None)
                assert actor is not None
                referral = referrals.create_from_visit(
                    s, visit_id=7000 + n, household_id=child.household_id or 0, org_unit_id=child.org_unit_id,
                    child_ids=[child.id or 0], reasons=[{"rule": "abuse_signs"}], actor=actor)
                s.commit()
                ids.append(referral.id or 0)
    finally:
        clock.reset()
    return ids


def _push_through_both(urls: list[str], headers: dict[str, str], item: dict[str, Any]) -> list[str]:
    """The same item pushed at the same instant through each API; their per-item statuses."""
    barrier = threading.Barrier(len(urls))
    statuses: list[str] = []

    def send(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30, trust_env=False) as http:
            barrier.wait()
            resp = http.post("/api/v1/sync/push", json={"items": [item]}, headers=headers)
            assert resp.status_code == 200, resp.text
            statuses.append(resp.json()["results"][0]["status"])

    threads = [threading.Thread(target=send, args=(url,)) for url in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def _count(session: Session, query: Any) -> int:
    session.expire_all()
    return int(session.execute(query).scalar_one())


def test_two_apis_and_two_workers_store_each_visit_once_and_run_each_deadline_once(
    database_url: str, session: Session, tmp_path: Path
) -> None:
    town = make_town(session)
    coordinators = [make_user(session, town.town, Role.coordinator) for _ in range(2)]
    police = make_user(session, town.town, Role.police)
    volunteer = make_user(session, town.villages[0], Role.volunteer)
    devices = {f"coord-{n}": c for n, c in enumerate(coordinators)} | {"police-0": police}
    for token, user in devices.items():
        add_device(session, user, token)
    referral_ids = _overdue_referrals(session, town)

    # Each new referral goes to the police, each overdue one to both coordinators.
    pushes_due = REFERRALS * (len(coordinators) + 1)

    with fake_fcm(tmp_path / "fcm") as (fcm, fcm_env), \
            Cluster(database_url, tmp_path / "cluster", apis=2, workers=2, env=fcm_env) as cluster:
        with httpx.Client(base_url=cluster.urls[0], timeout=30, trust_env=False) as http:
            signed_in = http.post("/api/v1/auth/login", json={"phone": volunteer.phone, "password": TEST_PASSWORD})
            assert signed_in.status_code == 200, signed_in.text
            # Signed in on the first API, served by either: no session lives in a process.
            headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
            home = household_item(0)
            assert http.post("/api/v1/sync/push", json={"items": [home]}, headers=headers).status_code == 200
        visits = [visit_item(home["client_uuid"], at=grid_centre(0)) for _ in range(VISITS)]
        for item in visits:
            assert sorted(_push_through_both(cluster.urls, headers, item)) == ["created", "duplicate"]

        waited_until = time.monotonic() + 30
        while time.monotonic() < waited_until:
            with fcm.fake.lock:
                arrived = len(fcm.fake.delivered)
            pending = _count(session, select(func.count()).select_from(PushOutbox)
                             .where(col(PushOutbox.status) == PushStatus.pending.value))
            if arrived >= pushes_due and pending == 0:
                break
            time.sleep(0.2)
        # Several more delivery rounds of both workers: nothing may arrive a second time.
        time.sleep(4)
        assert all(p.alive() for p in cluster.api_procs + cluster.worker_procs)
        with fcm.fake.lock:
            delivered = list(fcm.fake.delivered)

    stored = _count(session, select(func.count()).select_from(Visit).where(
        col(Visit.client_uuid).in_([uuid.UUID(v["client_uuid"]) for v in visits])))
    assert stored == VISITS

    escalations = session.execute(select(col(ReferralEscalation.referral_id))).scalars().all()
    assert sorted(escalations) == sorted(referral_ids)  # each late referral escalated once, not once per worker
    notes = session.execute(select(Notification).where(
        col(Notification.kind).in_(["referral.created", "referral.overdue"]))).scalars().all()
    assert Counter(n.kind for n in notes) == {"referral.created": REFERRALS,
                                              "referral.overdue": REFERRALS * len(coordinators)}
    per_note = Counter(m["data"]["notification_id"] for m in delivered)
    assert per_note == {str(n.id): 1 for n in notes}  # every push arrived, and only once
    assert Counter(m["token"] for m in delivered) == {"coord-0": REFERRALS, "coord-1": REFERRALS,
                                                     "police-0": REFERRALS}
