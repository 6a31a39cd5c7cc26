"""A local stand-in for a government SMS platform: one POST per message, JSON or form body, HTTP
basic or bearer authentication, and an answer {"code": "0", "msgId": ...} on success.

Errors can be scripted per number ("503", "429", "400", "code1": a 200 whose code is "1", the way
many platforms refuse a message), once each before succeeding or permanently. Two faults send the
SMS and then leave the caller in doubt: "sent503" (delivered, then answers 503) and "slow" (delivered,
then answers only after `slow_seconds`, past the caller's timeout). With `dedupe` on, the platform
drops a request whose requestId it has seen before (answering success), as de-duplicating platforms do.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

SEND_PATH = "/sms/send"

ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "503": (503, {"code": "503", "msg": "service unavailable"}),
    "500": (500, {"code": "500", "msg": "internal error"}),
    "429": (429, {"code": "429", "msg": "too many requests"}),
    "400": (400, {"code": "400", "msg": "invalid mobile number"}),
    "code1": (200, {"code": "1", "msg": "rejected"}),
}


@dataclass
class FakeSmsGateway:
    """State of the fake platform: every request that arrived, what it accepted, what to answer."""

    base_url: str = ""
    phone_field: str = "phone"
    # Expected credentials: ("basic", "user:pass") or ("bearer", "token"); None accepts anything.
    auth: tuple[str, str] | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    delivered: list[dict[str, Any]] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    scripted: dict[str, deque[str]] = field(default_factory=dict)
    permanent: dict[str, str] = field(default_factory=dict)
    slow_seconds: float = 1.0
    dedupe: bool = False
    seen_request_ids: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        return self.base_url + SEND_PATH

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.delivered.clear()
            self.attempts.clear()
            self.scripted.clear()
            self.permanent.clear()
            self.seen_request_ids.clear()
            self.dedupe = False
            self.slow_seconds = 1.0
            self.auth = None
            self.phone_field = "phone"

    def fail_next(self, phone: str, *errors: str) -> None:
        self.scripted[phone] = deque(errors)

    def always_fail(self, phone: str, error: str) -> None:
        self.permanent[phone] = error

    def delivered_to(self, phone: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.delivered if m.get(self.phone_field) == phone]

    def _authorised(self, header: str) -> bool:
        if self.auth is None:
            return True
        scheme, secret = self.auth
        if scheme == "bearer":
            return header == f"Bearer {secret}"
        return header == "Basic " + base64.b64encode(secret.encode()).decode()

    def handle(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        content_type = headers.get("content-type", "")
        if content_type.startswith("application/json"):
            body: dict[str, Any] = json.loads(raw.decode("utf-8"))
        elif content_type.startswith("application/x-www-form-urlencoded"):
            body = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        else:
            return 415, {"code": "415", "msg": "unsupported content type"}
        with self.lock:
            self.requests.append({"headers": headers, "raw": raw, "body": body})
        if not self._authorised(headers.get("authorization", "")):
            return 401, {"code": "401", "msg": "unauthorised"}
        phone = str(body.get(self.phone_field, ""))
        with self.lock:
            self.attempts[phone] += 1
            error = self.permanent.get(phone)
            queue = self.scripted.get(phone)
            if error is None and queue:
                error = queue.popleft()
            if error is not None and error not in ("sent503", "slow"):
                return ERRORS[error]
            request_id = str(body.get("requestId", ""))
            if self.dedupe and request_id in self.seen_request_ids:
                return 200, {"code": "0", "msg": "duplicate dropped", "msgId": "dup"}
            self.seen_request_ids.add(request_id)
            self.delivered.append(body)
            n = next(self._ids)
        if error == "sent503":
            return 503, {"code": "503", "msg": "service unavailable"}
        if error == "slow":
            time.sleep(self.slow_seconds)
        return 200, {"code": "0", "msg": "ok", "msgId": f"sms-{n}"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path != SEND_PATH:
            status, payload = 404, {"code": "404", "msg": "no such path"}
        else:
            status, payload = self.server.fake.handle({k.lower(): v for k, v in self.headers.items()}, raw)
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # a caller that timed out has hung up ("slow")
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, fake: FakeSmsGateway) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@dataclass
class RunningFakeSmsGateway:
    fake: FakeSmsGateway
    server: _Server
    thread: threading.Thread

    @property
    def base_url(self) -> str:
        return self.fake.base_url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_fake_sms_gateway() -> RunningFakeSmsGateway:
    """Start the platform on a free port."""
    fake = FakeSmsGateway()
    server = _Server(fake)
    host, port = server.server_address[:2]
    fake.base_url = f"http://{host!s}:{port}"
    thread = threading.Thread(target=server.serve_forever, name="fake-sms", daemon=True)
    thread.start()
    return RunningFakeSmsGateway(fake, server, thread)


def settings_env(running: RunningFakeSmsGateway) -> dict[str, str]:
    """HULEI_* settings pointing the http SMS provider at the fake platform (JSON, success code "0")."""
    return {
        "HULEI_SMS_PROVIDER": "http",
        "HULEI_SMS_GATEWAY_URL": running.fake.url,
        "HULEI_SMS_GATEWAY_CONTENT_TYPE": "json",
        "HULEI_SMS_GATEWAY_BODY_TEMPLATE": '{"phone": "{phone}", "content": "{text}", "requestId": "{request_id}"}',
        "HULEI_SMS_GATEWAY_SUCCESS_FIELD": "code",
        "HULEI_SMS_GATEWAY_SUCCESS_VALUE": "0",
        "HULEI_SMS_GATEWAY_MESSAGE_ID_FIELD": "msgId",
    }
