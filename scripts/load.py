"""`make load` (issue 8): simulated phones syncing visits with photos against several API processes.

    uv run python scripts/load.py [--phones 200] [--duration 300] [--api-processes 2] [--workers 2]

Creates a throwaway PostGIS database on the local server (--admin-url), migrates it, seeds a town
(province > ... > 8 villages > 40 grids) with one volunteer per phone, placed in a grid, and
--households-per-phone households in that grid. Passwords use a token argon2 cost
(scripts/cluster.py CHEAP_PASSWORD_HASH, also given to the API processes) so that signing in 200
phones measures the service, not the hash. Then starts --api-processes `hulei serve` and
--workers `hulei worker` processes on it.

Each phone is an asyncio task with its own httpx client. It signs in, then until the time is up:
pushes a batch of --batch visits (POST /api/v1/sync/push), uploads one photo of the first visit
(PUT /api/v1/media/{uuid}, about 100 KB JPEG), and waits about --think seconds. Requests are spread
over the APIs round robin, like a proxy in front of them. Like a phone, it retries connection
errors, 5xx, 429 and 409 media-upload-in-progress with backoff (honouring Retry-After) for up to
--retry-for seconds, on the next API, with the same client UUIDs, so a retry can never store
anything twice. An error is a request that still failed after its retries.

Afterwards the worker's photo backlog is given up to --drain seconds, and the database is counted:
every visit and photo sent must be stored exactly once (by client UUID), none missing, none extra.
Prints the tables; exits 1 when the check fails. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.cluster import (  # noqa: E402
    CHEAP_PASSWORD_HASH,
    DEFAULT_ADMIN_URL,
    Cluster,
    exit_on_sigterm,
    fake_fcm,
    throwaway_postgis,
)

os.environ.update(CHEAP_PASSWORD_HASH)  # before any setting is read: the seeded hashes use it too

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
from tests.registry.factories import visit_item  # noqa: E402 - the visit a phone sends, as the tests make it

PASSWORD = "load-test-password-1"
OPERATIONS = ("sign-in", "sync push", "photo upload")
RETRYABLE_CONFLICTS = {"media-upload-in-progress"}


# --- seeding ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhoneSeed:
    phone: str
    households: list[tuple[str, float, float]]  # uuid, lon, lat


def seed_phones(url: str, phones: int, households_per_phone: int) -> list[PhoneSeed]:
    """A town, one volunteer per phone (spread over the 40 grids) and households in their grids."""
    from sqlalchemy import create_engine, insert
    from sqlmodel import Session

    from backend.accounts.models import User, UserRole
    from backend.accounts.permissions import Role
    from backend.core.geo import point
    from backend.core.security import hash_password
    from backend.demo.town import build_org_tree, grid_box
    from backend.models import import_all_models
    from backend.registry.models import Household
    from backend.registry.service import content_hash
    from backend.sync import revisions

    import_all_models()
    rng = random.Random(8)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    seeds: list[PhoneSeed] = []
    with Session(engine) as session:
        town = build_org_tree(session)
        grids = [(v, g, unit) for v, row in enumerate(town.grids) for g, unit in enumerate(row)]
        hashed = hash_password(PASSWORD)
        now = datetime.now(UTC)
        first_rev = revisions.allocate(session, phones * households_per_phone)
        household_rows: list[dict[str, Any]] = []
        for n in range(phones):
            v, g, grid = grids[n % len(grids)]
            user = User(phone=f"196{n:08d}", display_name=f"压测志愿者{n}", password_hash=hashed,
                        org_unit_id=grid.id or 0)
            session.add(user)
            session.flush()
            session.add(UserRole(user_id=user.id or 0, role=Role.volunteer.value))
            west, south, east, north = grid_box(v, g)
            homes = []
            for h in range(households_per_phone):
                lon, lat = rng.uniform(west, east), rng.uniform(south, north)
                home = uuid.uuid4()
                homes.append((str(home), lon, lat))
                household_rows.append({
                    "uuid": home, "org_unit_id": grid.id, "address": f"压测{n}号楼{h}室", "lon": lon, "lat": lat,
                    "location": point(lon, lat), "version": 1, "content_hash": content_hash({"load": [n, h]}),
                    "rev": first_rev + len(household_rows), "created_at": now, "updated_at": now,
                })
            seeds.append(PhoneSeed(user.phone, homes))
        session.execute(insert(Household.__table__), household_rows)  # type: ignore[attr-defined]
        session.commit()
    engine.dispose()
    return seeds


def base_photo(size: tuple[int, int] = (1024, 768)) -> bytes:
    """A JPEG with some structure (about 150 KB), like a downsized phone photo."""
    from PIL import Image, ImageDraw

    im = Image.effect_mandelbrot(size, (-2.0, -1.2, 0.8, 1.2), 60).convert("RGB")
    draw = ImageDraw.Draw(im)
    for i in range(0, size[0], 40):
        draw.line([(i, 0), (size[0] - i, size[1])], fill=(i % 255, 120, 200 - i % 200), width=3)
    out = io.BytesIO()
    im.save(out, "JPEG", quality=80)
    return out.getvalue()


def unique_photo(base: bytes, tag: uuid.UUID) -> bytes:
    """The base JPEG with a comment segment naming the photo, so every photo's bytes differ."""
    comment = f"hulei-load {tag}".encode()
    return base[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + base[2:]


# --- the phones ------------------------------------------------------------------------------------


@dataclass
class OpStats:
    latencies: list[float] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)
    retried: int = 0  # operations that needed more than one attempt
    errors: int = 0  # operations that failed after all attempts
    done: int = 0  # operations that succeeded


