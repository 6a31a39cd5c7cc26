"""A simulated Hulei phone for sync tests against real server processes (scripts/cluster.py).

It behaves as the contract in mobile_api_spec/sync.md tells a phone to: it signs in over HTTP,
spreads its requests over every API process it is given, retries connection errors, 5xx and 503
with growing waits, and keeps a local store that applies `/sync/pull` pages exactly as documented:
records replaced by key in page order, `removal` items deleting the local copy, `reset: true`
dropping everything first, the cursor stored after every page. Push answers replace the local copy
of registry records (created, updated, duplicate, and the server's copy on a conflict).

Lost answers are simulated three ways (`Loss`): the answer arrived and was dropped, the phone gave
up waiting while the server was still working, or the app re-serialised the record before resending
it. Each resends the same client UUIDs through the next API process.

Problems the phone meets (an unexpected status, a 5xx) go to a shared `Journal` naming the phone,
so a test can report every one of them rather than the first.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import httpx

from backend.accounts.models import User
from tests.factories import TEST_PASSWORD

# The kinds a pull delivers and how the phone keys each (sync.md "Pull").
PULL_KINDS = ("household", "person", "visit", "template", "assignment", "case", "service", "activity")
# Push item fields a registry edit may carry; everything else in a pulled record is the server's.
HOUSEHOLD_FIELDS = ("address", "head_name", "contact", "lon", "lat", "note")
PERSON_FIELDS = ("role", "name", "sex", "birth_date", "hukou_place", "residence", "in_school", "contact",
                 "categories", "groups", "signs", "task_force", "assistance", "key_minor", "vulnerable")
RETRY_ATTEMPTS = 8


def record_key(kind: str, record: dict[str, Any]) -> str:
    """The key a phone stores a pulled record under: uuid, client uuid, code + version, or id."""
    if kind in ("household", "person"):
        return str(record["uuid"])
    if kind in ("visit", "activity"):
        return str(record["client_uuid"])
    if kind == "template":
        return f"{record['code']}@{record['version']}"
    return str(record["id"])


@dataclass(frozen=True)
class Problem:
    """One thing a test found wrong: its class (for grouping), who met it, and the details."""

    kind: str  # e.g. "EXTRA household (vs database)", "ID NUMBER ERASED", "HTTP 5xx"
    who: str
    text: str

    def __str__(self) -> str:
        return f"[{self.who}] {self.kind}: {self.text}"


@dataclass
class Journal:
    """Problems and notable events from every thread of a scenario."""

    problems: list[Problem] = field(default_factory=list)
    notes: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def problem(self, who: str, kind: str, text: str) -> None:
        with self.lock:
            self.problems.append(Problem(kind, who, text))

    def note(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.notes[what] += n


@dataclass
class LocalStore:
    """What the phone holds: records per pulled kind, each keyed as `record_key` says."""

    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {k: {} for k in PULL_KINDS})
    unknown_kinds: Counter[str] = field(default_factory=Counter)
    removals_applied: int = 0
    removals_ignored: int = 0  # for records the phone did not hold: harmless by contract

    def clear(self) -> None:
        for table in self.records.values():
            table.clear()

    def put(self, kind: str, record: dict[str, Any]) -> None:
        self.records[kind][record_key(kind, record)] = record

    def remove(self, removal: dict[str, Any]) -> None:
        kind = str(removal.get("kind"))
        table = self.records.get(kind)
        if table is None:
            self.unknown_kinds[f"removal of {kind}"] += 1
            return
        key: str | None = None
        if kind in ("assignment", "case", "service") or removal.get("uuid") is None:
            wanted = removal.get("id")
            key = next((k for k, r in table.items() if r.get("id") == wanted), None)
        else:
            key = str(removal["uuid"])
        if key is not None and table.pop(key, None) is not None:
            self.removals_applied += 1
        else:
            self.removals_ignored += 1
        if kind == "household" and key is not None:
            # A household's visit history leaves with it (sync.md, "Removals").
            visits = self.records["visit"]
            for gone in [k for k, v in visits.items() if v.get("household_uuid") == key]:
                del visits[gone]

    def apply(self, item: dict[str, Any]) -> None:
        """One pulled item, as the contract says: replace by key, delete on removal, skip unknown kinds."""
        kind = item["kind"]
        if kind == "removal":
            self.remove(item["record"])
        elif kind in self.records:
            self.put(kind, item["record"])
        else:
            self.unknown_kinds[kind] += 1

    def members_of(self, household_id: int) -> list[dict[str, Any]]:
        return [p for p in self.records["person"].values() if p.get("household_id") == household_id]

    def household_by_id(self, household_id: int | None) -> dict[str, Any] | None:
        return next((h for h in self.records["household"].values() if h.get("id") == household_id), None)


class Loss(StrEnum):
    """How an answer to a push is lost before the phone resends the same client UUIDs."""

    none = "none"
    dropped = "dropped"  # the answer arrived and the phone lost it (app killed, 2G)
    timeout = "timeout"  # the phone stopped waiting while the server was still at work
    reserialised = "reserialised"  # dropped, and the app rebuilt the JSON from its database


def reserialise(item: dict[str, Any]) -> dict[str, Any]:
    """The same visit as another JSON encoder writes it: `Z` for +00:00, 10.0 for 10, explicit nulls."""
    if item["kind"] == "activity":  # every default spelt out, the device time in UTC
        data = {"note": None, "photos": [], "organiser_unit_id": None, **item["data"]}
        data["audience"] = {"students": 0, "parents": 0, "villagers": 0, "others": 0, **data.get("audience", {})}
        if data.get("device_time"):
            data["device_time"] = datetime.fromisoformat(str(data["device_time"])).astimezone(UTC).isoformat()
        return {**item, "data": data}
    if item["kind"] not in ("visit", "amendment"):
        return item
    data = dict(item["data"])
    stamp = datetime.fromisoformat(str(data["device_time"]))
    spec = "milliseconds" if stamp.microsecond % 1000 == 0 else "microseconds"  # the same instant, always
    data["device_time"] = stamp.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")
    if isinstance(data.get("gps"), dict):
        gps = dict(data["gps"])
        accuracy = gps.get("accuracy_m")
        if isinstance(accuracy, float) and accuracy.is_integer():
            gps["accuracy_m"] = int(accuracy)
        elif isinstance(accuracy, int):
            gps["accuracy_m"] = float(accuracy)
        data["gps"] = gps
    data.setdefault("note", None)
    return {**item, "data": data}


class Phone:
    """One signed-in installation: an HTTP client per API process and a local store."""

    def __init__(self, name: str, user: User, urls: list[str], journal: Journal, *, limit: int,
                 password: str = TEST_PASSWORD, first_api: int = 0) -> None:
        assert urls, "a phone needs at least one API process"
        self.name, self.user, self.journal, self.limit = name, user, journal, limit
        self.password = password
        self.store = LocalStore()
        self.cursor: str | None = None
        self.pages = 0
        self.resets = 0
        self._clients = [httpx.Client(base_url=u, timeout=30, trust_env=False) for u in urls]
        self._turn = itertools.count(first_api)
        self._headers: dict[str, str] = {"X-Device-Id": f"sim-{name}", "Accept-Language": "en"}

    # ------------------------------------------------------------------ transport

    def close(self) -> None:
        for c in self._clients:
            c.close()

    def _client(self) -> httpx.Client:
        return self._clients[next(self._turn) % len(self._clients)]

    def sign_in(self) -> None:
        resp = self._client().post("/api/v1/auth/login", json={"phone": self.user.phone, "password": self.password})
        assert resp.status_code == 200, f"{self.name} cannot sign in: {resp.status_code} {resp.text}"
        self._headers["Authorization"] = f"Bearer {resp.json()['access_token']}"

    def call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
             read_timeout: float | None = None) -> httpx.Response | None:
        """One request as a phone sends it: retried on connection errors, 5xx and 503 with growing
        waits (each attempt through the next API process). None when every attempt failed."""
        wait = 0.05
        for attempt in range(RETRY_ATTEMPTS):
            impatient = bool(read_timeout) and attempt == 0
            timeout = httpx.Timeout(30.0, read=read_timeout) if impatient else httpx.Timeout(30.0)
            try:
                resp = self._client().request(method, path, json=json, params=params, headers=self._headers,
                                              timeout=timeout)
            except httpx.TimeoutException:
                if impatient:
                    self.journal.note("push answers given up on (timeout) and resent")
                    continue  # resend at once: the server may still be writing the first one
                self.journal.note(f"{method} timeouts")
                time.sleep(wait)
                wait = min(wait * 2, 1.0)
                continue
            except httpx.TransportError as exc:
                self.journal.note(f"{method} connection errors")
                if attempt == RETRY_ATTEMPTS - 1:
                    self.journal.problem(self.name, "NO CONNECTION", f"{method} {path} failed every time: {exc!r}")
                time.sleep(wait)
                wait = min(wait * 2, 1.0)
                continue
            if resp.status_code == 503:
                self.journal.note(f"503 {resp.headers.get('content-type', '')[:30]} answers retried")
                time.sleep(min(float(resp.headers.get("retry-after", "1") or 1), 1.0))
                continue
            if resp.status_code >= 500:
                self.journal.problem(self.name, "HTTP 5xx", f"{method} {path} answered {resp.status_code}: "
                                                                f"{resp.text[:300]}")
                time.sleep(wait)
                wait = min(wait * 2, 1.0)
                continue
            return resp
        return None

    # ------------------------------------------------------------------ pull

    def pull_page(self, store: LocalStore, cursor: str | None, limit: int) -> tuple[str | None, bool]:
        """One page applied to `store`; returns the cursor to keep and whether to call again."""
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        resp = self.call("GET", "/api/v1/sync/pull", params=params)
        if resp is None or resp.status_code != 200:
            status = resp.status_code if resp is not None else "no answer"
            text = resp.text[:300] if resp is not None else ""
            self.journal.problem(self.name, "PULL FAILED", f"answered {status}: {text}")
            return cursor, False
        body = resp.json()
        if body.get("reset"):
            self.resets += 1
            store.clear()  # "drop everything and rebuild from this page on"
        for item in body["items"]:
            store.apply(item)
        return body["next_cursor"], bool(body["has_more"])

    def pull(self, *, lose_first_page: bool = False) -> None:
        """Catch up from the stored cursor in pages of `limit`, storing the cursor after each page."""
        if lose_first_page:
            # The answer was lost: nothing applied, nothing stored; the same cursor is asked again.
            self.call("GET", "/api/v1/sync/pull", params={"limit": self.limit, **(
                {"cursor": self.cursor} if self.cursor else {})})
            self.journal.note("pull answers lost and asked again")
        for _ in range(10_000):
            self.cursor, more = self.pull_page(self.store, self.cursor, self.limit)
            self.pages += 1
            if not more:
                return
        self.journal.problem(self.name, "PULL FAILED", "never reached has_more=false in 10,000 pages")

    def pull_from_scratch(self, limit: int = 500) -> LocalStore:
        """What a newly installed phone of this user would hold now (the phone's own store untouched)."""
        fresh = LocalStore()
        cursor: str | None = None
        for _ in range(10_000):
            cursor, more = self.pull_page(fresh, cursor, limit)
            if not more:
                return fresh
        self.journal.problem(self.name, "PULL FAILED", "a from-scratch pull never reached has_more=false")
        return fresh

    # ------------------------------------------------------------------ push

    def push(self, items: list[dict[str, Any]], loss: Loss = Loss.none) -> list[dict[str, Any]] | None:
        """Push a batch (losing the first answer as `loss` says); answers the results of the answer
        the phone finally read, after storing registry records from it. None if no answer came."""
        body = {"items": items}
        if loss is Loss.timeout:
            resp = self.call("POST", "/api/v1/sync/push", json=body, read_timeout=0.005)
        else:
            if loss is not Loss.none:
                self.call("POST", "/api/v1/sync/push", json=body)  # reached the server; answer lost
                self.journal.note(f"push answers lost ({loss.value}) and resent")
            resend = {"items": [reserialise(i) for i in items]} if loss is Loss.reserialised else body
            resp = self.call("POST", "/api/v1/sync/push", json=resend)
        if resp is None or resp.status_code != 200:
            status = resp.status_code if resp is not None else "no answer"
            text = resp.text[:300] if resp is not None else ""
            self.journal.problem(self.name, "PUSH FAILED", f"a push of {len(items)} items answered {status}: {text}")
            return None
        results: list[dict[str, Any]] = resp.json()["results"]
        if [r["index"] for r in results] != list(range(len(items))):
            self.journal.problem(self.name, "PUSH FAILED", f"{len(results)} results for {len(items)} items")
            return None
        for item, result in zip(items, results, strict=True):
            if item["kind"] in ("household", "person") and result.get("record") is not None:
                # created/updated/duplicate: the stored copy; conflict: the server's copy to re-edit on.
                self.store.put(item["kind"], result["record"])
        return results

    # ------------------------------------------------------------------ edits as an app makes them

    def household_edit(self, record: dict[str, Any], changes: dict[str, Any], *, send_grid: bool) -> dict[str, Any]:
        """An edit that sends back every field the phone holds for the household, on its version."""
        data = {k: record.get(k) for k in HOUSEHOLD_FIELDS} | changes
        if send_grid:
            data["grid_id"] = record["org_unit_id"]
        return {"kind": "household", "client_uuid": record["uuid"], "base_version": record["version"], "data": data}

    def person_edit(self, record: dict[str, Any], changes: dict[str, Any], *, id_number: str) -> dict[str, Any] | None:
        """An edit sending back everything the phone holds for the person. The phone never holds the
        full ID number: `id_number` says what it sends instead: "absent", "null" or "masked" (the
        masked form it was given). None when the phone does not hold the person's household."""
        data: dict[str, Any] = {k: record.get(k) for k in PERSON_FIELDS}
        if record.get("household_id") is not None:
            home = self.store.household_by_id(record["household_id"])
            if home is None:
                return None
            data["household_uuid"] = home["uuid"]
        if record.get("role") == "child":
            data["guardians"] = [{"uuid": g["uuid"], "relation": g.get("relation")}
                                 for g in record.get("guardians") or []]
        if id_number == "null":
            data["id_number"] = None
        elif id_number == "masked" and record.get("id_number_masked"):
            data["id_number"] = record["id_number_masked"]
        data |= changes
        return {"kind": "person", "client_uuid": record["uuid"], "base_version": record["version"], "data": data}
