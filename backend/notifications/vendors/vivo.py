"""vivo Push: notification-bar messages to vivo and iQOO phones.

Protocol, from vivo's public server API documentation ("vivo消息推送服务端API接口文档" 2.9.x, dev.vivo.com.cn,
as mirrored on public pages and in public repositories' clients):

- Auth: POST {endpoint}/message/auth, JSON `{appId, appKey, timestamp (ms), sign}` with
  sign = hex md5(appId + appKey + timestamp + appSecret) -> `{"result": 0, "authToken": ...}`. The token
  lasts 24 hours (vivo suggests renewing every 1-2 hours; we renew an hour before expiry) and goes in
  the `authToken` header of every other call.
- Send: POST {endpoint}/message/send (single push; vivo's batch API, saveListPayload + pushToList,
  sends one shared body to many phones, not one message each), JSON `{appId, regId, notifyType, title,
  content, timeToLive, skipType, networkType, classification, clientCustomMap, requestId, extra}` ->
  `{"result": 0, "desc", "taskId"}`. vivo de-duplicates on `requestId`, the row's `resend_id` (outbox id
  and queued time), so a resend after a lost answer does not show twice and a row of the same id in
  a reset database is not taken for one. One request per message, so a thread pool sends a
  batch in parallel over one pooled connection set.
- Result codes used: 10000 authentication failed (renew the token, resend once); 10070 / 10073 daily
  total of operational / system messages exceeded and 10071 outside the allowed sending hours (try
  later; vivo asks not to hammer); 10302 regId 不合法 (the phone's registration is gone); HTTP 5xx
  or 429 try later; every other code is permanent for the message (bad content, bad arguments).

Where the documentation is unclear, what we rely on:
- The full code table was not readable; 10302, 10070, 10071 and 10073 are read from the
  documentation's quota section and public clients that handle them, 10000 from the auth section.
- `classification` 1 (system message) suits our case-work notices, but vivo grants it per app and
  newer documents add a `category` for system messages: the app's vivo registration decides.
- `appId` is sent as a number when it is all digits (the documentation's examples), else as given.
- Title and content are clipped to 40 and 100 width units (a Chinese character counts two).
- `extra.callback` is set only when HULEI_PUSH_RECEIPT_BASE_URL is; `extra.callback.param` echoes the
  outbox id in receipts.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from typing import Any

import httpx

from backend.core.config import Settings
from backend.notifications.providers import Outcome, PushMessage, PushResult, receipt_url
from backend.notifications.vendors._common import CachedToken, SendPool

log = logging.getLogger(__name__)

AUTH_PATH = "/message/auth"
SEND_PATH = "/message/send"
TTL_SECONDS = 2 * 24 * 3600
TOKEN_LIFETIME_SECONDS = 24 * 3600
TOKEN_MARGIN_SECONDS = 3600
TITLE_WIDTH = 40
CONTENT_WIDTH = 100
WORKERS = 16

RESULT_OK = 0
RESULT_AUTH_FAILED = 10000
_UNREADABLE = -1
RETRY_RESULTS = frozenset({10070, 10071, 10073, _UNREADABLE})
INVALID_TOKEN_RESULTS = frozenset({10302})


def sign(app_id: str, app_key: str, timestamp: str, app_secret: str) -> str:
    """The auth signature vivo checks (md5 is vivo's choice, not a protection of ours)."""
    return hashlib.md5(f"{app_id}{app_key}{timestamp}{app_secret}".encode(), usedforsecurity=False).hexdigest()


def outcome_for(result: int) -> Outcome:
    """What the outbox should do with a message vivo answered `result` for."""
    if result == RESULT_OK:
        return Outcome.sent
    if result in INVALID_TOKEN_RESULTS:
        return Outcome.invalid_token
    if result in RETRY_RESULTS:
        return Outcome.retry
    return Outcome.failed


def clip(text: str, width: int) -> str:
    """`text` cut to vivo's display width (CJK and other wide characters count two)."""
    used = 0
    for i, ch in enumerate(text):
        used += 1 if ord(ch) < 0x1100 else 2
        if used > width:
            return text[:i]
    return text


class _AuthFailed(Exception):
    pass


class VivoProvider:
    """vivo Push through its server API: one /message/send per push, sent in parallel."""

    name = "vivo"
    max_batch = 500

    def __init__(self, *, app_id: str, app_key: str, app_secret: str, endpoint: str = "https://api-push.vivo.com.cn",
                 timeout_seconds: float = 30.0, receipt_url: str | None = None, workers: int = WORKERS,
                 category: str | None = None) -> None:
        self._app_id = app_id
        self._category = category
        self._app_key = app_key
        self._app_secret = app_secret
        self._receipt_url = receipt_url
        self._client = httpx.Client(base_url=endpoint.rstrip("/"), timeout=timeout_seconds,
                                    limits=httpx.Limits(max_connections=workers * 2,
                                                        max_keepalive_connections=workers * 2))
        self._pool = SendPool(self.name, workers)
        self._tokens = CachedToken(self._fetch_auth_token, margin=TOKEN_MARGIN_SECONDS)

    def close(self) -> None:
        self._pool.close()
        self._client.close()

    @property
    def _app_id_value(self) -> int | str:
        return int(self._app_id) if self._app_id.isdigit() else self._app_id

    # -- auth

    def _fetch_auth_token(self) -> tuple[str, float]:
        """A new auth token from /message/auth, and how long vivo keeps it."""
        timestamp = str(int(time.time() * 1000))
        body: Any = None
        try:
            resp = self._client.post(AUTH_PATH, json={
                "appId": self._app_id_value, "appKey": self._app_key, "timestamp": int(timestamp),
                "sign": sign(self._app_id, self._app_key, timestamp, self._app_secret)})
            body = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise _AuthFailed(f"vivo auth: {type(exc).__name__}: {exc}") from exc
        token = body.get("authToken") if isinstance(body, dict) else None
        if resp.status_code != 200 or body.get("result") != RESULT_OK or not token:
            desc = body.get("desc") if isinstance(body, dict) else None
            raise _AuthFailed(f"vivo auth: HTTP {resp.status_code} result {body.get('result')} {desc}")
        return str(token), TOKEN_LIFETIME_SECONDS

    # -- messages

    def build(self, message: PushMessage) -> dict[str, Any]:
        """The vivo /message/send body for one push."""
        data = message.data
        body: dict[str, Any] = {
            "appId": self._app_id_value,
            "regId": message.token,
            "notifyType": 4,  # sound and vibration: a case worker should notice
            "title": clip(data.get("title_zh", ""), TITLE_WIDTH),
            "content": clip(data.get("body_zh", ""), CONTENT_WIDTH),
            "timeToLive": TTL_SECONDS,
            "skipType": 1,  # open the app; it reads clientCustomMap
            "networkType": -1,
            "classification": 1,
            "clientCustomMap": dict(data),
            "requestId": message.resend_id,
        }
        if self._category:
            body["category"] = self._category
        if self._receipt_url:
            body["extra"] = {"callback": self._receipt_url, "callback.param": str(message.key)}
        return body

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        return self._pool.send_each(messages, self._send_one)

    def _send_one(self, message: PushMessage) -> PushResult:
        body = self.build(message)
        stale: str | None = None
        for _ in range(2):  # the second pass only after the token was refused
            try:
                token = self._tokens.get(stale=stale)
            except _AuthFailed as exc:
                log.warning("%s", exc)
                return PushResult(Outcome.retry, error=str(exc)[:500])
            try:
                resp = self._client.post(SEND_PATH, json=body, headers={"authToken": token})
            except httpx.HTTPError as exc:
                return PushResult(Outcome.retry, error=f"vivo: {type(exc).__name__}: {exc}"[:500])
            if resp.status_code >= 500 or resp.status_code == 429:
                return PushResult(Outcome.retry, error=f"vivo: HTTP {resp.status_code}")
            try:
                answer = resp.json()
            except ValueError:
                answer = None
            if not isinstance(answer, dict):
                return PushResult(Outcome.failed, error=f"vivo: HTTP {resp.status_code}, no JSON answer")
            result = _as_result(answer.get("result"))
            if result == RESULT_AUTH_FAILED and stale is None:
                stale = token
                continue
            if result == RESULT_OK:
                return PushResult(Outcome.sent, message_id=str(answer.get("taskId") or "") or None)
            outcome = Outcome.retry if result == RESULT_AUTH_FAILED else outcome_for(result)
            return PushResult(outcome, error=f"vivo: {result} {answer.get('desc') or ''}".strip()[:500])
        return PushResult(Outcome.retry, error="vivo: auth token refused twice")


def _as_result(value: Any) -> int:
    """vivo's result code (a number, sometimes a string); unreadable counts as a server fault."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return _UNREADABLE


def from_settings(settings: Settings) -> VivoProvider | None:
    """The vivo provider, or None when its app id, key or secret is not set."""
    if not settings.vivo_app_id or not settings.vivo_app_key or not settings.vivo_app_secret:
        return None
    return VivoProvider(app_id=settings.vivo_app_id, app_key=settings.vivo_app_key,
                        app_secret=settings.vivo_app_secret, endpoint=settings.vivo_endpoint,
                        timeout_seconds=settings.push_http_timeout_seconds, receipt_url=receipt_url("vivo", settings),
                        category=settings.vivo_category)
