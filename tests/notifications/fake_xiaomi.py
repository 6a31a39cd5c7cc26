"""A local stand-in for the MiPush server API, so the real Xiaomi provider can be driven over HTTP in
tests and the benchmark.

- POST /v3/message/regid (and /v2/message/regid): checks `Authorization: key=<AppSecret>`, the
  form fields (registration_id <= 1000, restricted_package_name, pass_through, title/description
  of a notification message and their lengths, payload) and answers like MiPush:
  `{"result": "ok", "code": 0, "data": {"id": msgId}, ...}` or an error with its documented code.
- Scripted errors per registration id: INVALID_REGID (20301 "No valid targets!"), INVALID_DEVICE
  (10029), RATE_LIMIT (10027, the application calls too often), SYSTEM_BUSY (10009),
  SERVER_ERROR (HTTP 503), AUTH (21301).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import parse_qs, urlencode

from tests.notifications.fake_http import Reply, Route, RunningFake, serve

APP_SECRET = "fake-xiaomi-app-secret-0123456789"  # a credential of the fake only
PACKAGE_NAME = "cn.hulei.app"
PATHS = frozenset({"/v3/message/regid", "/v2/message/regid"})
MAX_REGIDS = 1000

# error name -> (HTTP status, MiPush answer)
ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "INVALID_REGID": (200, {"result": "error", "code": 20301, "description": "发送消息失败",
                            "reason": "No valid targets!"}),
    "INVALID_DEVICE": (200, {"result": "error", "code": 10029, "description": "不合法的设备",
                             "reason": "Invalid device."}),
    "RATE_LIMIT": (200, {"result": "error", "code": 10027, "description": "应用的API调用太频繁",
                         "reason": "Application api call exceed quota."}),
    "SYSTEM_BUSY": (200, {"result": "error", "code": 10009, "description": "系统繁忙",
                          "reason": "System is busy."}),
    "SERVER_ERROR": (503, {"result": "error", "code": 10001, "description": "系统错误",
                           "reason": "Service unavailable."}),
    "AUTH": (200, {"result": "error", "code": 21301, "description": "认证失败",
                   "reason": "Invalid application secret."}),
}
_ERROR_PRIORITY = ("AUTH", "SERVER_ERROR", "SYSTEM_BUSY", "RATE_LIMIT")  # whole-call errors first


def _error(code: int, description: str, reason: str) -> tuple[int, dict[str, Any]]:
    return 200, {"result": "error", "code": code, "description": description, "reason": reason,
                 "trace_id": "Xfake0000000000000000"}


@dataclass
class FakeXiaomi:
    """State of the fake server: what arrived, and what to answer for which registration id."""

    base_url: str = ""
    app_secret: str = APP_SECRET
    package_name: str = PACKAGE_NAME
    delivered: list[dict[str, Any]] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # regid -> queue of error names answered before the regid starts succeeding
    scripted: dict[str, deque[str]] = field(default_factory=dict)
    # regids that always fail with the given error
    permanent: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def reset(self) -> None:
        with self.lock:
            self.delivered.clear()
            self.attempts.clear()
            self.scripted.clear()
            self.permanent.clear()
            self.requests = 0

    def fail_next(self, token: str, *errors: str) -> None:
        self.scripted[token] = deque(errors)

    def always_fail(self, token: str, error: str) -> None:
        self.permanent[token] = error

    def delivered_to(self, token: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.delivered if m.get("token") == token]

    # -- request handling (called from the server threads)

    def send(self, authorization: str, content_type: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests += 1
        if authorization != f"key={self.app_secret}":
            return ERRORS["AUTH"]
        if not content_type.startswith("application/x-www-form-urlencoded"):
            return _error(10007, "不支持的 mime type", "Unsupported mime type.")
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
        regids = [r for r in form.get("registration_id", "").split(",") if r]
        if not regids:
            return _error(10016, "缺失必选参数", "registration_id is required.")
        if len(regids) > MAX_REGIDS:
            return _error(10017, "参数值非法", f"At most {MAX_REGIDS} registration ids.")
        if form.get("restricted_package_name") != self.package_name:
            return _error(22022, "应用程序package name不合法", "Invalid package name.")
        if form.get("pass_through") not in {"0", "1"}:
            return _error(10017, "参数值非法", "pass_through must be 0 or 1.")
        if "payload" not in form:
            return _error(10016, "缺失必选参数", "payload is required.")
        if form["pass_through"] == "0":
            title, description = form.get("title", ""), form.get("description", "")
            if not title.strip() or not description.strip():
                return _error(10016, "缺失必选参数", "title and description are required.")
            if len(title) >= 50 or len(description) >= 128:
                return _error(10017, "参数值非法", "title or description too long.")
        try:
            data = json.loads(form["payload"])
        except ValueError:
            data = form["payload"]
        with self.lock:
            errors: dict[str, str] = {}
            for regid in regids:
                self.attempts[regid] += 1
                error = self.permanent.get(regid)
                queue = self.scripted.get(regid)
                if error is None and queue:
                    error = queue.popleft()
                if error is not None:
                    errors[regid] = error
            for name in _ERROR_PRIORITY:
                if name in errors.values():
                    return ERRORS[name]
            valid = [r for r in regids if r not in errors]
            if not valid:
                return ERRORS[errors[regids[0]]]
            # Like MiPush, a call with some valid targets succeeds; the bad ones surface in receipts.
            msg_id = f"scm{next(self._ids):019d}"
            for regid in valid:
                self.delivered.append({"token": regid, "data": data, "message": form, "id": msg_id})
        return 200, {"result": "ok", "code": 0, "description": "成功", "trace_id": "Xfake0000000000000000",
                     "data": {"id": msg_id}, "info": f"Received push messages for {len(valid)} REGID"}


def receipt_form(entries: dict[str, dict[str, Any]]) -> bytes:
    """A MiPush receipt POST body (form field `data`, JSON keyed by msgId) for tests of the receipt
    endpoint: `entries` like {msgId: {"param": "12", "type": 1, "targets": "regid"}}."""
    return urlencode({"data": json.dumps(entries)}).encode()


def _route(fake: FakeXiaomi) -> Route:
    def route(path: str, headers: Message, raw: bytes) -> Reply:
        if path not in PATHS:
            return 404, {"result": "error", "code": 10020, "description": "接口不存在"}
        return fake.send(headers.get("Authorization", ""), headers.get("Content-Type", ""), raw)
    return route


@dataclass
class RunningFakeXiaomi(RunningFake):
    fake: FakeXiaomi


def start_fake_xiaomi() -> RunningFakeXiaomi:
    """Start the server on a free port."""
    fake = FakeXiaomi()
    server, thread = serve(fake, _route(fake), "fake-xiaomi")
    return RunningFakeXiaomi(fake, server, thread)


def settings_env(running: RunningFakeXiaomi) -> dict[str, str]:
    """The HULEI_* environment that points the Xiaomi provider at the fake."""
    return {"HULEI_XIAOMI_APP_SECRET": running.fake.app_secret,
            "HULEI_XIAOMI_PACKAGE_NAME": running.fake.package_name,
            "HULEI_XIAOMI_ENDPOINT": running.base_url}
