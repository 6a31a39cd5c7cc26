"""Honor Push (荣耀推送) for Honor phones, which left Huawei and lost HMS in 2020: the same shape of
API as Huawei Push Kit under Honor's own hosts and camelCase field names.

What this follows, and how sure it is:
- Honor's developer guide "发送下行消息" (developer.honor.com/cn/docs/11002, as republished in
  Honor's own articles): OAuth client credentials (form grant_type=client_credentials, client_id,
  client_secret) at iam.developer.honor.com → {"access_token", "expires_in"}; send with
  POST https://push-api.cloud.honor.com/api/v1/{appId}/sendMessage, headers
  "Authorization: Bearer …" and "timestamp: <epoch ms>", body {"data": "<JSON string>",
  "android": {"notification": {"title", "body", "clickAction": {"type": 3}}}, "token": [...]}.
  The guide shows the OAuth path /auth/realms/developer/protocol/openid-connect/token; the public
  server SDKs (Honor's Go and Java samples) use /auth/token, which is the configured default —
  `honor_oauth_endpoint` is the whole URL, so either can be set.
- The response, from the public SDKs (the reference page itself was not reachable): JSON
  {"code": 200, "message": "...", "data": {"sendResult": true, "requestId": "..."}}, with the
  HMS-derived error codes (80300007 all tokens invalid, 80100000 partial success listing failed
  tokens, 80200001/80200003 OAuth refused/expired, 81000001 internal error) and HTTP 429/5xx for
  overload. These codes are mapped as for Huawei; unverified against Honor's own code table.
- No receipt parser: Honor's receipt body format was not found in public material.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from backend.core.config import Settings
from backend.notifications.providers import Outcome, PushMessage, PushResult
from backend.notifications.vendors._common import tray_id
from backend.notifications.vendors.huawei import (
    ALL_TOKENS_INVALID,
    OAUTH_ERRORS,
    PARTIAL,
    TRANSIENT_CODES,
    TRANSIENT_HTTP,
    TTL,
    Answer,
    HmsStyleProvider,
    failed_tokens,
    notification_text,
    response_body,
    unreadable,
)

SUCCESS_CODES = frozenset({"200", "0", "80000000"})


class HonorProvider(HmsStyleProvider):
    """Honor Push, server API v1 (sendMessage)."""

    name = "honor"

    def build(self, message: PushMessage) -> dict[str, Any]:
        title, body = notification_text(message.data)
        return {
            "data": json.dumps(message.data, ensure_ascii=False, separators=(",", ":")),
            "android": {
                "ttl": TTL,
                "biTag": str(message.key),
                "targetUserType": 0,  # 0 = a real device, not the test target
                "notification": {
                    "title": title,
                    "body": body,
                    "clickAction": {"type": 3},  # open the app's launch screen
                    "importance": "NORMAL",
                    "notifyId": tray_id(message.data),  # a resend replaces it on the notification bar
                },
            },
            "token": [message.token],
        }

    def headers(self, access_token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {access_token}", "Content-Type": "application/json; charset=UTF-8",
                "timestamp": str(int(time.time() * 1000))}

    def read(self, resp: httpx.Response, message: PushMessage) -> Answer:
        body = response_body(resp)
        if (unread := unreadable(resp, body)) is not None:
            return Answer(unread)
        code = str(body.get("code") if body.get("code") is not None else "")
        data_raw = body.get("data")
        data: dict[str, Any] = data_raw if isinstance(data_raw, dict) else {}
        request_id = data.get("requestId") or body.get("requestId")
        message_id = str(request_id) if request_id else None
        error = f"HTTP {resp.status_code} {code}: {str(body.get('message') or body.get('msg') or '')[:300]}".strip()
        if code in SUCCESS_CODES and resp.status_code == 200:
            if message.token in failed_tokens(data):
                return Answer(PushResult(Outcome.invalid_token, error=error))
            return Answer(PushResult(Outcome.sent, message_id=message_id))
        if code == PARTIAL:
            if message.token in failed_tokens(data) | failed_tokens(body.get("message") or body.get("msg")):
                return Answer(PushResult(Outcome.invalid_token, error=error))
            return Answer(PushResult(Outcome.sent, message_id=message_id))
        if code == ALL_TOKENS_INVALID:
            return Answer(PushResult(Outcome.invalid_token, error=error))
        if code in OAUTH_ERRORS or resp.status_code == 401:
            return Answer(PushResult(Outcome.retry, error=error), refresh=True)
        if code in TRANSIENT_CODES or resp.status_code in TRANSIENT_HTTP:
            return Answer(PushResult(Outcome.retry, error=error))
        return Answer(PushResult(Outcome.failed, error=error))


def from_settings(settings: Settings) -> HonorProvider | None:
    """The Honor provider, or None when the App ID, client id or client secret is not set."""
    if not settings.honor_app_id or not settings.honor_client_id or not settings.honor_client_secret:
        return None
    base = settings.honor_push_endpoint.rstrip("/")
    return HonorProvider(
        app_id=settings.honor_app_id,
        client_id=settings.honor_client_id,
        client_secret=settings.honor_client_secret,
        oauth_url=settings.honor_oauth_endpoint,
        send_url=f"{base}/api/v1/{settings.honor_app_id}/sendMessage",
        timeout_seconds=settings.push_http_timeout_seconds,
    )