@dataclass
class Stats:
    ops: dict[str, OpStats] = field(default_factory=lambda: {op: OpStats() for op in OPERATIONS})
    visits_sent: set[str] = field(default_factory=set)
    visits_acked: set[str] = field(default_factory=set)
    photos_sent: set[str] = field(default_factory=set)
    photos_acked: set[str] = field(default_factory=set)
    item_problems: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    def note_error(self, text: str) -> None:
        if len(self.error_samples) < 10:
            self.error_samples.append(text[:300])


@dataclass
class LoadConfig:
    duration: float
    think: float = 1.0
    batch: int = 3
    retry_for: float = 120.0
    ramp: float = 10.0
    timeout: float = 60.0


class Phone:
    """One simulated phone: its account, its households, its own connection pool."""

    def __init__(self, n: int, seed: PhoneSeed, urls: list[str], stats: Stats, config: LoadConfig,
                 photo: bytes) -> None:
        self.n, self.seed, self.urls, self.stats, self.config, self.photo = n, seed, urls, stats, config, photo
        self.rng = random.Random(n)
        self.turn = n
        self.headers: dict[str, str] = {}
        self.http = httpx.AsyncClient(timeout=config.timeout, trust_env=False,
                                      limits=httpx.Limits(max_connections=4, max_keepalive_connections=4))

    async def call(self, op: str, method: str, path: str, ok: tuple[int, ...], **kwargs: Any) -> httpx.Response | None:
        """One operation: retried like a phone would until it succeeds, fails for good, or runs out of time."""
        stats = self.stats.ops[op]
        extra_headers = kwargs.pop("extra", {})
        first = time.monotonic()
        attempt = 0
        while True:
            self.turn += 1
            url = self.urls[self.turn % len(self.urls)] + path
            wait: float | None = None
            started = time.perf_counter()
            try:
                resp = await self.http.request(method, url, headers={**self.headers, **extra_headers}, **kwargs)
            except httpx.TransportError as exc:
                stats.latencies.append(time.perf_counter() - started)
                stats.answers[type(exc).__name__] += 1
                resp = None
                last = f"{op}: {type(exc).__name__}: {exc}"
            else:
                stats.latencies.append(time.perf_counter() - started)
                code = _problem_code(resp)
                stats.answers[f"{resp.status_code} {code}" if code else str(resp.status_code)] += 1
                if resp.status_code in ok:
                    stats.done += 1
                    stats.retried += attempt > 0
                    return resp
                last = f"{op}: {resp.status_code} {resp.text[:200]}"
                if resp.status_code == 401 and op != "sign-in":
                    await self.sign_in()
                elif not (resp.status_code >= 500 or resp.status_code == 429
                          or (resp.status_code == 409 and code in RETRYABLE_CONFLICTS)):
                    stats.errors += 1
                    self.stats.note_error(last)
                    return None
                retry_after = resp.headers.get("retry-after")
                if retry_after and retry_after.isdigit():
                    wait = min(float(retry_after), 5.0)
            attempt += 1
            if time.monotonic() - first > self.config.retry_for:
                stats.errors += 1
                self.stats.note_error(f"gave up after {attempt} attempts: {last}")
                return None
            backoff = min(0.25 * 2 ** min(attempt - 1, 5), 4.0) * self.rng.uniform(0.5, 1.5)
            await asyncio.sleep(wait if wait is not None else backoff)

    async def sign_in(self) -> bool:
        self.headers = {}
        resp = await self.call("sign-in", "POST", "/api/v1/auth/login", (200,),
                               json={"phone": self.seed.phone, "password": PASSWORD})
        if resp is None:
            return False
        self.headers = {"Authorization": f"Bearer {resp.json()['access_token']}", "Accept-Encoding": "gzip"}
        return True

    def visit(self) -> dict[str, Any]:
        home, lon, lat = self.rng.choice(self.seed.households)
        at = (lon + self.rng.uniform(-2e-4, 2e-4), lat + self.rng.uniform(-2e-4, 2e-4))
        item = visit_item(home, at=at, accuracy_m=8.0, uid=uuid.UUID(int=self.rng.getrandbits(128), version=4))
        item["data"]["device_time"] = datetime.now(UTC).isoformat()
        return item

    async def push_visits(self) -> str | None:
        """Push a batch; return the client UUID of the first visit when the server has them all."""
        items = [self.visit() for _ in range(self.config.batch)]
        uuids = [i["client_uuid"] for i in items]
        self.stats.visits_sent.update(uuids)
        resp = await self.call("sync push", "POST", "/api/v1/sync/push", (200,), json={"items": items})
        if resp is None:
            return None
        for result in resp.json()["results"]:
            if result["status"] in ("created", "duplicate"):
                self.stats.visits_acked.add(str(result["client_uuid"]))
            else:
                self.stats.item_problems[f"visit {result['status']}: {(result.get('problem') or {}).get('code')}"] += 1
        return uuids[0] if uuids[0] in self.stats.visits_acked else None

    async def upload_photo(self, visit_uuid: str) -> None:
        photo_uuid = uuid.UUID(int=self.rng.getrandbits(128), version=4)
        self.stats.photos_sent.add(str(photo_uuid))
        resp = await self.call("photo upload", "PUT", f"/api/v1/media/{photo_uuid}", (200, 201),
                               params={"parent_kind": "visit", "parent_uuid": visit_uuid},
                               content=unique_photo(self.photo, photo_uuid), extra={"Content-Type": "image/jpeg"})
        if resp is not None:
            self.stats.photos_acked.add(str(photo_uuid))

    async def run(self, until: float) -> None:
        try:
            if not await self.sign_in():
                return
            while time.monotonic() < until:
                visit_uuid = await self.push_visits()
                if visit_uuid is not None:
                    await self.upload_photo(visit_uuid)
                await asyncio.sleep(self.config.think * self.rng.uniform(0.5, 1.5))
        finally:
            await self.http.aclose()


