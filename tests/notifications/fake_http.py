"""What the vendor push fakes (fake_huawei, fake_honor, fake_xiaomi, fake_oppo, fake_vivo) share: a
threaded HTTP/1.1 server on a free loopback port that hands each POST to the fake's route and answers
JSON, and the fixture step that points a channel's settings at a running fake."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

Reply = tuple[int, dict[str, Any]]
# (path, request headers, raw body) -> (HTTP status, JSON answer)
Route = Callable[[str, Message, bytes], Reply]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real endpoints
    # Headers and body leave in one write, without Nagle: no 40 ms delayed-ACK stalls per request.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self._answer(*self.server.route(self.path, self.headers, raw))


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, fake: Any, route: Route) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        self.route = route


@dataclass
class RunningFake:
    fake: Any  # has base_url, set when the server starts
    server: FakeServer
    thread: threading.Thread

    @property
    def base_url(self) -> str:
        return str(self.fake.base_url)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(fake: Any, route: Route, name: str) -> tuple[FakeServer, threading.Thread]:
    """Start `route` for `fake` on a free port (sets fake.base_url)."""
    server = FakeServer(fake, route)
    host, port = server.server_address[:2]
    fake.base_url = f"http://{host!s}:{port}"
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    return server, thread


@contextmanager
def channel_pointed_at(running: Any, settings_env: Mapping[str, str],
                       monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The running fake, reset, with the channel's settings pointing at it and retry backoff from 30 s."""
    from backend.core.config import get_settings

    running.fake.reset()
    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HULEI_PUSH_RETRY_BASE_SECONDS", "30")
    get_settings.cache_clear()
    try:
        yield running.fake
    finally:
        get_settings.cache_clear()
