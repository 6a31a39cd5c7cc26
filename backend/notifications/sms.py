"""SMS providers: how the fallback text of an unread critical notification reaches a phone (短信兜底).

A provider takes claimed SMS outbox rows and answers, per message, whether the platform accepted
it, should be retried later (429, 5xx, connection trouble), failed for good (a bad number, a refused
request) or is unconfirmed (the request went out and no answer came back in time). Each result also
says whether the request may have reached the platform (`may_have_arrived`): the outbox keeps the
allowance unit of such an attempt, so the daily cap bounds what may have arrived, not only what was
confirmed. Retry with backoff is the outbox's business (backend/notifications/fallback.py).

The text is the one configured generic sentence (HULEI_SMS_TEXT_ZH): nothing about the child or
the case ever goes out by SMS. It is checked with the push payload rules at startup and again
before every send; the number is read from the recipient's account at send time and is never
logged except masked (138****1234).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

import httpx

from backend.core import clock
from backend.core.config import Settings, get_settings
from backend.notifications.delivery import dedupe_id
from backend.registry.personal_text import skeleton

log = logging.getLogger(__name__)

# A mainland mobile number as accounts store it (11 digits starting 13-19).
MAINLAND_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
PLACEHOLDER = re.compile(r"\{(phone|text|template_id|request_id|timestamp)\}")


class SmsOutcome(StrEnum):
    sent = "sent"
    retry = "retry"  # 429, 5xx, connection trouble: try again later
    failed = "failed"  # permanent for this message (a bad number, a refused request, a refused text)
    # The request was sent and no answer came (read timeout): it may well have arrived, so it is
    # never sent again (a slow gateway would otherwise text the same person once per retry).
    unconfirmed = "unconfirmed"


@dataclass(frozen=True)
class SmsMessage:
    """One SMS: the outbox row it stands for, the number, the generic text."""

    key: int  # the SMS outbox row
    phone: str
    text: str
    template_id: str | None = None
    queued_at: datetime = field(kw_only=True)  # when the row was queued: part of the request id

    @property
    def request_id(self) -> str:
        """The id every attempt of this row carries, unique across databases sharing one gateway
        (a reset database reuses row ids): the push outbox's scheme (delivery.dedupe_id)."""
        return f"hulei-sms-{dedupe_id(self.key, self.queued_at)}"


@dataclass(frozen=True)
class SmsResult:
    outcome: SmsOutcome
    message_id: str | None = None
    error: str | None = None
    # Whether the request may have reached the platform although it was not confirmed (5xx, a
    # connection dropped after sending, a read timeout). False only when nothing was sent or the
    # platform said it did not send (connect error, 429, 4xx, a success field saying no).
    may_have_arrived: bool = False


class SmsProvider(Protocol):
    """Anything that can send SMS."""

    name: str

    def send(self, messages: Sequence[SmsMessage]) -> list[SmsResult]:
        """Send each message; one result per message, in order. Must not raise for per-message errors."""
        ...


class SmsConfigError(RuntimeError):
    """The SMS settings cannot work, or would send something personal."""


def mask_phone(phone: str) -> str:
    """A number as logs may show it: 138****1234."""
    if len(phone) < 8:
        return "*" * len(phone)
    return f"{phone[:3]}{'*' * (len(phone) - 7)}{phone[-4:]}"


def is_mainland_mobile(phone: str | None) -> bool:
    return bool(phone) and MAINLAND_MOBILE.match(phone or "") is not None


def text_refusal(text: str) -> str | None:
    """Why the notification payload guard would refuse `text` (digit runs, ID or phone numbers), or None."""
    from backend.notifications.service import PayloadNotAllowed, check_payload

    if not text.strip():
        return "SMS text is empty"
    try:
        check_payload(kind="sms.fallback", texts=[text], data={})
    except PayloadNotAllowed as exc:
        return f"SMS text refused: {exc.detail_en}"
    # The sentence is fixed and generic: read as the personal-data filter reads free text (spaces and
    # dashes between digits gone, 一三八…/壹叁捌… and digits of any script as digits), five digits in a
    # row are part of a number someone could call or look up (138 1234 5678 passed the payload rule).
    if _DIGIT_RUN.search(skeleton(text)):
        return "SMS text refused: it holds a number (digits in a row, however written)"
    return None


_DIGIT_RUN = re.compile(r"\d{5,}")


