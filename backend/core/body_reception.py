"""Request bodies are received in full, within time bounds, before the request is admitted.

Why: the cap of requests in flight (backend/core/overload.py) protects the thread pool, but a
request took its place as soon as its headers arrived. 64 connections announcing a megabyte and
sending a byte every five seconds held every place, and everyone else got 503 `server-busy` for as
long as they kept trickling. Here a body is read first, and only a request whose body has arrived
goes on to the cap and the application (which sees the same body, replayed). Reading is bounded:

- in time, by Apache mod_reqtimeout's rule: `request_body_timeout_seconds` for the body, one more
  second for every `request_body_min_rate` bytes received, and never more than
  `request_body_idle_seconds` without a byte; else 408 `request-timeout`. 500 B/s is a tenth of what
  a phone on 2G sends; a megabyte sent a byte every five seconds is cut after about 20 s. However
  fast it flows, a body never takes more than `request_body_max_seconds` in all (300 s: a 1 MB photo
  chunk on 2G takes about 200 s): 256 bodies of 21 MB sent at 600 B/s, just over the rate, held
  every place for ten hours;
- in size, by route (`body_limits`): only photo uploads and spreadsheet imports may send large
  bodies (`Settings.max_body_bytes`, the largest legitimate); every other route's body is bounded
  by what a gzip body may expand to (`request_max_decompressed_bytes`, 16 MiB; a push of 500 records
  is well under 2 MB). A Content-Length over the route's bound is 413 `payload-too-large` before a
  byte is read, and so is a chunked body once it passes it;
- in number: at most `request_body_receptions_per_client` bodies from one client address at once
  (429 `too-many-requests` beyond, with Retry-After: that client waits, nobody else does) and
  `request_body_receptions_max` in all (503 `server-busy`, Retry-After: 1);
- in memory: the first 256 KiB of a body are kept in memory, the rest in a temporary file, so
  the bodies being received cost at most 256 KiB each.

Refusals close the connection (`Connection: close`): the rest of the body is never read.
Requests without a body (GET, HEAD, DELETE without one) and the probes pass straight through.
The client address is the one uvicorn settled on, the real client's behind a trusted proxy
(`HULEI_FORWARDED_ALLOW_IPS`).
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

import anyio
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.errors import DomainError, PayloadTooLarge, TooManyRequests, problem_response
from backend.core.overload import EXEMPT_PATHS, ServerBusy

if TYPE_CHECKING:
    from backend.core.config import Settings

MEMORY_PER_BODY = 256 * 1024
_REPLAY_BLOCK = 64 * 1024
# The routes that take large bodies: photo uploads (PUT /api/v1/media/{uuid}, whole or in chunks) and
# spreadsheet imports (POST /api/v1/ledgers/{annex}/import, POST /api/v1/venues/import).
LARGE_BODY_PREFIXES = ("/api/v1/media/", "/api/v1/ledgers/", "/api/v1/venues/import")


def body_limits(settings: Settings) -> list[tuple[str, int]]:
    """Path prefixes and the longest body each may send, first match wins; "" is every other route."""
    large = settings.max_body_bytes()
    small = min(large, settings.request_max_decompressed_bytes)
    return [*((prefix, large) for prefix in LARGE_BODY_PREFIXES), ("", small)]


class RequestTimeout(DomainError):
    code = "request-timeout"
    status = 408
    title_zh = "请求内容发送过慢，已断开"
    title_en = "The request body arrived too slowly"


class _Refused(Exception):
    def __init__(self, problem: DomainError) -> None:
        self.problem = problem


class _Body:
    """One request's body: in memory up to MEMORY_PER_BODY, the rest in a temporary file."""

    def __init__(self, limiter: anyio.CapacityLimiter) -> None:
        self.limiter = limiter
        self.parts: list[bytes] = []
        self.size = 0
        self.file: IO[bytes] | None = None

    async def add(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        if self.file is None and self.size <= MEMORY_PER_BODY:
            self.parts.append(chunk)
            return
        if self.file is None:
            self.file = await anyio.to_thread.run_sync(tempfile.TemporaryFile, limiter=self.limiter)
            self.parts.append(chunk)
            held, self.parts = b"".join(self.parts), []
            await anyio.to_thread.run_sync(self.file.write, held, limiter=self.limiter)
            return
        await anyio.to_thread.run_sync(self.file.write, chunk, limiter=self.limiter)

    def replay(self, receive: Receive) -> Receive:
        """A receive that gives this body, then whatever the connection says next (disconnect)."""
        left = self.size
        started = False

        async def _receive() -> Message:
            nonlocal left, started
            if self.file is None:
                if not started:
                    started = True
                    return {"type": "http.request", "body": b"".join(self.parts), "more_body": False}
                return await receive()
            if not started:
                started = True
                await anyio.to_thread.run_sync(self.file.seek, 0, limiter=self.limiter)
            if left <= 0:
                return await receive()
            block = await anyio.to_thread.run_sync(self.file.read, _REPLAY_BLOCK, limiter=self.limiter)
            left = 0 if not block else left - len(block)
            return {"type": "http.request", "body": block, "more_body": left > 0}

        return _receive

    def close(self) -> None:
        self.parts = []
        if self.file is not None:
            self.file.close()


def _too_large(limit: int) -> PayloadTooLarge:
    mib = limit // (1024 * 1024)
    return PayloadTooLarge(
        f"请求内容超过上限 {limit} 字节（{mib} MB），请分批上传",
        f"The request body is longer than {limit} bytes ({mib} MB); send less at once",
        limit_bytes=limit,
    )


class BodyReception:
    """ASGI middleware: receive each request body in full, within bounds, before the app (module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: Sequence[tuple[str, int]],
        timeout: float,
        min_rate: int,
        idle: float,
        max_seconds: float,
        per_client: int,
        total: int,
    ) -> None:
        self.app = app
        self.limits = tuple(limits)
        self.timeout = timeout
        self.max_seconds = max_seconds
        self.min_rate = min_rate
        self.idle = idle
        self.per_client = per_client
        self.total = total
        self.receiving: Counter[str] = Counter()
        self.receiving_total = 0
        # Temporary-file writes run on threads of their own, never on the pool requests need.
        self.file_io = anyio.CapacityLimiter(4)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        announced = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = int(announced) if announced is not None and announced.strip().isdigit() else None
        if not chunked and not length:
            await self.app(scope, receive, send)  # no body
            return
        max_bytes = self._limit(scope["path"])
        if length is not None and length > max_bytes:
            await self._refuse(_too_large(max_bytes), scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else ""
        if self.receiving[client] >= self.per_client:
            problem: DomainError = TooManyRequests(
                f"同一地址同时上传的请求过多（上限 {self.per_client} 个），请稍后重试",
                f"Too many request bodies from one address at once (at most {self.per_client}); retry shortly",
                headers={"Retry-After": "5"},
            )
            await self._refuse(problem, scope, receive, send)
            return
        if self.receiving_total >= self.total:
            await self._refuse(ServerBusy(headers={"Retry-After": "1"}), scope, receive, send)
            return
        body = _Body(self.file_io)
        self.receiving[client] += 1
        self.receiving_total += 1
        try:
            complete = await self._read(body, receive, max_bytes)
        except _Refused as refused:
            body.close()
            await self._refuse(refused.problem, scope, receive, send)
            return
        except BaseException:
            body.close()
            raise
        finally:
            self.receiving_total -= 1
            self.receiving[client] -= 1
            if not self.receiving[client]:
                del self.receiving[client]
        if not complete:  # the client went away mid-body: nobody to answer
            body.close()
            return
        try:
            await self.app(scope, body.replay(receive), send)
        finally:
            body.close()

    def _limit(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return min(limit for _, limit in self.limits)

    async def _read(self, body: _Body, receive: Receive, max_bytes: int) -> bool:
        """Receive the whole body into `body`; False if the client disconnected first."""
        started = time.monotonic()
        while True:
            deadline = started + min(self.timeout + body.size / self.min_rate, self.max_seconds)
            wait = min(self.idle, deadline - time.monotonic())
            message: Message | None = None
            if wait > 0:
                with anyio.move_on_after(wait):
                    message = await receive()
            if message is None:
                raise _Refused(RequestTimeout(
                    "请求内容发送过慢或中断，请在网络好时重试",
                    f"The body did not arrive in time ({body.size} bytes received); retry on a better connection",
                    received_bytes=body.size,
                ))
            if message["type"] == "http.disconnect":
                return False
            await body.add(message.get("body", b""))
            if body.size > max_bytes:
                raise _Refused(_too_large(max_bytes))
            if not message.get("more_body", False):
                return True

    @staticmethod
    async def _refuse(problem: DomainError, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(problem, Request(scope), headers={"Connection": "close"})
        await response(scope, receive, send)
