"""Benchmark: fan out 10,000 notifications through the outbox to a fake FCM endpoint with one worker,
then the same through each vendor push channel (issue 19: Huawei, HarmonyOS NEXT, Xiaomi, Honor, OPPO,
vivo) to its fake server, each against the same messages handed straight to that channel's provider without the outbox
(target: at least 0.8 of that rate, every push exactly once).

    uv run python scripts/bench_notifications.py [--count 10000] [--users 2000] [--channels huawei,...]
        [--vendor-count 4000]
        [--database-url URL | --admin-url URL] [--json PATH]

Without --database-url a fresh SpatiaLite file under a temporary directory is migrated and used
(and removed at the end). With a PostgreSQL URL the database must exist and be empty (postgis
extension created); it is migrated first. With --admin-url (a PostgreSQL server's maintenance
database) a throwaway PostGIS database is created there and dropped at the end. The fake FCM
server (OAuth token endpoint + HTTP v1 send) runs in its own process on 127.0.0.1; the worker
is the real firebase-admin path (FcmProvider, send_each). Prints the enqueue and delivery rates
and checks that every push arrived exactly once.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path

from benchkit import Figure, add_json_option, write_json

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _serve(conn: Connection, directory: str) -> None:
    """Child process: run the fake FCM server until told to stop, then report what arrived."""
    from tests.notifications.fake_fcm import start_fake_fcm

    running = start_fake_fcm(Path(directory))
    conn.send((running.base_url, str(running.credentials_file)))
    conn.recv()  # "stop"
    with running.fake.lock:
        keys = [(m.get("data", {}).get("notification_id"), m.get("token")) for m in running.fake.delivered]
    running.stop()
    conn.send(keys)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000, help="pushes to fan out")
    parser.add_argument("--users", type=int, default=2_000, help="recipients (one device each)")
    parser.add_argument("--batch", type=int, default=500, help="pushes claimed and sent per batch")
    parser.add_argument("--channels", default=",".join(VENDOR_CHANNELS),
                        help="vendor push channels to measure after FCM (comma-separated; empty for none)")
    parser.add_argument("--vendor-count", type=int, default=4_000, help="pushes per vendor channel")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database-url", default=None)
    where.add_argument("--admin-url", default=None, help="create (and drop) a throwaway PostGIS database here")
    add_json_option(parser)
    args = parser.parse_args()
    if args.count % args.users:
        parser.error("--count must be a multiple of --users")

    workdir = tempfile.mkdtemp(prefix="hulei-bench-")
    throwaway: str | None = None
    if args.admin_url:
        import psycopg

        throwaway = f"hulei_bench_{os.getpid()}"
        with psycopg.connect(args.admin_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{throwaway}"')
        url = args.admin_url.rsplit("/", 1)[0] + f"/{throwaway}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    else:
        url = args.database_url or f"sqlite:///{workdir}/bench.db"
    try:
        return _bench(args, url, workdir)
    finally:
        from backend.core.db import dispose_engines

        dispose_engines()
        if throwaway is not None:
            import psycopg

            with psycopg.connect(args.admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{throwaway}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)


def _bench(args: argparse.Namespace, url: str, workdir: str) -> int:
    os.environ["DATABASE_URL"] = url

    parent, child = mp.Pipe()
    server = mp.Process(target=_serve, args=(child, workdir), daemon=True)
    server.start()
    base_url, credentials_file = parent.recv()
    os.environ.update({"HULEI_PUSH_PROVIDER": "fcm", "HULEI_FCM_CREDENTIALS_FILE": credentials_file,
                       "HULEI_FCM_ENDPOINT": base_url, "HULEI_PUSH_BATCH_SIZE": str(args.batch)})

    from sqlalchemy import func, insert, select
    from sqlmodel import Session, col

    from backend.accounts.models import Device, User
    from backend.core import clock
    from backend.core.collector import tune_for_long_running_process
    from backend.core.config import get_settings
    from backend.core.db import get_engine
    from backend.core.migrate import upgrade
    from backend.demo.town import build_org_tree
    from backend.models import import_all_models
    from backend.notifications import service as notifications
    from backend.notifications.delivery import deliver_pending
    from backend.notifications.models import PushOutbox, PushStatus
    from backend.notifications.providers import PushMessage, get_provider

    get_settings.cache_clear()
    import_all_models()
    upgrade(url)
    engine = get_engine()
    tune_for_long_running_process()  # this process stands for the worker, which does so at its start
    with Session(engine, expire_on_commit=False) as session:
        town = build_org_tree(session)
        session.flush()
        now = clock.now()
        session.execute(insert(User), [
            {"phone": f"197{i:08d}", "display_name": f"压测用户{i}", "password_hash": "-", "org_unit_id": town.town.id,
             "created_at": now, "updated_at": now}
            for i in range(args.users)
        ])
        user_ids = [int(i) for i in session.execute(select(col(User.id)).order_by(col(User.id))).scalars()]
        session.execute(insert(Device), [
            {"user_id": uid, "platform": "android" if uid % 2 else "ios", "push_token": f"bench-token-{uid:06d}",
             "created_at": now, "last_seen_at": now}
            for uid in user_ids
        ])
        session.commit()

    rounds = args.count // args.users
    started = time.perf_counter()
    with Session(engine, expire_on_commit=False) as session:
        for r in range(rounds):
            notifications.enqueue(session, user_ids=user_ids, kind="bench.ping", title_zh="压测通知",
                                  title_en="Benchmark", body_zh="请忽略", body_en="Please ignore",
                                  data={"round": str(r)})
        session.commit()
    enqueue_s = time.perf_counter() - started
    print(f"enqueued {args.count} notifications (inbox + outbox rows) in {enqueue_s:.2f} s "
          f"({args.count / enqueue_s:,.0f}/s)")

    provider = get_provider()
    provider.send([])  # nothing: builds the provider; the first real batch fetches the OAuth token
    started = time.perf_counter()
    with Session(engine, expire_on_commit=False) as session:
        report = deliver_pending(session, provider=provider, worker="bench", time_budget_seconds=3600)
    deliver_s = time.perf_counter() - started
    print(f"delivered {report.sent} pushes in {deliver_s:.2f} s with one worker: "
          f"{report.sent / deliver_s:,.0f} messages/s (target >= 500/s); batches={report.batches}, "
          f"retried={report.retried}, failed={report.failed}")

    # Baseline, same run: the same number of pushes handed straight to the provider in batches of
    # the same size, no database. Tagged so the exactly-once count below leaves them out.
    direct = [PushMessage(-(i + 1), f"bench-token-{user_ids[i % len(user_ids)]:06d}", "android",
                          {"notification_id": f"direct-{i}", "kind": "bench.ping", "title_zh": "压测通知",
                           "title_en": "Benchmark", "body_zh": "请忽略", "body_en": "Please ignore", "round": "0"})
              for i in range(args.count)]
    started = time.perf_counter()
    for i in range(0, len(direct), args.batch):
        provider.send(direct[i:i + args.batch])
    direct_rate = len(direct) / (time.perf_counter() - started)
    print(f"baseline: the same {args.count} pushes sent straight to the provider (no outbox): "
          f"{direct_rate:,.0f} messages/s")

    parent.send("stop")
    keys = [k for k in parent.recv() if not str(k[0]).startswith("direct-")]
    server.join(10)
    with Session(engine) as session:
        statuses = dict(session.execute(
            select(col(PushOutbox.status), func.count()).group_by(col(PushOutbox.status))).all())
    counts = Counter(keys)
    duplicates = sum(1 for n in counts.values() if n > 1)
    expected = {(str(n), f"bench-token-{uid:06d}") for n, uid in _expected_pairs(engine)}
    missing = len(expected - set(counts))
    ok = (len(keys) == args.count and duplicates == 0 and missing == 0
          and statuses == {PushStatus.sent.value: args.count})
    print(f"fake FCM received {len(keys)} messages, {len(counts)} distinct; duplicates={duplicates}, "
          f"missing={missing}; outbox={statuses}")
    print("exactly once: " + ("YES" if ok else "NO"))
    wrong = duplicates + missing + abs(len(keys) - args.count) + args.count - statuses.get(PushStatus.sent.value, 0)
    backend = "SpatiaLite" if url.startswith("sqlite") else "PostGIS"
    figures = [
        Figure(f"notifications through the outbox to a fake FCM, one worker, {backend}", report.sent / deliver_s,
               "messages/s", 500, "ge", direct_rate, "messages/s",
               f"{args.count:,} pushes, enqueued at {args.count / enqueue_s:,.0f}/s; "
               "baseline: the same pushes straight to the provider, no outbox"),
        Figure(f"notifications not delivered exactly once, {backend}", max(wrong, 0 if ok else 1), "messages", 0,
               "le", note=f"duplicates={duplicates}, missing={missing}"),
    ]
    all_ok = ok
    for channel in [c for c in args.channels.split(",") if c]:
        vendor = _bench_vendor(args, url, channel, user_ids)
        figures += vendor
        all_ok = all_ok and vendor[0].measured >= 0.8 and vendor[1].measured == 0
    write_json(args.json, figures)
    return 0 if all_ok else 1


VENDOR_CHANNELS = ("huawei", "harmony", "xiaomi", "honor", "oppo", "vivo")


def _serve_vendor(conn: Connection, channel: str) -> None:
    """Child process: run one vendor's fake push server until told to stop, then report what arrived."""
    import importlib

    fake_module = importlib.import_module(f"tests.notifications.fake_{channel}")
    running = getattr(fake_module, f"start_fake_{channel}")()
    conn.send(fake_module.settings_env(running))
    conn.recv()  # "stop"
    with running.fake.lock:
        keys = [(str(m.get("data", {}).get("notification_id")), m.get("token")) for m in running.fake.delivered]
    running.stop()
    conn.send(keys)


