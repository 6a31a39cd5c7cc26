"""Scheduled background jobs, claimed through the database so that with several workers each
run happens exactly once, and a restart loses no schedule."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, DateTime, or_, select, update
from sqlmodel import Field, Session, SQLModel, col

from backend.core import clock
from backend.core.db import dialect_insert, get_engine

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
    # A claim older than this is presumed dead (worker killed) and may be taken over.
    lease: timedelta = timedelta(minutes=5)


_JOBS: dict[str, Job] = {}


def register(job: Job) -> Job:
    """Declare a job (domains do this at import time, in their scheduled.py)."""
    _JOBS[job.name] = job
    return job


def registered_jobs() -> list[Job]:
    import backend.scheduled  # noqa: F401 - importing registers every domain's jobs

    return sorted(_JOBS.values(), key=lambda j: j.name)


def _claim(session: Session, job: Job) -> bool:
    now = clock.now()
    insert = dialect_insert(session)
    session.execute(
        insert(JobSchedule).values(name=job.name, next_run_at=now).on_conflict_do_nothing(index_elements=["name"])
    )
    claimed = session.execute(
        update(JobSchedule)
        .where(
            col(JobSchedule.name) == job.name,
            col(JobSchedule.next_run_at) <= now,
            or_(col(JobSchedule.locked_until).is_(None), col(JobSchedule.locked_until) < now),
        )
        .values(locked_until=now + job.lease)
    ).rowcount  # type: ignore[attr-defined]
    session.commit()
    return bool(claimed == 1)


def _finish(session: Session, job: Job, error: str | None) -> None:
    now = clock.now()
    session.execute(
        update(JobSchedule)
        .where(col(JobSchedule.name) == job.name)
        .values(locked_until=None, next_run_at=now + job.every, last_finished_at=now, last_error=error)
    )
    session.commit()


def run_due_jobs() -> list[str]:
    """Run every registered job that is due and not held by another worker; return their names."""
    ran = []
    engine = get_engine()
    for job in registered_jobs():
        with Session(engine, expire_on_commit=False) as session:
            if not _claim(session, job):
                continue
        error = None
        with Session(engine, expire_on_commit=False) as session:
            try:
                job.run(session)
                session.commit()
            except Exception as exc:  # one failing job must not stop the others
                session.rollback()
                log.exception("job %s failed", job.name)
                error = f"{type(exc).__name__}: {exc}"[:2000]
        with Session(engine, expire_on_commit=False) as session:
            _finish(session, job, error)
        ran.append(job.name)
    return ran


def run_worker(*, once: bool = False, idle_seconds: float = 1.0) -> None:
    """Loop over due jobs until stopped."""
    log.info("worker started with jobs: %s", ", ".join(j.name for j in registered_jobs()))
    while True:
        ran = run_due_jobs()
        if once:
            return
        if not ran:
            time.sleep(idle_seconds)


def next_run(session: Session, name: str) -> datetime | None:
    row = session.execute(
        select(col(JobSchedule.next_run_at)).where(col(JobSchedule.name) == name)
    ).scalar_one_or_none()
    return clock.as_utc(row) if row is not None else None
