"""OPPO Push (OPUSH): notification-bar messages to OPPO, OnePlus and realme phones.

Protocol, from OPPO's public server API documentation (open.oppomobile.com "服务端API":
"调用地址，公共参数和返回码", "鉴权", "单点推送" with "批量单推接口"), as mirrored in public repositories:

- Auth: POST {endpoint}/server/v1/auth, form `app_key`, `timestamp` (ms), `sign` =
  hex sha256(app_key + timestamp + master_secret) -> `{"code": 0, "data": {"auth_token", "create_time"}}`.
  The token is valid 24 hours; we keep it until an hour before that and refresh it once when a call
  answers code 11 (Invalid AuthToken).
- Send: POST {endpoint}/server/v1/message/notification/unicast_batch, form `auth_token` and `messages`
  = JSON array (at most 1000) of `{"target_type": 2, "target_value": regId, "notification": {...}}`.
  The answer lists one entry per message, `{messageId, registrationId[, errorCode, errorMessage]}`;
  errorCode 10000 is "Invalid Registration_id". One request per batch is what makes OPPO fast.
- Public return codes: -1 service unavailable, -2 flow control, 13 call limit, 33 daily message
  limit, 55 call frequency limit (all: try later); 11 invalid auth token (refresh, resend once);
  the rest (bad key, signature, arguments, permissions) are permanent.

Where the documentation is unclear, what we rely on:
- The auth token travels in the form body (the public-parameter table says 在HTTP请求体中携带); some
  SDKs also send it as a header, so we send both.
- Batch results are matched by registrationId (the documentation does not promise their order), so
  one call never carries two messages for the same phone: repeats go in a following call.
- A message the answer does not mention is answered `retry` (safer than guessing it was sent).
- Notification fields use the camelCase names of the current documentation (clickActionType,
  actionParameters, offLineTtl, appMessageId, callBackUrl, callBackParameter). `appMessageId`
  (OPPO de-duplicates single pushes on it) is the row's `resend_id` (outbox id and queued time: the
  same for every attempt, new for a row of the same id in a reset database or another environment
  on the same OPPO app); `callBackParameter` (echoed in receipts) carries the outbox id; the receipt
  URL is set only when HULEI_PUSH_RECEIPT_BASE_URL is.

The notification shows the generic Chinese title and body; the whole data payload (ids and generic
text only) rides along as `actionParameters` for the app.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import orjson

from backend.core.config import Settings
from backend.notifications.providers import Outcome, PushMessage, PushResult, receipt_url
from backend.notifications.vendors._common import FORM_CONTENT_TYPE, CachedToken, form_body

log = logging.getLogger(__name__)

AUTH_PATH = "/server/v1/auth"
BATCH_PATH = "/server/v1/message/notification/unicast_batch"
MAX_BATCH = 1000  # the documented limit of `messages` in one unicast_batch call
TTL_SECONDS = 2 * 24 * 3600
TOKEN_LIFETIME_SECONDS = 24 * 3600
TOKEN_MARGIN_SECONDS = 3600
TITLE_MAX = 50  # characters, OPPO's limit for `title`
CONTENT_MAX = 200  # characters, OPPO's limit for `content`

CODE_OK = 0
CODE_INVALID_AUTH_TOKEN = 11
CODE_INVALID_REGISTRATION_ID = 10000
RETRY_CODES = frozenset({-1, -2, 13, 33, 55})
INVALID_TOKEN_CODES = frozenset({CODE_INVALID_REGISTRATION_ID})


def sign(app_key: str, timestamp: str, master_secret: str) -> str:
    """The auth signature OPPO checks."""
    return hashlib.sha256(f"{app_key}{timestamp}{master_secret}".encode()).hexdigest()


def outcome_for(code: int) -> Outcome:
    """What the outbox should do with a message OPPO answered `code` for."""
    if code == CODE_OK:
        return Outcome.sent
    if code in INVALID_TOKEN_CODES:
        return Outcome.invalid_token
    if code in RETRY_CODES:
        return Outcome.retry
    return Outcome.failed


class _AuthFailed(Exception):
    pass


class OppoProvider:
    """OPPO Push through its server API: batch unicast of notification messages."""

    name = "oppo"
    max_batch = MAX_BATCH

    def __init__(self, *, app_key: str, master_secret: str, endpoint: str = "https://api.push.oppomobile.com",
                 timeout_seconds: float = 30.0, receipt_url: str | None = None, channel_id: str | None = None) -> None:
        self._app_key = app_key
        self._master_secret = master_secret
        self._receipt_url = receipt_url
        self._channel_id = channel_id
        self._client = httpx.Client(base_url=endpoint.rstrip("/"), timeout=timeout_seconds,
                                    limits=httpx.Limits(max_connections=32, max_keepalive_connections=32))
        self._tokens = CachedToken(self._fetch_auth_token, margin=TOKEN_MARGIN_SECONDS)

    def close(self) -> None:
        self._client.close()

    # -- auth

    def _fetch_auth_token(self) -> tuple[str, float]:
        """A new auth token from /server/v1/auth, and how long OPPO keeps it."""
        timestamp = str(int(time.time() * 1000))
        try:
            resp = self._client.post(AUTH_PATH, data={"app_key": self._app_key, "timestamp": timestamp,
                                                      "sign": sign(self._app_key, timestamp, self._master_secret)})
            body = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise _AuthFailed(f"auth: {type(exc).__name__}: {exc}") from exc
        token = (body.get("data") or {}).get("auth_token") if isinstance(body, dict) else None
        if resp.status_code != 200 or body.get("code") != CODE_OK or not token:
            raise _AuthFailed(f"auth: HTTP {resp.status_code} code {body.get('code')} {body.get('message')}")
        return str(token), TOKEN_LIFETIME_SECONDS

    # -- messages

    def build(self, message: PushMessage) -> dict[str, Any]:
        """The OPPO `message` object for one push."""
        data = message.data
        notification: dict[str, Any] = {
            "appMessageId": message.resend_id,
            "style": 1,
            "title": data.get("title_zh", "")[:TITLE_MAX],
            "content": data.get("body_zh", "")[:CONTENT_MAX],
            "clickActionType": 0,  # open the app; it reads actionParameters
            "actionParameters": orjson.dumps(data).decode(),
            "offLine": True,
            "offLineTtl": TTL_SECONDS,
            "callBackParameter": str(message.key),
        }
        if self._channel_id:
            notification["channel_id"] = self._channel_id
        if self._receipt_url:
            notification["callBackUrl"] = self._receipt_url
        return {"target_type": 2, "target_value": message.token, "notification": notification}

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        return self.prepare(messages)()

    def prepare(self, messages: Sequence[PushMessage]) -> Callable[[], list[PushResult]]:
        """Encode the batch now; the returned call sends it (the worker encodes the next batch while
        the current one is on the wire). Each message is encoded on its own, so one that cannot be
        (a lone surrogate read back from SQLite) fails alone; the `messages` field is form-encoded
        here too, only the auth token is added when sending (it may have to be renewed)."""
        results: list[PushResult] = [PushResult(Outcome.failed, error="oppo: message cannot be encoded")
                                     for _ in messages]
        calls: list[tuple[list[int], bytes]] = []
        for indexes in _one_phone_once(messages):
            encoded: list[bytes] = []
            sendable: list[int] = []
            for i in indexes:
                try:
                    encoded.append(orjson.dumps(self.build(messages[i])))
                except (TypeError, ValueError):
                    continue
                sendable.append(i)
            if sendable:
                calls.append((sendable, form_body({"messages": (b"[" + b",".join(encoded) + b"]").decode()})))

        def send_now() -> list[PushResult]:
            for sendable, messages_field in calls:
                answers = self._post_batch([messages[i] for i in sendable], messages_field)
                for i, answer in zip(sendable, answers, strict=True):
                    results[i] = answer
            return results

        return send_now

    def _post_batch(self, messages: list[PushMessage], messages_field: bytes) -> list[PushResult]:
        """One unicast_batch call; `messages_field` is the form-encoded `messages=` part of its body."""
        stale: str | None = None
        for _ in range(2):  # the second pass only after the token was refused
            try:
                token = self._tokens.get(stale=stale)
            except _AuthFailed as exc:
                log.warning("OPPO %s", exc)
                return [PushResult(Outcome.retry, error=str(exc)[:500]) for _ in messages]
            try:
                resp = self._client.post(BATCH_PATH, content=form_body({"auth_token": token}) + b"&" + messages_field,
                                         headers={"auth_token": token, "Content-Type": FORM_CONTENT_TYPE})
            except httpx.HTTPError as exc:
                log.warning("OPPO unicast_batch failed: %s", exc)
                return [PushResult(Outcome.retry, error=f"oppo: {type(exc).__name__}: {exc}"[:500]) for _ in messages]
            try:
                body = resp.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                outcome = Outcome.retry if resp.status_code >= 500 or resp.status_code == 429 else Outcome.failed
                return [PushResult(outcome, error=f"oppo: HTTP {resp.status_code}") for _ in messages]
            code = _as_code(body.get("code"))
            if code == CODE_INVALID_AUTH_TOKEN and stale is None:
                stale = token
                continue
            if code != CODE_OK:
                error = f"oppo: HTTP {resp.status_code} code {code} {body.get('message') or ''}".strip()[:500]
                outcome = outcome_for(code) if code is not None else Outcome.retry
                if resp.status_code >= 500 or resp.status_code == 429:
                    outcome = Outcome.retry
                if code == CODE_INVALID_AUTH_TOKEN:  # refused again right after a fresh token
                    outcome = Outcome.retry
                if outcome is Outcome.invalid_token and len(messages) > 1:
                    outcome = Outcome.failed  # a call-wide answer cannot say which phone is gone
                return [PushResult(outcome, error=error) for _ in messages]
            return self._per_message(messages, body.get("data"))
        return [PushResult(Outcome.retry, error="oppo: auth token refused twice") for _ in messages]

    @staticmethod
    def _per_message(messages: list[PushMessage], data: Any) -> list[PushResult]:
        by_token: dict[str, dict[str, Any]] = {}
        for entry in data if isinstance(data, list) else []:
            if isinstance(entry, dict) and entry.get("registrationId") is not None:
                by_token[str(entry["registrationId"])] = entry
        results: list[PushResult] = []
        for m in messages:
            entry = by_token.get(m.token)
            if entry is None:
                results.append(PushResult(Outcome.retry, error="oppo: no result for this message"))
                continue
            code = _as_code(entry.get("errorCode"))
            if code is None or code == CODE_OK:
                results.append(PushResult(Outcome.sent, message_id=str(entry.get("messageId") or "") or None))
                continue
            results.append(PushResult(outcome_for(code),
                                      error=f"oppo: {code} {entry.get('errorMessage') or ''}".strip()[:500]))
        return results


def _one_phone_once(messages: Sequence[PushMessage]) -> list[list[int]]:
    """The messages' indexes split into calls that carry each phone at most once (answers are
    matched by registrationId): a phone's second message goes in the second call, and so on."""
    rounds: list[list[int]] = []
    seen_in: dict[str, int] = {}
    for i, m in enumerate(messages):
        r = seen_in.get(m.token, -1) + 1
        seen_in[m.token] = r
        if r == len(rounds):
            rounds.append([])
        rounds[r].append(i)
    return rounds


def _as_code(value: Any) -> int | None:
    """A return code as OPPO wrote it (a number, sometimes a string), None when absent; unreadable is -1
    (service unavailable: try later)."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def from_settings(settings: Settings) -> OppoProvider | None:
    """The OPPO provider, or None when its app key or master secret is not set."""
    if not settings.oppo_app_key or not settings.oppo_master_secret:
        return None
    return OppoProvider(app_key=settings.oppo_app_key, master_secret=settings.oppo_master_secret,
                        endpoint=settings.oppo_endpoint, timeout_seconds=settings.push_http_timeout_seconds,
                        receipt_url=receipt_url("oppo", settings), channel_id=settings.oppo_channel_id)