def _refusal(message: SmsMessage) -> SmsResult | None:
    """The last check before anything leaves: a generic text to a mainland mobile number, or failed."""
    if (why := text_refusal(message.text)) is not None:
        return SmsResult(SmsOutcome.failed, error=why)
    if not is_mainland_mobile(message.phone):
        return SmsResult(SmsOutcome.failed, error="not a mainland mobile number")
    return None


def check_sms_settings(settings: Settings) -> None:
    """Refuse SMS settings that cannot work or would text personal data (SmsConfigError)."""
    if (why := text_refusal(settings.sms_text_zh)) is not None:
        raise SmsConfigError(f"HULEI_SMS_TEXT_ZH: {why}; it must be a generic sentence without numbers")
    if settings.sms_provider == "log":
        return
    if settings.sms_provider != "http":
        raise SmsConfigError(f"unknown SMS provider {settings.sms_provider!r} (log | http)")
    if not settings.sms_gateway_url:
        raise SmsConfigError("HULEI_SMS_GATEWAY_URL must be set for the http SMS provider")
    if settings.sms_gateway_content_type not in ("json", "form"):
        raise SmsConfigError("HULEI_SMS_GATEWAY_CONTENT_TYPE must be json or form")
    parse_body_template(settings.sms_gateway_body_template)


