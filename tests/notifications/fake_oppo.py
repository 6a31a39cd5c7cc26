"""A local stand-in for OPPO Push's server API (api.push.oppomobile.com), for the tests and the benchmark.

- POST /server/v1/auth: checks app_key, the millisecond timestamp and sign = sha256(app_key + timestamp
  + master_secret); answers `{"code": 0, "data": {"auth_token", "create_time"}}` (tokens expire).
- POST /server/v1/message/notification/unicast_batch (form auth_token, messages: JSON array, at most
  1000) and /unicast (form auth_token, message): checks the token (code 11 when unknown, expired or
  revoked) and each message's shape (code 41), then answers per message, `{messageId, registrationId}`
  or with `errorCode` 10000 (Invalid Registration_id).

Errors scripted per registration id: INVALID_TOKEN (per message, 10000), RATE_LIMIT (the whole call,
code -2 flow control), SERVER_ERROR (HTTP 500, code -1), AUTH_EXPIRED (the caller's token is revoked
and the call answered code 11). Pushes carrying an appMessageId already delivered are acknowledged but
not delivered again, as OPPO de-duplicates single pushes on it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import parse_qsl

from tests.notifications.fake_http import Reply, Route, RunningFake, serve

APP_KEY = "oppo-test-app-key"
MASTER_SECRET = "oppo-test-master-secret"
MAX_BATCH = 1000

WHOLE_CALL_ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "RATE_LIMIT": (200, {"code": -2, "message": "Service in Flow Control"}),
    "SERVER_ERROR": (500, {"code": -1, "message": "Service Currently Unavailable"}),
    "AUTH_EXPIRED": (200, {"code": 11, "message": "Invalid AuthToken"}),
}
PER_MESSAGE_ERRORS: dict[str, tuple[int, str]] = {
    "INVALID_TOKEN": (10000, "Invalid Registration_id"),
}


@dataclass
class FakeOppo:
    """State of the fake server: what arrived, and what to answer for which registration id."""

    base_url: str = ""
    app_key: str = APP_KEY
    master_secret: str = MASTER_SECRET
    token_ttl_seconds: float = 24 * 3600
    delivered: list[dict[str, Any]] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    scripted: dict[str, deque[str]] = field(default_factory=dict)
    permanent: dict[str, str] = field(default_factory=dict)
    tokens_issued: int = 0
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (time.monotonic)
    _app_message_ids: dict[str, str] = field(default_factory=dict)  # appMessageId -> messageId
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def reset(self) -> None:
        with self.lock:
            self.delivered.clear()
            self.attempts.clear()
            self.scripted.clear()
            self.permanent.clear()
            self._tokens.clear()
            self._app_message_ids.clear()
            self.tokens_issued = 0
            self.calls = 0
            self.token_ttl_seconds = 24 * 3600

    def fail_next(self, token: str, *errors: str) -> None:
        self.scripted[token] = deque(errors)

    def always_fail(self, token: str, error: str) -> None:
        self.permanent[token] = error

    def expire_tokens(self) -> None:
        """Every auth token issued so far stops working (as after its 24 hours)."""
        with self.lock:
            self._tokens.clear()

    def delivered_to(self, token: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.delivered if m.get("token") == token]

    # -- request handling (called from the server threads)

    def auth(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        for name in ("app_key", "sign", "timestamp"):
            if not form.get(name):
                return 200, {"code": {"app_key": 15, "sign": 17, "timestamp": 18}[name], "message": f"Missing {name}"}
        if form["app_key"] != self.app_key:
            return 200, {"code": 14, "message": "Invalid App Key"}
        if not form["timestamp"].isdigit() or abs(int(form["timestamp"]) - time.time() * 1000) > 10 * 60 * 1000:
            return 200, {"code": 19, "message": "Invalid Timestamp"}
        expected = hashlib.sha256(f"{form['app_key']}{form['timestamp']}{self.master_secret}".encode()).hexdigest()
        if form["sign"] != expected:
            return 200, {"code": 16, "message": "Invalid Signature"}
        with self.lock:
            self.tokens_issued += 1
            token = f"oppo-auth-{self.tokens_issued}"
            self._tokens[token] = time.monotonic() + self.token_ttl_seconds
        return 200, {"code": 0, "message": "success",
                     "data": {"auth_token": token, "create_time": int(time.time() * 1000)}}

    def _token_ok(self, token: str) -> bool:
        expiry = self._tokens.get(token)
        return expiry is not None and time.monotonic() < expiry

    @staticmethod
    def _shape_error(message: Any) -> str | None:
        if not isinstance(message, dict) or message.get("target_type") != 2:
            return "target_type must be 2 (registration_id)"
        if not isinstance(message.get("target_value"), str) or not message["target_value"]:
            return "target_value missing"
        n = message.get("notification")
        if not isinstance(n, dict):
            return "notification must be a JSON object"
        if not isinstance(n.get("title"), str) or not n["title"] or len(n["title"]) > 50:
            return "title missing or longer than 50"
        if not isinstance(n.get("content"), str) or not n["content"] or len(n["content"]) > 200:
            return "content missing or longer than 200"
        if "actionParameters" in n:
            try:
                if not isinstance(json.loads(n["actionParameters"]), dict):
                    return "actionParameters must be a JSON object string"
            except (TypeError, ValueError):
                return "actionParameters must be a JSON object string"
        ttl = n.get("offLineTtl")
        if ttl is not None and (not isinstance(ttl, int) or not 0 < ttl <= 10 * 24 * 3600):
            return "offLineTtl out of range"
        return None

    def push(self, form: dict[str, str], header_token: str, batch: bool) -> tuple[int, dict[str, Any]]:
        token = form.get("auth_token") or header_token
        if not token:
            return 200, {"code": 29, "message": "Missing Auth Token"}
        try:
            messages = json.loads(form.get("messages" if batch else "message") or "")
        except ValueError:
            return 200, {"code": 41, "message": "Invalid Arguments: messages is not JSON"}
        if not batch:
            messages = [messages]
        if not isinstance(messages, list) or not messages or len(messages) > MAX_BATCH:
            return 200, {"code": 41, "message": f"Invalid Arguments: 1 to {MAX_BATCH} messages"}
        for m in messages:
            if (problem := self._shape_error(m)) is not None:
                return 200, {"code": 41, "message": f"Invalid Arguments: {problem}"}
        with self.lock:
            self.calls += 1
            if not self._token_ok(token):
                return 200, {"code": 11, "message": "Invalid AuthToken"}
            reg_ids = [m["target_value"] for m in messages]
            for reg_id in reg_ids:
                self.attempts[reg_id] += 1
            # A whole-call error scripted for any phone in the call answers the call.
            for reg_id in reg_ids:
                error = self.permanent.get(reg_id)
                queue = self.scripted.get(reg_id)
                if error is None and queue and queue[0] in WHOLE_CALL_ERRORS:
                    error = queue.popleft()
                if error in WHOLE_CALL_ERRORS:
                    if error == "AUTH_EXPIRED":
                        self._tokens.pop(token, None)
                    return WHOLE_CALL_ERRORS[error]
            answers: list[dict[str, Any]] = []
            for m in messages:
                reg_id = m["target_value"]
                error = self.permanent.get(reg_id)
                queue = self.scripted.get(reg_id)
                if error is None and queue and queue[0] in PER_MESSAGE_ERRORS:
                    error = queue.popleft()
                n = next(self._ids)
                if error in PER_MESSAGE_ERRORS:
                    code, text = PER_MESSAGE_ERRORS[error]
                    answers.append({"messageId": f"fake-{n}", "registrationId": reg_id, "errorCode": code,
                                    "errorMessage": text})
                    continue
                app_message_id = m["notification"].get("appMessageId")
                if app_message_id and app_message_id in self._app_message_ids:
                    answers.append({"messageId": self._app_message_ids[app_message_id], "registrationId": reg_id})
                    continue
                message_id = f"FAKEAPP-1-1-{n:024x}"
                if app_message_id:
                    self._app_message_ids[app_message_id] = message_id
                params = m["notification"].get("actionParameters")
                self.delivered.append({"token": reg_id, "data": json.loads(params) if params else {},
                                       "message": m})
                answers.append({"messageId": message_id, "registrationId": reg_id})
        if batch:
            return 200, {"code": 0, "message": "", "data": answers}
        only = answers[0]
        if "errorCode" in only:
            return 200, {"code": only["errorCode"], "message": only["errorMessage"]}
        return 200, {"code": 0, "message": "", "data": {"messageId": only["messageId"]}}


def _route(fake: FakeOppo) -> Route:
    def route(path: str, headers: Message, raw: bytes) -> Reply:
        if not (headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            return 200, {"code": 41, "message": "Invalid Arguments: form body expected"}
        form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        if path == "/server/v1/auth":
            return fake.auth(form)
        if path == "/server/v1/message/notification/unicast_batch":
            return fake.push(form, headers.get("auth_token", ""), batch=True)
        if path == "/server/v1/message/notification/unicast":
            return fake.push(form, headers.get("auth_token", ""), batch=False)
        return 404, {"code": 20, "message": "Invalid Method"}
    return route


@dataclass
class RunningFakeOppo(RunningFake):
    fake: FakeOppo


def start_fake_oppo() -> RunningFakeOppo:
    """Start the server on a free port."""
    fake = FakeOppo()
    server, thread = serve(fake, _route(fake), "fake-oppo")
    return RunningFakeOppo(fake, server, thread)


def settings_env(running: RunningFakeOppo) -> dict[str, str]:
    """The HULEI_* environment that points the OPPO provider at the fake."""
    return {"HULEI_OPPO_APP_KEY": running.fake.app_key, "HULEI_OPPO_MASTER_SECRET": running.fake.master_secret,
            "HULEI_OPPO_ENDPOINT": running.base_url}
