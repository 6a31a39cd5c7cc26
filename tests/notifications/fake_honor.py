"""A local stand-in for Honor's OAuth server and Honor Push's v1 sendMessage endpoint.

- POST /auth/token: form grant_type=client_credentials, client_id, client_secret → an access token.
- POST /api/v1/{appId}/sendMessage: needs "Authorization: Bearer …" and a "timestamp" header (epoch
  ms); body {"data": JSON string, "android": {"ttl", "biTag", "notification": {"title", "body",
  "clickAction"}}, "token": [1..1000]}; answers {"code": 200, "message": "success", "data":
  {"sendResult": true, "requestId"}} or the scripted per-token errors as in fake_huawei
  (INVALID_TOKEN → 80300007, RATE_LIMIT → 503, SERVER_ERROR → 500 81000001, TOKEN_EXPIRED → 401
  80200003 after revoking every issued token, NO_PERMISSION → 80300002).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from tests.notifications.fake_http import Reply, RunningFake, serve
from tests.notifications.fake_huawei import FakeHmsState, check_notification, parse_data

APP_ID = "104400777"
CLIENT_ID = "honor-client-0001"
CLIENT_SECRET = "fake-honor-client-secret"
OAUTH_PATH = "/auth/token"
_SEND_PATH = re.compile(r"^/api/v1/(?P<app>[^/]+)/sendMessage$")

_ERRORS: dict[str, tuple[int, int, str]] = {
    "RATE_LIMIT": (503, 81000001, "flow control"),
    "SERVER_ERROR": (500, 81000001, "System inner error"),
    "TOKEN_EXPIRED": (401, 80200003, "OAuth token expired"),
    "NO_PERMISSION": (403, 80300002, "no permission to send to the token"),
}


def honor_reply(code: int, message: str, status: int = 200, data: dict[str, Any] | None = None) -> Reply:
    return status, {"code": code, "message": message, "data": data or {}}


class FakeHonor(FakeHmsState):
    """Honor Push v1."""

    def send(self, app: str, headers: Any, body: dict[str, Any]) -> Reply:
        with self.lock:
            self.requests += 1
        if app != self.app_id:
            return honor_reply(80300002, "no permission for this app", 403)
        if not self.bearer_ok(headers.get("Authorization") or ""):
            return honor_reply(80200003, "OAuth token expired", 401)
        if not re.fullmatch(r"\d{13}", headers.get("timestamp") or ""):
            return honor_reply(80100003, "timestamp header (epoch ms) missing", 400)
        tokens = body.get("token")
        if not isinstance(tokens, list) or not 1 <= len(tokens) <= 1000 or not all(isinstance(t, str) for t in tokens):
            return honor_reply(80300010, "The number of tokens exceeds the default value", 400)
        android_raw = body.get("android")
        android: dict[str, Any] = android_raw if isinstance(android_raw, dict) else {}
        data = parse_data(body.get("data"))
        if isinstance(data, str):
            return honor_reply(80100003, f"Illegal payload, {data}", 400)
        problem = check_notification(android, body.get("notification"), camel=True)
        if problem:
            return honor_reply(80100003, f"Illegal payload, {problem}", 400)
        errors = self.errors_for(tokens)
        for name, (status, code, text) in _ERRORS.items():
            if name in errors.values():
                return honor_reply(code, text, status)
        illegal = [t for t in tokens if errors.get(t) == "INVALID_TOKEN"]
        if len(illegal) == len(tokens):
            return honor_reply(80300007, "All the tokens are invalid", 400)
        good = [t for t in tokens if t not in illegal]
        request_id = self.record(good, data, body)
        result: dict[str, Any] = {"sendResult": True, "requestId": request_id}
        if illegal:
            return honor_reply(80100000, "Some tokens are invalid", 200, result | {"failTokens": illegal})
        return honor_reply(200, "success", 200, result)


def _route(fake: FakeHonor) -> Any:
    def route(path: str, headers: Any, raw: bytes) -> Reply:
        if path == OAUTH_PATH:
            return fake.issue_token(dict(parse_qsl(raw.decode())))
        match = _SEND_PATH.match(path)
        if match is None:
            return 404, {"code": 404, "message": "no such path"}
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return honor_reply(80100003, "Illegal payload, not JSON", 400)
        return fake.send(match["app"], headers, body if isinstance(body, dict) else {})
    return route


@dataclass
class RunningFakeHonor(RunningFake):
    fake: FakeHonor


def start_fake_honor() -> RunningFakeHonor:
    """Start the fake Honor Push on a free port."""
    fake = FakeHonor(app_id=APP_ID, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    server, thread = serve(fake, _route(fake), "fake-honor")
    return RunningFakeHonor(fake, server, thread)


def settings_env(running: RunningFakeHonor) -> dict[str, str]:
    """The HULEI_* settings that point the Honor provider at the fake."""
    return {
        "HULEI_HONOR_APP_ID": running.fake.app_id,
        "HULEI_HONOR_CLIENT_ID": running.fake.client_id,
        "HULEI_HONOR_CLIENT_SECRET": running.fake.client_secret,
        "HULEI_HONOR_PUSH_ENDPOINT": running.base_url,
        "HULEI_HONOR_OAUTH_ENDPOINT": running.base_url + OAUTH_PATH,
    }