def parse_body_template(template: str) -> dict[str, Any]:
    """The gateway body template as a JSON object (SmsConfigError otherwise)."""
    try:
        parsed = json.loads(template)
    except json.JSONDecodeError as exc:
        raise SmsConfigError(f"HULEI_SMS_GATEWAY_BODY_TEMPLATE is not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise SmsConfigError("HULEI_SMS_GATEWAY_BODY_TEMPLATE must be a JSON object")
    return parsed


def render_body(template: Any, values: dict[str, str]) -> Any:
    """The template with each placeholder in its string values replaced by the value itself.

    Substitution happens on the parsed object, one string at a time and in one pass, so a quote or
    a brace in the text stays text: it is encoded when the object is serialised, never spliced into
    JSON, and a "{phone}" inside the text is not expanded again."""
    if isinstance(template, str):
        return PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), template)
    if isinstance(template, dict):
        return {key: render_body(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [render_body(value, values) for value in template]
    return template


def _field(body: Any, path: str) -> Any:
    """A field of a JSON answer by dotted path ("result.code"), or None."""
    current = body
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


class LoggingSmsProvider:
    """Development default: logs the outbox row and the masked number, and reports it sent."""

    name = "log"

    def send(self, messages: Sequence[SmsMessage]) -> list[SmsResult]:
        results: list[SmsResult] = []
        for m in messages:
            refused = _refusal(m)
            if refused is not None:
                results.append(refused)
                continue
            log.info("sms %s to %s", m.key, mask_phone(m.phone))
            results.append(SmsResult(SmsOutcome.sent, message_id=f"log:{m.key}"))
        return results


class HttpGatewaySmsProvider:
    """A generic SMS platform reached by one HTTP POST per message (the government and carrier
    platforms provinces use differ in field names, not in shape): the body is rendered from a
    JSON template, sent as JSON or as a form, with basic or bearer authentication.

    Success is a 2xx answer whose named field (if any) equals the configured value. 429, 5xx and
    transport errors are retried later by the outbox; a read timeout (sent, never answered) is
    `unconfirmed` and not retried; any other answer fails the message. Nothing is resent within a
    call: a request that may have arrived is only ever retried by the outbox, with the same request
    id (hulei-sms-<row>-<hex ms>) for platforms that de-duplicate."""

    name = "http"

    def __init__(self, *, url: str, content_type: str = "json", body_template: str,
                 username: str | None = None, password: str | None = None, token: str | None = None,
                 success_field: str | None = None, success_value: str | None = None,
                 message_id_field: str | None = None, timeout_seconds: float = 30.0) -> None:
        self.url = url
        self.content_type = content_type
        self.template = parse_body_template(body_template)
        self.success_field = success_field
        self.success_value = success_value
        self.message_id_field = message_id_field
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif username is not None:
            raw = f"{username}:{password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        # httpx never retries a request by itself; redirects are not followed (a 3xx is an error).
        self._client = httpx.Client(timeout=timeout_seconds, headers=headers, follow_redirects=False,
                                    trust_env=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpGatewaySmsProvider:
        if not settings.sms_gateway_url:
            raise SmsConfigError("HULEI_SMS_GATEWAY_URL must be set for the http SMS provider")
        return cls(url=settings.sms_gateway_url, content_type=settings.sms_gateway_content_type,
                   body_template=settings.sms_gateway_body_template, username=settings.sms_gateway_username,
                   password=settings.sms_gateway_password, token=settings.sms_gateway_token,
                   success_field=settings.sms_gateway_success_field,
                   success_value=settings.sms_gateway_success_value,
                   message_id_field=settings.sms_gateway_message_id_field,
                   timeout_seconds=settings.sms_http_timeout_seconds)

    def close(self) -> None:
        self._client.close()

    def body(self, message: SmsMessage) -> Any:
        """The request body for one message (the rendered template)."""
        values = {
            "phone": message.phone,
            "text": message.text,
            "template_id": message.template_id or "",
            "request_id": message.request_id,
            # Chinese platforms mostly take yyyyMMddHHmmss in Beijing time.
            "timestamp": clock.now().astimezone(clock.SHANGHAI).strftime("%Y%m%d%H%M%S"),
        }
        return render_body(self.template, values)

    def _post(self, body: Any) -> httpx.Response:
        if self.content_type == "form":
            # Nested values (rare in form APIs) travel as their JSON text.
            form = {k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in body.items()}
            return self._client.post(self.url, data=form)
        return self._client.post(self.url, content=json.dumps(body, ensure_ascii=False).encode(),
                                 headers={"Content-Type": "application/json; charset=utf-8"})

    def send(self, messages: Sequence[SmsMessage]) -> list[SmsResult]:
        return [self._send_one(m) for m in messages]

    def _send_one(self, message: SmsMessage) -> SmsResult:
        refused = _refusal(message)
        if refused is not None:
            return refused
        try:
            response = self._post(self.body(message))
        except httpx.HTTPError as exc:
            log.warning("sms %s to %s: %s", message.key, mask_phone(message.phone), type(exc).__name__)
            error = f"{type(exc).__name__}"[:500]
            if isinstance(exc, httpx.ReadTimeout):
                return SmsResult(SmsOutcome.unconfirmed, error=error, may_have_arrived=True)
            # Nothing left this process (no connection, or none from the pool): safe to resend. Any
            # other transport error (a write timeout, a connection dropped while waiting for the
            # answer) may have come after the platform had the whole request.
            nothing_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
                                      | httpx.UnsupportedProtocol)
            return SmsResult(SmsOutcome.retry, error=error, may_have_arrived=not nothing_sent)
        # Errors name the status and the success field only: a gateway may echo the number in its body.
        status = response.status_code
        if status >= 500:  # commonly not processed, so retried; but it may have been sent first
            return SmsResult(SmsOutcome.retry, error=f"HTTP {status}", may_have_arrived=True)
        if status == 429:  # refused: throttled before anything was sent
            return SmsResult(SmsOutcome.retry, error=f"HTTP {status}")
        if not 200 <= status < 300:
            return SmsResult(SmsOutcome.failed, error=f"HTTP {status}")
        answer: Any = None
        if self.success_field or self.message_id_field:
            try:
                answer = response.json()
            except ValueError:
                answer = None
        if self.success_field:
            got = _field(answer, self.success_field)
            if got is None or str(got) != (self.success_value or ""):
                shown = str(got)[:40] if isinstance(got, str | int | float | bool) else "missing"
                return SmsResult(SmsOutcome.failed, error=f"{self.success_field}={shown}")
        message_id = _field(answer, self.message_id_field) if self.message_id_field else None
        log.info("sms %s to %s accepted", message.key, mask_phone(message.phone))
        return SmsResult(SmsOutcome.sent, message_id=str(message_id)[:200] if message_id is not None else None)


def build_sms_provider(settings: Settings) -> SmsProvider:
    """The provider the settings ask for (SmsConfigError when they cannot work)."""
    check_sms_settings(settings)
    if settings.sms_provider == "log":
        return LoggingSmsProvider()
    return HttpGatewaySmsProvider.from_settings(settings)


_providers: dict[str, SmsProvider] = {}
_lock = threading.Lock()


def get_sms_provider() -> SmsProvider:
    """The process-wide SMS provider for the current settings (built once per configuration, so
    the gateway's connections are reused)."""
    settings = get_settings()
    key = settings.model_dump_json()
    with _lock:
        provider = _providers.get(key)
        if provider is None:
            provider = _providers[key] = build_sms_provider(settings)
        return provider


def clear_sms_providers() -> None:
    """Forget built providers (tests change the settings)."""
    with _lock:
        built = list(_providers.values())
        _providers.clear()
    for provider in built:
        close = getattr(provider, "close", None)
        if callable(close):
            close()
