"""`make faults` (issues 8 and 14): the service under a database restart, a killed worker, slow
request bodies, and a password sprayer behind the proxy.

    uv run python scripts/faults.py [--phones 50] [--duration 60] [--restart-at 20] [--outage 5]
    uv run python scripts/faults.py --only slow-body,proxy-lockout     # just those (about 2 minutes)

Everything runs on a private PostgreSQL server started for the run (initdb in a temporary
directory as the `postgres` OS user, on a free port; scripts/cluster.py PrivatePostgres), never on
the shared server on 5432, which is not touched.

1. Database restart. Two API processes and two workers; --phones simulated phones (scripts/load.py)
   sync visits with photos for --duration seconds. At --restart-at s the database is stopped
   (pg_ctl stop -m fast: sessions are cut, transactions in flight aborted) and started again
   --outage s later. Meanwhile /readyz of both APIs is polled every 0.2 s. Checked: /readyz
   answered 503 during the outage and 200 after it; no process was restarted (same process ids,
   all alive); no 500 answer, only 503 `database-unavailable` while the database was away; the
   phones' retries got every request through (no error); every visit and photo sent is stored
   exactly once; every photo was processed afterwards (the workers carried on by themselves).

2. Worker killed. Photos and pushes are queued, two workers run, and one is SIGKILLed mid-task:
   a. in the middle of a photo (both workers process photos; the first is killed while photos are
      in state processing): the other finishes the queue and, once its processing lease has run
      out, the photo the dead worker was on; every photo ends ready, with both derivatives,
      processed once (the interrupted photo twice: its first run never finished);
   b. holding a claimed batch of pushes, after the claim and before FCM accepted any of them (the
      fake FCM's token endpoint is held shut until the kill): the other worker takes the rest and,
      once the claim's lease has run out, the dead worker's batch; every push arrives at the fake
      FCM server exactly once. (A push FCM had accepted but whose answer the dead worker never
      recorded would be sent again: delivery is at least once, and phones drop a repeated
      notification_id.)
   Leases are shortened for this run (HULEI_JOB_LEASE_SECONDS=6, HULEI_PUSH_LEASE_SECONDS=10,
   HULEI_MEDIA_PROCESSING_LEASE_SECONDS=10) so the takeovers happen within a minute.

3. Slow bodies (`slow-body`). One API process and, in front of it, nginx run with the settings of
   infra/nginx/hulei.conf (a temporary configuration made from it: plain HTTP on a free loopback
   port, its own prefix, pid, logs and temporary files; `proxy_bind 127.0.0.254`, the one address
   the API is told to trust, HULEI_FORWARDED_ALLOW_IPS). --trickle-connections connections from one
   client address (127.0.0.66) each announce `POST /api/v1/auth/login` with Content-Length
   1,000,000 and send one byte every --trickle-every seconds, for at most --trickle-for seconds;
   meanwhile --normal-clients clients, each from an address of its own, sign in and pull
   (`GET /sync/pull`) over and over. Run twice, straight at the API and through nginx. Checked:
   the normal clients never got 503 (nor anything but 200); straight at the API the trickling
   bodies were cut, with 408 `request-timeout` once too slow (about 20 s) or 429 at once beyond one
   address's share of bodies in reception; through nginx none of them reached the API (nginx holds
   the body until it is complete) and those beyond nginx's connections per address got 429.

4. Sign-in lockout through the proxy (`proxy-lockout`). The same API behind nginx. One client
   (127.0.0.100) makes one wrong guess at each of 50 numbers, then one more; owners of numbers, from
   addresses of their own (127.0.0.101, ...: distinct loopback source addresses, so nginx names a
   different client for each), sign in with the right password; finally one number is guessed 5
   times from 5 addresses and its owner signs in. Checked: the guessing address is slowed (429 with
   Retry-After), every other user gets 200, the number guessed 5 times stays locked (429 for its
   owner too: the per-number lockout), and the audit log holds the clients' own addresses, never
   the proxy's.

Prints one table (scenario / check / result); exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.cluster import (  # noqa: E402
    Cluster,
    PrivatePostgres,
    exit_on_sigterm,
    fake_fcm,
    free_port,
    throwaway_postgis,
)
from scripts.load import (  # noqa: E402
    PASSWORD,
    LoadConfig,
    Stats,
    answers_summary,
    base_photo,
    count_check,
    drive,
    latency_table,
    seed_phones,
    table,
    unique_photo,
    wait_for_photos,
)

SHORT_LEASES = {"HULEI_JOB_LEASE_SECONDS": "6", "HULEI_PUSH_LEASE_SECONDS": "10",
                "HULEI_MEDIA_PROCESSING_LEASE_SECONDS": "10"}


@dataclass
class Row:
    scenario: str
    check: str
    measured: str
    ok: bool


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _query(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(_plain(url)) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


# --- 1. database restart ---------------------------------------------------------------------------


async def _poll_readyz(urls: list[str], log: list[tuple[float, int, int]], stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(timeout=2, trust_env=False) as http:
        while not stop.is_set():
            for n, url in enumerate(urls):
                try:
                    status = (await http.get(f"{url}/readyz")).status_code
                except httpx.HTTPError:
                    status = 0  # no answer at all (the API process itself would be down)
                log.append((time.monotonic(), n, status))
            await asyncio.sleep(0.2)


async def _restart(pg: PrivatePostgres, at: float, outage: float, marks: dict[str, float]) -> None:
    await asyncio.sleep(at)
    marks["stop"] = time.monotonic()
    await asyncio.to_thread(pg.stop, "fast")
    marks["stopped"] = time.monotonic()
    await asyncio.sleep(outage)
    marks["start"] = time.monotonic()
    await asyncio.to_thread(pg.start)
    marks["started"] = time.monotonic()


async def _load_with_restart(urls: list[str], seeds: Any, config: LoadConfig, pg: PrivatePostgres, at: float,
                             outage: float) -> tuple[Stats, list[tuple[float, int, int]], dict[str, float]]:
    log: list[tuple[float, int, int]] = []
    marks: dict[str, float] = {}
    stop = asyncio.Event()
    poller = asyncio.create_task(_poll_readyz(urls, log, stop))
    restart = asyncio.create_task(_restart(pg, at, outage, marks))
    stats = await drive(urls, seeds, config)
    await restart
    await asyncio.sleep(1)
    stop.set()
    await poller
    return stats, log, marks


def database_restart(pg: PrivatePostgres, workdir: Path, args: argparse.Namespace) -> list[Row]:
    name = "database restart"
    rows: list[Row] = []
    with throwaway_postgis(pg.admin_url, prefix="hulei_faults_restart") as url:
        seeds = seed_phones(url, args.phones, 10)
        with fake_fcm(workdir / "fcm1") as (_, fcm_env), \
                Cluster(url, workdir / "restart", apis=2, workers=2, env={**fcm_env, **SHORT_LEASES}) as cluster:
            procs = cluster.api_procs + cluster.worker_procs
            pids = {p.name: p.pid for p in procs}
            config = LoadConfig(duration=args.duration, think=1.0, retry_for=120.0, ramp=5.0)
            stats, log, marks = asyncio.run(_load_with_restart(cluster.urls, seeds, config, pg, args.restart_at,
                                                               args.outage))
            ready, waiting, on_disk, drained = wait_for_photos(url, cluster.media_root / "objects", 120)
            alive = all(p.alive() for p in procs) and {p.name: p.pid for p in procs} == pids
            worker_logs = "\n".join(p.tail(100_000) for p in cluster.worker_procs)
        checks = count_check(url, stats)
    print(f"\n[{name}] load during the restart:\n{latency_table(stats)}")
    print(f"answers other than 2xx: {answers_summary(stats)}")

    outage_from, outage_to = marks["stop"], marks["started"]
    for n in range(2):
        during = [s for t, a, s in log if a == n and outage_from <= t <= outage_to]
        after = [(t, s) for t, a, s in log if a == n and t > outage_to]
        back = next((t for t, s in after if s == 200), None)
        saw_503 = 503 in during
        rows.append(Row(name, f"api-{n + 1} /readyz reports the outage",
                        f"{during.count(503)} x 503 in {outage_to - outage_from:.1f} s down", saw_503))
        rows.append(Row(name, f"api-{n + 1} /readyz ready again",
                        f"200 after {back - outage_to:.1f} s" if back else "never", back is not None))
    rows.append(Row(name, "no process restarted", "same 4 process ids, all alive" if alive else "a process died",
                    alive))
    errors_500 = sum(n for s in stats.ops.values() for a, n in s.answers.items() if a.startswith("500"))
    unavailable = sum(n for s in stats.ops.values() for a, n in s.answers.items() if a == "503 database-unavailable")
    rows.append(Row(name, "no 500 answers; outage answered 503", f"{errors_500} x 500, {unavailable} x 503 "
                    "database-unavailable", errors_500 == 0))
    errors = sum(s.errors for s in stats.ops.values())
    retried = sum(s.retried for s in stats.ops.values())
    rows.append(Row(name, "phones' retries got everything through", f"{retried} operations retried, {errors} failed",
                    errors == 0))
    for c in checks:
        rows.append(Row(name, f"{c.name} stored exactly once",
                        f"sent {c.sent}, stored {c.stored}, duplicates {c.duplicates}, missing {c.missing}", c.ok))
    recovered = "worker: database unavailable" in worker_logs
    rows.append(Row(name, "workers rode out the outage, photos processed",
                    f"{ready} ready ({on_disk} with derivatives), {waiting} waiting, drained in {drained:.0f} s"
                    + ("; workers logged the outage" if recovered else ""),
                    waiting == 0 and ready == on_disk == checks[1].stored))
    return rows


# --- 2. worker killed ------------------------------------------------------------------------------


def _upload_photos(api: str, phone: str, count: int) -> list[str]:
    photo = base_photo((2400, 1800))
    uploaded = []
    with httpx.Client(base_url=api, timeout=60, trust_env=False) as http:
        token = http.post("/api/v1/auth/login", json={"phone": phone, "password": PASSWORD}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"}
        for _ in range(count):
            photo_uuid = uuid.uuid4()
            resp = http.put(f"/api/v1/media/{photo_uuid}", content=unique_photo(photo, photo_uuid), headers=headers,
                            params={"parent_kind": "visit", "parent_uuid": str(uuid.uuid4())})
            resp.raise_for_status()
            uploaded.append(str(photo_uuid))
    return uploaded


def _wait(what: str, predicate: Any, timeout: float, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(every)


def _photo_states(url: str) -> Counter[str]:
    return Counter({str(s): int(n) for s, n in _query(url, "SELECT state, count(*) FROM media_item GROUP BY state")})


def _enqueue_pushes(url: str, users: int, rounds: int) -> int:
    """`users` recipients with one device each, `rounds` notifications to all of them; the pushes queued."""
    from sqlalchemy import create_engine, insert, select
    from sqlmodel import Session, col

    from backend.accounts.models import Device, User
    from backend.core import clock
    from backend.notifications import service as notifications
    from backend.orgunits.models import OrgUnit

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with Session(engine) as session:
        unit = session.execute(select(col(OrgUnit.id)).order_by(col(OrgUnit.id)).limit(1)).scalar_one()
        now = clock.now()
        session.execute(insert(User), [{"phone": f"195{i:08d}", "display_name": f"接收人{i}", "password_hash": "-",
                                        "org_unit_id": unit, "created_at": now, "updated_at": now}
                                       for i in range(users)])
        ids = [int(i) for i in session.execute(select(col(User.id)).where(col(User.phone).like("195%"))).scalars()]
        session.execute(insert(Device), [{"user_id": uid, "platform": "android", "push_token": f"fault-{uid}",
                                          "created_at": now, "last_seen_at": now} for uid in ids])
        for r in range(rounds):
            notifications.enqueue(session, user_ids=ids, kind="faults.ping", title_zh="故障演练通知",
                                  title_en="Fault drill", body_zh="请忽略", body_en="Please ignore",
                                  data={"round": str(r)})
        session.commit()
    engine.dispose()
    return users * rounds


def worker_killed(pg: PrivatePostgres, workdir: Path, args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    with throwaway_postgis(pg.admin_url, prefix="hulei_faults_kill") as url, \
            fake_fcm(workdir / "fcm2") as (fcm, fcm_env):
        [uploader] = seed_phones(url, 1, 1)
        gate = threading.Event()
        gate.set()
        issue_token = fcm.fake.issue_token

        def held_token(form: dict[str, str]) -> tuple[int, dict[str, Any]]:
            gate.wait(120)
            return issue_token(form)

        fcm.fake.issue_token = held_token  # type: ignore[method-assign]
        # The killed worker's held token request is answered into a closed socket: not worth a traceback.
        fcm.server.handle_error = lambda *_: None  # type: ignore[method-assign]
        cluster = Cluster(url, workdir / "kill", apis=1, workers=0, env={**fcm_env, **SHORT_LEASES})
        with cluster:
            photos = _upload_photos(cluster.urls[0], uploader.phone, args.photos)

            # a. Killed in the middle of a photo.
            name = "worker killed mid-photo"
            first = cluster.add_worker()
            _wait("the first photos to be ready", lambda: _photo_states(url)["ready"] >= 2, 120)
            second = cluster.add_worker()
            cluster.wait_ready([second])
            _wait("a photo in processing", lambda: _photo_states(url)["processing"] >= 1, 60, every=0.01)
            first.kill()
            # The photos in processing now: the dead worker's, and perhaps the one the other is on.
            in_processing = {str(u) for (u,) in _query(url, "SELECT client_uuid FROM media_item "
                                                            "WHERE state = 'processing'")}
            before = _photo_states(url)
            print(f"\n[{name}] killed {first.name} (pid {first.pid}) with photos {dict(before)}", flush=True)
            started = time.monotonic()
            ready, waiting, on_disk, _ = wait_for_photos(url, cluster.media_root / "objects", 180)
            took = time.monotonic() - started
            attempts = {str(u): int(n) for u, n in _query(url, "SELECT client_uuid, attempts FROM media_item")}
            # Only a photo whose worker died is taken again (after its lease), so these were the dead one's.
            again = {u for u, n in attempts.items() if n > 1}
            rows.append(Row(name, "killed while a photo was in processing",
                            f"{len(again)} of its photos cut off; {before['ready']} ready, {before['received']} queued",
                            len(again) >= 1))
            rows.append(Row(name, "the other worker finished every photo",
                            f"{ready}/{len(photos)} ready, {on_disk} with derivatives, {took:.0f} s after the kill",
                            ready == on_disk == len(photos) and waiting == 0 and second.alive()))
            rows.append(Row(name, "each photo processed once (the interrupted one again)",
                            f"{sum(n == 1 for n in attempts.values())} once, {len(again)} twice "
                            f"({len(in_processing)} were in processing at the kill)",
                            again <= in_processing and all(attempts[u] == 2 for u in again)
                            and all(n == 1 for u, n in attempts.items() if u not in again)))

            # b. Killed holding claimed pushes, before FCM accepted any.
            name = "worker killed holding pushes"
            gate.clear()
            third = cluster.add_worker()  # the replacement an orchestrator would start
            cluster.wait_ready([third])
            pushes = _enqueue_pushes(url, users=args.push_users, rounds=3)
            holders: list[str] = []

            def claimed() -> bool:
                holders[:] = [str(c) for (c,) in _query(url, "SELECT DISTINCT claimed_by FROM notification_outbox "
                                                             "WHERE claimed_by IS NOT NULL")]
                return bool(holders)

            _wait("a worker to claim pushes", claimed, 60)
            time.sleep(0.5)  # the holder is now fetching its FCM token, held shut
            pid = int(re.split(r":", holders[0])[1])
            victim = next(p for p in cluster.worker_procs if p.pid == pid)
            survivor = next(p for p in (second, third) if p is not victim)
            in_flight = int(_query(url, "SELECT count(*) FROM notification_outbox WHERE claimed_by IS NOT NULL")[0][0])
            with fcm.fake.lock:
                arrived_before = len(fcm.fake.delivered)
            victim.kill()
            gate.set()
            print(f"[{name}] killed {victim.name} (pid {pid}) holding {in_flight} claimed pushes", flush=True)
            started = time.monotonic()

            def drained() -> bool:
                return int(_query(url, "SELECT count(*) FROM notification_outbox WHERE status = 'pending'")[0][0]) == 0

            _wait("the outbox to drain", drained, 180, every=0.5)
            took = time.monotonic() - started
            time.sleep(3)  # more delivery rounds: nothing may arrive twice
            with fcm.fake.lock:
                delivered = list(fcm.fake.delivered)
            statuses = Counter({str(s): int(n) for s, n in _query(
                url, "SELECT status, count(*) FROM notification_outbox GROUP BY status")})
            per_push = Counter((m["data"]["notification_id"], m["token"]) for m in delivered)
            twice = sum(1 for n in per_push.values() if n > 1)
            rows.append(Row(name, "killed after claiming, before FCM accepted any",
                            f"{in_flight} claimed by {victim.name}, {arrived_before} arrived before the kill",
                            in_flight > 0 and arrived_before == 0))
            rows.append(Row(name, "the other worker delivered every push",
                            f"{len(per_push)}/{pushes} arrived, outbox {dict(statuses)}, {took:.0f} s after the kill",
                            len(per_push) == pushes and statuses == {"sent": pushes} and survivor.alive()))
            rows.append(Row(name, "nothing sent twice", f"{twice} pushes arrived more than once", twice == 0))
    return rows


# --- nginx in front, as shipped ----------------------------------------------------------------------

# nginx's address towards the API (proxy_bind): the only one whose X-Forwarded-For the API believes here.
EDGE_ADDRESS = "127.0.0.254"
LOGIN = "/api/v1/auth/login"
TRICKLER = "127.0.0.66"  # the one client address of the slow bodies


class EdgeNginx:
    """nginx with the settings of infra/nginx/hulei.conf in front of one API: plain HTTP on a free
    loopback port, everything it writes (pid, logs, temporary bodies) in a directory of its own."""

    def __init__(self, api_port: int) -> None:
        self.api_port = api_port
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="hulei-nginx-"))
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def per_address_limit(self) -> int | None:
        """The shipped site's `limit_conn` (requests at once per client address), if it has one."""
        found = re.search(r"^\s*limit_conn \S+ (\d+);", self.site(), re.M)
        return int(found.group(1)) if found else None

    def site(self) -> str:
        """The shipped site, with TLS and the redirect server taken out and the ports made ours."""
        site = (ROOT / "infra" / "nginx" / "hulei.conf").read_text(encoding="utf-8")
        edits = [
            (re.compile(r"server \{\n    listen 80;.*?\n\}\n", re.S), ""),
            (re.compile(r"listen 443 ssl http2;"), f"listen 127.0.0.1:{self.port};"),
            (re.compile(r"^\s*ssl_\w+ .*\n", re.M), ""),
            (re.compile(r"server 127\.0\.0\.1:8000;"), f"server 127.0.0.1:{self.api_port};"),
            (re.compile(r"proxy_pass http://hulei_api;"),
             f"proxy_pass http://hulei_api;\n        proxy_bind {EDGE_ADDRESS};"),
        ]
        for pattern, replacement in edits:
            site, n = pattern.subn(replacement, site)
            if not n:
                raise RuntimeError(f"infra/nginx/hulei.conf changed shape: no {pattern.pattern!r} to adapt")
        return site

    def __enter__(self) -> EdgeNginx:
        d = self.dir
        # Run as root, nginx's workers drop to an unprivileged user: they must reach the temp paths.
        d.chmod(0o755)
        temps = {name: d / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        for path in temps.values():
            path.mkdir()
            path.chmod(0o777)
        (d / "hulei.conf").write_text(self.site(), encoding="utf-8")
        (d / "nginx.conf").write_text(
            f"worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n"
            "events { worker_connections 1024; }\n"
            f"http {{\n  access_log {d}/access.log;\n"
            + "".join(f"  {name}_temp_path {path};\n" for name, path in
                      [("client_body", temps["body"]), *((n, temps[n]) for n in ("proxy", "fastcgi", "uwsgi", "scgi"))])
            + f"  include {d}/hulei.conf;\n}}\n",
            encoding="utf-8",
        )
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.popen = subprocess.Popen([nginx, "-p", str(d), "-c", str(d / "nginx.conf"), "-g", "daemon off;"],
                                      stdout=subprocess.DEVNULL, stderr=(d / "stderr.log").open("wb"))
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return self
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {(d / 'stderr.log').read_text()}"
                                   f"{(d / 'error.log').read_text() if (d / 'error.log').exists() else ''}")
            time.sleep(0.1)

    def __exit__(self, *_: object) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def _client(url: str, source: str) -> httpx.AsyncClient:
    """A client whose connections come from `source` (a loopback address of its own)."""
    return httpx.AsyncClient(base_url=url, timeout=30, trust_env=False,
                             transport=httpx.AsyncHTTPTransport(local_address=source))


