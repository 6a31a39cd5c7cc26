"""Benchmark of issue 3: sync push and pull through HTTP against a throwaway PostGIS database.

    uv run python scripts/bench_sync.py [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

Creates a database, migrates it, seeds a town with 5,000 households in one village, starts one
uvicorn worker on a loopback port, then:
  1. pushes 10,000 visits in batches of 200 (POST /api/v1/sync/push), visits/s;
  2. inserts the same 10,000 rows with a plain psycopg executemany (batches of 200, one commit
     each) into the same visit table, rows/s (and, for comparison, into a copy of the table
     without its foreign keys);
  1 and 2 run three times with fresh visits; the medians are printed; then 10,000 more visits
     are pushed by 4 phones at once;
  3. pulls the 5,000-household village from an empty cursor (GET /api/v1/sync/pull, gzip).
Before that, in the same run, a plain FastAPI hello-world served and driven the same way
(scripts/benchkit.py) gives the requests/s and latency this machine allows.
Prints each figure beside its target, then stops the server and drops the database;
--json PATH also writes the figures for scripts/bench.py.
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
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
from sqlalchemy.engine import make_url
from sqlmodel import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.accounts.models import User, UserRole  # noqa: E402
from backend.accounts.permissions import Role  # noqa: E402
from backend.checklists.builtin import six_looks_items  # noqa: E402
from backend.core.geo import point  # noqa: E402
from backend.core.migrate import upgrade  # noqa: E402
from backend.core.security import hash_password  # noqa: E402
from backend.demo.town import build_org_tree, grid_box  # noqa: E402
from backend.registry.models import Household  # noqa: E402
from backend.registry.service import content_hash  # noqa: E402
from backend.sync import revisions  # noqa: E402

VISITS, BATCH, HOUSEHOLDS = 10_000, 200, 5_000
ROUNDS = 3
PHONES = 4
PASSWORD = "bench-password-1"
PHONE = "19911112222"


def _seed(url: str) -> tuple[list[dict[str, Any]], str]:
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
        first = revisions.allocate(session, HOUSEHOLDS)
        for n in range(HOUSEHOLDS):
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


def _visits(households: list[dict[str, Any]], *, count: int = VISITS, seed: int = 4) -> list[dict[str, Any]]:
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
                    "device_time": "2026-11-20T09:30:00+08:00",
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
            )
        )
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--admin-url", default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    add_json_option(parser)
    args = parser.parse_args()
    hello = hello_world_over_http()
    admin = make_url(args.admin_url).set(drivername="postgresql+psycopg")
    name = f"hulei_bench_{os.getpid()}"
    admin_engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.set(database=name).render_as_string(hide_password=False)
    plain_url = url.replace("postgresql+psycopg://", "postgresql://")
    try:
        with create_engine(url).begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        upgrade(url)
        households, phone = _seed(url)
        env = {**os.environ, "DATABASE_URL": url}
        with serve("backend.main:create_app", env=env) as base, http_client(base) as http:
            token = http.post("/api/v1/auth/login", json={"phone": phone, "password": PASSWORD}).json()
            headers = {"Authorization": f"Bearer {token['access_token']}", "Accept-Encoding": "gzip"}
            warm_up = _visits(households, count=1, seed=3)
            http.post("/api/v1/sync/push", json={"items": warm_up}, headers=headers)
            push_headers = {**headers, "Content-Type": "application/json"}
            # ROUNDS rounds of fresh visits, each followed by its plain inserts: the medians, and the
            # median of each round's push/plain ratio (the pair measured close together), steady the
            # figures against the machine's other work.
            rounds: list[tuple[float, float, float, Timing]] = []
            for r in range(ROUNDS):
                items = _visits(households, seed=4 + r)
                # Bodies are encoded before the clock starts, as a phone has its queue ready: the figure
                # is the server's, not this client's JSON encoder's.
                bodies = [orjson.dumps({"items": items[i : i + BATCH]}) for i in range(0, VISITS, BATCH)]
                results: list[dict[str, Any]] = []

                def push(n: int, bodies: list[bytes] = bodies, results: list[dict[str, Any]] = results) -> None:
                    resp = http.post("/api/v1/sync/push", content=bodies[n], headers=push_headers)
                    resp.raise_for_status()
                    results.extend(orjson.loads(resp.content)["results"])

                timing = drive(push, len(bodies))
                created = sum(1 for res in results if res["status"] == "created")
                assert created == VISITS, f"only {created} created"
                rounds.append((VISITS / timing.elapsed_s, _plain_rate(plain_url, items, results),
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
            items = _visits(households, seed=40)
            bodies = [orjson.dumps({"items": items[i : i + BATCH]}) for i in range(0, VISITS, BATCH)]
            phones = [http_client(base) for _ in range(PHONES)]

            def phone(k: int) -> int:
                created = 0
                for body in bodies[k::PHONES]:
                    resp = phones[k].post("/api/v1/sync/push", content=body, headers=push_headers)
                    resp.raise_for_status()
                    created += orjson.loads(resp.content)["counts"].get("created", 0)
                return created

            started = time.perf_counter()
            with ThreadPoolExecutor(PHONES) as pool:
                concurrent_created = sum(pool.map(phone, range(PHONES)))
            concurrent_rate = concurrent_created / (time.perf_counter() - started)
            for c in phones:
                c.close()
            assert concurrent_created == VISITS, f"only {concurrent_created} created"
            concurrent_ratio = concurrent_rate / plain_rate

            started = time.perf_counter()
            cursor: str | None = None
            pulled = 0
            while True:
                params: dict[str, Any] = {"limit": 5000}
                if cursor:
                    params["cursor"] = cursor
                body = http.get("/api/v1/sync/pull", params=params, headers=headers).json()
                pulled += sum(1 for i in body["items"] if i["kind"] == "household")
                cursor = body["next_cursor"]
                if not body["has_more"]:
                    break
            pull_elapsed = time.perf_counter() - started
        print(f"push through HTTP : {push_rate:8.0f} visits/s   (target >= 3000 visits/s)")
        print(f"plain executemany : {plain_rate:8.0f} rows/s")
        print(f"ratio push/plain  : {ratio:8.2f}          (target >= 0.20)")
        print(f"push, {PHONES} phones at once: {concurrent_rate:8.0f} visits/s, ratio to plain {concurrent_ratio:.2f}")
        print(f"(for comparison: {copy_rate:.0f} rows/s into a copy of the table without its foreign keys, "
              f"ratio {copy_ratio:.2f})")
        print(f"pull {pulled} households from empty cursor: {pull_elapsed:6.3f} s   (target < 1 s)")
        print(f"push requests     : {push_timing.requests_per_s:8.1f} requests/s of {BATCH} visits, "
              f"median {push_timing.median_ms:.0f} ms")
        print(f"hello-world       : {describe(hello)} (plain FastAPI, same uvicorn and client)")
        write_json(args.json, [
            Figure("sync push over HTTP, PostGIS, one uvicorn worker", push_rate, "visits/s", 3000, "ge",
                   plain_rate, "rows/s", "baseline: the same rows by plain psycopg executemany"),
            Figure("sync push / plain psycopg executemany", ratio, "ratio", 0.20, "ge"),
            Figure(f"sync push, {PHONES} phones at once", concurrent_rate, "visits/s", 3000, "ge", plain_rate,
                   "rows/s", f"ratio to plain: {concurrent_ratio:.2f}"),
            Figure("plain executemany into a copy without foreign keys (comparison)", copy_rate, "rows/s",
                   note="push / this rate: " + f"{copy_ratio:.2f}"),
            Figure(f"sync push requests ({BATCH} visits each)", push_timing.requests_per_s, "requests/s",
                   baseline=hello.requests_per_s, baseline_unit="requests/s",
                   note="baseline: FastAPI hello-world, same uvicorn and client"),
            Figure(f"sync pull of {pulled:,} households, empty cursor", pull_elapsed, "s", 1.0, "le",
                   hello.median_ms, "ms", "baseline: median hello-world request"),
        ])
    finally:
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


if __name__ == "__main__":
    main()
