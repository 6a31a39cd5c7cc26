"""A local stand-in for HarmonyOS NEXT Push Kit's v3 send endpoint (场景化消息), speaking the protocol
described in backend/notifications/vendors/harmony.py, for the tests.

- POST /v3/{projectId}/messages:send. The bearer token must be a JWT signed PS256 with the private
  key of the test service account (a key pair generated when the fake starts; the fake holds only
  its public key), header kid = key id and typ JWT, claims iss = sub account, aud = Huawei's token
  URI, iat/exp with exp - iat at most a day (else 80300036); otherwise HTTP 401 80200001, and a JWT
  past its exp or revoked gets 401 80200005. Another project gets 80300002.
- Header push-type must be "0" (80100001), the body {"payload": {"notification": {"category",
  "title", "body", "clickAction": {"actionType", "data"?}}}, "target": {"token": [1..1000]},
  "pushOptions": {"testMessage"?, "ttl"?, "biTag"?}} (80100003 / 80300010 / 80300008 over 4096
  bytes without the tokens).
- Per token, a scripted (then succeeding) or permanent error: INVALID_TOKEN (illegalTokens reason
  tokenFormatError), STALE_TOKEN (noRight: a token from before the upgrade to NEXT),
  NO_PUSH_TYPE_RIGHT (noPushTypeRight: the project lacks the right) — 400 80300007 when every token
  has one, else 200 80100000 — RATE_LIMIT (HTTP 503 flow control), SERVER_ERROR (500 81000001),
  AUTH_REFUSED (revokes every JWT seen so far, 401 80200005), NO_PERMISSION (400 80300002).
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

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.notifications.fake_http import Reply, RunningFake, serve

PROJECT_ID = "388421841221900001"
KEY_ID = "fake-harmony-key-1"
SUB_ACCOUNT = "1074301234567"
AUDIENCE = "https://oauth-login.cloud.huawei.com/oauth2/v3/token"
CATEGORIES = frozenset({"IM", "VOIP", "SUBSCRIPTION", "TRAVEL", "HEALTH", "WORK", "ACCOUNT", "EXPRESS", "FINANCE",
                        "DEVICE_REMINDER", "SYSTEM_REMINDER", "MAIL", "CUSTOMER_SERVICE", "MARKETING", "PLAY_VOICE"})
_SEND_PATH = re.compile(r"^/v3/(?P<project>[^/]+)/messages:send$")
_REASONS = {"INVALID_TOKEN": "tokenFormatError", "STALE_TOKEN": "noRight", "NO_PUSH_TYPE_RIGHT": "noPushTypeRight"}


def new_key_pair() -> tuple[str, Any]:
    """A fresh RSA key: (PKCS#8 PEM of the private key, the public key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return pem, key.public_key()


def reply(code: str, msg: str, status: int = 200, request_id: str = "") -> Reply:
    return status, {"code": code, "msg": msg, "requestId": request_id or str(int(time.time() * 1000))}


@dataclass
class FakeHarmony:
    """What arrived, which JWTs were seen and revoked, what to answer for which device token."""

    private_key_pem: str
    public_key: Any
    project_id: str = PROJECT_ID
    key_id: str = KEY_ID
    sub_account: str = SUB_ACCOUNT
    base_url: str = ""
    delivered: list[dict[str, Any]] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    scripted: dict[str, deque[str]] = field(default_factory=dict)
    permanent: dict[str, str] = field(default_factory=dict)
    jwts_seen: list[dict[str, Any]] = field(default_factory=list)  # {"header", "claims"} of each new JWT
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _seen: set[str] = field(default_factory=set)
    _revoked: set[str] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def tokens_issued(self) -> int:
        """How many different JWTs the provider has signed and sent (the contract's word)."""
        with self.lock:
            return len(self.jwts_seen)

    def reset(self) -> None:
        with self.lock:
            self.delivered.clear()
            self.attempts.clear()
            self.scripted.clear()
            self.permanent.clear()
            self.jwts_seen.clear()
            self.requests = 0
            self._seen.clear()
            self._revoked.clear()

    def fail_next(self, token: str, *errors: str) -> None:
        with self.lock:
            self.scripted[token] = deque(errors)

    def always_fail(self, token: str, error: str) -> None:
        with self.lock:
            self.permanent[token] = error

    def revoke_jwts(self) -> None:
        """Every JWT seen so far stops working (as when its hour is up)."""
        with self.lock:
            self._revoked |= self._seen

    def delivered_to(self, token: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.delivered if m.get("token") == token]

    # -- request handling (server threads)

    def check_jwt(self, authorization: str) -> Reply | None:
        """Why the bearer JWT is refused, or None."""
        if not authorization.startswith("Bearer "):
            return reply("80200001", "Authentication Error.", 401)
        token = authorization[7:]
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, self.public_key, algorithms=["PS256"], audience=AUDIENCE,
                                issuer=self.sub_account, options={"require": ["iss", "aud", "iat", "exp"]},
                                leeway=5)
        except jwt.ExpiredSignatureError:
            return reply("80200005", "Jwt token expired.", 401)
        except jwt.PyJWTError as exc:
            return reply("80200001", f"Authentication Error. {type(exc).__name__}", 401)
        if header.get("kid") != self.key_id or header.get("typ") != "JWT" or header.get("alg") != "PS256":
            return reply("80200001", "Authentication Error. header", 401)
        if int(claims["exp"]) - int(claims["iat"]) > 86400:
            return reply("80300036", "JWT expire period over threshold.", 400)
        with self.lock:
            if token in self._revoked:
                return reply("80200005", "Jwt token expired.", 401)
            if token not in self._seen:
                self._seen.add(token)
                self.jwts_seen.append({"header": header, "claims": claims})
        return None

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
            if "AUTH_REFUSED" in found.values():
                self._revoked |= self._seen  # really gone: a resend must sign a new one
        return found

    def send(self, project: str, headers: Any, raw: bytes) -> Reply:
        with self.lock:
            self.requests += 1
        refused = self.check_jwt(headers.get("Authorization") or "")
        if refused is not None:
            return refused
        if project != self.project_id:
            return reply("80300002", "No permission to send message to these tmIDs.", 400)
        if "application/json" not in (headers.get("Content-Type") or ""):
            return reply("80100001", "Check Parameter Error. Content-Type", 400)
        if headers.get("push-type") != "0":
            return reply("80100001", "Check Parameter Error. push-type", 400)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return reply("80100003", "Illegal payload, not JSON", 400)
        if not isinstance(body, dict):
            return reply("80100003", "Illegal payload, not an object", 400)
        target = body.get("target")
        tokens = target.get("token") if isinstance(target, dict) else None
        if not isinstance(tokens, list) or not 1 <= len(tokens) <= 1000 or not all(isinstance(t, str) for t in tokens):
            return reply("80300010", "token count should within 1 and 1000.", 400)
        problem = _payload_problem(body)
        if problem:
            return reply("80100003", f"Illegal payload, {problem}", 400)
        without_tokens = dict(body, target={"token": []})
        if len(json.dumps(without_tokens, ensure_ascii=False, separators=(",", ":")).encode()) > 4096:
            return reply("80300008", "Push message size is too long.", 400)
        errors = self.errors_for(tokens)
        if "AUTH_REFUSED" in errors.values():
            return reply("80200005", "Jwt token expired.", 401)
        if "SERVER_ERROR" in errors.values():
            return reply("81000001", "Inner Error.", 500)
        if "RATE_LIMIT" in errors.values():
            return 503, {"msg": "flow control"}
        if "NO_PERMISSION" in errors.values():
            return reply("80300002", "No permission to send message to these tmIDs.", 400)
        illegal: dict[str, list[str]] = defaultdict(list)
        for token in tokens:
            reason = _REASONS.get(errors.get(token, ""))
            if reason:
                illegal[reason].append(token)
        failed = sum(len(v) for v in illegal.values())
        detail = json.dumps({"success": len(tokens) - failed, "failure": failed, "illegalTokens": illegal})
        if failed == len(tokens):
            return reply("80300007", detail, 400)
        bad = {t for v in illegal.values() for t in v}
        notification = body["payload"]["notification"]
        data = notification["clickAction"].get("data") or {}
        with self.lock:
            for token in tokens:
                if token not in bad:
                    self.delivered.append({"token": token, "data": data, "message": body,
                                           "push_type": headers.get("push-type"), "path": f"/v3/{project}"})
            request_id = f"{int(time.time() * 1000)}{next(self._ids):08d}"
        if failed:
            return reply("80100000", detail, 200, request_id)
        return reply("80000000", "Success", 200, request_id)


