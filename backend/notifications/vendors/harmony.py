"""HarmonyOS NEXT Push Kit (HarmonyOS 5 and later, 纯血鸿蒙, ArkTS apps): the v3 "scenario-specific
message" (场景化消息) REST API. Such phones have no HMS Core: the v1 API of huawei.py cannot reach
them, and their Push Kit tokens work only with v3 (Huawei: "v3 only pushes to HarmonyOS NEXT/5.x and
later, v2 only to HarmonyOS 3.x/4.x").

Sources (read 2026-12; Huawei's pages as mirrored in public repositories):
- Huawei's own Java server demo, gitee harmonyos_samples/push-kit_-sample-code_-server-demo_-java
  (mirror github.com/linganmin/HarmonyOS_Samples, same path): PushClient.java (URL, headers),
  JWTSignUtils.java / JWTSupplier.java (JWT), model/auth/ServiceAccount.java (key file),
  model/message/** (body), NotificationExamples.java, resources/config.json.
- developer.huawei.com/consumer/cn/doc/harmonyos-guides/push-jwt-token (基于服务账号生成鉴权令牌),
  harmonyos-references/push-scenariozed-api-request-struct, -request-param, -response and
  push-msg-freq-control (消息频控); mirrored in github.com/xiaobingtech/bark-server HarmonyOS-PushKit/.

What this relies on, each from those sources:
- POST {endpoint}/v3/{projectId}/messages:send, endpoint https://push-api.cloud.huawei.com,
  headers "Authorization: Bearer <JWT>", "push-type: 0" (Alert = notification message) and
  "Content-Type: application/json".
- The JWT is signed by us, not fetched: header {"kid": key_id, "typ": "JWT", "alg": "PS256"},
  claims {"iss": sub_account, "aud": "https://oauth-login.cloud.huawei.com/oauth2/v3/token"
  (the key file's token_uri), "iat", "exp": iat + 3600}, SHA256withRSA/PSS with the key file's
  private_key (PKCS#8 PEM). Huawei advises reusing it for its hour; more than a day is refused
  (80300036). It is cached until 5 minutes before exp and re-signed by one thread at a time.
- Body {"payload": {"notification": {"category", "title", "body", "clickAction": {"actionType": 0,
  "data": {...}}}}, "target": {"token": [1..1000]}, "pushOptions": {"testMessage", "ttl" (seconds,
  default 86400, at most 1296000), "biTag" (≤ 64 bytes, echoed in receipts)}}. actionType 0 opens
  the app's home ability; clickAction.data reaches the app in the Want's parameters. The body may
  not exceed 4096 bytes without the token (80300008).
- Answer {"code", "msg", "requestId"}: 80000000 success; 80100000 some tokens failed and
  80300007 all tokens failed, `msg` a JSON string {"illegalTokens": {reason: [tokens]}, ...};
  80200001 authentication error and 80200005 JWT expired (HTTP 401); 80300036 JWT period over a
  day; 81000001 inner error; HTTP 503 flow control (QPS over the app's quota, or system-wide);
  80300029 test-message rate limit; other 801xxxxx/803xxxxx are faults of the request or the
  project (bad payload, no permission, too large, penalty).
- Receipts (push-api-msg-receipt, V2, the only version for scenario messages): {"statuses":
  [{"token", "pushType", "biTag", "requestId", "deliveryStatus": {"result", "timestamp"}}]}.

Judgements where the sources are silent or unclear:
- Which 80300007/80100000 reasons mean a dead token: tokenFormatError, tokenPlatformNotSupport
  ("apply for a new Push Token") and noRight, which Huawei also gives for a token from before the
  phone's upgrade to NEXT. A 80300007 whose msg names no reason is taken as dead (its text says
  "All the tokens are invalid"). The project's own faults (noPushTypeRight, penalties,
  appinfoError, countryNotSupport, ...) fail the push and keep the phone.
- Category: "WORK" (工作事项提醒) by default, which Huawei grants on application (通知消息自分类权益);
  unapproved, Huawei says notifications count as MARKETING (2-5 a day per phone). What it answers
  to an unapproved WORK was not found documented.
- HTTP 429, 500, 502 and 504 are retried like 503; timeouts and lost connections too.
- Receipt result 0 is "delivered"; the V2 result codes for dead tokens were not found for NEXT,
  so a receipt never prunes a harmony device (the send answer does).

One request per outbox row and token: every payload differs (notification_id), and the answer for a
one-token target is that token's outcome. Requests of a batch go out concurrently.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from backend.core.config import Settings
from backend.notifications.providers import Outcome, PushMessage, PushResult, ReceiptEvent
from backend.notifications.vendors._common import CachedToken, SendPool, tray_id
from backend.notifications.vendors.huawei import notification_text, parse_statuses, response_body, unreadable

log = logging.getLogger(__name__)

AUDIENCE = "https://oauth-login.cloud.huawei.com/oauth2/v3/token"  # fixed, per push-jwt-token
JWT_SECONDS = 3600  # Huawei's advice; a JWT valid for over a day is refused
JWT_MARGIN_SECONDS = 300.0  # re-sign this long before exp (clock skew, time in flight)
PUSH_TYPE_ALERT = "0"  # notification message
CLICK_OPEN_APP = 0  # actionType 0: open the app's home ability
TTL_SECONDS = 2 * 24 * 3600  # a visit reminder older than that is stale; the inbox still has it
WORKERS = 16

SUCCESS = "80000000"
PARTIAL = "80100000"
ALL_TOKENS_INVALID = "80300007"
AUTH_REFUSED = frozenset({"80200001", "80200005", "80300036"})
TRANSIENT_CODES = frozenset({"81000001", "80300029"})
TRANSIENT_HTTP = frozenset({429, 500, 502, 503, 504})
DEAD_TOKEN_REASONS = frozenset({"tokenFormatError", "tokenPlatformNotSupport", "noRight"})


class KeyFileError(Exception):
    """The service-account key cannot sign a JWT."""


@dataclass(frozen=True)
class ServiceAccount:
    """The fields of Huawei's service-account key file that sending needs."""

    project_id: str
    key_id: str
    sub_account: str
    private_key: str  # PKCS#8 PEM
    audience: str = AUDIENCE