# --- 3. slow bodies --------------------------------------------------------------------------------


async def _trickle(url: str, source: str, every: float, give_up: float) -> tuple[str, float]:
    """Announce a megabyte of sign-in and send a byte every `every` s: what ended it, and when."""
    host, port = url.removeprefix("http://").split(":")
    started = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection(host, int(port), local_addr=(source, 0))
    except OSError as exc:
        return f"connect failed ({exc.strerror})", 0.0
    try:
        writer.write(f"POST {LOGIN} HTTP/1.1\r\nHost: hulei\r\nContent-Type: application/json\r\n"
                     "Content-Length: 1000000\r\n\r\n{".encode())
        await writer.drain()
        while time.monotonic() - started < give_up:
            try:
                line = await asyncio.wait_for(reader.readline(), every)
            except TimeoutError:
                writer.write(b" ")
                await writer.drain()
                continue
            if not line:
                return "cut without an answer", time.monotonic() - started
            return line.split()[1].decode(), time.monotonic() - started
        return "held", time.monotonic() - started
    except OSError:
        return "cut without an answer", time.monotonic() - started
    finally:
        writer.close()


async def _sign_in_and_pull(url: str, phone: str, source: str, until: float, answers: Counter[str]) -> None:
    async with _client(url, source) as http:
        while time.monotonic() < until:
            try:
                login = await http.post(LOGIN, json={"phone": phone, "password": PASSWORD})
                answers[f"sign-in {login.status_code}"] += 1
                if login.status_code == 200:
                    token = login.json()["access_token"]
                    pull = await http.get("/api/v1/sync/pull", params={"limit": 50},
                                          headers={"Authorization": f"Bearer {token}"})
                    answers[f"pull {pull.status_code}"] += 1
            except httpx.HTTPError as exc:
                answers[type(exc).__name__] += 1
            await asyncio.sleep(0.3)


