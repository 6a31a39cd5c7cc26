"""At most `api_max_in_flight` requests in flight per API process; more are told to retry (503).

Why a cap, and why below the thread pool: plain `def` handlers, sync dependencies and response
rendering run on anyio's thread pool, one thread at a time per request. A request that holds a
database lock (the audit chain head, taken by sign-ins, uploads and visits; SQLite's write lock)
still needs a thread after its handler returns, to render its response, before its transaction
commits and the lock is released. If every thread were taken by requests waiting for that lock,
nothing could finish until database timeouts broke the knot (seen under `make load`: 200 phones
signing in at once stalled each API process for minutes). With fewer requests in flight than
threads, a thread is always free for the one holding the lock.
"""

from __future__ import annotations

from anyio import to_thread
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.core.errors import ServiceUnavailable, problem_response

# Threads beyond the request cap: file I/O of responses and uploads also borrows pool threads.
THREAD_HEADROOM = 16
# Probes must answer while the process sheds load, or the orchestrator would take it away.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})


class ServerBusy(ServiceUnavailable):
    code = "server-busy"
    title_zh = "服务器繁忙，请稍后重试"
    title_en = "Server busy; try again shortly"


def size_thread_pool(max_in_flight: int) -> None:
    """Give the running event loop's thread pool room for every request in flight and then some."""
    limiter = to_thread.current_default_thread_limiter()
    limiter.total_tokens = max(int(limiter.total_tokens), max_in_flight + THREAD_HEADROOM)


class InFlightLimit:
    """ASGI middleware: answer 503 `server-busy` (Retry-After: 1) once `limit` requests are in flight."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0 or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            response = problem_response(ServerBusy(headers={"Retry-After": "1"}), Request(scope))
            await response(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