def _problem_code(resp: httpx.Response) -> str | None:
    if resp.headers.get("content-type", "").startswith("application/problem+json"):
        try:
            return str(resp.json().get("code"))
        except ValueError:
            return None
    return None


async def drive(urls: list[str], seeds: list[PhoneSeed], config: LoadConfig, stats: Stats | None = None) -> Stats:
    """Run every phone for config.duration seconds (ramped up over config.ramp); their statistics."""
    stats = stats or Stats()
    photo = base_photo()
    stats.started = time.monotonic()
    until = stats.started + config.duration
    phones = [Phone(n, seed, urls, stats, config, photo) for n, seed in enumerate(seeds)]
    await asyncio.gather(*(_ramped(p, config.ramp * n / len(phones), until) for n, p in enumerate(phones)))
    stats.finished = time.monotonic()
    return stats


async def _ramped(phone: Phone, delay: float, until: float) -> None:
    await asyncio.sleep(delay)
    await phone.run(until)


# --- the count -------------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    sent: int
    acked: int
    stored: int
    duplicates: int
    missing: int  # sent but not stored
    extra: int  # stored but never sent

    @property
    def ok(self) -> bool:
        return self.sent == self.stored and self.duplicates == 0 and self.missing == 0 and self.extra == 0


def _stored(url: str, table: str) -> Counter[str]:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        rows = conn.execute(f"SELECT client_uuid::text, count(*) FROM {table} GROUP BY client_uuid").fetchall()
    return Counter({str(u): int(n) for u, n in rows})


def count_check(url: str, stats: Stats) -> list[Check]:
    """Every visit and photo sent stored once (by client UUID): nothing missing, nothing doubled, nothing extra."""
    checks = []
    for name, table, sent, acked in (("visits", "visit", stats.visits_sent, stats.visits_acked),
                                     ("photos", "media_item", stats.photos_sent, stats.photos_acked)):
        stored = _stored(url, table)
        checks.append(Check(name, len(sent), len(acked), sum(stored.values()),
                            duplicates=sum(n - 1 for n in stored.values() if n > 1),
                            missing=len(sent - set(stored)), extra=len(set(stored) - sent)))
    return checks


def wait_for_photos(url: str, objects: Path, timeout: float) -> tuple[int, int, int, float]:
    """Until no photo waits for the worker (or timeout): (ready, still waiting, with both derivatives
    on disk, seconds waited)."""
    import psycopg

    started = time.monotonic()
    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    while True:
        with psycopg.connect(plain) as conn:
            waiting = int(conn.execute("SELECT count(*) FROM media_item WHERE state IN ('received', 'processing')")
                          .fetchone()[0])  # type: ignore[index]
        if waiting == 0 or time.monotonic() - started > timeout:
            break
        time.sleep(1)
    with psycopg.connect(plain) as conn:
        rows = conn.execute("SELECT display_key, thumbnail_key FROM media_item WHERE state = 'ready'").fetchall()
    on_disk = sum(1 for d, t in rows if d and t and (objects / d).is_file() and (objects / t).is_file())
    return len(rows), waiting, on_disk, time.monotonic() - started


