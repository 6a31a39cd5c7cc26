"""Password hashing fits the process's memory: at most budget // cost argon2 computations run at
once (64 MiB each in production; 48 at once once took a process past its 1 GiB limit), and a
sign-in that finds no slot in time is told to retry (503 `server-busy`, Retry-After), never 500."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.core import hashing
from backend.core.config import PROJECT_ROOT, get_settings
from tests.factories import TEST_PASSWORD, make_town, make_user, sign_in

LOGIN = "/api/v1/auth/login"
pytestmark = pytest.mark.timeout(30)

# Run in a fresh interpreter so its peak resident memory (VmHWM) is that of the hashing alone.
_MEASURE = r"""
import json, os, threading
from backend.core import hashing, security

def hwm_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

security.verify_password(None, "warm-up")  # the dummy hash, one computation
before = hwm_kib()
start = threading.Barrier(12)
def guess(i):
    start.wait()
    security.verify_password(None, f"wrong-{i}")
threads = [threading.Thread(target=guess, args=(i,)) for i in range(12)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"added_kib": hwm_kib() - before, "peak": hashing.gate().peak}))
"""


def test_twelve_wrong_sign_ins_at_once_take_no_more_memory_than_the_budget() -> None:
    env = {
        **os.environ,
        "HULEI_PASSWORD_HASH_TIME_COST": "1",
        "HULEI_PASSWORD_HASH_MEMORY_KIB": str(64 * 1024),
        "HULEI_PASSWORD_HASH_PARALLELISM": "1",
        "HULEI_PASSWORD_HASH_MEMORY_BUDGET_MIB": "128",  # two at a time
        "HULEI_PASSWORD_HASH_WAIT_SECONDS": "30",  # nobody is turned away here; all wait their turn
    }
    out = subprocess.run([sys.executable, "-c", _MEASURE], env=env, cwd=PROJECT_ROOT, capture_output=True,
                         text=True, timeout=25, check=True)
    measured = json.loads(out.stdout)
    assert measured["peak"] == 2
    # Two computations of 64 MiB at most (12 at once would be 768 MiB), and a little slack.
    assert measured["added_kib"] < 2 * 64 * 1024 + 24 * 1024, measured


@pytest.fixture
def two_slots(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[hashing.HashingGate]:
    """The app's gate with room for two computations and a short wait."""
    monkeypatch.setenv("HULEI_PASSWORD_HASH_MEMORY_BUDGET_MIB",
                       str(2 * max(1, get_settings().password_hash_memory_kib // 1024)))
    monkeypatch.setenv("HULEI_PASSWORD_HASH_WAIT_SECONDS", "0.3")
    get_settings.cache_clear()
    hashing._gate_for.cache_clear()  # fresh counters
    gate = hashing.gate()
    assert gate.slots == 2
    yield gate
    hashing._gate_for.cache_clear()


def _failures_counted(session: Session) -> int:
    return int(session.execute(text("SELECT coalesce(sum(failures), 0) FROM login_throttle")).scalar_one())


def test_a_sign_in_that_finds_no_slot_is_told_to_retry_and_nothing_is_counted(
    client: TestClient, session: Session, two_slots: hashing.HashingGate
) -> None:
    town = make_town(session)
    user = make_user(session, town.villages[0], Role.volunteer)
    with ExitStack() as busy:
        for _ in range(two_slots.slots):
            busy.enter_context(two_slots.slot())  # two sign-ins hashing elsewhere in this process
        started = time.monotonic()
        resp = client.post(LOGIN, json={"phone": user.phone, "password": "wrong"},
                           headers={"Accept-Language": "en"})
        waited = time.monotonic() - started
    assert resp.status_code == 503
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == "server-busy"
    assert int(resp.headers["Retry-After"]) >= 1
    assert 0.25 < waited < 3
    assert _failures_counted(session) == 0  # not looked at: no failure against the number
    assert client.post(LOGIN, json={"phone": user.phone, "password": TEST_PASSWORD}).status_code == 200


def test_every_path_that_hashes_waits_for_a_slot(
    client: TestClient, session: Session, two_slots: hashing.HashingGate
) -> None:
    town = make_town(session)
    coordinator = sign_in(client, make_user(session, town.town, Role.coordinator))
    with ExitStack() as busy:
        for _ in range(two_slots.slots):
            busy.enter_context(two_slots.slot())
        change = client.post("/api/v1/me/password", headers=coordinator.headers,
                             json={"current_password": TEST_PASSWORD, "new_password": "a-new-long-password"})
        create = client.post("/api/v1/users", headers=coordinator.headers, json={
            "phone": "19700001234", "display_name": "新志愿者", "password": "a-long-password-1",
            "org_unit_id": town.villages[0].id, "roles": ["volunteer"], "agency": "womens_federation"})
    assert (change.status_code, change.json()["code"]) == (503, "server-busy")
    assert (create.status_code, create.json()["code"]) == (503, "server-busy")
    assert two_slots.refused == 2


def test_concurrent_wrong_sign_ins_never_run_more_hashes_than_the_slots(
    client: TestClient, session: Session, two_slots: hashing.HashingGate
) -> None:
    make_town(session)
    start = threading.Barrier(12)

    def guess(i: int) -> tuple[int, str | None, str | None]:
        start.wait()
        resp = client.post(LOGIN, json={"phone": f"1972000{i:04d}", "password": "wrong"})
        return resp.status_code, resp.json().get("code"), resp.headers.get("Retry-After")

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(guess, range(12)))
    for status, code, retry_after in answers:
        assert (status, code) in {(401, "invalid-credentials"), (503, "server-busy")}, answers
        if status == 503:
            assert retry_after is not None and int(retry_after) >= 1
    assert 1 <= two_slots.peak <= 2
    assert two_slots.in_flight == 0


def test_a_password_hashed_at_another_cost_is_rehashed_at_sign_in(
    client: TestClient, session: Session, two_slots: hashing.HashingGate
) -> None:
    town = make_town(session)
    user = make_user(session, town.villages[0], Role.volunteer)
    settings = get_settings()
    older = PasswordHasher(time_cost=settings.password_hash_time_cost + 1,
                           memory_cost=settings.password_hash_memory_kib,
                           parallelism=settings.password_hash_parallelism).hash(TEST_PASSWORD)
    user.password_hash = older
    session.add(user)
    session.commit()
    assert client.post(LOGIN, json={"phone": user.phone, "password": TEST_PASSWORD}).status_code == 200
    session.refresh(user)
    assert user.password_hash != older
    assert f"t={settings.password_hash_time_cost}," in user.password_hash
    assert two_slots.peak >= 1  # verified and rehashed through the gate
    assert client.post(LOGIN, json={"phone": user.phone, "password": TEST_PASSWORD}).status_code == 200
