"""Job claims are leases: a running job keeps its claim however long it runs, and the claim of a
worker that died lapses so another worker takes the job over."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import insert
from sqlmodel import Session

from backend.core import clock
from backend.core.config import get_settings
from backend.core.jobs import _JOBS, Job, JobSchedule, register, run_due_jobs


@pytest.fixture
def short_leases(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HULEI_JOB_LEASE_SECONDS", "1")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def slow_job() -> Iterator[list[float]]:
    """A job that runs 2.5 s (more than two leases); yields the times it started."""
    started: list[float] = []

    def run(_: Session) -> None:
        started.append(time.monotonic())
        time.sleep(2.5)

    register(Job(name="test.slow", every=timedelta(hours=1), run=run))
    yield started
    _JOBS.pop("test.slow")


def test_a_job_running_past_its_lease_is_not_started_by_a_second_worker(
    short_leases: None, slow_job: list[float]
) -> None:
    first = threading.Thread(target=run_due_jobs)
    first.start()
    waited = time.monotonic() + 10
    while not slow_job and time.monotonic() < waited:
        time.sleep(0.05)
    assert slow_job, "the job never started"
    time.sleep(1.3)  # past the one-second lease: only the renewals keep the claim
    assert "test.slow" not in run_due_jobs()
    first.join()
    assert len(slow_job) == 1


def test_the_claim_of_a_worker_that_died_lapses_after_one_lease(short_leases: None, session: Session) -> None:
    # A worker claimed the job and was killed: the claim stands, nobody renews it.
    now = clock.now()
    session.execute(insert(JobSchedule).values(name="accounts.purge_stale_sign_in_state", next_run_at=now,
                                               locked_until=now + timedelta(seconds=1)))
    session.commit()
    assert "accounts.purge_stale_sign_in_state" not in run_due_jobs()
    clock.advance(timedelta(seconds=2))
    assert "accounts.purge_stale_sign_in_state" in run_due_jobs()
