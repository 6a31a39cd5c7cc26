"""Huawei Push Kit (HMS Core push, 华为推送) for Huawei phones without Google services and for
HarmonyOS phones that run HMS (HarmonyOS 2-4).

What this follows (public Huawei documentation, developer.huawei.com, HMS Core Push Kit server API):
- OAuth 2.0 client credentials: POST `huawei_oauth_endpoint` (…/oauth2/v3/token), form
  grant_type=client_credentials, client_id (the App ID unless set apart), client_secret (App Secret)
  → {"access_token", "expires_in" (3600), "token_type": "Bearer"}. The token is cached until shortly
  before it expires and refreshed by one thread at a time.
- Downlink message: POST {huawei_push_endpoint}/v1/{appId}/messages:send, "Authorization: Bearer …",
  JSON {"validate_only": false, "message": {"data", "notification", "android", "token": [1..1000]}}.
- Response codes (body "code", a string): 80000000 success ("requestId" names the request);
  80100000 partial success, "msg" is a JSON string listing the failed tokens ("illegal_tokens", or
  "illegalTokens" grouped by reason in the v3 API); 80300007 all tokens invalid; 80200001 OAuth
  error and 80200003 OAuth token expired (refresh once, resend); 80600003 the OAuth service failed
  and 81000001 internal error (retry); HTTP 429/5xx (503 = flow control) retry; other codes
  (80100003 bad message, 80300002 no permission, 80300008 body too large, 80300010 token count, ...)
  fail the message.
- Delivery receipts (消息回执 API): the Push Kit server POSTs {"statuses": [{"biTag", "token",
  "status", "timestamp", "appid", "requestId"}, ...]} (v2 puts the status in
  "deliveryStatus": {"result"}) to the URL set in AppGallery Connect. Status 0 = delivered;
  2 = app not installed and 5 = the token does not exist for the device's current user are dead
  tokens; every other status (6 notifications off, 10 inactive device, 102 frequency control,
  201 held back, ...) says nothing certain about the token and is ignored.

Why a notification message and not a data message: a killed app is not woken reliably for data
messages on Huawei phones, so the system itself shows the generic title and body, a tap opens the
app (click_action type 3), and the whole `data` payload rides along as `message.data` for the app.
`android.bi_tag` carries the outbox id, which the receipt echoes.

Each outbox row is its own request (every payload differs by notification_id), sent concurrently
over one pooled HTTP client.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from backend.core.config import Settings, get_settings
from backend.notifications.providers import Outcome, PushMessage, PushResult, ReceiptEvent
from backend.notifications.vendors._common import CachedToken, SendPool, tray_id

log = logging.getLogger(__name__)

TTL = "172800s"  # two days: a visit reminder older than that is stale, the inbox still has it
MAX_TOKENS = 1000  # per request, documented limit
WORKERS = 16  # concurrent requests per send() call
TOKEN_MARGIN_SECONDS = 300.0  # renew this long before the access token ends (at most half its life)

SUCCESS = "80000000"
PARTIAL = "80100000"
ALL_TOKENS_INVALID = "80300007"
OAUTH_ERRORS = frozenset({"80200001", "80200003"})
TRANSIENT_CODES = frozenset({"81000001", "80600003"})
TRANSIENT_HTTP = frozenset({429, 500, 502, 503, 504})

RECEIPT_DELIVERED = 0
RECEIPT_DEAD_TOKEN = frozenset({2, 5})


class OAuthError(Exception):
    """The OAuth endpoint gave no access token."""


def oauth_fetcher(client: httpx.Client, url: str, client_id: str,
                  client_secret: str) -> Callable[[], tuple[str, float]]:
    """Asks the OAuth endpoint for a client-credentials access token: (token, expires_in seconds)."""
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}

    def fetch() -> tuple[str, float]:
        try:
            resp = client.post(url, data=form)
        except httpx.HTTPError as exc:
            raise OAuthError(f"OAuth request failed: {type(exc).__name__}: {exc}") from exc
        try:
            body = resp.json()
        except ValueError:
            body = {}
        token = body.get("access_token") if isinstance(body, dict) else None
        if resp.status_code != 200 or not token:
            detail = {k: body.get(k) for k in ("error", "sub_error", "error_description")} if isinstance(
                body, dict) else {}
            raise OAuthError(f"OAuth HTTP {resp.status_code} {detail}")
        return str(token), float(body.get("expires_in") or 3600)

    return fetch


@dataclass(frozen=True)
class Answer:
    """What one send request came back with, before it becomes a PushResult."""

    result: PushResult
    refresh: bool = False  # the access token was refused: refresh once and resend


class HmsStyleProvider:
    """The shared shape of Huawei Push Kit and its offspring (Honor): OAuth client credentials,
    one JSON request per push, a vendor response code. Subclasses say where, what and how to read."""

    name = "huawei"
    max_batch = 500

    def __init__(self, *, app_id: str, client_id: str, client_secret: str, oauth_url: str, send_url: str,
                 timeout_seconds: float = 30.0, workers: int = WORKERS) -> None:
        self.app_id = app_id
        self.send_url = send_url
        self._client = httpx.Client(
            timeout=timeout_seconds,
            limits=httpx.Limits(max_connections=workers * 2, max_keepalive_connections=workers * 2),
        )
        self.tokens = CachedToken(oauth_fetcher(self._client, oauth_url, client_id, client_secret),
                                  margin=TOKEN_MARGIN_SECONDS)
        self._pool = SendPool(self.name, workers)

    def close(self) -> None:
        self._pool.close()
        self._client.close()

    # -- vendor specifics

    def build(self, message: PushMessage) -> dict[str, Any]:
        raise NotImplementedError

    def headers(self, access_token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {access_token}", "Content-Type": "application/json; charset=UTF-8"}

    def read(self, resp: httpx.Response, message: PushMessage) -> Answer:
        raise NotImplementedError

    # -- sending

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        if not messages:
            return []
        try:
            self.tokens.get()  # one token for the whole batch, before any thread needs it
        except OAuthError as exc:
            log.warning("%s OAuth failed: %s", self.name, exc)
            return [PushResult(Outcome.retry, error=str(exc)[:500]) for _ in messages]
        return self._pool.send_each(messages, self._send_one)

    def _send_one(self, message: PushMessage) -> PushResult:
        try:
            content = json.dumps(self.build(message), ensure_ascii=False, separators=(",", ":")).encode()
        except Exception as exc:  # a message we cannot even build is this message's failure alone
            return PushResult(Outcome.failed, error=f"cannot build message: {type(exc).__name__}: {exc}"[:500])
        answer = Answer(PushResult(Outcome.retry, error="not sent"))
        refused: str | None = None
        for _ in range(2):  # the second round only after an expired/refused access token
            try:
                access = self.tokens.get(stale=refused)
            except OAuthError as exc:
                return PushResult(Outcome.retry, error=str(exc)[:500])
            try:
                resp = self._client.post(self.send_url, content=content, headers=self.headers(access))
            except httpx.HTTPError as exc:
                return PushResult(Outcome.retry, error=f"{type(exc).__name__}: {exc}"[:500])
            answer = self.read(resp, message)
            if not answer.refresh:
                return answer.result
            refused = access
        return PushResult(Outcome.retry, error=answer.result.error)


def notification_text(data: dict[str, str]) -> tuple[str, str]:
    """The generic title and body the phone shows (Chinese: the phones are in mainland China)."""
    return data.get("title_zh") or data.get("title_en") or "", data.get("body_zh") or data.get("body_en") or ""


def response_body(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except (ValueError, RecursionError):
        return {}
    return body if isinstance(body, dict) else {}


def unreadable(resp: httpx.Response, body: dict[str, Any]) -> PushResult | None:
    """The answer to an HMS-style reply without a code (a proxy's HTML page, an answer cut off on a
    bad network, an empty object): nothing says what became of the push, so it is tried again, as
    the other channels do, rather than failed for good. None when the reply has a code."""
    if body.get("code") is not None and str(body.get("code")) != "":
        return None
    return PushResult(Outcome.retry, error=f"HTTP {resp.status_code} unreadable answer")


def failed_tokens(msg: object) -> set[str]:
    """The tokens a partial-success answer lists as failed: `msg` is a JSON string holding
    "illegal_tokens" (a list) or "illegalTokens" (reason → list)."""
    parsed: object = msg
    if isinstance(msg, str):
        try:
            parsed = json.loads(msg)
        except ValueError:
            return set()
    if not isinstance(parsed, dict):
        return set()
    found: set[str] = set()
    for key in ("illegal_tokens", "illegalTokens", "failTokens", "expireTokens"):
        value = parsed.get(key)
        if isinstance(value, list):
            found.update(str(t) for t in value)
        elif isinstance(value, dict):
            for tokens in value.values():
                if isinstance(tokens, list):
                    found.update(str(t) for t in tokens)
    return found


class HuaweiProvider(HmsStyleProvider):
    """Huawei Push Kit, HTTP API v1 (messages:send)."""

    name = "huawei"

    def build(self, message: PushMessage) -> dict[str, Any]:
        title, body = notification_text(message.data)
        bar_id = tray_id(message.data)
        return {
            "validate_only": False,
            "message": {
                "data": json.dumps(message.data, ensure_ascii=False, separators=(",", ":")),
                "notification": {"title": title, "body": body},
                "android": {
                    "urgency": "HIGH",
                    "ttl": TTL,
                    "bi_tag": str(message.key),
                    "notification": {
                        "title": title,
                        "body": body,
                        "click_action": {"type": 3},  # open the app's launch screen
                        "importance": "NORMAL",  # a service message, not marketing (LOW)
                        "default_sound": True,
                        # A resend of the same notification replaces it on the notification bar.
                        "notify_id": bar_id,
                        "tag": f"hulei-{bar_id}",
                    },
                },
                "token": [message.token],
            },
        }

    def read(self, resp: httpx.Response, message: PushMessage) -> Answer:
        body = response_body(resp)
        if (unread := unreadable(resp, body)) is not None:
            return Answer(unread)
        code = str(body.get("code") or "")
        request_id = body.get("requestId")
        error = f"HTTP {resp.status_code} {code}: {str(body.get('msg') or '')[:300]}".strip()
        if code == SUCCESS and resp.status_code == 200:
            return Answer(PushResult(Outcome.sent, message_id=str(request_id) if request_id else None))
        if code == PARTIAL:
            if message.token in failed_tokens(body.get("msg")):
                return Answer(PushResult(Outcome.invalid_token, error=error))
            return Answer(PushResult(Outcome.sent, message_id=str(request_id) if request_id else None))
        if code == ALL_TOKENS_INVALID:
            return Answer(PushResult(Outcome.invalid_token, error=error))
        if code in OAUTH_ERRORS or resp.status_code == 401:
            return Answer(PushResult(Outcome.retry, error=error), refresh=True)
        if code in TRANSIENT_CODES or resp.status_code in TRANSIENT_HTTP:
            return Answer(PushResult(Outcome.retry, error=error))
        return Answer(PushResult(Outcome.failed, error=error))


def from_settings(settings: Settings) -> HuaweiProvider | None:
    """The Huawei provider, or None when the App ID or App Secret is not set."""
    if not settings.huawei_app_id or not settings.huawei_client_secret:
        return None
    base = settings.huawei_push_endpoint.rstrip("/")
    return HuaweiProvider(
        app_id=settings.huawei_app_id,
        client_id=settings.huawei_client_id or settings.huawei_app_id,
        client_secret=settings.huawei_client_secret,
        oauth_url=settings.huawei_oauth_endpoint,
        send_url=f"{base}/v1/{settings.huawei_app_id}/messages:send",
        timeout_seconds=settings.push_http_timeout_seconds,
    )


def parse_statuses(body: bytes, status_of: Callable[[dict[str, Any]], object],
                   app_id: str | None = None) -> list[ReceiptEvent]:
    """ReceiptEvents from a {"statuses": [...]} receipt body; statuses that say neither
    "delivered" nor "dead token" are left out, and so are those of another app than `app_id` (when
    given: one receipt URL entered in two apps, a test one and ours, must not touch our pushes). A
    body that is not such JSON yields nothing."""
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        log.warning("push receipt: body is not JSON")
        return []
    statuses = parsed.get("statuses") if isinstance(parsed, dict) else None
    if not isinstance(statuses, list):
        return []
    events: list[ReceiptEvent] = []
    for item in statuses:
        if not isinstance(item, dict):
            continue
        if app_id is not None and str(item.get("appid") or "") != app_id:
            continue
        raw = status_of(item)
        if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).strip().lstrip("-").isdigit():
            continue
        status = int(raw)
        if status == RECEIPT_DELIVERED:
            outcome = "delivered"
        elif status in RECEIPT_DEAD_TOKEN:
            outcome = "invalid_token"
        else:
            continue
        tag = str(item.get("biTag") or item.get("bi_tag") or "").strip()
        token = item.get("token")
        events.append(ReceiptEvent(int(tag) if tag.isdigit() else None, str(token) if token else None, outcome))
    return events


def _huawei_status(item: dict[str, Any]) -> object:
    if "status" in item:
        return item["status"]
    delivery = item.get("deliveryStatus")
    return delivery.get("result") if isinstance(delivery, dict) else None


def parse_receipts(body: bytes, content_type: str) -> list[ReceiptEvent]:
    """What a Huawei delivery receipt says (v1 "status" or v2 "deliveryStatus.result") about our app's
    pushes: every status Huawei posts names its `appid`, and one naming another app (or none) is
    left out."""
    return parse_statuses(body, _huawei_status, app_id=get_settings().huawei_app_id or "")
