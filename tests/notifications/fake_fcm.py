"""A local stand-in for Google's OAuth token endpoint and the FCM HTTP v1 send endpoint, so the
real firebase-admin code path can be driven in tests and the benchmark.

- POST /token: checks the service-account JWT assertion (RS256, signed with the key the test
  generated) and answers an access token.
- POST /v1/projects/{project}/messages:send: checks the bearer token and either accepts the
  message (recording it) or answers the error scripted for its device token, shaped like FCM's
  (UNREGISTERED, INVALID_ARGUMENT, 503 UNAVAILABLE).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PROJECT = "hulei-test"
_SEND_PATH = re.compile(r"^/v1/projects/(?P<project>[^/]+)/messages:send$")
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"

ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "UNREGISTERED": (404, {"error": {"code": 404, "message": "Requested entity was not found.",
                                     "status": "NOT_FOUND",
                                     "details": [{"@type": _FCM_ERROR, "errorCode": "UNREGISTERED"}]}}),
    "INVALID_ARGUMENT": (400, {"error": {"code": 400,
                                         "message": "The registration token is not a valid FCM registration token",
                                         "status": "INVALID_ARGUMENT",
                                         "details": [{"@type": _FCM_ERROR, "errorCode": "INVALID_ARGUMENT"}]}}),
    "UNAVAILABLE": (503, {"error": {"code": 503, "message": "The service is currently unavailable.",
                                    "status": "UNAVAILABLE",
                                    "details": [{"@type": _FCM_ERROR, "errorCode": "UNAVAILABLE"}]}}),
    "INTERNAL": (500, {"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL",
                                 "details": [{"@type": _FCM_ERROR, "errorCode": "INTERNAL"}]}}),
}


@dataclass
class FakeFcm:
    """State of the fake server: what arrived, and what to answer for which token."""

    base_url: str = ""
    public_key_pem: bytes = b""
    delivered: list[dict[str, Any]] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # token -> queue of error names answered before the token starts succeeding ("UNAVAILABLE", ...)
    scripted: dict[str, deque[str]] = field(default_factory=dict)
    # tokens that always fail with the given error
    permanent: dict[str, str] = field(default_factory=dict)
    tokens_issued: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _access: set[str] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def reset(self) -> None:
        with self.lock:
            self.delivered.clear()
            self.attempts.clear()
            self.scripted.clear()
            self.permanent.clear()

    def fail_next(self, token: str, *errors: str) -> None:
        self.scripted[token] = deque(errors)

    def always_fail(self, token: str, error: str) -> None:
        self.permanent[token] = error

    def delivered_to(self, token: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.delivered if m.get("token") == token]

    # -- request handling (called from the server threads)

    def issue_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type"}
        try:
            claims = jwt.decode(form.get("assertion", ""), self.public_key_pem, algorithms=["RS256"],
                                options={"verify_aud": False})
            if "https://www.googleapis.com/auth/cloud-platform" not in str(claims.get("scope", "")).split():
                return 400, {"error": "invalid_scope"}
        except jwt.PyJWTError as exc:
            return 400, {"error": "invalid_grant", "error_description": str(exc)}
        with self.lock:
            self.tokens_issued += 1
            access = f"fake-access-{self.tokens_issued}"
            self._access.add(access)
        return 200, {"access_token": access, "expires_in": 3600, "token_type": "Bearer"}

    def send(self, project: str, authorization: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not authorization.startswith("Bearer ") or authorization[7:] not in self._access:
            return 401, {"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                                   "status": "UNAUTHENTICATED"}}
        message = body.get("message") or {}
        token = str(message.get("token", ""))
        with self.lock:
            self.attempts[token] += 1
            error = self.permanent.get(token)
            queue = self.scripted.get(token)
            if error is None and queue:
                error = queue.popleft()
            if error is not None:
                return ERRORS[error]
            self.delivered.append(message)
            n = next(self._ids)
        return 200, {"name": f"projects/{project}/messages/{n}"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real endpoint
    # Headers and body leave in one write, without Nagle: no 40 ms delayed-ACK stalls per request.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        fake = self.server.fake
        if self.path == "/token":
            from urllib.parse import parse_qsl

            self._answer(*fake.issue_token(dict(parse_qsl(raw.decode()))))
            return
        match = _SEND_PATH.match(self.path)
        if match is None:
            self._answer(404, {"error": {"code": 404, "message": "no such path", "status": "NOT_FOUND"}})
            return
        self._answer(*fake.send(match["project"], self.headers.get("Authorization", ""), json.loads(raw or b"{}")))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, fake: FakeFcm) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@dataclass
class RunningFakeFcm:
    fake: FakeFcm
    server: _Server
    thread: threading.Thread
    credentials_file: Path

    @property
    def base_url(self) -> str:
        return self.fake.base_url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_fake_fcm(directory: Path) -> RunningFakeFcm:
    """Start the server on a free port and write a service-account JSON (fresh RSA key) whose
    token_uri points at it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    fake = FakeFcm()
    fake.public_key_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    server = _Server(fake)
    host, port = server.server_address[:2]
    fake.base_url = f"http://{host!s}:{port}"
    thread = threading.Thread(target=server.serve_forever, name="fake-fcm", daemon=True)
    thread.start()
    credentials = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "test-key-1",
        "private_key": private_pem,
        "client_email": f"push@{PROJECT}.iam.gserviceaccount.com",
        "client_id": "100000000000000000001",
        "auth_uri": f"{fake.base_url}/auth",
        "token_uri": f"{fake.base_url}/token",
    }
    path = directory / "service-account.json"
    path.write_text(json.dumps(credentials), encoding="utf-8")
    return RunningFakeFcm(fake, server, thread, path)