def _bench_vendor(args: argparse.Namespace, url: str, channel: str, user_ids: list[int]) -> list[Figure]:
    """The same fan-out through one vendor channel: devices registered on it, the outbox routing each
    push to the channel's provider (provider_for), against the baseline of the same messages handed
    straight to that provider without the outbox."""
    from sqlalchemy import delete, func, insert, select
    from sqlmodel import Session, col

    from backend.accounts.models import Device
    from backend.core import clock
    from backend.core.config import get_settings
    from backend.core.db import get_engine
    from backend.notifications import service as notifications
    from backend.notifications.delivery import deliver_pending
    from backend.notifications.models import Notification, PushOutbox, PushStatus
    from backend.notifications.providers import PushMessage, clear_channel_providers, provider_for

    parent, child = mp.Pipe()
    server = mp.Process(target=_serve_vendor, args=(child, channel), daemon=True)
    server.start()
    os.environ.update(parent.recv())
    get_settings.cache_clear()
    clear_channel_providers()
    engine = get_engine()
    token = f"bench-{channel}-{{:06d}}"
    with Session(engine, expire_on_commit=False) as session:
        session.execute(delete(PushOutbox))
        session.execute(delete(Notification))
        session.execute(delete(Device))
        now = clock.now()
        session.execute(insert(Device), [
            {"user_id": uid, "platform": "android", "channel": channel, "push_token": token.format(uid),
             "created_at": now, "last_seen_at": now} for uid in user_ids])
        for r in range(args.vendor_count // len(user_ids)):
            notifications.enqueue(session, user_ids=user_ids, kind="bench.ping", title_zh="压测通知",
                                  title_en="Benchmark", body_zh="请忽略", body_en="Please ignore",
                                  data={"round": str(r)})
        session.commit()
    provider = provider_for(channel)
    # Warm up: the provider's connections and its auth token, as a running worker has them.
    provider.send([PushMessage(-1, token.format(user_ids[0]), "android",
                               {"notification_id": "direct-warm", "kind": "bench.ping", "title_zh": "压测通知",
                                "title_en": "Benchmark", "body_zh": "请忽略", "body_en": "Please ignore"}, channel)])
    started = time.perf_counter()
    with Session(engine, expire_on_commit=False) as session:
        report = deliver_pending(session, worker="bench", time_budget_seconds=3600)
    rate = report.sent / (time.perf_counter() - started)
    direct = [PushMessage(-(i + 2), token.format(user_ids[i % len(user_ids)]), "android",
                          {"notification_id": f"direct-{i}", "kind": "bench.ping", "title_zh": "压测通知",
                           "title_en": "Benchmark", "body_zh": "请忽略", "body_en": "Please ignore", "round": "0"},
                          channel) for i in range(args.vendor_count)]
    started = time.perf_counter()
    for i in range(0, len(direct), args.batch):
        provider.send(direct[i:i + args.batch])
    direct_rate = len(direct) / (time.perf_counter() - started)
    parent.send("stop")
    keys = [k for k in parent.recv() if not str(k[0]).startswith("direct-")]
    server.join(10)
    clear_channel_providers()
    with Session(engine) as session:
        statuses = dict(session.execute(
            select(col(PushOutbox.status), func.count()).group_by(col(PushOutbox.status))).all())
    counts = Counter(keys)
    duplicates = sum(1 for n in counts.values() if n > 1)
    expected = {(str(n), token.format(uid)) for n, uid in _expected_pairs(engine)}
    missing = len(expected - set(counts))
    ok = duplicates == 0 and missing == 0 and statuses == {PushStatus.sent.value: args.vendor_count}
    ratio = rate / direct_rate if direct_rate else 0.0
    print(f"{channel}: {report.sent} pushes through the outbox at {rate:,.0f} messages/s; straight to the "
          f"provider {direct_rate:,.0f} messages/s; ratio {ratio:.2f} (target >= 0.8); fake received "
          f"{len(keys)}, duplicates={duplicates}, missing={missing}; exactly once: {'YES' if ok else 'NO'}")
    backend = "SpatiaLite" if url.startswith("sqlite") else "PostGIS"
    return [
        Figure(f"{channel} push through the outbox / straight to its provider, {backend}", ratio, "", 0.8, "ge",
               direct_rate, "messages/s", f"{args.vendor_count:,} pushes to a fake {channel} server; "
               f"{rate:,.0f} messages/s through the outbox"),
        Figure(f"{channel} pushes not delivered exactly once, {backend}", 0 if ok else max(duplicates + missing, 1),
               "messages", 0, "le", note=f"duplicates={duplicates}, missing={missing}"),
    ]


def _expected_pairs(engine: object) -> list[tuple[int, int]]:
    from sqlalchemy import select
    from sqlmodel import Session, col

    from backend.notifications.models import Notification

    with Session(engine) as session:  # type: ignore[arg-type]
        return [(int(n), int(u)) for n, u in session.execute(select(col(Notification.id), col(Notification.user_id)))]


if __name__ == "__main__":
    sys.exit(main())
