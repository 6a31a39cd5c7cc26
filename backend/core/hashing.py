"""At most a memory budget's worth of argon2 computations at once in one API process.

Each argon2id hash or verification takes `password_hash_memory_kib` (64 MiB by default) for its
duration. Sign-ins run on the thread pool with no other bound than the in-flight cap (64), so 48 wrong
sign-ins at once once took a process from 436 MB to 2.2 GB against a 1 GiB pod limit. Every hash
and verification therefore takes one of `budget // memory cost` slots first (at least one); a caller
that finds none within `password_hash_wait_seconds` is answered 503 `server-busy` with Retry-After,
its request not looked at (nothing counted, nothing stored).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from backend.core.config import get_settings
from backend.core.overload import ServerBusy


def slots_for(budget_mib: int, memory_kib: int) -> int:
    """How many argon2 computations of `memory_kib` fit in `budget_mib` (at least one)."""
    return max(1, (budget_mib * 1024) // max(1, memory_kib))


class HashingGate:
    """A bounded semaphore for argon2 work; its counters are for metrics and tests."""

    def __init__(self, slots: int, wait_seconds: float) -> None:
        self.slots = slots
        self.wait_seconds = wait_seconds
        self._semaphore = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0  # the most computations ever running at once
        self.refused = 0  # callers turned away with 503

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the body, waiting at most `wait_seconds` for it; else ServerBusy."""
        if not self._semaphore.acquire(timeout=self.wait_seconds):
            with self._lock:
                self.refused += 1
            retry = max(1, math.ceil(self.wait_seconds))
            raise ServerBusy(headers={"Retry-After": str(retry)}, retry_after=retry)
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1
            self._semaphore.release()


@lru_cache(maxsize=4)
def _gate_for(slots: int, wait_seconds: float) -> HashingGate:
    return HashingGate(slots, wait_seconds)


def gate() -> HashingGate:
    """This process's gate for the configured cost and budget."""
    s = get_settings()
    return _gate_for(slots_for(s.password_hash_memory_budget_mib, s.password_hash_memory_kib),
                     s.password_hash_wait_seconds)
