"""Benchmark: a county-level coverage request over a synthetic county of 1,000,000 households in
20,000 grids on a throwaway PostGIS database (created, bulk-loaded with COPY, dropped).

    uv run python scripts/bench_coverage.py [--households-per-grid 50] [--keep] [--json PATH]

Prints the load time, the summary refresh time (the worker job), and the warm time and GeoJSON
size of GET /api/v1/coverage for the county (targets: < 300 ms warm, < 2 MB) and for one town of
50,000 households (target: < 100 ms warm, issue 17), both from the summary (what a town- or
county-size request reads) and counted live (for comparison). The requests go
through Starlette's TestClient in this process; the baseline, in the same run and through the same
client loop, is a plain FastAPI hello-world (scripts/benchkit.py).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from benchkit import Figure, add_json_option, describe, drive, hello_world_in_process, write_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TOWNS, VILLAGES_PER_TOWN, GRIDS_PER_VILLAGE = 20, 50, 20  # 20,000 grids
WEST, SOUTH = 108.0, 29.5
TOWN_D = 0.25  # a town is 0.25 x 0.25 degrees; 5 x 4 towns
VILLAGE_COLS = 10  # 10 x 5 villages per town
GRID_COLS = 5  # 5 x 4 grids per village


def box(w: float, s: float, e: float, n: float) -> str:
    return f"SRID=4326;MULTIPOLYGON((({w} {s},{e} {s},{e} {n},{w} {n},{w} {s})))"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--admin-url", default=os.environ.get("TEST_DATABASE_URL",
                                                              "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--households-per-grid", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="do not drop the database afterwards")
    add_json_option(parser)
    args = parser.parse_args()

    name = f"hulei_bench_{os.getpid()}"
    admin = psycopg.connect(args.admin_url, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = args.admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        write_json(args.json, run(url, args.households_per_grid))
    finally:
        from backend.core.db import dispose_engines

        dispose_engines()
        if not args.keep:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def run(url: str, per_grid: int) -> list[Figure]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    os.environ["DATABASE_URL"] = url
    from backend.core.config import get_settings

    get_settings.cache_clear()
    from backend.core.migrate import upgrade

    upgrade(url)
    rng = random.Random(7)
    now = datetime.now(UTC)
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        ts = now - timedelta(days=400)
        units: list[tuple[object, ...]] = []
        next_id = 1

        def unit(code: str, uname: str, level: str, parent: int | None, parent_path: str, geom: str | None) -> int:
            nonlocal next_id
            uid = next_id
            next_id += 1
            units.append((uid, code, uname, level, parent, f"{parent_path}{uid}/", geom, ts, ts))
            return uid

        province = unit("980000000000", "基准省", "province", None, "/", None)
        city = unit("980100000000", "基准市", "city", province, "/1/", None)
        county = unit("980101000000", "基准县", "county", city, "/1/2/",
                      box(WEST, SOUTH, WEST + 5 * TOWN_D, SOUTH + 4 * TOWN_D))
        county_path = "/1/2/3/"
        grids: list[tuple[int, float, float, float, float]] = []
        for t in range(TOWNS):
            tw, ts_ = WEST + (t % 5) * TOWN_D, SOUTH + (t // 5) * TOWN_D
            town = unit(f"98010110{t:02d}00", f"基准镇{t + 1}", "town", county, county_path,
                        box(tw, ts_, tw + TOWN_D, ts_ + TOWN_D))
            town_path = f"{county_path}{town}/"
            vd_x, vd_y = TOWN_D / VILLAGE_COLS, TOWN_D / 5
            for v in range(VILLAGES_PER_TOWN):
                vw, vs = tw + (v % VILLAGE_COLS) * vd_x, ts_ + (v // VILLAGE_COLS) * vd_y
                village = unit(f"98010110{t:02d}{v:03d}", f"基准镇{t + 1}村{v + 1}", "village", town, town_path,
                               box(vw, vs, vw + vd_x, vs + vd_y))
                village_path = f"{town_path}{village}/"
                gd_x, gd_y = vd_x / GRID_COLS, vd_y / 4
                for g in range(GRIDS_PER_VILLAGE):
                    gw, gs = vw + (g % GRID_COLS) * gd_x, vs + (g // GRID_COLS) * gd_y
                    gid = unit(f"98010110{t:02d}{v:03d}{g:02d}", f"网格{g + 1}", "grid", village, village_path,
                               box(gw, gs, gw + gd_x, gs + gd_y))
                    grids.append((gid, gw, gs, gd_x, gd_y))
        with conn.cursor() as cur:
            with cur.copy("COPY org_unit (id, code, name, level, parent_id, path, boundary, created_at, updated_at) "
                          "FROM STDIN") as copy:
                for row in units:
                    copy.write_row(row)
            cur.execute("SELECT setval(pg_get_serial_sequence('org_unit', 'id'), %s)", (next_id,))
            cur.execute("INSERT INTO app_user (phone, display_name, password_hash, org_unit_id, is_active, created_at,"
                        " updated_at) VALUES ('19800009999', '基准', 'x', %s, true, %s, %s) RETURNING id",
                        (county, ts, ts))
            user_row = cur.fetchone()
            assert user_row is not None
            user_id = int(user_row[0])
            cur.execute("INSERT INTO user_role (user_id, role) VALUES (%s, 'coordinator')", (user_id,))
        conn.commit()
        print(f"org tree: {len(units):,} units ({len(grids):,} grids) in {time.perf_counter() - started:.1f} s")

        t0 = time.perf_counter()
        phase_start = now - timedelta(days=100)
        hid = 0
        households = 0
        with conn.cursor() as cur:
            with cur.copy("COPY household (id, uuid, org_unit_id, address, lon, lat, location, version, content_hash,"
                          " rev, created_at, updated_at, counted_at) FROM STDIN") as copy:
                for gid, gw, gs, dx, dy in grids:
                    for _k in range(per_grid):
                        hid += 1
                        lon, lat = gw + dx * rng.random(), gs + dy * rng.random()
                        copy.write_row((hid, uuid.uuid4(), gid, f"基准地址{hid}", lon, lat,
                                        f"SRID=4326;POINT({lon:.6f} {lat:.6f})", 1, "0" * 64, hid, ts, ts, ts))
                        households += 1
            cur.execute("SELECT setval(pg_get_serial_sequence('household', 'id'), %s)", (hid,))
        conn.commit()
        print(f"households: {households:,} in {time.perf_counter() - t0:.1f} s")

        t0 = time.perf_counter()
        visits = children = 0
        levels = ["低风险", "一般风险", "较大风险", "重大风险", None]
        with conn.cursor() as cur:
            with cur.copy("COPY visit (client_uuid, content_hash, household_id, org_unit_id, recorded_by,"
                          " template_code, template_version, outcome, answers, children_seen, device_time, received_at,"
                          " location_mismatch, risk_reasons, counted_at) FROM STDIN") as copy:
                h = 0
                for gid, *_ in grids:
                    share = rng.random()
                    for _k in range(per_grid):
                        h += 1
                        if rng.random() < share:
                            when = phase_start + timedelta(minutes=rng.randrange(0, 99 * 24 * 60))
                            outcome = "visited" if rng.random() < 0.9 else "nobody_home"
                            copy.write_row((uuid.uuid4(), "0" * 64, h, gid, user_id, "six-looks", 1, outcome, "{}",
                                            "[]", when, when, rng.random() < 0.03, "[]", when))
                            visits += 1
            with cur.copy("COPY person (uuid, role, household_id, org_unit_id, name, categories, groups, key_minor,"
                          " vulnerable, risk_level, risk_reasons, version, content_hash, rev, created_at, updated_at,"
                          " counted_at)"
                          " FROM STDIN") as copy:
                h = 0
                for gid, *_ in grids:
                    for _k in range(per_grid):
                        h += 1
                        if h % 3 == 0:
                            copy.write_row((uuid.uuid4(), "child", h, gid, "儿童", "[]", "[]", False, False,
                                            rng.choice(levels), "[]", 1, "0" * 64, 2_000_000 + h, ts, ts, ts))
                            children += 1
        conn.commit()
        conn.execute("ANALYZE")
        conn.commit()
        print(f"visits: {visits:,}, children: {children:,} in {time.perf_counter() - t0:.1f} s")
    return bench(county, user_id)


def bench(county: int, user_id: int) -> list[Figure]:
    from fastapi.testclient import TestClient
    from sqlalchemy import text
    from sqlmodel import Session

    from backend.core.config import get_settings
    from backend.core.db import get_engine
    from backend.core.security import issue_access_token
    from backend.coverage import service as coverage
    from backend.main import create_app

    with Session(get_engine()) as session:
        t0 = time.perf_counter()
        done = coverage.refresh_standard_summaries(session)
        session.commit()
        print(f"summary refresh (worker job coverage.refresh, {len(done)} periods): "
              f"{time.perf_counter() - t0:.1f} s")
    token, _ = issue_access_token(user_id, ["coordinator"], county)
    headers = {"Authorization": f"Bearer {token}"}

    hello = hello_world_in_process()
    figures: list[Figure] = []

    def measure(label: str, params: dict[str, object], target_ms: float | None = None) -> None:
        with TestClient(create_app()) as client:
            first = client.get("/api/v1/coverage", params=params, headers=headers)
            assert first.status_code == 200, first.text
            responses = []
            timing = drive(lambda _: responses.append(client.get("/api/v1/coverage", params=params,
                                                                 headers=headers)), 10)
            resp = responses[-1]
            body = resp.json()
        print(f"{label}: source={body['source']} features={len(body['features'])} "
              f"households={body['totals']['households']:,} visited={body['totals']['visited']:,} | "
              f"warm median {timing.median_ms:.0f} ms, min {timing.min_ms:.0f} ms, max {timing.max_ms:.0f} ms | "
              f"GeoJSON {len(resp.content) / 1024:.1f} KiB")
        figures.append(Figure(f"coverage: {label}, warm median", timing.median_ms, "ms", target_ms,
                              "le" if target_ms is not None else None, hello.median_ms, "ms",
                              f"{len(body['features']):,} features; baseline: hello-world, same in-process client"))
        if target_ms is not None:
            figures.append(Figure(f"coverage: {label}, GeoJSON size", len(resp.content) / 1e6, "MB", 2, "le"))

    measure("county, current phase (summary)", {"unit_id": county, "zoom": 10}, 300)
    measure("county, current month (summary)", {"unit_id": county, "zoom": 10,
                                                "month": datetime.now(UTC).strftime("%Y-%m")}, 300)
    with Session(get_engine()) as session:
        town = session.execute(text("SELECT id FROM org_unit WHERE level = 'town' ORDER BY id LIMIT 1")
                               ).scalar_one()
    measure("one town (50,000 households, 1,000 grids), current phase (summary)", {"unit_id": town, "zoom": 12}, 100)
    measure("one town, current month (summary)", {"unit_id": town, "zoom": 12,
                                                  "month": datetime.now(UTC).strftime("%Y-%m")}, 100)
    os.environ["HULEI_COVERAGE_LIVE_MAX_GRIDS"] = "100000000"
    os.environ["HULEI_COVERAGE_LIVE_MAX_HOUSEHOLDS"] = "100000000"
    get_settings.cache_clear()
    measure("county, current phase (counted live, for comparison)", {"unit_id": county, "zoom": 10})
    measure("one town, current phase (counted live, for comparison)", {"unit_id": town, "zoom": 12})
    print(f"baseline, FastAPI hello-world through the same in-process client: {describe(hello)}")
    return figures


if __name__ == "__main__":
    main()
