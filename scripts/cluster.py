"""Real processes on one database, for the scale-out test and the load and fault scripts (issue 8).

- `throwaway_postgis(admin_url)`: a fresh database with the postgis extension, migrated, dropped after.
- `PrivatePostgres`: a PostgreSQL server of our own (initdb in a temporary directory as the
  `postgres` OS user, on a free port) that may be stopped and restarted without touching the
  shared server on 5432.
- `Cluster`: N `hulei serve` and M `hulei worker` processes with one environment (DATABASE_URL,
  a media directory they all share, the push provider), ready when every API's /readyz answers 200,
  stopped together on exit, on error and on Ctrl-C.
- `fake_fcm(directory)`: the fake FCM v1 server of the notification tests, and the settings that
  point firebase-admin at it.

Importable from tests (`from scripts.cluster import Cluster`) and from the scripts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from tests.notifications.fake_fcm import RunningFakeFcm

DEFAULT_ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

# argon2id at a token cost for throwaway setups: signing in hundreds of simulated phones at the
# production cost (about 70 ms and 64 MiB a hash) would measure the hash, not the service.
CHEAP_PASSWORD_HASH = {
    "HULEI_PASSWORD_HASH_TIME_COST": "1",
    "HULEI_PASSWORD_HASH_MEMORY_KIB": "1024",
    "HULEI_PASSWORD_HASH_PARALLELISM": "1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so `finally` blocks stop the processes and drop the database."""

    def _raise(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _raise)


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextlib.contextmanager
def throwaway_postgis(admin_url: str = DEFAULT_ADMIN_URL, prefix: str = "hulei_cluster") -> Iterator[str]:
    """A new database with postgis, migrated to head; yields its URL; dropped (forcibly) after."""
    import psycopg
    from sqlalchemy.engine import make_url

    from backend.core.migrate import upgrade

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = _psycopg_url(admin_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        upgrade(url)
        yield url
    finally:
        from backend.core.db import dispose_engines

        dispose_engines()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _postgres_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if not versions:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql (run scripts/bootstrap)")
    preferred = [p for p in versions if p.parts[-3] == "15"]
    return (preferred or versions)[-1].parent


class PrivatePostgres:
    """A PostgreSQL server of our own on a free port (trust authentication, loopback only).

    Run as the `postgres` OS user through runuser when we are root (initdb refuses root), as
    ourselves otherwise. Stopping or restarting it touches nothing but its own directory.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.bin = _postgres_bin()
        self.base = Path(tempfile.mkdtemp(prefix="hulei-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self._as_postgres = os.geteuid() == 0

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, cwd=self.base, capture_output=True, text=True, check=check)

    def init(self) -> PrivatePostgres:
        if self._as_postgres:
            shutil.chown(self.base, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "--no-locale", "-E", "UTF8", "--no-sync")
        return self

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c max_connections=300 "
                   "-c shared_buffers=64MB")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "status", check=False).returncode == 0

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            if self.running():
                self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        try:
            self.init()
            self.start()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.destroy()


@dataclass
class Proc:
    """One child process: an API (with a port) or a worker."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        assert self.port is not None, f"{self.name} has no port"
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, as when the machine or the OOM killer takes it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


@dataclass
class Cluster:
    """`apis` API processes and `workers` worker processes on one database.

    Every process gets the same environment: the caller's, then DATABASE_URL, HULEI_MEDIA_ROOT
    (one directory for all, as a shared volume or object store would be), then `env`.
    """

    database_url: str
    workdir: Path
    apis: int = 2
    workers: int = 2
    env: Mapping[str, str] = field(default_factory=dict)
    api_procs: list[Proc] = field(default_factory=list)
    worker_procs: list[Proc] = field(default_factory=list)

    @property
    def media_root(self) -> Path:
        return self.workdir / "media"

    @property
    def urls(self) -> list[str]:
        return [p.url for p in self.api_procs]

    def process_env(self) -> dict[str, str]:
        env = {**os.environ, "DATABASE_URL": self.database_url, "HULEI_MEDIA_ROOT": str(self.media_root),
               "PYTHONUNBUFFERED": "1", **self.env}
        # The children import the project from the repository, wherever the caller runs from.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        return env

    def _spawn(self, name: str, args: list[str], port: int | None = None) -> Proc:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.workdir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "backend.cli", *args], cwd=ROOT, env=self.process_env(),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us; we stop the children in order
            )
        return Proc(name, popen, log, port)

    def add_api(self) -> Proc:
        port = free_port()
        proc = self._spawn(f"api-{len(self.api_procs) + 1}", ["serve", "--host", "127.0.0.1", "--port", str(port)],
                           port)
        self.api_procs.append(proc)
        return proc

    def add_worker(self) -> Proc:
        proc = self._spawn(f"worker-{len(self.worker_procs) + 1}", ["worker"])
        self.worker_procs.append(proc)
        return proc

    def wait_ready(self, procs: list[Proc] | None = None, timeout: float = 120.0) -> None:
        """Until every API answers /readyz 200 and every worker has registered its jobs."""
        pending = list(procs if procs is not None else self.api_procs + self.worker_procs)
        deadline = time.monotonic() + timeout
        last = ""
        with httpx.Client(timeout=5, trust_env=False) as http:
            while pending:
                for proc in list(pending):
                    if not proc.alive():
                        raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
                    if proc.port is not None:
                        with contextlib.suppress(httpx.HTTPError):
                            answer = http.get(f"{proc.url}/readyz")
                            last = f"{proc.name} /readyz {answer.status_code}: {answer.text}"
                            if answer.status_code == 200:
                                pending.remove(proc)
                    elif "worker started with jobs" in proc.tail(200):
                        pending.remove(proc)
                if time.monotonic() > deadline:
                    names = ", ".join(p.name for p in pending)
                    raise TimeoutError(f"not ready after {timeout:.0f} s: {names}; {last}\n{pending[0].tail(5)}")
                if pending:
                    time.sleep(0.2)

    def start(self, timeout: float = 120.0) -> Cluster:
        try:
            for _ in range(self.apis):
                self.add_api()
            for _ in range(self.workers):
                self.add_worker()
            self.wait_ready(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        # Workers first: they would otherwise log the database going away at teardown.
        for proc in self.worker_procs + self.api_procs:
            proc.stop()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


@contextlib.contextmanager
def fake_fcm(directory: Path) -> Iterator[tuple[RunningFakeFcm, dict[str, str]]]:
    """The fake FCM v1 server (OAuth token endpoint and send) in this process, and the settings
    that make a worker push through firebase-admin to it."""
    from tests.notifications.fake_fcm import start_fake_fcm

    directory.mkdir(parents=True, exist_ok=True)
    running = start_fake_fcm(directory)
    env = {"HULEI_PUSH_PROVIDER": "fcm", "HULEI_FCM_CREDENTIALS_FILE": str(running.credentials_file),
           "HULEI_FCM_ENDPOINT": running.base_url,
           "NO_PROXY": ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1,localhost"]))}
    try:
        yield running, env
    finally:
        running.stop()
