"""Signed checkpoints of the audit chain, kept where the database cannot write (签名检查点).

The hash chain alone proves nothing against someone who can write the database: deleting the newest
entries and resetting the head, or rewriting an entry and recomputing every later hash, leaves a
chain that verifies. Like a certificate-transparency log's signed tree head (RFC 6962) or SQL
Server Ledger's digests in immutable storage, the worker (job `audit.checkpoint`) signs the chain's
head with an Ed25519 key that lives outside the database and appends the signed statement to a
directory or a bucket. `verify_log` then holds the chain to every checkpoint: a checkpoint of N
entries with head H says that the first N entries hashed to H, so a removed tail or a rewritten
entry contradicts every checkpoint written after it.

The worker signs at every interval, whether the chain has grown or not (a heartbeat of the same
head): otherwise an insider could stop the job through the database, cut everything written since
the last checkpoint and re-enable the job, and the log would look merely idle. With heartbeats,
silence always means anchoring stopped: verify fails when two consecutive checkpoints were signed
further apart than the staleness bound, or when the newest is older than it.

A checkpoint file (`00000000000000000042_20261130T040000000000Z.json`, named by its tree size and
signed time so names sort in signing order; never overwritten). Files written before heartbeats
are named by tree size alone (`00000000000000000042.json`) and still verify; they sort before any
later file of the same size (`.` < `_`).

    {"checkpoint": {"head_hash": ..., "key_id": ..., "log": "hulei-audit", "previous": ...,
                    "signed_at": "2026-11-30T04:00:00.000000+00:00", "tree_size": 42, "version": 1},
     "signature": base64(Ed25519(b"hulei-audit-checkpoint\\n" + canonical JSON of "checkpoint"))}

`previous` is the SHA-256 of the previous checkpoint's signed bytes (null for the first), so a
checkpoint removed from the middle of the series is noticed too. The canonical JSON has sorted
keys, no spaces and ASCII only. The key id is the first 16 hex digits of SHA-256 of the raw public
key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlmodel import Session, col

from backend.audit.models import GENESIS_HASH, AuditChainHead, AuditEntry
from backend.audit.service import ChainVerdict, entry_digest, verify_chain
from backend.core import clock
from backend.core.config import Settings, get_settings

log = logging.getLogger(__name__)

LOG_NAME = "hulei-audit"
FORMAT_VERSION = 1
SIGNING_CONTEXT = b"hulei-audit-checkpoint\n"
SUFFIX = ".json"


class CheckpointError(RuntimeError):
    """The checkpoint job cannot (or must not) sign: no key in production, or the chain contradicts
    the newest checkpoint."""


class CheckpointExists(CheckpointError):
    """A checkpoint of that tree size is already stored; checkpoints are never overwritten."""


# --- keys -------------------------------------------------------------------------------------------

def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 of the raw public key."""
    return hashlib.sha256(raw_public_key(key)).hexdigest()[:16]


def public_key_text(key: Ed25519PublicKey) -> str:
    """The form HULEI_AUDIT_CHECKPOINT_PUBLIC_KEYS lists: the raw 32 bytes in base64."""
    return base64.b64encode(raw_public_key(key)).decode()


