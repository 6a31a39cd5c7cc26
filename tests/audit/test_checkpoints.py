"""An audit log a database insider cannot rewrite unnoticed: signed checkpoints outside the database
(real Ed25519 keys, real files, the real database with its triggers)."""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from backend.audit import checkpoints, service
from backend.audit.checkpoints import CheckpointError, CheckpointExists, DirectoryStore, write_checkpoint
from backend.audit.models import AuditEntry
from backend.cli import app
from backend.core import clock
from backend.core.config import get_settings
from backend.core.jobs import registered_jobs
from tests.media import conftest as media_fixtures

INTERVAL = timedelta(minutes=10)
s3_endpoint = media_fixtures.s3_endpoint  # the S3-compatible test server (moto), started once per run
START = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


@dataclass
class Anchor:
    key_file: Path
    public_key: str
    directory: Path


@pytest.fixture
def anchor(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Anchor]:
    """A real key pair made by `hulei audit keygen`, checkpoints in this test's directory."""
    key_file = tmp_path / "secrets" / "audit-checkpoint.pem"
    made = CliRunner().invoke(app, ["audit", "keygen", "--out", str(key_file)])
    assert made.exit_code == 0, made.output
    public = made.output.split("HULEI_AUDIT_CHECKPOINT_PUBLIC_KEYS=")[1].strip()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    directory = tmp_path / "audit-checkpoints"
    monkeypatch.setenv("HULEI_AUDIT_CHECKPOINT_KEY_FILE", str(key_file))
    monkeypatch.setenv("HULEI_AUDIT_CHECKPOINT_PUBLIC_KEYS", public)
    monkeypatch.setenv("HULEI_AUDIT_CHECKPOINT_DIR", str(directory))
    monkeypatch.setenv("HULEI_AUDIT_CHECKPOINT_INTERVAL_MINUTES", str(int(INTERVAL.total_seconds() // 60)))
    get_settings.cache_clear()
    clock.freeze(START)
    yield Anchor(key_file, public, directory)
    clock.reset()


def _append(session: Session, n: int) -> None:
    for i in range(n):
        service.record(session, actor=None, action="test.event", object_type="child", object_id=i,
                       details={"n": i, "姓名": "测试"})
    session.commit()


def _checkpoint(session: Session) -> checkpoints.Checkpoint:
    """The worker's next run, one interval on."""
    clock.advance(INTERVAL)
    written = write_checkpoint(session)
    session.commit()
    assert written is not None
    return written


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _named(directory: Path, tree_size: int) -> Path:
    """The one checkpoint file of that many entries."""
    [path] = [p for p in directory.iterdir() if p.name.startswith(f"{tree_size:020d}")]
    return path


def _log_with_checkpoints_at_3_and_6(session: Session) -> None:
    _append(session, 3)
    _checkpoint(session)
    _append(session, 3)
    _checkpoint(session)
    _append(session, 2)  # 8 entries, the last two not yet anchored


def _as_insider(session: Session, backend_name: str, statements: list[tuple[str, dict[str, object]]]) -> None:
    """What someone with the database's superuser rights can do: switch the guards off, then write."""
    conn = session.connection()
    if backend_name == "postgis":
        conn.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        for trigger in ("audit_entry_no_update", "audit_entry_no_delete", "audit_chain_head_forward_only",
                        "audit_chain_head_no_delete", "audit_chain_head_no_insert"):
            conn.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
    for sql, params in statements:
        conn.execute(text(sql), params)
    session.commit()
    session.expire_all()


def _verify_cli() -> tuple[int, str]:
    result = CliRunner().invoke(app, ["audit", "verify"])
    return result.exit_code, result.output


def test_a_clean_log_agrees_with_every_checkpoint_even_where_the_private_key_is_not(
    session: Session, anchor: Anchor, monkeypatch: pytest.MonkeyPatch
) -> None:
    _append(session, 2)
    _checkpoint(session)
    _append(session, 3)
    _checkpoint(session)
    _append(session, 1)
    last = _checkpoint(session)
    _append(session, 2)
    # Named by tree size and signed time: sorted in signing order, never overwritten.
    assert _names(anchor.directory) == [
        "00000000000000000002_20261130T011000000000Z.json", "00000000000000000005_20261130T012000000000Z.json",
        "00000000000000000006_20261130T013000000000Z.json"]
    assert checkpoints.checkpoint_name(last) == "00000000000000000006_20261130T013000000000Z.json"

    monkeypatch.delenv("HULEI_AUDIT_CHECKPOINT_KEY_FILE")  # verify runs with the public key only
    get_settings.cache_clear()
    verdict = checkpoints.verify_log(session)
    assert verdict.ok, verdict.problems
    assert verdict.checkpoints_checked == 3 and verdict.newest is not None and verdict.newest.tree_size == 6
    assert verdict.unanchored_entries == 2
    code, output = _verify_cli()
    assert code == 0, output
    assert "audit chain intact: 8 entries" in output
    assert "3 checkpoints" in output and "covers 6 entries" in output and "2 entries after it" in output


def test_removing_the_newest_entries_and_resetting_the_head_fails_at_the_checkpoint_that_covered_them(
    session: Session, backend_name: str, anchor: Anchor
) -> None:
    _log_with_checkpoints_at_3_and_6(session)
    fourth = session.exec(select(AuditEntry).where(col(AuditEntry.id) == 4)).one()
    _as_insider(session, backend_name, [
        ("DELETE FROM audit_entry WHERE id > 4", {}),
        ("UPDATE audit_chain_head SET last_entry_id = 4, last_hash = :h", {"h": fourth.entry_hash}),
    ])
    assert service.verify_chain(session).ok  # the hash chain alone cannot tell

    verdict = checkpoints.verify_log(session)
    assert not verdict.ok
    first = verdict.first_contradicted
    assert first is not None and first.tree_size == 6 and first.name == _named(anchor.directory, 6).name
    assert first.signed_at == START + 2 * INTERVAL
    assert "only 4" in first.reason
    code, output = _verify_cli()
    assert code == 1
    report = json.loads(output)
    assert report["first_contradicted_checkpoint"]["tree_size"] == 6
    assert report["first_contradicted_checkpoint"]["signed_at"] == (START + 2 * INTERVAL).isoformat()
    assert report["first_contradicted_checkpoint"]["file"].endswith(_named(anchor.directory, 6).name)

    # The service carries on appending; the log still contradicts the checkpoint, and the worker
    # refuses to sign the new head over it.
    _append(session, 4)
    assert service.verify_chain(session).ok
    verdict = checkpoints.verify_log(session)
    assert verdict.first_contradicted is not None and verdict.first_contradicted.tree_size == 6
    assert "rewritten" in verdict.first_contradicted.reason
    clock.advance(INTERVAL)
    with pytest.raises(CheckpointError):
        write_checkpoint(session)
    assert len(list(anchor.directory.iterdir())) == 2


def test_rewriting_an_entry_and_recomputing_every_later_hash_fails_at_the_next_checkpoint(
    session: Session, backend_name: str, anchor: Anchor
) -> None:
    _log_with_checkpoints_at_3_and_6(session)
    entries = list(session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all())
    session.expunge_all()
    statements: list[tuple[str, dict[str, object]]] = []
    prev = entries[3].entry_hash
    for entry in entries[4:]:  # entry 5 says another child was read; 5..8 re-hashed
        if entry.id == 5:
            entry.object_id = "forged"
        entry.prev_hash = prev
        entry.entry_hash = service.entry_digest(entry)
        prev = entry.entry_hash
        statements.append(("UPDATE audit_entry SET object_id = :o, prev_hash = :p, entry_hash = :h WHERE id = :i",
                           {"o": entry.object_id, "p": entry.prev_hash, "h": entry.entry_hash, "i": entry.id}))
    statements.append(("UPDATE audit_chain_head SET last_hash = :h", {"h": prev}))
    _as_insider(session, backend_name, statements)
    assert service.verify_chain(session).ok  # the hash chain alone cannot tell

    verdict = checkpoints.verify_log(session)
    assert not verdict.ok
    assert [p.tree_size for p in verdict.problems] == [6]  # the checkpoint of 3 entries still holds
    assert "rewritten" in verdict.problems[0].reason
    code, output = _verify_cli()
    assert code == 1 and json.loads(output)["first_contradicted_checkpoint"]["tree_size"] == 6


def test_an_altered_checkpoint_is_reported_as_a_bad_signature(session: Session, anchor: Anchor) -> None:
    _log_with_checkpoints_at_3_and_6(session)
    path = _named(anchor.directory, 3)
    document = json.loads(path.read_text())
    document["checkpoint"]["head_hash"] = "f" * 64
    os.chmod(path, 0o644)  # stored read-only; someone with the volume changes that first
    path.write_text(json.dumps(document))

    verdict = checkpoints.verify_log(session)
    assert verdict.chain.ok and not verdict.ok
    first = verdict.first_contradicted
    assert first is not None and first.tree_size == 3
    assert "signature does not verify" in first.reason
    code, output = _verify_cli()
    assert code == 1 and "signature does not verify" in output


def test_a_checkpoint_signed_with_another_key_is_not_trusted(session: Session, anchor: Anchor) -> None:
    _append(session, 3)
    head = session.exec(select(AuditEntry).where(col(AuditEntry.id) == 3)).one()
    forged = checkpoints.sign(Ed25519PrivateKey.generate(), tree_size=3, head_hash=head.entry_hash,
                              signed_at=clock.now(), previous=None)
    DirectoryStore(anchor.directory).append(checkpoints.file_name(3), forged.to_bytes())

    verdict = checkpoints.verify_log(session)
    assert not verdict.ok
    assert verdict.first_contradicted is not None
    assert "not a trusted audit checkpoint key" in verdict.first_contradicted.reason


def test_a_checkpoint_removed_from_the_middle_is_noticed(session: Session, anchor: Anchor) -> None:
    _log_with_checkpoints_at_3_and_6(session)
    _checkpoint(session)
    _named(anchor.directory, 6).unlink()

    verdict = checkpoints.verify_log(session)
    assert [(p.tree_size, "missing" in p.reason) for p in verdict.problems] == [(8, True)]


def test_the_worker_job_signs_the_head_at_every_interval_grown_or_not(session: Session, anchor: Anchor) -> None:
    assert "audit.checkpoint" in {job.name for job in registered_jobs()}
    assert write_checkpoint(session) is None  # an empty log has nothing to anchor
    _append(session, 2)
    first = write_checkpoint(session)
    assert first is not None and first.tree_size == 2 and first.previous is None
    assert first.signed_at == START

    _append(session, 1)
    clock.advance(INTERVAL - timedelta(seconds=1))
    assert write_checkpoint(session) is None  # not yet: the newest checkpoint is younger than the interval
    clock.advance(timedelta(seconds=1))
    second = write_checkpoint(session)
    assert second is not None and second.tree_size == 3 and second.previous == first.digest()
    clock.advance(INTERVAL - timedelta(seconds=1))
    assert write_checkpoint(session) is None
    clock.advance(timedelta(seconds=1))
    # Nothing appended since: a heartbeat of the same head, so silence always means the job stopped.
    third = write_checkpoint(session)
    assert third is not None and third.tree_size == 3 and third.head_hash == second.head_hash
    assert third.previous == second.digest() and third.signed_at == START + 2 * INTERVAL

    path = anchor.directory / checkpoints.checkpoint_name(second)
    stored = checkpoints.parse(path.read_bytes())
    assert stored == second
    assert stored.signature_problem(checkpoints.parse_public_keys(anchor.public_key)) is None
    assert path.stat().st_mode & 0o222 == 0
    with pytest.raises(CheckpointExists):
        DirectoryStore(anchor.directory).append(path.name, b"{}")
    assert checkpoints.parse(path.read_bytes()) == second
    assert len(_names(anchor.directory)) == 3


def test_without_a_signing_key_development_skips_and_production_refuses(
    session: Session, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("HULEI_AUDIT_CHECKPOINT_DIR", str(tmp_path / "audit-checkpoints"))
    get_settings.cache_clear()
    _append(session, 2)
    caplog.set_level(logging.INFO)
    assert write_checkpoint(session) is None
    assert "no signing key" in caplog.text
    assert not (tmp_path / "audit-checkpoints").exists()

    # Production, with every other secret strong (backend/core/secrets.py refuses weak ones first).
    for name, value in {"HULEI_PRODUCTION": "true", "HULEI_JWT_SECRET": secrets.token_urlsafe(48),
                        "HULEI_ID_NUMBER_INDEX_KEY": secrets.token_urlsafe(48),
                        "HULEI_ID_NUMBER_KEYS": "k2026a:" + base64.b64encode(secrets.token_bytes(32)).decode(),
                        "HULEI_ID_NUMBER_ACTIVE_KEY": "k2026a", "HULEI_MEDIA_STORAGE": "local"}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    with pytest.raises(CheckpointError, match="HULEI_AUDIT_CHECKPOINT_KEY_FILE"):
        write_checkpoint(session)
    result = CliRunner().invoke(app, ["worker", "--once"])
    assert result.exit_code == 1
    assert "refusing to start the worker" in result.output and "HULEI_AUDIT_CHECKPOINT_KEY_FILE" in result.output


def test_the_chain_head_refuses_what_an_insider_would_do_to_it(session: Session, backend_name: str) -> None:
    _append(session, 3)
    second = session.exec(select(AuditEntry).where(col(AuditEntry.id) == 2)).one()
    attempts = [
        "DELETE FROM audit_chain_head",
        f"UPDATE audit_chain_head SET last_entry_id = 2, last_hash = '{second.entry_hash}'",  # back one entry
        "UPDATE audit_chain_head SET last_entry_id = 0, last_hash = '" + "0" * 64 + "'",  # reset to empty
        "UPDATE audit_chain_head SET last_entry_id = 4",  # ahead, to an entry that does not exist
        "UPDATE audit_chain_head SET last_hash = '" + "a" * 64 + "'",
        "INSERT INTO audit_chain_head (id, last_entry_id, last_hash) VALUES (2, 0, '" + "0" * 64 + "')",
    ]
    if backend_name == "postgis":
        attempts.append("TRUNCATE audit_chain_head")
    for sql in attempts:
        with pytest.raises(DatabaseError):
            session.connection().execute(text(sql))
        session.rollback()
    # The one move the service makes still works, and the chain still verifies.
    _append(session, 2)
    assert service.verify_chain(session).ok and service.verify_chain(session).entries_checked == 5


def test_checkpoints_can_live_in_a_bucket_that_never_replaces_an_object(
    session: Session, anchor: Anchor, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.media.storage import S3Storage

    for name, value in {"HULEI_AUDIT_CHECKPOINT_STORAGE": "s3", "HULEI_MEDIA_S3_ENDPOINT": s3_endpoint,
                        "HULEI_AUDIT_CHECKPOINT_S3_BUCKET": "hulei-audit-test", "HULEI_MEDIA_S3_ACCESS_KEY": "testing",
                        "HULEI_MEDIA_S3_SECRET_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    S3Storage(endpoint=s3_endpoint, bucket="hulei-audit-test", access_key="testing", secret_key="testing",
              region="us-east-1").ensure_bucket()
    _log_with_checkpoints_at_3_and_6(session)
    store = checkpoints.get_store()
    assert store.location == "s3://hulei-audit-test/checkpoints/"
    names = store.names()
    assert [n[:20] for n in names] == ["00000000000000000003", "00000000000000000006"]
    assert not anchor.directory.exists()
    with pytest.raises(CheckpointExists):
        store.append(names[-1], b"{}")
    assert checkpoints.verify_log(session).ok
    code, output = _verify_cli()
    assert code == 0 and "s3://hulei-audit-test/checkpoints/" in output


def _stop_anchoring_through_the_database(session: Session) -> None:
    """The tester's move: only the database, no access to the worker or its storage."""
    from backend.core.jobs import JobSchedule

    if session.get(JobSchedule, "audit.checkpoint") is None:
        session.add(JobSchedule(name="audit.checkpoint", next_run_at=clock.now()))
        session.commit()
    session.connection().execute(text(
        "UPDATE job_schedule SET next_run_at = '2999-01-01', locked_until = '2999-01-01' "
        "WHERE name = 'audit.checkpoint'"))
    session.commit()


def test_anchoring_stopped_through_the_database_makes_verify_fail(session: Session, anchor: Anchor) -> None:
    from backend.core.jobs import run_due_jobs

    _append(session, 3)
    _checkpoint(session)
    _stop_anchoring_through_the_database(session)
    _append(session, 2)  # the service carries on; nothing anchors these any more
    clock.advance(INTERVAL)
    run_due_jobs()
    assert [p.name for p in anchor.directory.iterdir()] == ["00000000000000000003_20261130T011000000000Z.json"]
    code, output = _verify_cli()
    assert code == 0, output  # within the bound (3 × interval + grace) the worker may just be late

    clock.advance(3 * INTERVAL + timedelta(minutes=1))  # now past 3 × 10 min + 10 min grace
    run_due_jobs()
    assert len(list(anchor.directory.iterdir())) == 1
    verdict = checkpoints.verify_log(session)
    assert verdict.chain.ok and not verdict.ok
    assert verdict.anchoring_stopped is not None and "anchoring stopped" in verdict.anchoring_stopped
    code, output = _verify_cli()
    assert code == 1
    report = json.loads(output)
    assert "anchoring stopped" in report["anchoring_stopped"] and "still unanchored" in report["anchoring_stopped"]


def test_an_idle_log_with_heartbeats_verifies_and_without_them_fails(session: Session, anchor: Anchor) -> None:
    _append(session, 3)
    _checkpoint(session)
    for _ in range(30):  # nothing appended: the worker still signs the same head every interval
        _checkpoint(session)
    assert len(_names(anchor.directory)) == 31
    verdict = checkpoints.verify_log(session)
    assert verdict.ok, (verdict.problems, verdict.anchoring_stopped)
    assert verdict.newest is not None and verdict.newest.signed_at == START + 31 * INTERVAL
    assert _verify_cli()[0] == 0

    # The heartbeats stop: past the bound the idle log fails too, though no entry waits.
    clock.advance(3 * INTERVAL + timedelta(minutes=10))
    assert checkpoints.verify_log(session).ok  # at the bound: the worker may just be late
    clock.advance(timedelta(minutes=1))
    verdict = checkpoints.verify_log(session)
    assert verdict.chain.ok and not verdict.ok
    assert verdict.anchoring_stopped is not None and "anchoring stopped" in verdict.anchoring_stopped
    code, output = _verify_cli()
    assert code == 1 and "anchoring stopped" in json.loads(output)["anchoring_stopped"]


def test_cutting_what_was_written_while_the_job_was_stopped_fails_verify_at_the_gap(
    session: Session, backend_name: str, anchor: Anchor
) -> None:
    """The tester's sequence: stop the job through the database, let entries accumulate, delete all
    after the last checkpoint with the guards off, reset the head, re-enable the job."""
    from backend.core.jobs import JobSchedule, run_due_jobs

    _append(session, 3)
    before = _checkpoint(session)
    _stop_anchoring_through_the_database(session)
    for _ in range(6):  # an hour of entries nothing anchors
        _append(session, 2)
        clock.advance(INTERVAL)
        run_due_jobs()
    assert len(_names(anchor.directory)) == 1
    third = session.exec(select(AuditEntry).where(col(AuditEntry.id) == 3)).one()
    _as_insider(session, backend_name, [
        ("DELETE FROM audit_entry WHERE id > 3", {}),
        ("UPDATE audit_chain_head SET last_entry_id = 3, last_hash = :h", {"h": third.entry_hash}),
    ])
    schedule = session.get(JobSchedule, "audit.checkpoint")
    assert schedule is not None
    schedule.next_run_at, schedule.locked_until = clock.now(), None  # the job re-enabled
    session.commit()
    assert "audit.checkpoint" in run_due_jobs()
    assert len(_names(anchor.directory)) == 2  # the worker signs the cut chain's head
    _append(session, 2)
    clock.advance(INTERVAL)
    run_due_jobs()
    assert len(_names(anchor.directory)) == 3
    assert service.verify_chain(session).ok  # the hash chain alone cannot tell

    verdict = checkpoints.verify_log(session)
    assert not verdict.ok and verdict.anchoring_stopped is None  # the worker runs again
    first = verdict.first_contradicted
    assert first is not None and [p.name for p in verdict.problems] == [first.name]
    older, newer = _names(anchor.directory)[:2]
    assert first.name == newer and first.tree_size == 3
    assert older == checkpoints.checkpoint_name(before)
    assert older in first.reason and newer in first.reason and "gap" in first.reason
    code, output = _verify_cli()
    assert code == 1
    report = json.loads(output)["first_contradicted_checkpoint"]
    assert report["file"].endswith(newer) and older in report["reason"]


def test_checkpoints_named_by_tree_size_still_verify(session: Session, anchor: Anchor) -> None:
    """Checkpoints written before heartbeats (one file per tree size) stay valid, and the worker
    carries the series on from them."""
    key = checkpoints.parse_private_key(anchor.key_file.read_bytes())
    store = DirectoryStore(anchor.directory)
    previous: checkpoints.Checkpoint | None = None
    for n in (3, 2):
        _append(session, n)
        clock.advance(INTERVAL)
        size = service.verify_chain(session).entries_checked
        head = session.exec(select(AuditEntry).where(col(AuditEntry.id) == size)).one()
        previous = checkpoints.sign(key, tree_size=size, head_hash=head.entry_hash, signed_at=clock.now(),
                                    previous=previous.digest() if previous else None)
        store.append(checkpoints.file_name(size), previous.to_bytes())
    assert _names(anchor.directory) == ["00000000000000000003.json", "00000000000000000005.json"]
    verdict = checkpoints.verify_log(session)
    assert verdict.ok and verdict.newest == previous

    heartbeat = _checkpoint(session)  # the upgraded worker: a heartbeat linked to the old series
    assert heartbeat.previous == previous.digest()
    _append(session, 1)
    _checkpoint(session)
    assert _names(anchor.directory)[:2] == ["00000000000000000003.json", "00000000000000000005.json"]
    assert _names(anchor.directory)[2:] == [checkpoints.checkpoint_name(heartbeat),
                                             "00000000000000000006_20261130T014000000000Z.json"]
    verdict = checkpoints.verify_log(session)
    assert verdict.ok, verdict.problems
    assert verdict.checkpoints_checked == 4 and verdict.newest is not None and verdict.newest.tree_size == 6
    assert _verify_cli()[0] == 0


def test_in_production_an_old_chain_without_any_checkpoint_fails_verify(
    session: Session, anchor: Anchor, monkeypatch: pytest.MonkeyPatch
) -> None:
    _append(session, 2)
    monkeypatch.setenv("HULEI_PRODUCTION", "true")
    get_settings.cache_clear()
    assert checkpoints.verify_log(session).ok  # a new log: the first checkpoint is not due yet
    clock.advance(5 * INTERVAL)
    verdict = checkpoints.verify_log(session)
    assert not verdict.ok and verdict.anchoring_stopped is not None
    assert "no checkpoint" in verdict.anchoring_stopped
    monkeypatch.setenv("HULEI_PRODUCTION", "false")
    get_settings.cache_clear()
    assert checkpoints.verify_log(session).ok  # development may run without a key at all


def test_the_worker_refuses_a_key_whose_public_key_is_not_listed(
    session: Session, anchor: Anchor, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = checkpoints.public_key_text(Ed25519PrivateKey.generate().public_key())
    monkeypatch.setenv("HULEI_AUDIT_CHECKPOINT_PUBLIC_KEYS", other)
    get_settings.cache_clear()
    _append(session, 2)
    with pytest.raises(CheckpointError, match="HULEI_AUDIT_CHECKPOINT_PUBLIC_KEYS"):
        write_checkpoint(session)
    session.rollback()
    assert not anchor.directory.exists()  # nothing written that verify would reject forever
    result = CliRunner().invoke(app, ["worker", "--once"])
    assert result.exit_code == 1
    assert "refusing to start the worker" in result.output
    assert "HULEI_AUDIT_CHECKPOINT_PUBLIC_KEYS" in result.output and anchor.public_key in result.output
    assert not anchor.directory.exists()

    monkeypatch.setenv("HULEI_AUDIT_CHECKPOINT_PUBLIC_KEYS", f"{other},{anchor.public_key}")
    get_settings.cache_clear()
    assert write_checkpoint(session) is not None
