"""Security headers on every answer (ASGI middleware).

Every answer: `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` (URLs carry ids and,
for calendar feeds and photo links, credentials), `X-Frame-Options: DENY` and a Content-Security-Policy
with `frame-ancestors 'none'` (nobody frames the dashboard to click on a coordinator's behalf), and
`Strict-Transport-Security` when the request came over TLS (the ASGI scheme; behind the proxy uvicorn
sets it from X-Forwarded-Proto when the proxy is trusted).

The policy differs by what is served:
- the API and everything else: `default-src 'none'` (JSON, files and calendars run nothing);
- the dashboard (/dashboard): its own scripts, styles and images only, plus the tiles of the
  configured base map (HULEI_BASEMAP_URL_TEMPLATE); `style-src` allows inline styles because Leaflet
  positions tiles and markers through style attributes (scripts stay 'self' only);
- the interactive documentation (/docs, /redoc, when served): Swagger UI and ReDoc load from the
  jsDelivr CDN with an inline start-up script.

Answers under /api/ that set no Cache-Control of their own get `Cache-Control: no-store`: nearly
all of them carry personal data or depend on who asks. Routes that choose their own keep it (photo
derivatives behind a five-minute signed link are `private, max-age=300`: the phone's cache only).
A header a route set itself is never replaced.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS = "max-age=31536000"
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
            "font-src 'self' data: https://fonts.gstatic.com; "
            "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
            "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'none'")
_COMMON = (("x-content-type-options", "nosniff"), ("referrer-policy", "no-referrer"),
           ("x-frame-options", "DENY"))
_HOST_SOURCE = re.compile(r"^[a-z0-9*.-]+(:[0-9]+)?$")


def basemap_source(url_template: str | None) -> str | None:
    """The CSP source that admits a Leaflet tile URL template's host ("{s}" in the first label becomes
    "*"): https://webrd0{s}.is.autonavi.com/... gives https://*.is.autonavi.com."""
    if not url_template:
        return None
    parts = urlsplit(url_template)
    scheme = (parts.scheme or "https").lower()
    if scheme not in ("http", "https"):
        return None
    host = parts.netloc.rsplit("@", 1)[-1].lower()
    labels = host.split(".")
    if labels and "{" in labels[0]:
        labels[0] = "*"
    host = ".".join(labels)
    if not host or "{" in host or not _HOST_SOURCE.match(host):
        return f"{scheme}:"  # a placeholder elsewhere in the host: the scheme is the narrowest source
    return f"{scheme}://{host}"


def dashboard_csp(url_template: str | None) -> str:
    """The dashboard page's policy, admitting the base map's tiles when one is configured."""
    tiles = basemap_source(url_template)
    img = "img-src 'self' data:" + (f" {tiles}" if tiles else "")
    return ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " + img + "; "
            "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")


class SecurityHeaders:
    """ASGI middleware adding the headers above to every HTTP answer."""

    def __init__(self, app: ASGIApp, *, dashboard_prefix: str = "/dashboard", docs_paths: Iterable[str] = (),
                 basemap_url_template: str | None = None, no_store_prefix: str = "/api/") -> None:
        self.app = app
        self.dashboard_prefix = dashboard_prefix
        self.docs_paths = frozenset(docs_paths)
        self.no_store_prefix = no_store_prefix
        self.policies = {"api": API_CSP, "dashboard": dashboard_csp(basemap_url_template), "docs": DOCS_CSP}

    def _kind(self, path: str) -> str:
        if path == self.dashboard_prefix or path.startswith(self.dashboard_prefix + "/"):
            return "dashboard"
        return "docs" if path in self.docs_paths else "api"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        extra = [*_COMMON, ("content-security-policy", self.policies[self._kind(path)])]
        if scope.get("scheme") == "https":
            extra.append(("strict-transport-security", HSTS))
        if path.startswith(self.no_store_prefix):
            extra.append(("cache-control", "no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra:
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
