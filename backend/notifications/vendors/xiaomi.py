"""Xiaomi MiPush (小米推送): notification-bar messages to Xiaomi, Redmi and POCO phones.

Protocol, from Xiaomi's public server documentation (dev.mi.com 推送服务 "服务器API地址以及参数",
"服务端Java SDK文档" with its 消息回执 and ErrorCode sections) and the decompiled official Java server
SDK mirrored at github.com/ggg17226/xmpush-server-api-http2 (Constants.java, ErrorCode.java):

- Send: POST {endpoint}/v3/message/regid, header `Authorization: key=<AppSecret>` (lower-case
  "key"), form-encoded body: `registration_id` (several joined by ",", at most 1000),
  `restricted_package_name`, `title` (< 50 characters), `description` (< 128 characters), `payload`,
  `pass_through` (0 = notification-bar message shown by the system; pass-through messages do not
  reach an app that was killed, so we never use them), `notify_type` (-1 = sound, vibration and
  lights), `notify_id` (notifications with the same id replace each other), `time_to_live` (ms),
  and `extra.*`: `extra.notify_effect` 1 (a tap opens the app's launcher activity),
  `extra.callback` (receipt URL), `extra.callback.param` (echoed in receipts, <= 64 bytes),
  `extra.callback.type` (bits: 1 delivered, 2 clicked, 16 invalid target, 32 push disabled, ...).
- Answer: JSON `{"result": "ok"|"error", "code": 0|..., "data": {"id": msgId}, "description",
  "reason", "trace_id", "info"}`; an invalid AppSecret answers code 21301 (认证失败).
- Error codes (ErrorCode.java): 10001-10003, 10009-10011 system errors / busy / timeouts and
  10022-10024, 10027, 10028 request-frequency and quota limits (try later); 10029 invalid device
  and 20301 "No valid targets!" for a registration id MiPush does not know (the device is pruned);
  21301 and 22000-22022 (bad secret or application, package name) and 10005/10014/10026
  (permission, blacklist) are permanent and mean our configuration is wrong.
- Receipts: MiPush POSTs form field `data` = JSON object keyed by msgId, each
  `{"param", "type", "targets" (comma-joined regids), "jobkey", "barStatus", "timestamp"}`.
  Type 1 is delivered, 16 invalid target (the successor of the retired invalid-regid feedback API).

Where the documentation leaves room, what we rely on:
- One request per push: every push carries its own payload, notify_id and callback param, and
  MiPush takes one message per /message/regid call. A thread pool over one pooled HTTP client
  keeps many requests in flight, so a batch costs about as long as its slowest few requests.
- 20301 is also MiPush's generic "发送消息失败"; the device is pruned only when the reason says the
  target was not valid, otherwise the push fails without touching the device.
- HTTP 429 and 5xx, timeouts, connection errors and an unreadable answer are retried later by the
  outbox; other HTTP errors fail the push.

The notification shows the generic Chinese title and body; the whole data payload (ids and generic
text only) rides along as the JSON `payload` the app reads when the notification is tapped.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs

import httpx

from backend.core.config import Settings
from backend.notifications.providers import Outcome, PushMessage, PushResult, ReceiptEvent, receipt_url
from backend.notifications.vendors._common import SendPool, tray_id

log = logging.getLogger(__name__)

SEND_PATH = "/v3/message/regid"
MAX_REGIDS = 1000  # documented limit of registration_id per call
TTL_MS = 2 * 24 * 3600 * 1000
TITLE_MAX = 49  # "长度小于50"
DESCRIPTION_MAX = 127  # "长度小于128"
NOTIFY_TYPE_ALL = "-1"  # DEFAULT_ALL: sound, vibration and lights
NOTIFY_EFFECT_LAUNCHER = "1"
WORKERS = 16

CALLBACK_DELIVERED = 1
CALLBACK_INVALID_TARGET = 16
CALLBACK_TYPES = str(CALLBACK_DELIVERED | CALLBACK_INVALID_TARGET)

CODE_OK = 0
CODE_INVALID_DEVICE = 10029
CODE_SEND_FAILED = 20301  # "发送消息失败"; with reason "No valid targets!" the regid is unknown
RETRY_CODES = frozenset({10001, 10002, 10003, 10009, 10010, 10011, 10022, 10023, 10024, 10027, 10028})
CONFIG_CODES = frozenset({10005, 10006, 10013, 10014, 10026, 21301, 22000, 22001, 22002, 22006, 22007, 22008,
                          22021, 22022})


def outcome_for(code: int, reason: str = "") -> Outcome:
    """What the outbox should do with a push MiPush answered `code` (and `reason`) for."""
    if code == CODE_OK:
        return Outcome.sent
    if code == CODE_INVALID_DEVICE:
        return Outcome.invalid_token
    if code == CODE_SEND_FAILED:
        lowered = reason.lower()
        return Outcome.invalid_token if "target" in lowered or "regid" in lowered else Outcome.failed
    if code in RETRY_CODES:
        return Outcome.retry
    return Outcome.failed


class XiaomiProvider:
    """MiPush over its HTTP API (`/v3/message/regid`), one request per push, many in flight."""

    name = "xiaomi"
    max_batch = 500

    def __init__(self, *, app_secret: str, package_name: str, endpoint: str = "https://api.xmpush.xiaomi.com",
                 timeout_seconds: float = 30.0, callback_url: str | None = None, workers: int = WORKERS,
                 channel_id: str | None = None) -> None:
        self.package_name = package_name
        self.callback_url = callback_url
        self.channel_id = channel_id
        self._url = endpoint.rstrip("/") + SEND_PATH
        self._client = httpx.Client(
            timeout=timeout_seconds,
            headers={"Authorization": f"key={app_secret}"},
            limits=httpx.Limits(max_connections=workers * 2, max_keepalive_connections=workers * 2),
        )
        self._pool = SendPool(self.name, workers)
        self._config_warned = threading.Event()

    def close(self) -> None:
        self._pool.close()
        self._client.close()

    def build(self, message: PushMessage) -> dict[str, str]:
        """The form fields of one push."""
        data = message.data
        form = {
            "registration_id": message.token,
            "restricted_package_name": self.package_name,
            "title": (data.get("title_zh") or data.get("title_en") or "")[:TITLE_MAX],
            "description": (data.get("body_zh") or data.get("body_en") or "")[:DESCRIPTION_MAX],
            "payload": json.dumps(data, ensure_ascii=False, separators=(",", ":")),
            "pass_through": "0",
            "notify_type": NOTIFY_TYPE_ALL,
            "notify_id": str(tray_id(data)),
            "time_to_live": str(TTL_MS),
            "extra.notify_effect": NOTIFY_EFFECT_LAUNCHER,
        }
        if self.channel_id:
            form["extra.channel_id"] = self.channel_id
        if self.callback_url:
            form["extra.callback"] = self.callback_url
            form["extra.callback.param"] = str(message.key)
            form["extra.callback.type"] = CALLBACK_TYPES
        return form

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        return self._pool.send_each(messages, self._send_one)

    def _send_one(self, message: PushMessage) -> PushResult:
        try:
            response = self._client.post(self._url, data=self.build(message))
        except httpx.HTTPError as exc:  # timeouts, refused or reset connections: try later
            return PushResult(Outcome.retry, error=f"{type(exc).__name__}: {exc}"[:500])
        status = response.status_code
        if status == 429 or status >= 500:
            return PushResult(Outcome.retry, error=f"HTTP {status}")
        try:
            body: Any = response.json()
            code = int(body.get("code", -1))
        except (ValueError, TypeError, AttributeError):
            if status != 200:
                return PushResult(Outcome.failed, error=f"HTTP {status}")
            return PushResult(Outcome.retry, error="unreadable answer")
        reason = str(body.get("reason") or "")
        if code == CODE_OK and body.get("result") == "ok":
            message_id = (body.get("data") or {}).get("id")
            return PushResult(Outcome.sent, message_id=str(message_id) if message_id else None)
        outcome = outcome_for(code, reason)
        if code == CODE_OK:  # code 0 without result "ok": not a documented success
            outcome = Outcome.retry
        if code in CONFIG_CODES and not self._config_warned.is_set():
            self._config_warned.set()
            log.error("MiPush refuses our credentials or package (code %s: %s); check HULEI_XIAOMI_*", code,
                      body.get("description"))
        return PushResult(outcome, error=f"{code}: {body.get('description') or ''} {reason}".strip()[:500])


def from_settings(settings: Settings) -> XiaomiProvider | None:
    """The MiPush provider, or None when the AppSecret or package name is not set."""
    if not settings.xiaomi_app_secret or not settings.xiaomi_package_name:
        return None
    return XiaomiProvider(app_secret=settings.xiaomi_app_secret, package_name=settings.xiaomi_package_name,
                          endpoint=settings.xiaomi_endpoint, timeout_seconds=settings.push_http_timeout_seconds,
                          callback_url=receipt_url("xiaomi", settings), channel_id=settings.xiaomi_channel_id)


def _receipt_entries(body: bytes, content_type: str) -> dict[str, Any]:
    text = body.decode("utf-8", errors="replace")
    raw: Any
    if "json" in content_type.lower():
        raw = json.loads(text or "{}")
        if isinstance(raw, dict) and isinstance(raw.get("data"), str | dict):
            raw = raw["data"]
    else:
        raw = (parse_qs(text).get("data") or ["{}"])[0]
    if isinstance(raw, str):
        raw = json.loads(raw or "{}")
    if not isinstance(raw, dict):
        raise ValueError("MiPush receipt: `data` is not a JSON object")
    return raw


def parse_receipts(body: bytes, content_type: str) -> list[ReceiptEvent]:
    """The events in one MiPush receipt POST (form field `data`, JSON keyed by msgId): type 1 is
    delivered, type 16 names targets that are not valid (their devices are to be removed). Clicks
    and the other types say nothing the outbox keeps."""
    events: list[ReceiptEvent] = []
    for entry in _receipt_entries(body, content_type).values():
        if not isinstance(entry, dict):
            continue
        param = str(entry.get("param") or "")
        outbox_id = int(param) if param.isdigit() else None
        try:
            kind = int(entry.get("type", 0))
        except (TypeError, ValueError):
            continue
        targets = [t.strip() for t in str(entry.get("targets") or "").split(",") if t.strip()]
        if kind == CALLBACK_INVALID_TARGET:
            events.extend(ReceiptEvent(outbox_id, t, "invalid_token") for t in targets)
        elif kind == CALLBACK_DELIVERED:
            tokens: list[str | None] = [*targets] or [None]
            events.extend(ReceiptEvent(outbox_id, t, "delivered") for t in tokens)
    return events