def _payload_problem(body: dict[str, Any]) -> str | None:
    """Why an Alert (push-type 0) body is malformed, or None."""
    payload = body.get("payload")
    notification = payload.get("notification") if isinstance(payload, dict) else None
    if not isinstance(notification, dict):
        return "payload.notification missing"
    if notification.get("category") not in CATEGORIES:
        return "category invalid"
    if not notification.get("title") or not notification.get("body"):
        return "notification needs a title and a body"
    click = notification.get("clickAction")
    if not isinstance(click, dict) or click.get("actionType") not in (0, 1, 3):
        return "clickAction.actionType invalid"
    if "data" in click and not isinstance(click["data"], dict):
        return "clickAction.data must be an object"
    options = body.get("pushOptions", {})
    if not isinstance(options, dict):
        return "pushOptions must be an object"
    if "testMessage" in options and not isinstance(options["testMessage"], bool):
        return "testMessage must be a boolean"
    ttl = options.get("ttl", 86400)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= 1296000:
        return "ttl must be 1..1296000 seconds"
    tag = options.get("biTag", "")
    if not isinstance(tag, str) or len(tag.encode()) > 64:
        return "biTag must be a string of at most 64 bytes"
    return None


def _route(fake: FakeHarmony) -> Any:
    def route(path: str, headers: Any, raw: bytes) -> Reply:
        match = _SEND_PATH.match(path)
        if match is None:
            return 404, {"code": "404", "msg": "no such path"}
        return fake.send(match["project"], headers, raw)
    return route