# --- the tables ------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(_width(r[i]) for r in cells) for i in range(len(headers))]
    # Numbers to the right, text to the left.
    left = [not all(_numeric(r[i]) for r in cells[1:]) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(_pad(c, widths[i], left=left[i]) for i, c in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _pad(text: str, width: int, *, left: bool) -> str:
    fill = " " * (width - _width(text))
    return text + fill if left else fill + text


def latency_table(stats: Stats) -> str:
    rows = []
    elapsed = max(stats.finished - stats.started, 1e-9)
    for op, s in stats.ops.items():
        non_2xx = sum(n for k, n in s.answers.items() if not k.startswith("2"))
        rows.append([op, len(s.latencies), f"{len(s.latencies) / elapsed:.1f}",
                     *(f"{percentile(s.latencies, q) * 1000:.0f}" for q in (0.5, 0.95, 0.99)),
                     non_2xx, s.retried, s.errors])
    return table(["operation", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "non-2xx answers",
                  "retried ops", "errors"], rows)


def answers_summary(stats: Stats) -> str:
    """Every answer other than 2xx, by operation and status/code (connection errors by exception name)."""
    parts = [f"{op} {answer}: {n}" for op, s in stats.ops.items() for answer, n in sorted(s.answers.items())
             if not answer.startswith("2")]
    return ", ".join(parts) or "none"


def check_table(checks: list[Check]) -> str:
    return table(["stored exactly once", "sent", "acknowledged", "rows stored", "duplicates", "missing", "extra",
                  "result"],
                 [[c.name, c.sent, c.acked, c.stored, c.duplicates, c.missing, c.extra, "PASS" if c.ok else "FAIL"]
                  for c in checks])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phones", type=int, default=200)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load")
    parser.add_argument("--api-processes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=3, help="visits per push")
    parser.add_argument("--think", type=float, default=1.0, help="mean pause of a phone between rounds, seconds")
    parser.add_argument("--households-per-phone", type=int, default=10)
    parser.add_argument("--retry-for", type=float, default=120.0, help="seconds a phone keeps retrying one request")
    parser.add_argument("--drain", type=float, default=300.0, help="seconds allowed for the photo backlog afterwards")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args()
    exit_on_sigterm()

    workdir = Path(tempfile.mkdtemp(prefix="hulei-load-"))
    config = LoadConfig(duration=args.duration, think=args.think, batch=args.batch, retry_for=args.retry_for,
                        ramp=min(10.0, args.duration / 10))
    print(f"load: {args.phones} phones for {args.duration:.0f} s against {args.api_processes} API processes and "
          f"{args.workers} workers (logs in {workdir})", flush=True)
    with throwaway_postgis(args.admin_url, prefix="hulei_load") as url:
        seeds = seed_phones(url, args.phones, args.households_per_phone)
        with fake_fcm(workdir / "fcm") as (_, fcm_env), \
                Cluster(url, workdir, apis=args.api_processes, workers=args.workers, env=fcm_env) as cluster:
            stats = asyncio.run(drive(cluster.urls, seeds, config))
            ready, waiting, on_disk, drained = wait_for_photos(url, cluster.media_root / "objects", args.drain)
            down = [p.name for p in cluster.api_procs + cluster.worker_procs if not p.alive()]
        checks = count_check(url, stats)
    shutil.rmtree(workdir / "media", ignore_errors=True)  # the photos; the process logs stay

    print()
    print(latency_table(stats))
    print()
    print(check_table(checks))
    print()
    print(f"photos processed by the workers: {ready} ready with both derivatives on disk: {on_disk}; "
          f"still waiting: {waiting} (backlog drained {drained:.0f} s after the load)")
    visits_per_s = len(stats.visits_acked) / max(stats.finished - stats.started, 1e-9)
    print(f"throughput: {visits_per_s:.1f} visits/s, "
          f"{len(stats.photos_acked) / max(stats.finished - stats.started, 1e-9):.1f} photos/s")
    print("answers other than 2xx:", answers_summary(stats))
    if stats.item_problems:
        print("items refused:", dict(stats.item_problems))
    for sample in stats.error_samples:
        print("error:", sample)
    if down:
        print("processes that died:", ", ".join(down))
    ok = all(c.ok for c in checks) and not down and not stats.item_problems
    print("RESULT:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