async def _slow_bodies(url: str, phones: list[str], args: argparse.Namespace) -> tuple[list[tuple[str, float]],
                                                                                       Counter[str]]:
    answers: Counter[str] = Counter()
    tricklers = [asyncio.create_task(_trickle(url, TRICKLER, args.trickle_every, args.trickle_for))
                 for _ in range(args.trickle_connections)]
    await asyncio.sleep(1)  # the trickling connections are in before anyone else
    until = time.monotonic() + args.trickle_for - 1
    await asyncio.gather(*(_sign_in_and_pull(url, phone, f"127.0.0.{10 + n}", until, answers)
                           for n, phone in enumerate(phones)))
    return list(await asyncio.gather(*tricklers)), answers


def _trickler_requests(log: str) -> int:
    """How many requests of the trickling address the API answered (uvicorn's access log)."""
    return log.count(f"{TRICKLER}:")


def slow_body(pg: PrivatePostgres, workdir: Path, args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    env = {"HULEI_FORWARDED_ALLOW_IPS": EDGE_ADDRESS}
    with throwaway_postgis(pg.admin_url, prefix="hulei_faults_slow") as url:
        phones = [seed.phone for seed in seed_phones(url, args.normal_clients, 1)]
        with Cluster(url, workdir / "slow", apis=1, workers=0, env=env) as cluster, \
                EdgeNginx(cluster.api_procs[0].port or 0) as edge:
            api = cluster.api_procs[0]
            for via, target in (("straight at the API", api.url), ("through nginx", edge.url)):
                name = f"slow bodies, {via}"
                answered_before = _trickler_requests(api.tail(1_000_000))
                print(f"\n[{name}] {args.trickle_connections} connections trickle a byte every "
                      f"{args.trickle_every:g} s for up to {args.trickle_for:g} s", flush=True)
                ended, answers = asyncio.run(_slow_bodies(target, phones, args))
                reached_api = _trickler_requests(api.tail(1_000_000)) - answered_before
                outcome = Counter(what for what, _ in ended)
                ok_answers = sum(n for a, n in answers.items() if a.endswith(" 200"))
                busy = sum(n for a, n in answers.items() if a.endswith(" 503"))
                print(f"normal clients: {dict(answers)}; trickling connections: {dict(outcome)}", flush=True)
                rows.append(Row(name, "normal clients never told 503 meanwhile",
                                f"{ok_answers} sign-ins and pulls answered 200, {busy} x 503, "
                                f"{sum(answers.values()) - ok_answers} other",
                                busy == 0 and ok_answers == sum(answers.values()) and ok_answers > 0))
                cut_at = [t for what, t in ended if what == "408"]
                summary = ", ".join(f"{n} x {what}" for what, n in sorted(outcome.items()))
                if target == api.url:
                    when = f" (408 after {min(cut_at):.1f}-{max(cut_at):.1f} s)" if cut_at else ""
                    rows.append(Row(name, "trickling bodies cut: 408 when too slow, 429 beyond one address's share",
                                    summary + when, set(outcome) <= {"408", "429"} and bool(cut_at)))
                else:
                    limit = edge.per_address_limit()
                    rows.append(Row(name, "trickling bodies kept at nginx, those beyond its limit per address refused",
                                    f"{summary} (limit {limit}); {reached_api} answered by the API",
                                    set(outcome) <= {"held", "429", "408"} and reached_api == 0
                                    and limit is not None and outcome["held"] <= limit))
    return rows


# --- 4. sign-in lockout through the proxy -----------------------------------------------------------


@dataclass
class LockoutRun:
    guesses: Counter[str]
    after_spray: httpx.Response
    others: Counter[int]
    owner_of_guessed: httpx.Response
    untouched: httpx.Response


async def _login(url: str, source: str, phone: str, password: str) -> httpx.Response:
    async with _client(url, source) as http:
        return await http.post(LOGIN, json={"phone": phone, "password": password})


async def _lockout(url: str, phones: list[str]) -> LockoutRun:
    guesses: Counter[str] = Counter()
    async with _client(url, "127.0.0.100") as guesser:
        for n in range(50):
            resp = await guesser.post(LOGIN, json={"phone": phones[n], "password": f"guess-{n}"})
            guesses[f"{resp.status_code}" + (" Retry-After" if "retry-after" in resp.headers else "")] += 1
        after_spray = await guesser.post(LOGIN, json={"phone": phones[50], "password": "guess-50"})
    # Owners of guessed numbers and of others, each from an address of its own, with the right password.
    others = [await _login(url, f"127.0.0.{101 + n}", phones[n if n < 10 else 41 + n], PASSWORD) for n in range(15)]
    # One number guessed 5 times, from 5 addresses: its lockout holds, for its owner too.
    for n in range(5):
        await _login(url, f"127.0.0.{120 + n}", phones[56], f"other-guess-{n}")
    owner = await _login(url, "127.0.0.125", phones[56], PASSWORD)
    untouched = await _login(url, "127.0.0.126", phones[57], PASSWORD)
    return LockoutRun(guesses, after_spray, Counter(r.status_code for r in others), owner, untouched)


def proxy_lockout(pg: PrivatePostgres, workdir: Path, args: argparse.Namespace) -> list[Row]:
    name = "sign-in lockout through nginx"
    rows: list[Row] = []
    env = {"HULEI_FORWARDED_ALLOW_IPS": EDGE_ADDRESS}
    with throwaway_postgis(pg.admin_url, prefix="hulei_faults_lockout") as url:
        phones = [seed.phone for seed in seed_phones(url, 60, 1)]
        with Cluster(url, workdir / "lockout", apis=1, workers=0, env=env) as cluster, \
                EdgeNginx(cluster.api_procs[0].port or 0) as edge:
            print(f"\n[{name}] one client guesses 50 numbers once each through nginx on {edge.url}", flush=True)
            run = asyncio.run(_lockout(edge.url, phones))
        seen = {str(ip): int(n) for ip, n in _query(
            url, "SELECT ip, count(*) FROM audit_entry WHERE action = 'auth.login_failed' GROUP BY ip")}
    slowed = run.after_spray.status_code == 429 and "retry-after" in run.after_spray.headers
    rows.append(Row(name, "the guessing address is slowed (429 + Retry-After)",
                    f"50 guesses: {', '.join(f'{n} x {a}' for a, n in sorted(run.guesses.items()))}; then "
                    f"{run.after_spray.status_code} Retry-After {run.after_spray.headers.get('retry-after', '-')}",
                    slowed))
    rows.append(Row(name, "other users, from other addresses, sign in",
                    ", ".join(f"{n} x {s}" for s, n in sorted(run.others.items())) + " (10 of them guessed once)",
                    set(run.others) == {200}))
    owner = run.owner_of_guessed
    rows.append(Row(name, "per-number lockout holds (5 guesses from 5 addresses)",
                    f"owner with the right password: {owner.status_code} Retry-After "
                    f"{owner.headers.get('retry-after', '-')}; another number: {run.untouched.status_code}",
                    owner.status_code == 429 and run.untouched.status_code == 200))
    rows.append(Row(name, "the API saw each client's own address",
                    ", ".join(f"{ip}: {n}" for ip, n in sorted(seen.items())) + " failures",
                    seen.get("127.0.0.100", 0) >= 1 and EDGE_ADDRESS not in seen and "127.0.0.1" not in seen))
    return rows


SCENARIOS = {"database-restart": database_restart, "worker-killed": worker_killed, "slow-body": slow_body,
             "proxy-lockout": proxy_lockout}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SCENARIOS),
                        help=f"comma-separated scenarios to run, of: {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--trickle-connections", type=int, default=64, help="slow-body: trickling connections")
    parser.add_argument("--trickle-every", type=float, default=5.0, help="slow-body: seconds between two bytes")
    parser.add_argument("--trickle-for", type=float, default=30.0, help="slow-body: seconds a trickler keeps on")
    parser.add_argument("--normal-clients", type=int, default=8, help="slow-body: clients signing in and pulling")
    parser.add_argument("--phones", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load around the restart")
    parser.add_argument("--restart-at", type=float, default=20.0, help="seconds into the load")
    parser.add_argument("--outage", type=float, default=5.0, help="seconds the database stays down")
    parser.add_argument("--photos", type=int, default=40, help="photos queued for the worker kill")
    parser.add_argument("--push-users", type=int, default=100, help="push recipients (3 pushes each)")
    args = parser.parse_args()
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in only if name not in SCENARIOS]
    if unknown or not only:
        parser.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    exit_on_sigterm()

    workdir = Path(tempfile.mkdtemp(prefix="hulei-faults-"))
    print(f"faults: private PostgreSQL, logs in {workdir}", flush=True)
    started = time.monotonic()
    rows: list[Row] = []
    with PrivatePostgres() as pg:
        print(f"private PostgreSQL on port {pg.port} ({pg.bin}), data in {pg.data}", flush=True)
        for name in only:
            rows += SCENARIOS[name](pg, workdir, args)
    for sub in ("restart", "kill"):
        shutil.rmtree(workdir / sub / "media", ignore_errors=True)

    print()
    print(table(["scenario", "check", "measured", "result"],
                [[r.scenario, r.check, r.measured, "PASS" if r.ok else "FAIL"] for r in rows]))
    ok = all(r.ok for r in rows)
    print(f"\n{sum(r.ok for r in rows)}/{len(rows)} checks passed in {time.monotonic() - started:.0f} s")
    print("RESULT:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
