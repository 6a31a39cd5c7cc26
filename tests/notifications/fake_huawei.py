"""A local stand-in for Huawei's OAuth server and Push Kit's v1 send endpoint, speaking the
documented protocol, for the tests and the benchmark.

- POST /oauth2/v3/token: form grant_type=client_credentials, client_id, client_secret; a wrong
  secret gets HTTP 400 {"error": 1101, "error_description": "invalid client"}; otherwise an access
  token valid for `token_ttl_seconds`.
- POST /v1/{appId}/messages:send: a missing, unknown or expired bearer token gets HTTP 401 code
  80200003; the body must be {"validate_only", "message": {"data": JSON string, "notification" or
  "android.notification" with title and body, "token": [1..1000]}} (else 400 80100003/80300010).
  Per token, a scripted (then succeeding) or permanent error is answered:
  INVALID_TOKEN (that token is illegal: 400 80300007 when every token is, else 200 80100000 listing
  it in msg.illegal_tokens), RATE_LIMIT (503 flow control), SERVER_ERROR (500 81000001),
  TOKEN_EXPIRED (revokes every access token issued so far, 401 80200003), NO_PERMISSION
  (403 80300002), HANG (the answer comes `hang_seconds` late, then the push is delivered: a
  caller that timed out meanwhile does not know it went).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from tests.notifications.fake_http import Reply, RunningFake, serve

APP_ID = "104400001"
CLIENT_SECRET = "fake-huawei-app-secret"
OAUTH_PATH = "/oauth2/v3/token"
_SEND_PATH = re.compile(r"^/v1/(?P<app>[^/]+)/messages:send$")


@dataclass
class FakeHmsState:
    """What arrived, which access tokens are valid, what to answer for which device token. Shared
    by the Huawei and Honor fakes (Honor's API is Huawei's with other names)."""

    app_id: str = APP_ID
    client_id: str = APP_ID
    client_secret: str = CLIENT_SECRET
    base_url: str = ""
    token_ttl_seconds: int = 3600
    delivered: list[dict[str, Any]] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    scripted: dict[str, deque[str]] = field(default_factory=dict)
    permanent: dict[str, str] = field(default_factory=dict)
    tokens_issued: int = 0
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _access: dict[str, float] = field(default_factory=dict)  # access token -> expiry (monotonic)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def reset(self) -> None:
        with self.lock:
            self.delivered.clear()
            self.attempts.clear()
            self.scripted.clear()
            self.permanent.clear()
            self.tokens_issued = 0
            self.requests = 0
            self.token_ttl_seconds = 3600
            self._access.clear()

    def fail_next(self, token: str, *errors: str) -> None:
        with self.lock:
            self.scripted[token] = deque(errors)

    def always_fail(self, token: str, error: str) -> None:
        with self.lock:
            self.permanent[token] = error

    def expire_access_tokens(self) -> None:
        """Every access token issued so far stops working (as after its hour)."""
        with self.lock:
            self._access.clear()

    def delivered_to(self, token: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.delivered if m.get("token") == token]

    # -- request handling (server threads)

    def issue_token(self, form: dict[str, str]) -> Reply:
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": 1102, "error_description": "unsupported grant_type"}
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 400, {"error": 1101, "sub_error": 20404, "error_description": "invalid client"}
        with self.lock:
            self.tokens_issued += 1
            access = f"fake-hms-access-{self.tokens_issued}-{next(self._ids)}"
            self._access[access] = time.monotonic() + self.token_ttl_seconds
        return 200, {"access_token": access, "expires_in": self.token_ttl_seconds, "token_type": "Bearer"}

    def bearer_ok(self, authorization: str) -> bool:
        if not authorization.startswith("Bearer "):
            return False
        with self.lock:
            expiry = self._access.get(authorization[7:])
        return expiry is not None and time.monotonic() < expiry

    def errors_for(self, tokens: list[str]) -> dict[str, str]:
        """Count the attempt and take each token's scripted or permanent error, if any."""
        found: dict[str, str] = {}
        with self.lock:
            for token in tokens:
                self.attempts[token] += 1
                error = self.permanent.get(token)
                queue = self.scripted.get(token)
                if error is None and queue:
                    error = queue.popleft()
                if error is not None:
                    found[token] = error
            if "TOKEN_EXPIRED" in found.values():
                self._access.clear()  # the token really is gone: a resend must fetch a new one
        return found

    def record(self, tokens: list[str], data: dict[str, Any], message: dict[str, Any]) -> str:
        with self.lock:
            for token in tokens:
                self.delivered.append({"token": token, "data": data, "message": message})
            return f"{int(time.time() * 1000)}{next(self._ids):08d}"


def huawei_reply(code: str, msg: str, status: int = 200, request_id: str = "") -> Reply:
    return status, {"code": code, "msg": msg, "requestId": request_id or str(int(time.time() * 1000))}