def parse_private_key(data: bytes) -> Ed25519PrivateKey:
    """A PKCS#8 PEM Ed25519 key, or the raw 32-byte seed in base64."""
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        key = serialization.load_pem_private_key(text, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the audit checkpoint key is not an Ed25519 key")
        return key
    try:
        seed = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError("the audit checkpoint key is neither PEM nor base64") from exc
    if len(seed) != 32:
        raise ValueError("a raw Ed25519 key is 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def parse_public_keys(text: str) -> dict[str, Ed25519PublicKey]:
    """Comma-separated base64 raw public keys, by key id."""
    keys: dict[str, Ed25519PublicKey] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        raw = base64.b64decode(part, validate=True)
        if len(raw) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        key = Ed25519PublicKey.from_public_bytes(raw)
        keys[key_id(key)] = key
    return keys


def load_signing_key(settings: Settings) -> Ed25519PrivateKey | None:
    """The worker's private key, or None when none is configured (a configured but unreadable file
    is an error)."""
    if settings.audit_checkpoint_key_file is None:
        return None
    return parse_private_key(Path(settings.audit_checkpoint_key_file).read_bytes())


def trusted_keys(settings: Settings) -> dict[str, Ed25519PublicKey]:
    """The public keys checkpoints are verified with: those configured, plus the signing key's own."""
    keys = parse_public_keys(settings.audit_checkpoint_public_keys)
    private = load_signing_key(settings)
    if private is not None:
        keys.setdefault(key_id(private.public_key()), private.public_key())
    return keys


def generate_key_file(path: Path) -> Ed25519PublicKey:
    """Write a new private key (PKCS#8 PEM, mode 0600, never over an existing file); return its public key."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return key.public_key()


def require_listed(settings: Settings, key: Ed25519PrivateKey) -> None:
    """When HULEI_AUDIT_CHECKPOINT_PUBLIC_KEYS is set, the signing key's public key must be in it:
    a checkpoint signed with any other key is rejected by every `hulei audit verify`, and checkpoints
    are never replaced, so signing it would leave a permanent false alarm in append-only storage."""
    listed = parse_public_keys(settings.audit_checkpoint_public_keys)
    public = key.public_key()
    if listed and key_id(public) not in listed:
        raise CheckpointError(
            f"the audit checkpoint signing key (HULEI_AUDIT_CHECKPOINT_KEY_FILE, key id {key_id(public)}, public key "
            f"{public_key_text(public)}) is not listed in HULEI_AUDIT_CHECKPOINT_PUBLIC_KEYS, so `hulei audit "
            "verify` would reject every checkpoint it signs; mount the right key, or add its public key to the "
            "list wherever verify runs (infra/README.md, \"Audit checkpoints\")")


def require_signing_key(settings: Settings) -> None:
    """The worker refuses to start without a readable signing key in production (the checkpoint job
    would have nothing to sign with, and the log would go unanchored unnoticed), and anywhere with a
    key whose public key is missing from a configured HULEI_AUDIT_CHECKPOINT_PUBLIC_KEYS."""
    if settings.audit_checkpoint_key_file is None:
        if settings.production:
            raise CheckpointError("HULEI_AUDIT_CHECKPOINT_KEY_FILE must be set in production "
                                  "(the audit checkpoint signing key; see infra/README.md)")
        return
    key = load_signing_key(settings)
    if key is not None:
        require_listed(settings, key)


# --- the signed statement ---------------------------------------------------------------------------

def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, ensure_ascii=True, separators=(",", ":")).encode()


def file_name(tree_size: int) -> str:
    """The name checkpoints had before heartbeats (one per tree size); still read and verified."""
    return f"{tree_size:020d}{SUFFIX}"


def checkpoint_name(checkpoint: Checkpoint) -> str:
    """The name a checkpoint is stored under: tree size, then signed time (UTC, microseconds)."""
    return f"{checkpoint.tree_size:020d}_{clock.as_utc(checkpoint.signed_at):%Y%m%dT%H%M%S%fZ}{SUFFIX}"


def _name_matches(name: str, checkpoint: Checkpoint) -> bool:
    return name in (checkpoint_name(checkpoint), file_name(checkpoint.tree_size))


@dataclass(frozen=True)
class Checkpoint:
    """One signed statement: after `tree_size` entries the chain's hash was `head_hash`."""

    tree_size: int
    head_hash: str
    signed_at: datetime
    key_id: str
    previous: str | None
    signature: bytes

    def body(self) -> dict[str, Any]:
        signed_at = clock.as_utc(self.signed_at).isoformat(timespec="microseconds")
        return {"version": FORMAT_VERSION, "log": LOG_NAME, "tree_size": self.tree_size,
                "head_hash": self.head_hash, "signed_at": signed_at, "key_id": self.key_id, "previous": self.previous}

    def message(self) -> bytes:
        """The bytes the signature covers."""
        return SIGNING_CONTEXT + _canonical(self.body())

    def digest(self) -> str:
        """What the next checkpoint names as `previous`."""
        return hashlib.sha256(self.message()).hexdigest()

    def to_bytes(self) -> bytes:
        document = {"checkpoint": self.body(), "signature": base64.b64encode(self.signature).decode()}
        return json.dumps(document, sort_keys=True, indent=1).encode() + b"\n"

    def signature_problem(self, keys: dict[str, Ed25519PublicKey]) -> str | None:
        """None when the signature verifies under the trusted key it names."""
        key = keys.get(self.key_id)
        if key is None:
            return f"signed with key {self.key_id}, which is not a trusted audit checkpoint key"
        try:
            key.verify(self.signature, self.message())
        except InvalidSignature:
            return f"the signature does not verify under key {self.key_id}: the checkpoint was forged or altered"
        return None


def sign(key: Ed25519PrivateKey, *, tree_size: int, head_hash: str, signed_at: datetime,
         previous: str | None) -> Checkpoint:
    unsigned = Checkpoint(tree_size, head_hash, clock.as_utc(signed_at), key_id(key.public_key()), previous, b"")
    return Checkpoint(unsigned.tree_size, unsigned.head_hash, unsigned.signed_at, unsigned.key_id, previous,
                      key.sign(unsigned.message()))


def parse(data: bytes) -> Checkpoint:
    """A stored checkpoint (ValueError when it is not one)."""
    try:
        document = json.loads(data)
        body = document["checkpoint"]
        if body.get("version") != FORMAT_VERSION or body.get("log") != LOG_NAME:
            raise ValueError("not a hulei audit checkpoint of a known version")
        previous = body["previous"]
        return Checkpoint(
            tree_size=int(body["tree_size"]),
            head_hash=str(body["head_hash"]),
            signed_at=clock.as_utc(datetime.fromisoformat(str(body["signed_at"]))),
            key_id=str(body["key_id"]),
            previous=None if previous is None else str(previous),
            signature=base64.b64decode(str(document["signature"]), validate=True),
        )
    except (KeyError, TypeError, AttributeError, binascii.Error, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable checkpoint: {exc}") from exc


# --- storage the database cannot write --------------------------------------------------------------

class CheckpointStore(ABC):
    """Append-only storage of checkpoint files."""

    location: str

    @abstractmethod
    def names(self) -> list[str]:
        """Every stored checkpoint's name, sorted (oldest first: tree size, then signed time)."""

    @abstractmethod
    def read(self, name: str) -> bytes:
        """The file's bytes."""

    @abstractmethod
    def append(self, name: str, data: bytes) -> None:
        """Store a new file; CheckpointExists if the name is taken (nothing is ever replaced)."""


class DirectoryStore(CheckpointStore):
    """Files in a directory (a volume of its own; see infra/README.md for making it append-only)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.location = str(self.root)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.name.endswith(SUFFIX) and not p.name.startswith("."))

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def append(self, name: str, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.root / name
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o444)
            try:
                os.link(tmp, target)  # atomic, and fails rather than replace an existing file
            except FileExistsError as exc:
                raise CheckpointExists(f"checkpoint {target} already exists; not overwritten") from exc
        finally:
            Path(tmp).unlink(missing_ok=True)
        dir_fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class BucketStore(CheckpointStore):
    """Objects under a prefix of an S3-compatible bucket (the media store's endpoint and credentials).
    Writes are conditional (If-None-Match: *), so an existing object is never replaced; give the
    bucket object lock in compliance mode so nobody can delete or overwrite one either."""

    def __init__(self, *, client: Any, bucket: str, prefix: str) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self.location = f"s3://{bucket}/{prefix}"

    def names(self) -> list[str]:
        found: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for obj in page.get("Contents", []):
                name = str(obj["Key"])[len(self.prefix):]
                if name.endswith(SUFFIX) and "/" not in name:
                    found.append(name)
        return sorted(found)

    def read(self, name: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read())

    def append(self, name: str, data: bytes) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=data,
                                   ContentType="application/json", IfNoneMatch="*")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise CheckpointExists(f"checkpoint {self.location}{name} already exists; not overwritten") from exc
            raise


def get_store(settings: Settings | None = None) -> CheckpointStore:
    """The configured checkpoint storage."""
    s = settings or get_settings()
    if s.audit_checkpoint_storage == "s3":
        from backend.media.storage import S3Storage

        client = S3Storage(endpoint=s.media_s3_endpoint, bucket=s.audit_checkpoint_s3_bucket,
                           access_key=s.media_s3_access_key, secret_key=s.media_s3_secret_key,
                           region=s.media_s3_region).client
        return BucketStore(client=client, bucket=s.audit_checkpoint_s3_bucket, prefix=s.audit_checkpoint_s3_prefix)
    return DirectoryStore(s.audit_checkpoint_dir)


def _latest(store: CheckpointStore) -> tuple[str, Checkpoint] | None:
    names = store.names()
    if not names:
        return None
    return names[-1], parse(store.read(names[-1]))


# --- the worker job ---------------------------------------------------------------------------------

def _hash_after(session: Session, *, start_size: int, start_hash: str, end_size: int, batch: int = 2000) -> str:
    """Walk entries start_size+1 .. end_size from a known hash; the hash after them (CheckpointError
    when a link or an entry's content does not hold)."""
    expected_prev, expected_id = start_hash, start_size + 1
    while expected_id <= end_size:
        rows = session.execute(
            select(AuditEntry).where(col(AuditEntry.id) >= expected_id, col(AuditEntry.id) <= end_size)
            .order_by(col(AuditEntry.id)).limit(batch)
        ).scalars().all()
        if not rows:
            raise CheckpointError(f"audit entry {expected_id} is missing")
        for entry in rows:
            if entry.id != expected_id or entry.prev_hash != expected_prev or entry_digest(entry) != entry.entry_hash:
                raise CheckpointError(f"audit entry {expected_id} does not extend the chain")
            expected_prev, expected_id = entry.entry_hash, expected_id + 1
        session.expunge_all()
    return expected_prev


def write_checkpoint(session: Session) -> Checkpoint | None:
    """Sign the chain's head and append it once the newest checkpoint is at least the interval old,
    whether the chain has grown or not (a heartbeat: an unbroken series of checkpoints shows the job
    never stopped). The new head must extend what the newest checkpoint signed: the job never
    anchors a chain that contradicts an earlier checkpoint (it fails, and keeps failing, until
    someone looks). An empty log with no checkpoint yet has nothing to sign."""
    settings = get_settings()
    key = load_signing_key(settings)
    if key is None:
        if settings.production:
            raise CheckpointError("HULEI_AUDIT_CHECKPOINT_KEY_FILE must be set in production")
        log.info("audit checkpoints: no signing key (HULEI_AUDIT_CHECKPOINT_KEY_FILE); skipped")
        return None
    require_listed(settings, key)
    store = get_store(settings)
    now = clock.now()
    size, head_hash = session.execute(
        select(col(AuditChainHead.last_entry_id), col(AuditChainHead.last_hash)).where(col(AuditChainHead.id) == 1)
    ).one()
    latest = _latest(store)
    start_size, start_hash, previous = 0, GENESIS_HASH, None
    if latest is not None:
        name, newest = latest
        problem = newest.signature_problem(trusted_keys(settings))
        if problem is not None:
            raise CheckpointError(f"the newest audit checkpoint {name}: {problem}")
        if size < newest.tree_size:
            raise CheckpointError(f"the audit chain holds {size} entries, fewer than checkpoint {name} signed")
        if size == newest.tree_size and head_hash != newest.head_hash:
            raise CheckpointError(f"the audit chain head contradicts checkpoint {name}")
        if now - newest.signed_at < timedelta(minutes=settings.audit_checkpoint_interval_minutes):
            return None
        start_size, start_hash, previous = newest.tree_size, newest.head_hash, newest.digest()
    elif size == 0:
        return None
    if _hash_after(session, start_size=start_size, start_hash=start_hash, end_size=size) != head_hash:
        raise CheckpointError("the audit chain head does not match its newest entry")
    session.rollback()  # only read: release the database (SQLite's write lock) before the storage write
    checkpoint = sign(key, tree_size=size, head_hash=head_hash, signed_at=now, previous=previous)
    store.append(checkpoint_name(checkpoint), checkpoint.to_bytes())
    log.info("audit checkpoint %s: %d entries, head %s", checkpoint_name(checkpoint), size, head_hash)
    return checkpoint


# --- verification -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckpointProblem:
    """A checkpoint the log contradicts (or that is itself not genuine)."""

    name: str
    tree_size: int | None
    signed_at: datetime | None
    reason: str


@dataclass(frozen=True)
class LogVerdict:
    """The chain walked and held to every checkpoint."""

    chain: ChainVerdict
    location: str
    checkpoints_checked: int
    problems: list[CheckpointProblem] = field(default_factory=list)
    newest: Checkpoint | None = None
    # Why the worker has evidently stopped anchoring (entries older than the bound left unanchored).
    anchoring_stopped: str | None = None

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.problems and self.anchoring_stopped is None

    @property
    def anchored(self) -> bool:
        """The checkpoints vouch for the chain: one at least, none contradicted, anchoring not stopped."""
        return self.newest is not None and not self.problems and self.anchoring_stopped is None

    @property
    def first_contradicted(self) -> CheckpointProblem | None:
        return self.problems[0] if self.problems else None

    @property
    def unanchored_entries(self) -> int:
        """Entries after the newest genuine checkpoint (anchored by the next one the worker writes)."""
        return max(0, self.chain.entries_checked - (self.newest.tree_size if self.newest else 0))


def verify_log(session: Session, *, store: CheckpointStore | None = None,
               keys: dict[str, Ed25519PublicKey] | None = None) -> LogVerdict:
    """Walk the hash chain (service.verify_chain) and hold it to every stored checkpoint, oldest
    first: each must be signed by a trusted key, name its predecessor, and agree with the chain's
    hash after its number of entries. Problems are listed in checkpoint order; the first is the
    earliest point the log contradicts."""
    settings = get_settings()
    store = store or get_store(settings)
    keys = trusted_keys(settings) if keys is None else keys
    problems: list[CheckpointProblem] = []
    genuine: list[tuple[str, Checkpoint]] = []
    previous: Checkpoint | None = None
    names = store.names()
    for name in names:
        try:
            cp = parse(store.read(name))
        except ValueError as exc:
            problems.append(CheckpointProblem(name, None, None, str(exc)))
            continue
        reason = cp.signature_problem(keys)
        if reason is None:
            if not _name_matches(name, cp):
                reason = (f"stored as {name} but signed for {cp.tree_size} entries at {cp.signed_at.isoformat()} "
                          f"({checkpoint_name(cp)})")
            elif cp.previous != (previous.digest() if previous else None):
                reason = ("the checkpoint before it is missing or altered" if previous else
                          "it names an earlier checkpoint, which is missing")
            previous = cp  # a forged file in between does not break the genuine series
        if reason is not None:
            problems.append(CheckpointProblem(name, cp.tree_size, cp.signed_at, reason))
        else:
            genuine.append((name, cp))
    chain = verify_chain(session, positions={cp.tree_size for _, cp in genuine})
    for name, cp in genuine:
        walked = chain.hashes_at.get(cp.tree_size)
        if walked is None:
            reason = (f"it covers {cp.tree_size} entries, but the log holds an intact chain of only "
                      f"{chain.entries_checked}: entries were removed or broken")
        elif walked != cp.head_hash:
            reason = (f"the log's hash after {cp.tree_size} entries differs from the signed one: entries "
                      f"up to {cp.tree_size} were rewritten, or removed and replaced")
        else:
            continue
        problems.append(CheckpointProblem(name, cp.tree_size, cp.signed_at, reason))
    problems.extend(_gaps(genuine, staleness_bound(settings)))
    order = {name: i for i, name in enumerate(names)}
    problems.sort(key=lambda p: order[p.name])  # stable: a checkpoint's own problem before its gap
    newest = genuine[-1][1] if genuine else None
    verdict = LogVerdict(chain=chain, location=store.location, checkpoints_checked=len(names), problems=problems,
                         newest=newest)
    stopped = _anchoring_stopped(session, settings, verdict, names_stored=bool(names))
    if stopped is None:
        return verdict
    return LogVerdict(chain=chain, location=store.location, checkpoints_checked=len(names), problems=problems,
                      newest=newest, anchoring_stopped=stopped)


def staleness_bound(settings: Settings) -> timedelta:
    """How long the worker may stay silent before verify says anchoring stopped (the newest
    checkpoint's age, and the gap between two consecutive ones): three intervals (the worker runs
    the job every minute and signs once the interval has passed) plus a grace for a worker restart."""
    return timedelta(minutes=3 * settings.audit_checkpoint_interval_minutes + settings.audit_checkpoint_grace_minutes)


def _gaps(genuine: list[tuple[str, Checkpoint]], bound: timedelta) -> list[CheckpointProblem]:
    """Consecutive checkpoints signed further apart than the bound: the worker signs every interval,
    grown or not, so such a gap means anchoring stopped in between, and whatever was written then
    may have been removed before the job came back."""
    found = []
    for (older_name, older), (name, cp) in pairwise(genuine):
        gap = cp.signed_at - older.signed_at
        if gap > bound:
            found.append(CheckpointProblem(name, cp.tree_size, cp.signed_at, (
                f"anchoring stopped: a gap of {int(gap.total_seconds() // 60)} minutes between checkpoint "
                f"{older_name} (signed at {older.signed_at.isoformat()}, {older.tree_size} entries) and checkpoint "
                f"{name} (signed at {cp.signed_at.isoformat()}, {cp.tree_size} entries), longer than {bound} (3 × "
                "HULEI_AUDIT_CHECKPOINT_INTERVAL_MINUTES + HULEI_AUDIT_CHECKPOINT_GRACE_MINUTES): entries written "
                "in between may have been removed before the checkpoint job ran again")))
    return found


def _anchoring_stopped(session: Session, settings: Settings, verdict: LogVerdict, *, names_stored: bool) -> str | None:
    """The worker's silence, measured by the verifier's own clock against the signed time in
    storage, never against anything the database says about the job (its job_schedule row can be
    pushed into the far future by whoever writes the database)."""
    now, bound = clock.now(), staleness_bound(settings)
    newest = verdict.newest
    if newest is not None:
        # The worker signs every interval, grown or not: an old newest checkpoint means it stopped,
        # even on an idle log (entries written meanwhile could have been cut again).
        waiting = verdict.unanchored_entries
        age = now - newest.signed_at
        if age > bound:
            unanchored = (f"{waiting} entries after it are still unanchored" if waiting else
                          "no heartbeat has been signed since")
            return (f"anchoring stopped: the newest checkpoint ({checkpoint_name(newest)}, {newest.tree_size} "
                    f"entries) was signed at {newest.signed_at.isoformat()}, {int(age.total_seconds() // 60)} minutes "
                    f"ago, and {unanchored}, longer than {bound} (3 × HULEI_AUDIT_CHECKPOINT_INTERVAL_MINUTES + "
                    "HULEI_AUDIT_CHECKPOINT_GRACE_MINUTES): the worker's checkpoint job is not running (check the "
                    "worker, its key and job_schedule 'audit.checkpoint')")
        return None
    if names_stored or not settings.production or verdict.chain.entries_checked == 0:
        return None  # stored but none genuine: already a problem; development may run without a key
    first = session.execute(select(col(AuditEntry.occurred_at)).where(col(AuditEntry.id) == 1)).scalar_one_or_none()
    if first is None or now - clock.as_utc(first) <= bound:
        return None
    return (f"anchoring stopped: no checkpoint in {verdict.location}, although the chain's first entry was "
            f"written at {clock.as_utc(first).isoformat()}, longer than {bound} ago: the worker's checkpoint job "
            "has never anchored this log (check the worker, its key and the checkpoint storage settings)")


def checkpoint_sources(settings: Settings | None = None) -> tuple[CheckpointStore, dict[str, Ed25519PublicKey]] | str:
    """The checkpoint storage and trusted keys, when this process can read both (the API's case:
    it may have them or not); otherwise why not, in words."""
    s = settings or get_settings()
    try:
        keys = parse_public_keys(s.audit_checkpoint_public_keys)
    except ValueError:
        return "HULEI_AUDIT_CHECKPOINT_PUBLIC_KEYS here is not a list of base64 Ed25519 public keys"
    with contextlib.suppress(OSError, ValueError):  # the private key is the worker's; listed keys count here
        keys = trusted_keys(s)
    if not keys:
        return "no audit checkpoint public keys are configured here (HULEI_AUDIT_CHECKPOINT_PUBLIC_KEYS)"
    store = get_store(s)
    if isinstance(store, DirectoryStore) and not store.root.is_dir():
        return f"the checkpoint directory {store.location} is not mounted here (HULEI_AUDIT_CHECKPOINT_DIR)"
    try:
        store.names()
    except Exception as exc:  # any storage failure (OSError, botocore's errors): reported, never a 500
        return f"the checkpoint storage {store.location} cannot be read here: {type(exc).__name__}"
    return store, keys
