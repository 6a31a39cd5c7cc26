"""Sign-in throttling per address slows a guessing address down and never locks out the other
people behind it (a township office behind one NAT, or every client behind the proxy); the
per-number lockout stays as it was."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.config import get_settings
from backend.core.jobs import run_due_jobs
from backend.main import create_app
from tests.factories import TEST_PASSWORD, make_town, make_user

OFFICE = ("203.0.113.7", 40000)  # the township office's one public address
ELSEWHERE = ("198.51.100.9", 40000)
LOGIN = "/api/v1/auth/login"
pytestmark = pytest.mark.timeout(30)


def _client(address: tuple[str, int]) -> TestClient:
    return TestClient(create_app(), client=address)


@pytest.fixture
def office(database_url: str) -> Iterator[TestClient]:
    with _client(OFFICE) as c:
        yield c


def _guess_many_numbers(office: TestClient, count: int) -> None:
    """`count` wrong passwords, each at another number (none of them registered)."""
    for i in range(count):
        resp = office.post(LOGIN, json={"phone": f"1970000{i:04d}", "password": "guess"})
        assert resp.status_code == 401, resp.text


def test_guessing_many_numbers_slows_the_address_but_its_other_users_still_sign_in(
    office: TestClient, session: Session
) -> None:
    town = make_town(session)
    user = make_user(session, town.villages[0], Role.volunteer)
    _guess_many_numbers(office, get_settings().login_ip_max_failures)

    held = office.post(LOGIN, json={"phone": user.phone, "password": TEST_PASSWORD})
    assert held.status_code == 429
    assert held.json()["code"] == "login-slowed"
    wait = int(held.headers["Retry-After"])
    assert 1 <= wait <= get_settings().login_ip_max_delay_seconds
    assert held.json()["retry_after"] == wait
    # Every API process sees the same wait (the state is in the database).
    with _client(OFFICE) as other_process:
        assert other_process.post(LOGIN, json={"phone": user.phone, "password": TEST_PASSWORD}).status_code == 429
    # Another address is not held at all.
    with _client(ELSEWHERE) as elsewhere:
        assert elsewhere.post(LOGIN, json={"phone": user.phone, "password": TEST_PASSWORD}).status_code == 200

    clock.advance(timedelta(seconds=wait))
    assert office.post(LOGIN, json={"phone": user.phone, "password": TEST_PASSWORD}).status_code == 200


def _keep_guessing(office: TestClient, rounds: int) -> list[int]:
    """Guess at the pace the address is allowed; the waits it was told, in order."""
    waits = []
    for i in range(rounds):
        # Guessing fast during the wait is refused without a verification and does not count.
        for _ in range(2):
            fast = office.post(LOGIN, json={"phone": f"1971000{i:04d}", "password": "guess"})
            assert fast.status_code == 429
            assert fast.json()["code"] == "login-slowed"
        waits.append(int(fast.headers["Retry-After"]))
        clock.advance(timedelta(seconds=waits[-1]))
        assert office.post(LOGIN, json={"phone": f"1971000{i:04d}", "password": "guess"}).status_code == 401
    return waits


def test_an_address_that_keeps_guessing_is_held_to_a_few_guesses_a_minute(
    office: TestClient, session: Session
) -> None:
    make_town(session)
    _guess_many_numbers(office, get_settings().login_ip_max_failures)
    waits = _keep_guessing(office, 25)
    assert waits[:5] == [1, 2, 4, 8, 16]
    minutes = sum(waits) / 60
    assert len(waits) / minutes < 4.5  # 50 failures per 15 minutes is 3.3 a minute


def test_the_wait_doubles_with_each_failure_up_to_its_cap(
    office: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HULEI_LOGIN_IP_MAX_DELAY_SECONDS", "8")
    get_settings.cache_clear()
    make_town(session)
    _guess_many_numbers(office, get_settings().login_ip_max_failures)
    assert _keep_guessing(office, 7) == [1, 2, 4, 8, 8, 8, 8]


def test_when_the_wait_is_over_one_success_does_not_hold_the_next_person(
    office: TestClient, session: Session
) -> None:
    town = make_town(session)
    first, second = (make_user(session, town.villages[0], Role.volunteer) for _ in range(2))
    _guess_many_numbers(office, get_settings().login_ip_max_failures)
    held = office.post(LOGIN, json={"phone": first.phone, "password": TEST_PASSWORD})
    clock.advance(timedelta(seconds=int(held.headers["Retry-After"])))
    assert office.post(LOGIN, json={"phone": first.phone, "password": TEST_PASSWORD}).status_code == 200
    assert office.post(LOGIN, json={"phone": second.phone, "password": TEST_PASSWORD}).status_code == 200


def test_a_phone_that_signed_in_to_the_number_before_is_not_held_by_the_address_wait(
    office: TestClient, session: Session
) -> None:
    town = make_town(session)
    user = make_user(session, town.villages[0], Role.volunteer)
    phone = {"X-Device-Id": "install-7f3c0a"}
    assert office.post(LOGIN, json={"phone": user.phone, "password": TEST_PASSWORD}, headers=phone).status_code == 200
    clock.advance(timedelta(days=2))
    run_due_jobs()  # the hourly purge of stale sign-in state keeps what the phone proved
    _guess_many_numbers(office, get_settings().login_ip_max_failures)

    again = office.post(LOGIN, json={"phone": user.phone, "password": TEST_PASSWORD}, headers=phone)
    assert again.status_code == 200, again.text
    # The same number from a phone it never signed in on waits like everyone else at the address.
    new_phone = office.post(LOGIN, json={"phone": user.phone, "password": TEST_PASSWORD},
                            headers={"X-Device-Id": "install-other"})
    assert new_phone.status_code == 429
    # A known phone does not help a guesser at other numbers.
    other = office.post(LOGIN, json={"phone": "19710009999", "password": "guess"}, headers=phone)
    assert other.status_code == 429


def test_the_number_is_still_locked_after_five_failures_from_any_address(
    office: TestClient, session: Session
) -> None:
    town = make_town(session)
    target, colleague = (make_user(session, town.villages[0], Role.volunteer) for _ in range(2))
    for _ in range(get_settings().login_max_failures):
        assert office.post(LOGIN, json={"phone": target.phone, "password": "bad"}).status_code == 401
    with _client(ELSEWHERE) as elsewhere:
        locked = elsewhere.post(LOGIN, json={"phone": target.phone, "password": TEST_PASSWORD})
    assert locked.status_code == 429
    assert locked.json()["code"] == "login-locked"
    assert int(locked.headers["Retry-After"]) > 14 * 60
    # Five failures are far from slowing the address: a colleague signs in at once.
    assert office.post(LOGIN, json={"phone": colleague.phone, "password": TEST_PASSWORD}).status_code == 200
    clock.advance(timedelta(minutes=get_settings().login_lockout_minutes, seconds=1))
    assert office.post(LOGIN, json={"phone": target.phone, "password": TEST_PASSWORD}).status_code == 200


def test_a_burst_when_the_wait_ends_gets_one_verification(
    office: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_town(session)
    _guess_many_numbers(office, get_settings().login_ip_max_failures)
    # A verification as slow as in production (tens of milliseconds), so the burst overlaps it.
    monkeypatch.setenv("HULEI_PASSWORD_HASH_MEMORY_KIB", str(32 * 1024))
    get_settings.cache_clear()
    held = office.post(LOGIN, json={"phone": "19730000000", "password": "guess"})
    clock.advance(timedelta(seconds=int(held.headers["Retry-After"])))
    start = threading.Barrier(6)

    def guess(i: int) -> tuple[int, str]:
        start.wait()
        resp = office.post(LOGIN, json={"phone": f"1973000{i:04d}", "password": "guess"})
        return resp.status_code, resp.json()["code"]

    with ThreadPoolExecutor(6) as pool:
        answers = sorted(pool.map(guess, range(6)))
    assert answers == [(401, "invalid-credentials")] + [(429, "login-slowed")] * 5
