"""Push providers: where a claimed outbox row is actually sent.

A provider takes a batch of messages (one per device) and answers, per message, whether it was
sent, should be retried later (transient trouble), names a dead token, or failed for good. The
outbox (delivery.py) turns those answers into state; callers never see providers, so a provider
for a mainland-China push service can be added beside FCM without touching them.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import logging
import os
import threading
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, Protocol, cast

from backend.core.config import Settings, get_settings

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    sent = "sent"
    retry = "retry"  # transient: 503/UNAVAILABLE, INTERNAL, timeouts, quota; try again later
    invalid_token = "invalid_token"  # noqa: S105 - UNREGISTERED or INVALID_ARGUMENT for the token: remove the device
    failed = "failed"  # permanent for this message


@dataclass(frozen=True)
class PushMessage:
    """One push to one device. `data` is the whole payload (ids and generic text only)."""

    key: int  # the outbox row
    token: str
    platform: str
    data: dict[str, str]
    channel: str = "fcm"  # backend.accounts.models.PushChannel
    # What a channel that drops a resend of the same id (OPPO appMessageId, vivo requestId) is given:
    # the same for every attempt of one outbox row, different for a row of the same id in another
    # database (a reset one, or another environment sharing the vendor's app): "<row>-<queued ms, hex>".
    dedupe_id: str = ""

    @property
    def resend_id(self) -> str:
        return self.dedupe_id or str(self.key)


@dataclass(frozen=True)
class ReceiptEvent:
    """What a channel's delivery receipt (回执) says about one push: delivered to the phone, or the
    token is dead. `outbox_id` is the row the push was sent for, when the channel echoes it back."""

    outbox_id: int | None
    token: str | None
    outcome: str  # "delivered" | "invalid_token"


@dataclass(frozen=True)
class PushResult:
    outcome: Outcome
    message_id: str | None = None
    error: str | None = None


class PushProvider(Protocol):
    """Anything that can send a batch of pushes."""

    name: str
    max_batch: int

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        """Send each message; one result per message, in order. Must not raise for per-message errors."""
        ...


def prepare_send(provider: PushProvider, messages: Sequence[PushMessage]) -> Callable[[], list[PushResult]]:
    """The send of `messages` as a call to make later. A provider whose batch takes visible work to
    encode (OPPO's 1,000 messages in one form field) has `prepare`, which does that work now, so the
    worker encodes the next batch while the current one is on the wire; for the others the call is
    just `send`."""
    prepare = getattr(provider, "prepare", None)
    if prepare is not None:
        return cast(Callable[[], list[PushResult]], prepare(messages))
    return lambda: provider.send(messages)


class LoggingProvider:
    """Development default: logs each push (ids and kind only) and reports it sent."""

    name = "log"
    max_batch = 500

    def __init__(self, name: str = "log") -> None:
        self.name = name

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        for m in messages:
            log.info("push %s via %s kind=%s notification=%s to %s device …%s", m.key, self.name, m.data.get("kind"),
                     m.data.get("notification_id"), m.platform, m.token[-6:])
        return [PushResult(Outcome.sent, message_id=f"log:{m.key}") for m in messages]


_TRANSIENT_CODES = frozenset({"UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "UNKNOWN",
                              "ABORTED"})


def classify_fcm_error(exc: Exception) -> Outcome:
    """Map a firebase-admin error to what the outbox should do with the message."""
    from firebase_admin import exceptions, messaging

    if isinstance(exc, messaging.UnregisteredError):
        return Outcome.invalid_token
    if isinstance(exc, messaging.QuotaExceededError):
        return Outcome.retry
    if isinstance(exc, exceptions.InvalidArgumentError):
        # FCM answers INVALID_ARGUMENT both for a malformed token and for a malformed message; only
        # the former says so ("The registration token is not a valid FCM registration token").
        return Outcome.invalid_token if "token" in str(exc).lower() else Outcome.failed
    if isinstance(exc, exceptions.FirebaseError) and exc.code in _TRANSIENT_CODES:
        return Outcome.retry
    if isinstance(exc, exceptions.FirebaseError):
        return Outcome.failed
    return Outcome.retry


class FcmProvider:
    """Firebase Cloud Messaging through firebase-admin (HTTP v1 API, `send_each`).

    Data messages with Android (high priority, TTL) and APNs (alert with generic text, mutable so
    the app may localise it) settings. The SDK's own blocking status retries are switched off for
    the FCM endpoint: the outbox retries with backoff instead, so one slow 503 never stalls a batch.
    """

    name = "fcm"
    max_batch = 500  # the FCM v1 send_each limit

    def __init__(self, *, credentials_file: str, project_id: str | None = None, endpoint: str | None = None,
                 timeout_seconds: float = 30.0, pool_size: int = 500) -> None:
        import firebase_admin
        from firebase_admin import credentials, messaging
        from requests.adapters import HTTPAdapter
        from requests.utils import get_environ_proxies
        from urllib3.util.retry import Retry

        options: dict[str, Any] = {"httpTimeout": timeout_seconds}
        if project_id:
            options["projectId"] = project_id
        self._app = firebase_admin.initialize_app(
            credentials.Certificate(credentials_file), options, name=f"hulei-push-{uuid.uuid4().hex}"
        )
        # firebase-admin reads its endpoint from _MessagingService; the override points it at a local
        # FCM-compatible server (tests, the benchmark) or a regional proxy.
        service = messaging._get_messaging_service(self._app)
        base = (endpoint or "https://fcm.googleapis.com").rstrip("/")
        service._fcm_url = f"{base}/v1/projects/{service._project_id}/messages:send"
        # A read retry could deliver twice (request arrived, answer lost), so only connect errors retry here.
        no_status_retry = Retry(total=1, connect=1, read=0, status=0, other=0, allowed_methods=None,
                                raise_on_status=False)
        session = service._client.session
        session.mount(base, HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size,
                                        max_retries=no_status_retry))
        # requests re-reads proxy and CA settings from the environment on every call (about a third
        # of the CPU per push at volume); read them once here instead, with the same meaning.
        session.proxies.update(get_environ_proxies(base + "/"))  # honours NO_PROXY for the endpoint
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            session.verify = bundle
        session.trust_env = False
        self._messaging = messaging

    def close(self) -> None:
        import firebase_admin

        firebase_admin.delete_app(self._app)

    def build(self, message: PushMessage) -> Any:
        """The firebase-admin Message for one push."""
        m = self._messaging
        data = message.data
        with warnings.catch_warnings():
            # firebase-admin 7.x deprecates `token` in favour of installation ids (`fid`); the phones
            # register FCM registration tokens, which the v1 API still takes as `token`.
            warnings.simplefilter("ignore", DeprecationWarning)
            return self._message(m, message.token, data)

    @staticmethod
    def _message(m: Any, token: str, data: dict[str, str]) -> Any:
        return m.Message(
            token=token,
            data=dict(data),
            android=m.AndroidConfig(priority="high", ttl=timedelta(days=2), collapse_key=None),
            apns=m.APNSConfig(
                headers={"apns-priority": "10", "apns-push-type": "alert"},
                payload=m.APNSPayload(
                    aps=m.Aps(alert=m.ApsAlert(title=data.get("title_zh"), body=data.get("body_zh")),
                              sound="default", content_available=True, mutable_content=True,
                              thread_id=data.get("kind")),
                ),
            ),
        )

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        if not messages:
            return []
        batch = [self.build(msg) for msg in messages]
        try:
            response = self._messaging.send_each(batch, app=self._app)
        except Exception as exc:  # the whole call failed: every message is retried later
            log.warning("FCM send_each failed: %s", exc)
            return [PushResult(Outcome.retry, error=f"{type(exc).__name__}: {exc}"[:500]) for _ in messages]
        results: list[PushResult] = []
        for resp in response.responses:
            if resp.success:
                results.append(PushResult(Outcome.sent, message_id=resp.message_id))
            else:
                error = resp.exception
                results.append(PushResult(classify_fcm_error(error),
                                          error=f"{getattr(error, 'code', '')}: {error}"[:500]))
        return results


class UnconfiguredChannel:
    """A vendor channel without credentials outside development: every push to it fails at once
    (the inbox keeps the notification and a critical one still falls back to SMS)."""

    max_batch = 500

    def __init__(self, channel: str) -> None:
        self.name = channel

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        return [PushResult(Outcome.failed, error=f"channel {self.name} not configured") for _ in messages]


def build_provider(settings: Settings) -> PushProvider:
    """The provider the settings ask for."""
    if settings.push_provider == "log":
        return LoggingProvider()
    if settings.push_provider == "fcm":
        if not settings.fcm_credentials_file:
            raise RuntimeError("HULEI_FCM_CREDENTIALS_FILE must name a service-account JSON for the fcm provider")
        return FcmProvider(credentials_file=settings.fcm_credentials_file, project_id=settings.fcm_project_id,
                           endpoint=settings.fcm_endpoint, timeout_seconds=settings.push_http_timeout_seconds)
    raise RuntimeError(f"unknown push provider {settings.push_provider!r}")


@lru_cache(maxsize=4)
def _cached_provider(provider: str, credentials_file: str | None, project_id: str | None,
                     endpoint: str | None, timeout: float) -> PushProvider:
    return build_provider(get_settings())


def get_provider() -> PushProvider:
    """The process-wide provider for the current settings (built once per configuration)."""
    s = get_settings()
    return _cached_provider(s.push_provider, s.fcm_credentials_file, s.fcm_project_id, s.fcm_endpoint,
                            s.push_http_timeout_seconds)


def build_channel_provider(settings: Settings, channel: str) -> PushProvider:
    """The provider for one push channel. FCM is `build_provider`; each vendor channel is built by
    `backend.notifications.vendors.<channel>.from_settings`, which answers None when its credentials
    are not set."""
    if channel == "fcm":
        return build_provider(settings)
    module = importlib.import_module(f"backend.notifications.vendors.{channel}")
    provider: PushProvider | None = module.from_settings(settings)
    if provider is not None:
        return provider
    if settings.push_provider == "log":
        return LoggingProvider(channel)
    return UnconfiguredChannel(channel)


_channel_providers: dict[tuple[str, str], PushProvider] = {}
_channel_lock = threading.Lock()


def provider_for(channel: str) -> PushProvider:
    """The process-wide provider of a channel for the current settings (built once per configuration,
    so OAuth tokens and HTTP connections are reused across batches)."""
    settings = get_settings()
    if channel == "fcm":
        return get_provider()
    key = (channel, settings.model_dump_json())
    with _channel_lock:
        provider = _channel_providers.get(key)
        if provider is None:
            provider = _channel_providers[key] = build_channel_provider(settings, channel)
        return provider


def clear_channel_providers() -> None:
    """Forget built channel providers (tests change the settings)."""
    with _channel_lock:
        built = list(_channel_providers.values())
        _channel_providers.clear()
    for provider in built:
        close = getattr(provider, "close", None)
        if callable(close):
            close()


def receipt_url(channel: str, settings: Settings | None = None) -> str | None:
    """Where a channel posts its delivery receipts for our pushes, or None when no public base URL
    is configured or we read no receipts of that channel (its vendor module has no `parse_receipts`:
    a vendor is never asked to call a URL that answers 404). The path carries a key derived from the
    master secret: receipts are accepted only at the URL we gave the channel
    (POST /api/v1/push-receipts/{channel}/{key})."""
    settings = settings or get_settings()
    if not settings.push_receipt_base_url or receipt_parser(channel) is None:
        return None
    base = settings.push_receipt_base_url.rstrip("/")
    return f"{base}/api/v1/push-receipts/{channel}/{receipt_key(channel, settings)}"


def receipt_parser(channel: str) -> Callable[[bytes, str], list[ReceiptEvent]] | None:
    """The channel's receipt parser (`backend.notifications.vendors.<channel>.parse_receipts`), or
    None for a channel whose receipts we do not read. `channel` must be a known channel name (the
    receipt route checks it before calling): it names the module imported."""
    try:
        module = importlib.import_module(f"backend.notifications.vendors.{channel}")
    except ModuleNotFoundError:
        return None
    parse = getattr(module, "parse_receipts", None)
    return cast(Callable[[bytes, str], list[ReceiptEvent]], parse) if callable(parse) else None


def receipt_key(channel: str, settings: Settings | None = None) -> str:
    """The key in a channel's receipt URL (compare with hmac.compare_digest)."""
    from backend.core.secrets import Purpose, purpose_key

    return hmac.new(purpose_key(Purpose.push_receipt, settings), channel.encode(), hashlib.sha256).hexdigest()[:40]
