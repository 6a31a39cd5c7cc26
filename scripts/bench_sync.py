"""Benchmark of issues 3 and 12: sync push and pull through HTTP against throwaway PostGIS databases.

    uv run python scripts/bench_sync.py [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
                                        [--quick] [--parts push,pull] [--json PATH]

Push (one database: a town with 5,000 households in one village, one uvicorn worker):
  1. pushes 10,000 visits in batches of 200 (POST /api/v1/sync/push), visits/s;
  2. inserts the same 10,000 rows with a plain psycopg executemany (batches of 200, one commit
     each) into the same visit table, rows/s (and, for comparison, into a copy of the table
     without its foreign keys);
  1 and 2 run three times with fresh visits; the medians are printed; then 10,000 more visits
     are pushed by 4 phones at once;
  3. first of all, before any visit is pushed, pulls the 5,000-household village from an empty
     cursor (GET /api/v1/sync/pull, gzip).
Pull (a second database: a town of 50,000 households, 5,000 of them in the volunteer's village,
a child in every third household with one or two guardians, helpers with live assignments, the
built-in templates, and a recent visit for half the households; registry rows are bulk-loaded with
COPY, the visits pushed through the API so they carry whatever bookkeeping a push does):
  4. the town coordinator's first pull (no cursor, limit 5000, drained over HTTP) with gzip, and the
     bytes on the wire with gzip and without;
  5. the volunteer pulls the village once, then a week of field work happens through the API
     (1,000 changed records: new visits, household and child edits pushed by the volunteer, and a
     few households moved to another village by the coordinator); the volunteer's catch-up from the
     stored cursor (limit 1000) is timed, and the phone's copy is compared with the server's view.
Before that, in the same run, a plain FastAPI hello-world served and driven the same way
(scripts/benchkit.py) gives the requests/s and latency this machine allows.
Prints each figure beside its target, then stops the servers and drops the databases;
--json PATH also writes the figures for scripts/bench.py. --quick runs everything at about a
tenth of the size, to check the script works.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from benchkit import (
    Figure,
    Timing,
    add_json_option,
    describe,
    drive,
    hello_world_over_http,
    http_client,
    serve,
    write_json,
)
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import URL, make_url
from sqlmodel import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.accounts.models import User, UserRole  # noqa: E402
from backend.accounts.permissions import Role  # noqa: E402
from backend.checklists.builtin import six_looks_items  # noqa: E402
from backend.core.geo import point  # noqa: E402
from backend.core.migrate import upgrade  # noqa: E402
from backend.core.security import hash_password  # noqa: E402
from backend.demo.town import GRIDS_PER_VILLAGE, VILLAGE_NAMES, build_org_tree, grid_box  # noqa: E402
from backend.registry import idnumber  # noqa: E402
from backend.registry.models import Household  # noqa: E402
from backend.registry.service import content_hash, seal_id  # noqa: E402
from backend.sync import revisions  # noqa: E402

BATCH = 200
PHONES = 4
PASSWORD = "bench-password-1"
PHONE = "19911112222"
COORDINATOR_PHONE = "19911113333"
VOLUNTEER_PHONE = "19911114444"


@dataclass(frozen=True)
class Sizes:
    """How big each part is; --quick uses about a tenth, to check the script works."""

    visits: int = 10_000  # per push round
    rounds: int = 3
    households: int = 5_000  # the push village
    town_households: int = 50_000  # the pull town
    village_households: int = 5_000  # of which in the volunteer's village
    week_changes: int = 1_000  # a week of field work in that village
    visited_share: float = 0.5  # households with a recent visit before that week
    town_limit: int = 5_000  # the coordinator's page size (the largest allowed)
    village_limit: int = 1_000  # the volunteer's page size (the default)


FULL = Sizes()
QUICK = Sizes(visits=2_000, rounds=1, households=1_000, town_households=5_000, village_households=1_000,
              week_changes=200)


def _seed(url: str, households: int) -> tuple[list[dict[str, Any]], str]:
    engine = create_engine(url)
    with Session(engine) as session:
        town = build_org_tree(session)
        village = town.villages[0]
        user = User(
            phone=PHONE,
            display_name="基准测试志愿者",
            password_hash=hash_password(PASSWORD),
            org_unit_id=village.id or 0,
        )
        session.add(user)
        session.flush()
        session.add(UserRole(user_id=user.id or 0, role=Role.volunteer.value))
        rng = random.Random(3)
        rows = []
        first = revisions.allocate(session, households)
        for n in range(households):
            g = n % len(town.grids[0])
            west, south, east, north = grid_box(0, g)
            lon, lat = rng.uniform(west, east), rng.uniform(south, north)
            rows.append(
                {
                    "uuid": uuid.uuid4(),
                    "org_unit_id": town.grids[0][g].id,
                    "address": f"基准村{n}号",
                    "lon": lon,
                    "lat": lat,
                    "location": point(lon, lat),
                    "version": 1,
                    "content_hash": content_hash({"bench": n}),
                    "rev": first + n,
                    "created_at": datetime.now(UTC),
                    "updated_at": datetime.now(UTC),
                }
            )
        session.execute(insert(Household.__table__), rows)  # type: ignore[attr-defined]
        session.commit()
    engine.dispose()
    return rows, PHONE


def _visits(households: list[dict[str, Any]], *, count: int, seed: int = 4,
            device_times: list[str] | None = None) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    answers = {i["id"]: {"value": "no" if i["concern"] == "yes" else "yes"} for i in six_looks_items()}
    items = []
    for n in range(count):
        h = households[n % len(households)]
        items.append(
            {
                "kind": "visit",
                "client_uuid": str(uuid.uuid4()),
                "data": {
                    "household_uuid": str(h["uuid"]),
                    "device_time": device_times[n] if device_times else "2026-11-20T09:30:00+08:00",
                    "outcome": "visited",
                    "answers": answers,
                    "note": f"基准走访{n}",
                    "gps": {
                        "lon": h["lon"] + rng.uniform(-3e-4, 3e-4),
                        "lat": h["lat"] + rng.uniform(-3e-4, 3e-4),
                        "accuracy_m": 12.0,
                        "crs": "wgs84",
                    },
                },
            }
        )
    return items


def _plain_rate(url: str, items: list[dict[str, Any]], results: list[dict[str, Any]], *, table: str = "visit"
                ) -> float:
    """The same rows through psycopg executemany, one transaction per batch of 200, into the same
    `visit` table the push wrote (same indexes, same foreign keys, same ON CONFLICT), under fresh
    client UUIDs since the pushed ones are taken. A copy made with LIKE .. INCLUDING ALL would carry
    no foreign keys, and checking those is part of storing a visit; `table="visit_copy"` measures such a
    copy too, printed for comparison."""
    columns = [
        "client_uuid",
        "content_hash",
        "amends_id",
        "household_id",
        "org_unit_id",
        "recorded_by",
        "template_code",
        "template_version",
        "outcome",
        "answers",
        "children_seen",
        "note",
        "device_time",
        "received_at",
        "lon",
        "lat",
        "accuracy_m",
        "reported_crs",
        "distance_m",
        "location_mismatch",
        "risk_level",
        "risk_reasons",
    ]
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT id FROM app_user WHERE phone = %s", (PHONE,)).fetchone()
        assert found is not None
        recorded_by = found[0]
        # Columns the push fills that the list above does not name (a visit's sync revision, its
        # clock flags ...) are written by the baseline too, with a fixed value: the same row width,
        # none of the service's work of computing them.
        present = {r[0]: r[1] for r in conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'visit'")}
    extra = {"rev": 0, "clock_suspect": False, "counted_at": None}
    extras = [c for c in extra if c in present and c not in columns]
    rows = []
    for item, r in zip(items, results, strict=True):
        v, d = r["record"], item["data"]
        rows.append(
            (
                str(uuid.uuid4()),
                "0" * 64,
                None,
                v["household_id"],
                v["org_unit_id"],
                recorded_by,
                "six-looks-six-asks",
                1,
                d["outcome"],
                json.dumps(d["answers"]),
                "[]",
                d["note"],
                d["device_time"],
                v["received_at"],
                v["lon"],
                v["lat"],
                d["gps"]["accuracy_m"],
                "wgs84",
                v["distance_m"],
                v["location_mismatch"],
                v["risk_level"],
                json.dumps(v["risk_reasons"]),
                *(d["device_time"] if c == "counted_at" else extra[c] for c in extras),
            )
        )
    names = columns + extras
    sql = (
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))}) "
        "ON CONFLICT (client_uuid) DO NOTHING"
    )
    with psycopg.connect(url) as conn:
        if table != "visit":
            conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (LIKE visit INCLUDING ALL)")
            conn.commit()
        started = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            with conn.cursor() as cur:
                cur.executemany(sql, rows[i : i + BATCH])
            conn.commit()
        return len(rows) / (time.perf_counter() - started)


@contextmanager
def _database(admin: URL, suffix: str) -> Iterator[str]:
    """A fresh PostGIS database, migrated; dropped afterwards. Yields its SQLAlchemy URL."""
    name = f"hulei_bench_{os.getpid()}_{suffix}"
    admin_engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.set(database=name).render_as_string(hide_password=False)
    try:
        with create_engine(url).begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        upgrade(url)
        yield url
    finally:
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


def _login(http: httpx.Client, phone: str) -> dict[str, str]:
    resp = http.post("/api/v1/auth/login", json={"phone": phone, "password": PASSWORD})
    resp.raise_for_status()
    return {"Authorization": f"Bearer {resp.json()['access_token']}", "Accept-Encoding": "gzip"}


def push_benchmarks(admin: URL, sizes: Sizes, hello: Timing) -> list[Figure]:
    """Push through HTTP against plain inserts, 4 phones at once, and a village's first pull."""
    with _database(admin, "push") as url:
        plain_url = url.replace("postgresql+psycopg://", "postgresql://")
        households, phone = _seed(url, sizes.households)
        env = {**os.environ, "DATABASE_URL": url}
        with serve("backend.main:create_app", env=env) as base, http_client(base) as http:
            headers = _login(http, phone)
            warm_up = _visits(households, count=1, seed=3)
            http.post("/api/v1/sync/push", json={"items": warm_up}, headers=headers)
            push_headers = {**headers, "Content-Type": "application/json"}
            # The village's first pull, before the pushes below add eight visits per household within
            # minutes (no village sees that): households and templates, as this figure has always measured.
            # The pull benchmarks below measure a town with a realistic visit history.
            village = _drain(http, headers, limit=5000)
            pulled = village.kinds["household"]
            # sizes.rounds rounds of fresh visits, each followed by its plain inserts: the medians, and the
            # median of each round's push/plain ratio (the pair measured close together), steady the
            # figures against the machine's other work.
            rounds: list[tuple[float, float, float, Timing]] = []
            for r in range(sizes.rounds):
                items = _visits(households, count=sizes.visits, seed=4 + r)
                # Bodies are encoded before the clock starts, as a phone has its queue ready: the figure
                # is the server's, not this client's JSON encoder's.
                bodies = [orjson.dumps({"items": items[i : i + BATCH]}) for i in range(0, sizes.visits, BATCH)]
                results: list[dict[str, Any]] = []

                def push(n: int, bodies: list[bytes] = bodies, results: list[dict[str, Any]] = results) -> None:
                    resp = http.post("/api/v1/sync/push", content=bodies[n], headers=push_headers)
                    resp.raise_for_status()
                    results.extend(orjson.loads(resp.content)["results"])

                timing = drive(push, len(bodies))
                created = sum(1 for res in results if res["status"] == "created")
                assert created == sizes.visits, f"only {created} created"
                rounds.append((sizes.visits / timing.elapsed_s, _plain_rate(plain_url, items, results),
                               _plain_rate(plain_url, items, results, table="visit_copy"), timing))
            push_rate = statistics.median(r[0] for r in rounds)
            plain_rate = statistics.median(r[1] for r in rounds)
            copy_rate = statistics.median(r[2] for r in rounds)
            ratio = statistics.median(r[0] / r[1] for r in rounds)
            copy_ratio = statistics.median(r[0] / r[2] for r in rounds)
            push_timing = sorted(rounds, key=lambda r: r[0])[len(rounds) // 2][3]
            print("rounds (push visits/s, plain rows/s): "
                  + ", ".join(f"{r[0]:.0f} / {r[1]:.0f}" for r in rounds))

            # The same push from PHONES phones at once (each its own connection), as the field sends
            # it: the server's Python work for one batch overlaps another's wait on the database.
            items = _visits(households, count=sizes.visits, seed=40)
            bodies = [orjson.dumps({"items": items[i : i + BATCH]}) for i in range(0, sizes.visits, BATCH)]
            phones = [http_client(base) for _ in range(PHONES)]

            def phone_push(k: int) -> int:
                created = 0
                for body in bodies[k::PHONES]:
                    resp = phones[k].post("/api/v1/sync/push", content=body, headers=push_headers)
                    resp.raise_for_status()
                    created += orjson.loads(resp.content)["counts"].get("created", 0)
                return created

            started = time.perf_counter()
            with ThreadPoolExecutor(PHONES) as pool:
                concurrent_created = sum(pool.map(phone_push, range(PHONES)))
            concurrent_rate = concurrent_created / (time.perf_counter() - started)
            for c in phones:
                c.close()
            assert concurrent_created == sizes.visits, f"only {concurrent_created} created"
            concurrent_ratio = concurrent_rate / plain_rate

    print(f"push through HTTP : {push_rate:8.0f} visits/s   (target >= 3000 visits/s)")
    print(f"plain executemany : {plain_rate:8.0f} rows/s")
    print(f"ratio push/plain  : {ratio:8.2f}          (target >= 0.30)")
    print(f"push, {PHONES} phones at once: {concurrent_rate:8.0f} visits/s, ratio to plain {concurrent_ratio:.2f}")
    print(f"(for comparison: {copy_rate:.0f} rows/s into a copy of the table without its foreign keys, "
          f"ratio {copy_ratio:.2f})")
    print(f"pull {pulled} households from empty cursor: {village.seconds:6.3f} s   (target < 1 s); "
          f"{village.describe()}")
    print(f"push requests     : {push_timing.requests_per_s:8.1f} requests/s of {BATCH} visits, "
          f"median {push_timing.median_ms:.0f} ms")
    return [
        Figure("sync push over HTTP, PostGIS, one uvicorn worker", push_rate, "visits/s", 3000, "ge",
               plain_rate, "rows/s", "baseline: the same rows by plain psycopg executemany"),
        Figure("sync push / plain psycopg executemany", ratio, "ratio", 0.30, "ge"),
        Figure(f"sync push, {PHONES} phones at once", concurrent_rate, "visits/s", 3000, "ge", plain_rate,
               "rows/s", f"ratio to plain: {concurrent_ratio:.2f}"),
        Figure("plain executemany into a copy without foreign keys (comparison)", copy_rate, "rows/s",
               note="push / this rate: " + f"{copy_ratio:.2f}"),
        Figure(f"sync push requests ({BATCH} visits each)", push_timing.requests_per_s, "requests/s",
               baseline=hello.requests_per_s, baseline_unit="requests/s",
               note="baseline: FastAPI hello-world, same uvicorn and client"),
        Figure(f"sync pull of {pulled:,} households, empty cursor", village.seconds, "s", 1.0, "le",
               hello.median_ms, "ms", f"{village.describe()}, before the pushes; baseline: median hello-world "
               "request"),
    ]


# ---------------------------------------------------------------- pull: a phone's copy


def _key(kind: str, record: dict[str, Any]) -> str:
    """How a phone keys what it stores (mobile_api_spec/sync.md)."""
    if kind == "template":
        return f"{record['code']}:{record['version']}"
    if kind == "assignment":
        return str(record["id"])
    if kind == "visit":
        return str(record["client_uuid"])
    return str(record["uuid"])


@dataclass
class PhoneStore:
    """What a phone keeps from its pulls: records by kind and key, and the cursor to resume from."""

    records: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    cursor: str | None = None

    def apply(self, page: dict[str, Any]) -> None:
        if page["reset"]:
            self.records.clear()
        for item in page["items"]:
            kind, record = item["kind"], item["record"]
            if kind == "removal":
                gone = record["kind"]
                key = str(record["id"]) if gone == "assignment" else str(record.get("uuid") or record["id"])
                self.records.pop((gone, key), None)
            else:
                self.records[(kind, _key(kind, record))] = record
        self.cursor = page["next_cursor"]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [r for (k, _), r in self.records.items() if k == kind]


@dataclass
class Drain:
    """One pull drained page by page: how long it took, what came, what crossed the wire."""

    seconds: float
    pages: int
    wire_bytes: int  # response bodies as received (compressed when gzip was accepted)
    json_bytes: int  # the same bodies decoded
    kinds: Counter[str]

    @property
    def items(self) -> int:
        return sum(self.kinds.values())

    def describe(self) -> str:
        kinds = ", ".join(f"{n:,} {k}" for k, n in self.kinds.most_common())
        return (f"{self.items:,} items ({kinds or 'none'}) in {self.pages} page(s), "
                f"{self.wire_bytes / 1e6:.2f} MB on the wire, {self.json_bytes / 1e6:.2f} MB of JSON")


def _drain(http: httpx.Client, headers: dict[str, str], *, limit: int, phone: PhoneStore | None = None,
           cursor: str | None = None) -> Drain:
    """Call GET /sync/pull until has_more is false, as a phone does. Pages are decoded inside the
    clock (a phone must read one to get the next cursor) and applied to `phone` after it."""
    pages: list[dict[str, Any]] = []
    kinds: Counter[str] = Counter()
    wire = raw = count = 0
    started = time.perf_counter()
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        resp = http.get("/api/v1/sync/pull", params=params, headers=headers)
        resp.raise_for_status()
        page = orjson.loads(resp.content)
        wire += resp.num_bytes_downloaded
        raw += len(resp.content)
        kinds.update(i["kind"] for i in page["items"])
        count += 1
        if phone is not None:
            pages.append(page)
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    seconds = time.perf_counter() - started
    for page in pages:
        assert phone is not None
        phone.apply(page)
    return Drain(seconds, count, wire, raw, kinds)


# ---------------------------------------------------------------- pull: a 50,000-household town


@dataclass
class Town:
    """The pull benchmark's town: whom to sign in as, and what the visits and moves need."""

    village_grids: list[list[int]]  # grid ids, per village (village 0 is the volunteer's)
    households: list[dict[str, Any]]  # id, uuid, lon, lat, village of every household
    counts: dict[str, int]


def _town_rows(rng: random.Random, sizes: Sizes, grids: list[list[int]]) -> list[dict[str, Any]]:
    """Where each household stands: sizes.village_households in village 0, the rest spread over the
    other villages; points inside their grids."""
    others = [(v, g) for v in range(1, len(grids)) for g in range(GRIDS_PER_VILLAGE)]
    rows = []
    for n in range(sizes.town_households):
        if n < sizes.village_households:
            v, g = 0, n % GRIDS_PER_VILLAGE
        else:
            v, g = others[(n - sizes.village_households) % len(others)]
        west, south, east, north = grid_box(v, g)
        lon = round(rng.uniform(west + 1e-4, east - 1e-4), 6)
        lat = round(rng.uniform(south + 1e-4, north - 1e-4), 6)
        rows.append({"id": n + 1, "uuid": uuid.UUID(int=rng.getrandbits(128)), "village": v,
                     "grid": grids[v][g], "lon": lon, "lat": lat,
                     "address": f"{VILLAGE_NAMES[v]}{g + 1}组{n + 1}号"})
    return rows


@dataclass(frozen=True)
class ExtraColumns:
    """Columns a COPY writes only when the schema has them (the schema grows while this runs against
    older checkouts too): ", a, b" for the column list, and their values."""

    names: str
    values: tuple[Any, ...]


def _present(cur: psycopg.Cursor[Any], table: str, wanted: dict[str, Any]) -> ExtraColumns:
    have = {r[0] for r in cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)).fetchall()}
    found = [c for c in wanted if c in have]
    return ExtraColumns("".join(f", {c}" for c in found), tuple(wanted[c] for c in found))


