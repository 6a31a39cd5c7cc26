"""What the vendor channels share: a cached auth token that is refreshed once when the vendor refuses
it, a thread pool that keeps one HTTP request per push in flight, and a fast form encoder for the
batch APIs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from yarl import URL

T = TypeVar("T")
R = TypeVar("R")


class CachedToken:
    """One vendor auth token shared by every sending thread.

    `fetch` asks the vendor for a token and answers (token, lifetime in seconds); it raises the
    vendor's own error when it cannot, and that error reaches the caller of `get`. The token is
    renewed `margin` seconds before it runs out (clock skew, time in flight), but never later than
    half its lifetime, so a short-lived token is not used to its last second. One thread fetches
    while the others wait, and a token the vendor refused is renewed only once however many threads
    saw it refused: each passes the refused token as `stale`, and only the first finds it still
    current."""

    def __init__(self, fetch: Callable[[], tuple[str, float]], *, margin: float) -> None:
        self._fetch = fetch
        self._margin = margin
        self._lock = threading.Lock()
        # Token and refresh time together, so a thread reading without the lock never pairs a new
        # token with an old deadline.
        self._current: tuple[str, float] | None = None

    def get(self, stale: str | None = None) -> str:
        """The current token, fetched first when there is none, it is near its end, or it is `stale`
        (the one the vendor has just refused)."""
        current = self._current
        if self._usable(current, stale):
            assert current is not None
            return current[0]
        with self._lock:
            current = self._current
            if not self._usable(current, stale):
                token, lifetime = self._fetch()
                current = self._current = (token, time.monotonic() + self._keep_for(lifetime))
            assert current is not None
            return current[0]

    def _keep_for(self, lifetime: float) -> float:
        return max(lifetime - min(self._margin, lifetime / 2), 0.0)

    @staticmethod
    def _usable(current: tuple[str, float] | None, stale: str | None) -> bool:
        return current is not None and current[0] != stale and time.monotonic() < current[1]


class SendPool:
    """One thread pool per provider, for the vendors that take one HTTP request per push: a batch
    costs about as long as its slowest few requests. Started at the first batch of two or more and
    kept for the provider's life (close() ends it)."""

    def __init__(self, name: str, workers: int) -> None:
        self._name = name
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def send_each(self, messages: Sequence[T], send_one: Callable[[T], R]) -> list[R]:
        """`send_one` of every message, concurrently, the results in the messages' order."""
        if not messages:
            return []
        if len(messages) == 1:  # no hand-off to another thread for a lone push
            return [send_one(messages[0])]
        return list(self._executor().map(send_one, messages))

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix=f"push-{self._name}")
            return self._pool


def tray_id(data: Mapping[str, str]) -> int:
    """The notification-bar id of a push (Huawei and Xiaomi `notify_id`, Honor and HarmonyOS NEXT
    `notifyId`): the notification's id, so a push sent again (its first attempt timed out but got
    through) replaces itself on the phone instead of showing twice, while different notifications
    stay side by side. The vendors take a 32-bit integer."""
    raw = data.get("notification_id", "")
    return int(raw) % 2_147_483_647 if raw.isdigit() else 0


FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def form_body(fields: Mapping[str, str]) -> bytes:
    """An application/x-www-form-urlencoded body of `fields`, in their order.

    yarl's quoter (C) instead of urllib's urlencode: for OPPO's 1,000-message batches the
    per-byte pure-Python quoting cost more than everything else the worker does for a batch. The
    encoding is the query encoding of RFC 3986 (`:` and `,` stay as they are, `&`, `=`, `+`, `%`
    and every non-ASCII byte are escaped, a space is `+`), which every form parser decodes to the
    same values as urlencode's."""
    return URL.build(query=dict(fields)).raw_query_string.encode("ascii")
