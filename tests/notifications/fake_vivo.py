"""A local stand-in for vivo Push's server API (api-push.vivo.com.cn), for the tests and the benchmark.

- POST /message/auth (JSON appId, appKey, timestamp ms, sign = md5(appId + appKey + timestamp +
  appSecret)): answers `{"result": 0, "desc": "请求成功", "authToken"}`; tokens expire.
- POST /message/send (JSON, header authToken): checks the token (result 10000 when unknown, expired
  or revoked), the appId against the token's, and the message's shape (10050-ish argument codes), then
  accepts it: `{"result": 0, "desc": "请求成功", "taskId"}`. A requestId already accepted is answered
  with the same taskId and not delivered again (vivo de-duplicates on requestId).

Errors scripted per regId: INVALID_TOKEN (10302 regId不合法), RATE_LIMIT (10070 总量超出),
SERVER_ERROR (HTTP 500), AUTH_EXPIRED (the caller's token is revoked and 10000 answered).
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

from tests.notifications.fake_http import Reply, Route, RunningFake, serve

APP_ID = "10337"
APP_KEY = "vivo-test-app-key"
APP_SECRET = "vivo-test-app-secret"

ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "INVALID_TOKEN": (200, {"result": 10302, "desc": "regId不合法"}),
    "RATE_LIMIT": (200, {"result": 10070, "desc": "发送总量超出限制"}),
    "SERVER_ERROR": (500, {"result": 500, "desc": "Internet server error!"}),
    "AUTH_EXPIRED": (200, {"result": 10000, "desc": "权限认证失败"}),
}


def _width(text: str) -> int:
    return sum(1 if ord(ch) < 0x1100 else 2 for ch in text)


@dataclass
class FakeVivo:
    """State of the fake server: what arrived, and what to answer for which regId."""

    base_url: str = ""
    app_id: str = APP_ID
    app_key: str = APP_KEY
    app_secret: str = APP_SECRET
    token_ttl_seconds: float = 24 * 3600
    delivered: list[dict[str, Any]] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    scripted: dict[str, deque[str]] = field(default_factory=dict)
    permanent: dict[str, str] = field(default_factory=dict)
    tokens_issued: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (time.monotonic)
    _request_ids: dict[str, str] = field(default_factory=dict)  # requestId -> taskId
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def reset(self) -> None:
        with self.lock:
            self.delivered.clear()
            self.attempts.clear()
            self.scripted.clear()
            self.permanent.clear()
            self._tokens.clear()
            self._request_ids.clear()
            self.tokens_issued = 0
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

    def auth(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        for name, code in (("appId", 10001), ("appKey", 10002), ("timestamp", 10003), ("sign", 10004)):
            if body.get(name) in (None, ""):
                return 200, {"result": code, "desc": f"{name}不能为空"}
        app_id, timestamp = str(body["appId"]), str(body["timestamp"])
        if app_id != self.app_id or body["appKey"] != self.app_key:
            return 200, {"result": 10000, "desc": "权限认证失败"}
        if not timestamp.isdigit() or abs(int(timestamp) - time.time() * 1000) > 10 * 60 * 1000:
            return 200, {"result": 10000, "desc": "timestamp不合法"}
        expected = hashlib.md5(f"{app_id}{self.app_key}{timestamp}{self.app_secret}".encode()).hexdigest()
        if body["sign"] != expected:
            return 200, {"result": 10000, "desc": "权限认证失败: sign"}
        with self.lock:
            self.tokens_issued += 1
            token = f"vivo-auth-{self.tokens_issued}"
            self._tokens[token] = time.monotonic() + self.token_ttl_seconds
        return 200, {"result": 0, "desc": "请求成功", "authToken": token}

    def _shape_error(self, m: dict[str, Any]) -> str | None:
        if str(m.get("appId")) != self.app_id:
            return "appId与鉴权信息不一致"
        if not isinstance(m.get("regId"), str) or not m["regId"]:
            return "alias和regId不能都为空"
        if m.get("notifyType") not in (1, 2, 3, 4):
            return "notifyType不合法"
        for name, limit in (("title", 40), ("content", 100)):
            if not isinstance(m.get(name), str) or not m[name] or _width(m[name]) > limit:
                return f"{name}不合法"
        ttl = m.get("timeToLive")
        if ttl is not None and (not isinstance(ttl, int) or not 900 <= ttl <= 7 * 24 * 3600):
            return "timeToLive不合法"
        if m.get("skipType") not in (1, 2, 3, 4):
            return "skipType不合法"
        if m.get("classification") not in (None, 0, 1):
            return "classification不合法"
        custom = m.get("clientCustomMap")
        if custom is not None and (not isinstance(custom, dict)
                                   or not all(isinstance(v, str) for v in custom.values())):
            return "clientCustomMap不合法"
        if not isinstance(m.get("requestId"), str) or not m["requestId"] or len(m["requestId"]) > 64:
            return "requestId不合法"
        return None

    def send(self, token: str, m: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(m, dict):
            return 200, {"result": 10050, "desc": "请求体不合法"}
        with self.lock:
            expiry = self._tokens.get(token)
            if expiry is None or time.monotonic() >= expiry:
                return 200, {"result": 10000, "desc": "权限认证失败"}
        if (problem := self._shape_error(m)) is not None:
            return 200, {"result": 10094 if problem.startswith("appId") else 10050, "desc": problem}
        reg_id = m["regId"]
        with self.lock:
            self.attempts[reg_id] += 1
            error = self.permanent.get(reg_id)
            queue = self.scripted.get(reg_id)
            if error is None and queue:
                error = queue.popleft()
            if error is not None:
                if error == "AUTH_EXPIRED":
                    self._tokens.pop(token, None)
                return ERRORS[error]
            task_id = self._request_ids.get(m["requestId"])
            if task_id is None:
                task_id = self._request_ids[m["requestId"]] = str(next(self._ids))
                self.delivered.append({"token": reg_id, "data": dict(m.get("clientCustomMap") or {}), "message": m})
        return 200, {"result": 0, "desc": "请求成功", "taskId": task_id}


def _route(fake: FakeVivo) -> Route:
    def route(path: str, headers: Message, raw: bytes) -> Reply:
        if not (headers.get("Content-Type") or "").startswith("application/json"):
            return 200, {"result": 10050, "desc": "Content-Type must be application/json"}
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return 200, {"result": 10050, "desc": "请求体不是JSON"}
        if path == "/message/auth":
            return fake.auth(body if isinstance(body, dict) else {})
        if path == "/message/send":
            return fake.send(headers.get("authToken", ""), body)
        return 404, {"result": 404, "desc": "not found"}
    return route


@dataclass
class RunningFakeVivo(RunningFake):
    fake: FakeVivo


def start_fake_vivo() -> RunningFakeVivo:
    """Start the server on a free port."""
    fake = FakeVivo()
    server, thread = serve(fake, _route(fake), "fake-vivo")
    return RunningFakeVivo(fake, server, thread)


def settings_env(running: RunningFakeVivo) -> dict[str, str]:
    """The HULEI_* environment that points the vivo provider at the fake."""
    return {"HULEI_VIVO_APP_ID": running.fake.app_id, "HULEI_VIVO_APP_KEY": running.fake.app_key,
            "HULEI_VIVO_APP_SECRET": running.fake.app_secret, "HULEI_VIVO_ENDPOINT": running.base_url}