def check_notification(android: dict[str, Any], top: dict[str, Any] | None, camel: bool) -> str | None:
    """Why a notification message is malformed, or None."""
    notification = android.get("notification")
    if not isinstance(notification, dict):
        notification = top if isinstance(top, dict) else None
    if not notification or not notification.get("title") or not notification.get("body"):
        return "notification message needs a title and a body"
    click = notification.get("clickAction" if camel else "click_action")
    if isinstance(android.get("notification"), dict) and not isinstance(click, dict):
        return "android.notification needs a click action"
    if isinstance(click, dict) and click.get("type") not in (1, 2, 3, 4):
        return "click action type must be 1-4"
    ttl = android.get("ttl")
    if ttl is not None and not re.fullmatch(r"\d+(\.\d+)?s", str(ttl)):
        return "ttl must look like 86400s"
    return None


def parse_data(raw: object) -> dict[str, Any] | str:
    """message.data: a JSON object serialised as a string (or an error text)."""
    if not isinstance(raw, str):
        return "data must be a string"
    try:
        parsed = json.loads(raw)
    except ValueError:
        return "data must be JSON"
    return parsed if isinstance(parsed, dict) else "data must be a JSON object"


_HUAWEI_ERRORS: dict[str, Reply] = {
    "RATE_LIMIT": (503, {"code": "81000001", "msg": "flow control, request too frequent"}),
    "SERVER_ERROR": (500, {"code": "81000001", "msg": "System inner error"}),
    "TOKEN_EXPIRED": (401, {"code": "80200003", "msg": "OAuth token expired"}),
    "NO_PERMISSION": (403, {"code": "80300002", "msg": "There is no permission to send a message to a token"}),
}


class FakeHuawei(FakeHmsState):
    """Huawei Push Kit v1."""

    hang_seconds: float = 3.0

    def send(self, app: str, authorization: str, body: dict[str, Any]) -> Reply:
        with self.lock:
            self.requests += 1
        if app != self.app_id:
            return huawei_reply("80300002", "no permission for this app", 403)
        if not self.bearer_ok(authorization):
            return huawei_reply("80200003", "OAuth token expired", 401)
        message = body.get("message")
        if not isinstance(message, dict):
            return huawei_reply("80100003", "Illegal payload, message missing", 400)
        tokens = message.get("token")
        if not isinstance(tokens, list) or not 1 <= len(tokens) <= 1000 or not all(isinstance(t, str) for t in tokens):
            return huawei_reply("80300010", "The number of tokens in the message body exceeds the default value", 400)
        android_raw = message.get("android")
        android: dict[str, Any] = android_raw if isinstance(android_raw, dict) else {}
        data = parse_data(message.get("data"))
        if isinstance(data, str):
            return huawei_reply("80100003", f"Illegal payload, {data}", 400)
        problem = check_notification(android, message.get("notification"), camel=False)
        if problem:
            return huawei_reply("80100003", f"Illegal payload, {problem}", 400)
        errors = self.errors_for(tokens)
        if "HANG" in errors.values():
            time.sleep(self.hang_seconds)
        for name in ("TOKEN_EXPIRED", "SERVER_ERROR", "RATE_LIMIT", "NO_PERMISSION"):
            if name in errors.values():
                status, payload = _HUAWEI_ERRORS[name]
                return status, payload | {"requestId": str(int(time.time() * 1000))}
        illegal = [t for t in tokens if errors.get(t) == "INVALID_TOKEN"]
        if len(illegal) == len(tokens):
            return huawei_reply("80300007", "All the tokens are invalid", 400)
        good = [t for t in tokens if t not in illegal]
        request_id = "" if body.get("validate_only") else self.record(good, data, message)
        if illegal:
            detail = json.dumps({"success": len(good), "failure": len(illegal), "illegal_tokens": illegal})
            return huawei_reply("80100000", detail, 200, request_id)
        return huawei_reply("80000000", "Success", 200, request_id)


def _huawei_route(fake: FakeHuawei) -> Any:
    def route(path: str, headers: Any, raw: bytes) -> Reply:
        if path == OAUTH_PATH:
            if "application/x-www-form-urlencoded" not in (headers.get("Content-Type") or ""):
                return 400, {"error": 1102, "error_description": "form body expected"}
            return fake.issue_token(dict(parse_qsl(raw.decode())))
        match = _SEND_PATH.match(path)
        if match is None:
            return 404, {"code": "404", "msg": "no such path"}
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return huawei_reply("80100003", "Illegal payload, not JSON", 400)
        return fake.send(match["app"], headers.get("Authorization") or "", body if isinstance(body, dict) else {})
    return route


@dataclass
class RunningFakeHuawei(RunningFake):
    fake: FakeHuawei


def start_fake_huawei() -> RunningFakeHuawei:
    """Start the fake Push Kit on a free port."""
    fake = FakeHuawei()
    server, thread = serve(fake, _huawei_route(fake), "fake-huawei")
    return RunningFakeHuawei(fake, server, thread)


def settings_env(running: RunningFakeHuawei) -> dict[str, str]:
    """The HULEI_* settings that point the Huawei provider at the fake."""
    return {
        "HULEI_HUAWEI_APP_ID": running.fake.app_id,
        "HULEI_HUAWEI_CLIENT_SECRET": running.fake.client_secret,
        "HULEI_HUAWEI_PUSH_ENDPOINT": running.base_url,
        "HULEI_HUAWEI_OAUTH_ENDPOINT": running.base_url + OAUTH_PATH,
    }
