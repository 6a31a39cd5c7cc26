"""Scheduled background jobs, claimed through the database so that with several workers each
run happens exactly once, and a restart loses no schedule.

A claim is a lease (`locked_until`) that the running worker renews every third of its length, so
leases can be short: a worker that is killed stops renewing, and another takes the job over
within one lease. The lease's own value is the claim token: renewing and finishing only touch the
row while it still carries the value this worker wrote.

A job whose work is claimed item by item (photos) is declared `exclusive=False`: it is still
started at most once per interval, but a worker may start it while another is still running it,
so that more workers drain a backlog faster.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, DateTime, or_, select, update
from sqlmodel import Field, Session, SQLModel, col

from backend.core import clock
from backend.core.collector import tune_for_long_running_process
from backend.core.config import get_settings
from backend.core.db import dialect_insert, get_engine
from backend.core.secrets import check_production

log = logging.getLogger(__name__)


class JobSchedule(SQLModel, table=True):
    """When each job runs next, and which worker holds it now."""

    __tablename__ = "job_schedule"

    name: str = Field(primary_key=True, max_length=80)
    next_run_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    locked_until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    last_finished_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    last_error: str | None = Field(default=None, max_length=2000)


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    run: Callable[[Session], object]
    # A claim not renewed for this long is presumed dead (worker killed) and may be taken over;
    # None: the job_lease_seconds setting.
    lease: timedelta | None = None
    # False: several workers may run it at once (its items are claimed one by one).
    exclusive: bool = True

    def lease_length(self) -> timedelta:
        return self.lease or timedelta(seconds=get_settings().job_lease_seconds)


_JOBS: dict[str, Job] = {}


def register(job: Job) -> Job:
    """Declare a job (domains do this at import time, in their scheduled.py, listed in
    backend/registries.py)."""
    _JOBS[job.name] = job
    return job


def registered_jobs() -> list[Job]:
    """The jobs declared so far (every process loads them all at start: backend/registries.py)."""
    return sorted(_JOBS.values(), key=lambda j: j.name)


def _claim(session: Session, job: Job) -> datetime | None:
    """Take the job if it is due and nobody holds it; return the lease (our claim token) or None.
    A non-exclusive job is only taken off the schedule (next run one interval on), never held."""
    now = clock.now()
    until = now + job.lease_length()
    insert = dialect_insert(session)
    session.execute(
        insert(JobSchedule).values(name=job.name, next_run_at=now).on_conflict_do_nothing(index_elements=["name"])
    )
    if not job.exclusive:
        started = session.execute(
            update(JobSchedule)
            .where(col(JobSchedule.name) == job.name, col(JobSchedule.next_run_at) <= now)
            .values(next_run_at=now + job.every)
        ).rowcount  # type: ignore[attr-defined]
        session.commit()
        return now if started == 1 else None
    claimed = session.execute(
        update(JobSchedule)
        .where(
            col(JobSchedule.name) == job.name,
            col(JobSchedule.next_run_at) <= now,
            or_(col(JobSchedule.locked_until).is_(None), col(JobSchedule.locked_until) < now),
        )
        .values(locked_until=until)
    ).rowcount  # type: ignore[attr-defined]
    session.commit()
    return until if claimed == 1 else None


class _Heartbeat:
    """Renews a running job's lease from a side thread (its own connection) until stopped."""

    def __init__(self, job: Job, until: datetime) -> None:
        self.job, self.until, self.lost = job, until, False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{job.name}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        lease = self.job.lease_length()
        while not self._stop.wait(lease.total_seconds() / 3):
            renewed = clock.now() + lease
            try:
                with Session(get_engine()) as session:
                    held = session.execute(
                        update(JobSchedule)
                        .where(col(JobSchedule.name) == self.job.name, col(JobSchedule.locked_until) == self.until)
                        .values(locked_until=renewed)
                    ).rowcount  # type: ignore[attr-defined]
                    session.commit()
            except Exception as exc:  # database briefly away: the lease still runs; try again next beat
                log.warning("job %s: lease not renewed: %s", self.job.name, exc)
                continue
            if held != 1:
                log.warning("job %s: lease lost (held past it); another worker may run it now", self.job.name)
                self.lost = True
                return
            self.until = renewed


def _finish(session: Session, job: Job, until: datetime, error: str | None) -> None:
    now = clock.now()
    if not job.exclusive:
        session.execute(update(JobSchedule).where(col(JobSchedule.name) == job.name)
                        .values(last_finished_at=now, last_error=error))
        session.commit()
        return
    finished = session.execute(
        update(JobSchedule)
        .where(col(JobSchedule.name) == job.name, col(JobSchedule.locked_until) == until)
        .values(locked_until=None, next_run_at=now + job.every, last_finished_at=now, last_error=error)
    ).rowcount  # type: ignore[attr-defined]
    session.commit()
    if finished != 1:
        log.warning("job %s finished after its lease was taken over; the other worker's run stands", job.name)


def run_due_jobs() -> list[str]:
    """Run every registered job that is due and not held by another worker; return their names."""
    ran = []
    engine = get_engine()
    for job in registered_jobs():
        with Session(engine, expire_on_commit=False) as session:
            until = _claim(session, job)
        if until is None:
            continue
        error = None
        heartbeat = _Heartbeat(job, until) if job.exclusive else None
        with heartbeat or contextlib.nullcontext(), Session(engine, expire_on_commit=False) as session:
            try:
                job.run(session)
                session.commit()
            except Exception as exc:  # one failing job must not stop the others
                session.rollback()
                log.exception("job %s failed", job.name)
                error = f"{type(exc).__name__}: {exc}"[:2000]
        with Session(engine, expire_on_commit=False) as session:
            _finish(session, job, heartbeat.until if heartbeat else until, error)
        ran.append(job.name)
    return ran


def run_worker(*, once: bool = False, idle_seconds: float = 1.0) -> None:
    """Loop over due jobs until stopped. Losing the database (a restart, a network cut) is waited
    out here: the process keeps running and carries on when the database answers again. In
    production, weak secrets stop it before anything runs (backend/core/secrets.py)."""
    check_production(get_settings())
    from backend.notifications.sms import check_sms_settings  # notifications sit on top of this module

    check_sms_settings(get_settings())
    log.info("worker started with jobs: %s", ", ".join(j.name for j in registered_jobs()))
    tune_for_long_running_process()  # as the API does: the jobs are loaded, their heap is permanent
    while True:
        try:
            ran = run_due_jobs()
        except Exception as exc:
            if once:
                raise
            log.warning("worker: database unavailable, retrying in %.0f s: %s", idle_seconds, exc)
            ran = []
        if once:
            return
        if not ran:
            time.sleep(idle_seconds)


def next_run(session: Session, name: str) -> datetime | None:
    row = session.execute(
        select(col(JobSchedule.next_run_at)).where(col(JobSchedule.name) == name)
    ).scalar_one_or_none()
    return clock.as_utc(row) if row is not None else None