@dataclass
class RunningFakeHarmony(RunningFake):
    fake: FakeHarmony


def start_fake_harmony() -> RunningFakeHarmony:
    """Start the fake Push Kit v3 on a free port, with a new test key pair."""
    pem, public_key = new_key_pair()
    fake = FakeHarmony(private_key_pem=pem, public_key=public_key)
    server, thread = serve(fake, _route(fake), "fake-harmony")
    return RunningFakeHarmony(fake, server, thread)


def service_account_json(fake: FakeHarmony) -> dict[str, str]:
    """The service-account key file as AppGallery Connect issues it (its shape), for the fake."""
    return {
        "project_id": fake.project_id, "key_id": fake.key_id, "private_key": fake.private_key_pem,
        "sub_account": fake.sub_account, "auth_uri": "https://oauth-login.cloud.huawei.com/oauth2/v3/authorize",
        "token_uri": AUDIENCE, "auth_provider_cert_uri": "https://oauth-login.cloud.huawei.com/oauth2/v3/certs",
        "client_cert_uri": "https://oauth-login.cloud.huawei.com/oauth2/v3/x509?client_id=",
    }


def settings_env(running: RunningFakeHarmony) -> dict[str, str]:
    """The HULEI_* settings that point the HarmonyOS NEXT provider at the fake (the key's fields
    one by one; test_vendor_harmony also configures it through a key file)."""
    fake = running.fake
    return {
        "HULEI_HARMONY_PROJECT_ID": fake.project_id,
        "HULEI_HARMONY_KEY_ID": fake.key_id,
        "HULEI_HARMONY_SUB_ACCOUNT": fake.sub_account,
        "HULEI_HARMONY_PRIVATE_KEY": fake.private_key_pem,
        "HULEI_HARMONY_PUSH_ENDPOINT": running.base_url,
    }