def _build_town(url: str, sizes: Sizes) -> Town:
    """The org tree and two signed-in users through the ORM; households, children, guardians,
    helpers and assignments by COPY (a few seconds for 50,000 households)."""
    started = time.perf_counter()
    engine = create_engine(url)
    with Session(engine) as session:
        town = build_org_tree(session)
        password = hash_password(PASSWORD)
        for phone, name, role, unit in (
            (COORDINATOR_PHONE, "基准乡镇协调员", Role.coordinator, town.town),
            (VOLUNTEER_PHONE, "基准志愿者", Role.volunteer, town.villages[0]),
        ):
            user = User(phone=phone, display_name=name, password_hash=password, org_unit_id=unit.id or 0)
            session.add(user)
            session.flush()
            session.add(UserRole(user_id=user.id or 0, role=role.value))
        session.commit()
        grids = [[g.id or 0 for g in row] for row in town.grids]
        town_id = town.town.id or 0
    engine.dispose()

    rng = random.Random(12)
    now = datetime.now(UTC)
    today = now.date()
    households = _town_rows(rng, sizes, grids)
    with_child = households[::3]
    helpers = max(2, sizes.town_households // 500)
    assignments = helpers * 3 // 2
    second_guardian = len(with_child) // 4
    persons = 2 * len(with_child) + second_guardian
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO sync_counter (id, value) VALUES (1, 0) ON CONFLICT (id) DO NOTHING")
        total = len(households) + persons + assignments
        last = cur.execute("UPDATE sync_counter SET value = value + %s WHERE id = 1 RETURNING value",
                           (total,)).fetchone()
        assert last is not None
        rev = int(last[0]) - total + 1

        # Registry rows count in reporting periods from their creation where the schema says so.
        placed = _present(cur, "household", {"counted_at": now})
        with cur.copy("COPY household (id, uuid, org_unit_id, address, head_name, contact, lon, lat, location,"
                      f" note, version, content_hash, rev, created_at, updated_at{placed.names}) FROM STDIN") as copy:
            for h in households:
                copy.write_row((h["id"], h["uuid"], h["grid"], h["address"], f"户主{h['id']}",
                                f"199{rng.randrange(10**8):08d}", h["lon"], h["lat"],
                                f"SRID=4326;POINT({h['lon']} {h['lat']})", None, 1, "0" * 64, rev, now, now,
                                *placed.values))
                rev += 1

        # A child in every third household with a guardian, a second guardian for every fourth child;
        # checksum-valid synthetic ID numbers (region 990101), sealed as the service seals them.
        children: list[tuple[int, int]] = []  # (person id, grid)
        pid = 0
        levels = ["一般风险", "较大风险", "重大风险"]
        reasons = json.dumps([{"rule": "bench", "reason_zh": "基准数据", "reason_en": "Bench data"}],
                             ensure_ascii=False)
        groups = ["留守", "流动", "困境", "单亲"]
        placed = _present(cur, "person", {"counted_at": now})
        with cur.copy("COPY person (id, uuid, role, household_id, org_unit_id, name, id_cipher, id_key_id,"
                      " id_index, id_masked, sex, birth_date, hukou_place, residence, in_school, contact,"
                      " categories, groups, signs, task_force, assistance, key_minor, vulnerable, risk_level,"
                      f" risk_reasons, version, content_hash, rev, created_at, updated_at{placed.names}) FROM STDIN"
                      ) as copy:
            guardianships = []
            for k, h in enumerate(with_child):
                guardian_ids = []
                for g in range(2 if k % 4 == 0 else 1):
                    pid += 1
                    copy.write_row((pid, uuid.UUID(int=rng.getrandbits(128)), "guardian", h["id"], h["grid"],
                                    f"监护人{pid}", None, None, None, None, "female" if g == 0 else "male", None,
                                    None, h["address"], None, f"198{rng.randrange(10**8):08d}", "[]", "[]", None,
                                    None, None, False, False, None, "[]", 1, "0" * 64, rev, now, now, *placed.values))
                    guardian_ids.append(pid)
                    rev += 1
                # (birth day, sequence) is unique per child: 7919 is prime to the 5,110 days drawn from.
                birth = today - timedelta(days=365 * 2 + (k * 7919) % 5110)
                seq = 2 * (k // 5110) + 1 + k % 2
                sealed = seal_id(idnumber.make("990101", birth, seq))
                pid += 1
                level = levels[k % 3] if k % 25 == 0 else None
                group = [groups[k % 4]] if k % 3 == 0 else []
                copy.write_row((pid, uuid.UUID(int=rng.getrandbits(128)), "child", h["id"], h["grid"],
                                f"儿童{pid}", sealed.cipher, sealed.key_id, sealed.index, sealed.masked,
                                "male" if seq % 2 else "female", birth, "示范县", h["address"],
                                birth < today - timedelta(days=365 * 6), None, "[]",
                                json.dumps(group, ensure_ascii=False), None, None, None, False, "留守" in group,
                                level, reasons if level else "[]", 1, "0" * 64, rev, now, now, *placed.values))
                rev += 1
                children.append((pid, h["grid"]))
                guardianships += [(pid, g, "母亲" if n == 0 else "父亲") for n, g in enumerate(guardian_ids)]
        with cur.copy("COPY guardianship (child_id, guardian_id, relation) FROM STDIN") as copy:
            for row in guardianships:
                copy.write_row(row)

        # Helpers (users who never sign in here) with live assignments: offered or accepted.
        with cur.copy("COPY app_user (id, phone, display_name, password_hash, org_unit_id, is_active, created_at,"
                      " updated_at) FROM STDIN") as copy:
            for n in range(helpers):
                copy.write_row((1000 + n, f"1981{n:07d}", f"帮扶人{n}", "x", town_id, True, now, now))
        with cur.copy("COPY user_role (user_id, role) FROM STDIN") as copy:
            for n in range(helpers):
                copy.write_row((1000 + n, "helper"))
        with cur.copy("COPY helper_profile (id, user_id, org_unit_id, sex, skills, capacity, active, created_at,"
                      " updated_at) FROM STDIN") as copy:
            for n in range(helpers):
                copy.write_row((n + 1, 1000 + n, town_id, "female", '["psychology"]', 2, True, now, now))
        with cur.copy("COPY helper_assignment (id, child_id, helper_id, org_unit_id, mode, status, cost, reasons,"
                      " proposed_at, confirmed_at, answer_due_at, answered_at, rev) FROM STDIN") as copy:
            for n in range(assignments):
                child, grid = children[(n * 37) % len(children)]
                accepted = n % 3 != 0
                proposed = now - timedelta(days=3 + n % 20)
                copy.write_row((n + 1, child, n % helpers + 1, grid, "one_to_one",
                                "accepted" if accepted else "offered", 1.5, "[]", proposed, proposed,
                                proposed + timedelta(days=3), proposed + timedelta(days=1) if accepted else None,
                                rev))
                rev += 1
        for table, top in (("household", len(households)), ("person", pid), ("app_user", 1000 + helpers),
                           ("helper_profile", helpers), ("helper_assignment", assignments)):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)", (top,))
        conn.commit()
        conn.execute("ANALYZE")
    counts = {"households": len(households), "children": len(children), "guardians": persons - len(children),
              "helpers": helpers, "assignments": assignments}
    print(f"town built in {time.perf_counter() - started:.1f} s: "
          + ", ".join(f"{n:,} {k}" for k, n in counts.items()))
    return Town(grids, households, counts)


def _push_all(http: httpx.Client, headers: dict[str, str], items: list[dict[str, Any]], *,
              batch: int = BATCH, expect: str = "created") -> None:
    """Push items in batches as a phone does; every item must come back `expect`."""
    for i in range(0, len(items), batch):
        resp = http.post("/api/v1/sync/push", json={"items": items[i : i + batch]}, headers=headers)
        resp.raise_for_status()
        bad = [r for r in resp.json()["results"] if r["status"] != expect]
        assert not bad, f"{len(bad)} of {len(items[i : i + batch])} not {expect}; first: {bad[0]}"


def _phone_time(when: datetime) -> str:
    """A device time as a phone in China writes it."""
    return when.astimezone(timezone(timedelta(hours=8))).isoformat(timespec="seconds")


def _week_of_changes(http: httpx.Client, volunteer: dict[str, str], coordinator: dict[str, str],
                     phone: PhoneStore, town: Town, sizes: Sizes) -> Counter[str]:
    """A week of field work in the volunteer's village, all through the API: new visits, household
    and child edits pushed by the volunteer's phone from its copy, and households (with their
    members) moved to another village by the coordinator. Returns how many of each."""
    rng = random.Random(21)
    total = sizes.week_changes
    planned = {"moved households": max(2, total // 20), "household edits": total // 4,
               "child edits": total // 4}
    planned["visits"] = total - sum(planned.values())
    households = phone.of("household")
    rng.shuffle(households)
    moved = households[: planned["moved households"]]
    edited = households[len(moved) : len(moved) + planned["household edits"]]
    moved_ids = {h["id"] for h in moved}
    by_id = {h["id"]: h for h in households}
    now = datetime.now(UTC)

    items = []
    for h in edited:
        data = {k: h[k] for k in ("address", "head_name", "lon", "lat", "note")}
        data["contact"] = f"197{rng.randrange(10**8):08d}"
        items.append({"kind": "household", "client_uuid": h["uuid"], "base_version": h["version"], "data": data})
    _push_all(http, volunteer, items, expect="updated")

    children = [p for p in phone.of("person") if p["role"] == "child" and p["household_id"] not in moved_ids]
    rng.shuffle(children)
    items = []
    for p in children[: planned["child edits"]]:
        # What the phone holds, sent back with one field changed (it never holds the full ID number).
        data = {k: p[k] for k in ("role", "name", "sex", "birth_date", "hukou_place", "residence", "contact",
                                  "categories", "groups", "signs", "task_force", "assistance", "key_minor",
                                  "vulnerable")}
        data["in_school"] = not p["in_school"]
        data["household_uuid"] = by_id[p["household_id"]]["uuid"]
        data["guardians"] = [{"uuid": g["uuid"], "relation": g.get("relation")} for g in p.get("guardians", [])]
        items.append({"kind": "person", "client_uuid": p["uuid"], "base_version": p["version"], "data": data})
    _push_all(http, volunteer, items, expect="updated")

    staying = [h for h in households if h["id"] not in moved_ids]
    times = [_phone_time(now - timedelta(minutes=rng.randrange(30, 7 * 24 * 60))) for _ in range(planned["visits"])]
    visits = _visits(staying, count=planned["visits"], seed=22, device_times=times)
    _push_all(http, volunteer, visits)

    # The coordinator corrects households registered in the wrong village: each goes, with its
    # members, to a grid of village 1 (the volunteer may no longer see it).
    target = town.village_grids[1][0]
    west, south, east, north = grid_box(1, 0)
    for h in moved:
        current = http.get(f"/api/v1/households/{h['id']}", headers=coordinator)
        current.raise_for_status()
        stored = current.json()
        body = {k: stored[k] for k in ("address", "head_name", "contact", "note")}
        body.update(grid_id=target, lon=round(rng.uniform(west, east), 6), lat=round(rng.uniform(south, north), 6),
                    version=stored["version"])
        resp = http.put(f"/api/v1/households/{h['id']}", json=body, headers=coordinator)
        assert resp.status_code == 200, resp.text
    return Counter(planned)


def _scope_check(url: str, phone: PhoneStore, grids: list[int]) -> str:
    """The phone's households and persons against the server's view of the village, by uuid."""
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    out = []
    with psycopg.connect(plain) as conn:
        for kind, table in (("household", "household"), ("person", "person")):
            server = {str(r[0]) for r in conn.execute(f"SELECT uuid FROM {table} WHERE org_unit_id = ANY(%s)",
                                                      (grids,))}
            held = {key for (k, key) in phone.records if k == kind}
            out.append(f"{kind}s: server {len(server):,}, phone {len(held):,} "
                       f"(missing {len(server - held)}, extra {len(held - server)})")
    return "; ".join(out)


def pull_benchmarks(admin: URL, sizes: Sizes, hello: Timing) -> list[Figure]:
    """A town coordinator's first pull (gzip and plain), and a volunteer's catch-up after a week."""
    with _database(admin, "pull") as url:
        town = _build_town(url, sizes)
        env = {**os.environ, "DATABASE_URL": url}
        with serve("backend.main:create_app", env=env) as base, http_client(base) as http:
            coordinator = _login(http, COORDINATOR_PHONE)
            volunteer = _login(http, VOLUNTEER_PHONE)
            # Half the households were visited in the weeks before (pushed, so each visit is stored
            # as the service stores it); visits are part of what a first pull carries.
            rng = random.Random(13)
            visited = rng.sample(town.households, int(len(town.households) * sizes.visited_share))
            now = datetime.now(UTC)
            times = [_phone_time(now - timedelta(days=8 + rng.randrange(0, 50), minutes=rng.randrange(0, 600)))
                     for _ in visited]
            started = time.perf_counter()
            _push_all(http, coordinator, _visits(visited, count=len(visited), seed=14, device_times=times),
                      batch=500)
            print(f"{len(visited):,} earlier visits pushed in {time.perf_counter() - started:.1f} s")
            # The town was bulk-loaded a moment ago; a server in daily use has its planner statistics
            # (autovacuum gathers them within a minute of such a load).
            with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
                conn.execute("ANALYZE")

            # The plain pull first: the same work, and it leaves the database's caches as warm for the
            # timed gzip pull as a server in daily use has them.
            plain = _drain(http, {**coordinator, "Accept-Encoding": "identity"}, limit=sizes.town_limit)
            gzipped = _drain(http, coordinator, limit=sizes.town_limit)
            print(f"coordinator's first pull, gzip : {gzipped.seconds:6.2f} s  (target < 3 s); {gzipped.describe()}")
            print(f"coordinator's first pull, plain: {plain.seconds:6.2f} s; {plain.describe()}")
            squeeze = plain.wire_bytes / max(1, gzipped.wire_bytes)

            phone = PhoneStore()
            first = _drain(http, volunteer, limit=sizes.village_limit, phone=phone)
            print(f"volunteer's first pull: {first.seconds:.2f} s; {first.describe()}")
            started = time.perf_counter()
            changes = _week_of_changes(http, volunteer, coordinator, phone, town, sizes)
            print(f"a week of changes made in {time.perf_counter() - started:.1f} s: "
                  + ", ".join(f"{n:,} {k}" for k, n in changes.items()))
            week = _drain(http, volunteer, limit=sizes.village_limit, phone=phone, cursor=phone.cursor)
            print(f"volunteer's catch-up: {week.seconds:.3f} s  (target < 1 s); {week.describe()}")
            check = _scope_check(url, phone, town.village_grids[0])
            print(f"phone against server after the catch-up: {check}")
    households = town.counts["households"]
    return [
        Figure(f"sync pull, a week's {sizes.week_changes:,} changes in a {sizes.village_households:,}-household "
               "village, stored cursor", week.seconds, "s", 1.0, "le", hello.median_ms, "ms",
               f"{week.describe()}; changes: " + ", ".join(f"{n:,} {k}" for k, n in changes.items())
               + f"; phone vs server afterwards: {check}; baseline: median hello-world request"),
        Figure(f"sync pull, town coordinator's first pull ({households:,} households), gzip", gzipped.seconds,
               "s", 3.0, "le", hello.median_ms, "ms",
               f"{gzipped.describe()}; without gzip {plain.seconds:.2f} s; baseline: median hello-world request"),
        Figure("sync pull, town coordinator's first pull, bytes on the wire with gzip", gzipped.wire_bytes / 1e6,
               "MB", baseline=plain.wire_bytes / 1e6, baseline_unit="MB",
               note=f"baseline: the same pull without gzip; gzip sends 1/{squeeze:.1f} of the bytes"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--admin-url", default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--quick", action="store_true", help="about a tenth of the size, to check the script")
    parser.add_argument("--parts", default="push,pull", help="push, pull or both (default)")
    add_json_option(parser)
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts or parts - {"push", "pull"}:
        parser.error("--parts takes push, pull or push,pull")
    hello = hello_world_over_http()
    admin = make_url(args.admin_url).set(drivername="postgresql+psycopg")
    figures: list[Figure] = []
    if "push" in parts:
        figures += push_benchmarks(admin, sizes, hello)
    if "pull" in parts:
        figures += pull_benchmarks(admin, sizes, hello)
    print(f"hello-world       : {describe(hello)} (plain FastAPI, same uvicorn and client)")
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