def service_account(settings: Settings) -> ServiceAccount | None:
    """The service account from the key file and the single settings (those win), or None when a
    field is missing. A key file that cannot be read is logged and counts as missing."""
    fields: dict[str, Any] = {}
    if settings.harmony_service_account_file:
        try:
            loaded = json.loads(Path(settings.harmony_service_account_file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.error("harmony: service-account file unreadable: %s", type(exc).__name__)
            loaded = {}
        if isinstance(loaded, dict):
            fields = {k: loaded.get(k) for k in ("project_id", "key_id", "sub_account", "private_key", "token_uri")}
    for name in ("project_id", "key_id", "sub_account", "private_key"):
        value = getattr(settings, f"harmony_{name}")
        if value:
            fields[name] = value
    if not all(isinstance(fields.get(k), str) and fields.get(k)
               for k in ("project_id", "key_id", "sub_account", "private_key")):
        return None
    # A PEM pasted into one environment line keeps its line breaks as "\n".
    pem = str(fields["private_key"]).replace("\\n", "\n")
    audience = fields.get("token_uri") if isinstance(fields.get("token_uri"), str) and fields.get("token_uri") \
        else AUDIENCE
    return ServiceAccount(str(fields["project_id"]), str(fields["key_id"]), str(fields["sub_account"]), pem,
                          str(audience))


class JwtSigner:
    """Signs the service-account JWT Push Kit v3 takes as its bearer token."""

    def __init__(self, account: ServiceAccount, lifetime: int = JWT_SECONDS) -> None:
        try:
            key = serialization.load_pem_private_key(account.private_key.encode(), password=None)
        except (ValueError, TypeError):
            raise KeyFileError("harmony private_key is not an unencrypted PEM private key") from None
        if not isinstance(key, RSAPrivateKey):
            raise KeyFileError("harmony private_key is not an RSA key")
        self._key = key
        self._account = account
        self._lifetime = lifetime

    def __call__(self) -> tuple[str, float]:
        # Wall-clock seconds: Huawei checks iat/exp against its own clock, not the application's.
        iat = int(time.time())
        claims = {"iss": self._account.sub_account, "aud": self._account.audience, "iat": iat,
                  "exp": iat + self._lifetime}
        token = jwt.encode(claims, self._key, algorithm="PS256", headers={"kid": self._account.key_id, "typ": "JWT"})
        return token, float(self._lifetime)


@dataclass(frozen=True)
class Answer:
    result: PushResult
    refresh: bool = False  # the JWT was refused: sign a new one once and resend


def illegal_tokens(msg: object) -> dict[str, str]:
    """token → reason from the msg of an 80100000/80300007 answer: a JSON string holding
    {"illegalTokens": {reason: [tokens]}} (a plain list is given the reason "")."""
    parsed: object = msg
    if isinstance(msg, str):
        try:
            parsed = json.loads(msg)
        except ValueError:
            return {}
    if not isinstance(parsed, dict):
        return {}
    found: dict[str, str] = {}
    for key in ("illegalTokens", "illegal_tokens"):
        value = parsed.get(key)
        if isinstance(value, list):
            found.update({str(t): "" for t in value})
        elif isinstance(value, dict):
            for reason, tokens in value.items():
                if isinstance(tokens, list):
                    found.update({str(t): str(reason) for t in tokens})
    return found


class HarmonyProvider:
    """HarmonyOS NEXT Push Kit, REST API v3 (scenario-specific messages, push-type 0)."""

    name = "harmony"
    max_batch = 500

    def __init__(self, *, account: ServiceAccount, endpoint: str, category: str = "WORK",
                 test_message: bool = False, timeout_seconds: float = 30.0, workers: int = WORKERS) -> None:
        self.send_url = f"{endpoint.rstrip('/')}/v3/{account.project_id}/messages:send"
        self.category = category
        self.test_message = test_message
        self.tokens = CachedToken(JwtSigner(account), margin=JWT_MARGIN_SECONDS)
        self._client = httpx.Client(
            timeout=timeout_seconds,
            limits=httpx.Limits(max_connections=workers * 2, max_keepalive_connections=workers * 2),
        )
        self._pool = SendPool(self.name, workers)

    def close(self) -> None:
        self._pool.close()
        self._client.close()

    def build(self, message: PushMessage) -> dict[str, Any]:
        title, body = notification_text(message.data)
        return {
            "payload": {
                "notification": {
                    "category": self.category,
                    "title": title,
                    "body": body,
                    # The system opens the app on a tap and hands it the whole payload.
                    "clickAction": {"actionType": CLICK_OPEN_APP, "data": dict(message.data)},
                    "notifyId": tray_id(message.data),  # a resend replaces it on the notification bar
                },
            },
            "target": {"token": [message.token]},
            "pushOptions": {"testMessage": self.test_message, "ttl": TTL_SECONDS, "biTag": str(message.key)},
        }

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        if not messages:
            return []
        try:
            self.tokens.get()  # sign once for the batch, before any thread needs it
        except Exception as exc:  # a key that will not sign: nothing can go out now
            log.warning("harmony: cannot sign the JWT: %s", type(exc).__name__)
            return [PushResult(Outcome.retry, error=f"cannot sign JWT: {type(exc).__name__}") for _ in messages]
        return self._pool.send_each(messages, self._send_one)

    def _send_one(self, message: PushMessage) -> PushResult:
        try:
            content = json.dumps(self.build(message), ensure_ascii=False, separators=(",", ":")).encode()
        except Exception as exc:  # a message we cannot even build is this message's failure alone
            return PushResult(Outcome.failed, error=f"cannot build message: {type(exc).__name__}: {exc}"[:500])
        answer = Answer(PushResult(Outcome.retry, error="not sent"))
        refused: str | None = None
        for _ in range(2):  # the second round only after a refused JWT
            bearer = self.tokens.get(stale=refused)
            headers = {"Authorization": f"Bearer {bearer}", "push-type": PUSH_TYPE_ALERT,
                       "Content-Type": "application/json; charset=UTF-8"}
            try:
                resp = self._client.post(self.send_url, content=content, headers=headers)
            except httpx.HTTPError as exc:
                return PushResult(Outcome.retry, error=f"{type(exc).__name__}: {exc}"[:500])
            answer = self.read(resp, message)
            if not answer.refresh:
                return answer.result
            refused = bearer
        return PushResult(Outcome.retry, error=answer.result.error)

    def read(self, resp: httpx.Response, message: PushMessage) -> Answer:
        body = response_body(resp)
        if (unread := unreadable(resp, body)) is not None:
            return Answer(unread)
        code = str(body.get("code") or "")
        request_id = str(body.get("requestId") or "") or None
        error = f"HTTP {resp.status_code} {code}: {str(body.get('msg') or '')[:300]}".strip()
        if resp.status_code == 200 and code == SUCCESS:
            return Answer(PushResult(Outcome.sent, message_id=request_id))
        if code in (PARTIAL, ALL_TOKENS_INVALID):
            illegal = illegal_tokens(body.get("msg"))
            if message.token in illegal:
                dead = illegal[message.token] in DEAD_TOKEN_REASONS or not illegal[message.token]
                return Answer(PushResult(Outcome.invalid_token if dead else Outcome.failed, error=error))
            if code == ALL_TOKENS_INVALID:  # no list to read: the code itself names our only token
                return Answer(PushResult(Outcome.invalid_token, error=error))
            return Answer(PushResult(Outcome.sent, message_id=request_id))
        if code in AUTH_REFUSED or resp.status_code == 401:
            return Answer(PushResult(Outcome.retry, error=error), refresh=True)
        if code in TRANSIENT_CODES or resp.status_code in TRANSIENT_HTTP:
            return Answer(PushResult(Outcome.retry, error=error))
        return Answer(PushResult(Outcome.failed, error=error))


def from_settings(settings: Settings) -> HarmonyProvider | None:
    """The HarmonyOS NEXT provider, or None when the service account is not (fully) configured
    or its key cannot sign."""
    account = service_account(settings)
    if account is None:
        return None
    try:
        return HarmonyProvider(account=account, endpoint=settings.harmony_push_endpoint,
                               category=settings.harmony_category,
                               timeout_seconds=settings.push_http_timeout_seconds)
    except KeyFileError as exc:
        log.error("harmony: %s", exc)
        return None


def _v2_result(item: dict[str, Any]) -> object:
    delivery = item.get("deliveryStatus")
    return delivery.get("result") if isinstance(delivery, dict) else None


def parse_receipts(body: bytes, content_type: str) -> list[ReceiptEvent]:
    """What a Push Kit V2 receipt says: only "delivered" (result 0) is taken; see the module note."""
    return [e for e in parse_statuses(body, _v2_result) if e.outcome == "delivered"]
