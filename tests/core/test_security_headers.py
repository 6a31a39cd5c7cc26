"""Every answer carries the browser's security headers; personal data is never cached; the API's
interactive documentation is off in production unless enabled (issue 14)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.config import get_settings
from backend.main import create_app
from backend.media.storage import DERIVED_PREFIX, get_storage
from tests.core.test_secrets import GOOD
from tests.factories import TEST_PASSWORD, make_town, make_user
from tests.notifications.factories import headers_for


def _directives(csp: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def _assert_browser_headers(headers: object) -> None:
    h = dict(headers)  # type: ignore[call-overload]
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"
    assert h["x-frame-options"] == "DENY"
    assert _directives(h["content-security-policy"])["frame-ancestors"] == ["'none'"]


def test_api_answers_carry_the_headers_and_are_never_stored(client: TestClient, session: Session) -> None:
    town = make_town(session)
    volunteer = make_user(session, town.villages[0], Role.volunteer)
    for resp in (client.get("/api/v1/me", headers=headers_for(session, volunteer)),  # a person's record
                 client.get("/api/v1/me"),  # a problem answer
                 client.get(f"/api/v1/users/{volunteer.id}", headers=headers_for(session, volunteer))):
        _assert_browser_headers(resp.headers)
        assert resp.headers["cache-control"] == "no-store", resp.request.url
        csp = _directives(resp.headers["content-security-policy"])
        assert csp["default-src"] == ["'none'"]
    assert "strict-transport-security" not in client.get("/api/v1/me").headers  # plain http: no HSTS


def test_the_early_refusals_carry_the_headers_too(
    session: Session, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """413, 408 and 429 from the body reception and 503 from the cap in flight are answers like any."""
    town = make_town(session)
    user = make_user(session, town.villages[0], Role.volunteer)
    session.commit()
    for name, value in {"REQUEST_BODY_TIMEOUT_SECONDS": "0.3", "REQUEST_BODY_IDLE_SECONDS": "0.3",
                        "REQUEST_BODY_RECEPTIONS_PER_CLIENT": "1", "API_MAX_IN_FLIGHT": "1"}.items():
        monkeypatch.setenv(f"HULEI_{name}", value)
    get_settings.cache_clear()
    app = create_app()
    login = {"phone": user.phone, "password": TEST_PASSWORD}
    login_body = f'{{"phone": "{user.phone}", "password": "{TEST_PASSWORD}"}}'.encode()

    async def scenario() -> dict[str, httpx.Response]:
        release = asyncio.Event()

        async def stalled() -> AsyncIterator[bytes]:
            yield b"{"
            await release.wait()
            yield login_body[1:]

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            out = {"413": await client.post("/api/v1/auth/login", content=b"{}",
                                            headers={"Content-Length": "67108864"}),
                   "408": await client.post("/api/v1/auth/login", content=stalled())}
            # One body still arriving from this address: a second one from it is told to wait.
            first = asyncio.create_task(client.post("/api/v1/auth/login", content=stalled()))
            await asyncio.sleep(0.05)
            out["429"] = await client.post("/api/v1/auth/login", json=login)
            release.set()
            await first
            # Logins in flight at once (password hashing runs on a thread): all but one are turned away.
            answers = await asyncio.gather(*(client.post("/api/v1/auth/login", json=login) for _ in range(6)))
            out["503"] = next(a for a in answers if a.status_code == 503)
        return out

    refusals = asyncio.run(scenario())
    get_settings.cache_clear()
    for status, resp in refusals.items():
        assert resp.status_code == int(status), resp.text
        _assert_browser_headers(resp.headers)
        assert resp.headers["cache-control"] == "no-store", status
        assert _directives(resp.headers["content-security-policy"])["default-src"] == ["'none'"]


def test_hsts_is_sent_only_over_tls(database_url: str) -> None:
    app = create_app()
    with TestClient(app, base_url="https://hulei.example") as tls:
        hsts = tls.get("/healthz").headers["strict-transport-security"]
        assert hsts.startswith("max-age=") and int(hsts.split("=")[1].split(";")[0]) >= 31536000
        assert "strict-transport-security" in tls.get("/api/v1/me").headers
    with TestClient(app, base_url="http://hulei.example") as plain:
        assert "strict-transport-security" not in plain.get("/healthz").headers


def test_the_dashboard_page_is_framed_by_nobody_and_runs_only_its_own_scripts(client: TestClient) -> None:
    page = client.get("/dashboard/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    _assert_browser_headers(page.headers)
    csp = _directives(page.headers["content-security-policy"])
    assert csp["script-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    for asset in ("/dashboard/app.js", "/dashboard/vendor/leaflet/leaflet.js", "/dashboard/app.css"):
        _assert_browser_headers(client.get(asset).headers)


def test_the_configured_base_map_may_load_its_tiles(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HULEI_BASEMAP_URL_TEMPLATE",
                       "https://webrd0{s}.is.autonavi.com/appmaptile?style=8&x={x}&y={y}&z={z}")
    monkeypatch.setenv("HULEI_BASEMAP_SUBDOMAINS", "1234")
    get_settings.cache_clear()
    with TestClient(create_app()) as c:
        img = _directives(c.get("/dashboard/").headers["content-security-policy"])["img-src"]
    assert "https://*.is.autonavi.com" in img and "'self'" in img
    monkeypatch.setenv("HULEI_BASEMAP_URL_TEMPLATE", "https://t0.tianditu.gov.cn:8443/vec_w/wmts?x={x}&y={y}&l={z}")
    get_settings.cache_clear()
    with TestClient(create_app()) as c:
        img = _directives(c.get("/dashboard/").headers["content-security-policy"])["img-src"]
    assert "https://t0.tianditu.gov.cn:8443" in img
    get_settings.cache_clear()


def test_a_photo_link_keeps_private_short_caching(client: TestClient, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A derivative behind a five-minute signed link may sit in the phone's own cache, never a shared one."""
    monkeypatch.setenv("HULEI_MEDIA_ROOT", str(tmp_path / "media"))
    monkeypatch.setenv("HULEI_MEDIA_STORAGE", "local")
    get_settings.cache_clear()
    key = f"{DERIVED_PREFIX}ab/photo-display.jpg"
    storage = get_storage()
    storage.put_bytes(key, b"\xff\xd8\xff\xe0 not really a jpeg", "image/jpeg")
    url = storage.signed_url(key, expires_at=clock.now() + timedelta(minutes=5), content_type="image/jpeg",
                             filename="photo.jpg")
    resp = client.get(url)
    assert resp.status_code == 200
    _assert_browser_headers(resp.headers)
    assert resp.headers["cache-control"] == "private, max-age=300"


# ---------------------------------------------------------------- documentation in production


@pytest.fixture
def production(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name, value in GOOD.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_production_serves_no_api_documentation_unless_enabled(production: pytest.MonkeyPatch) -> None:
    with TestClient(create_app()) as c:
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
            assert c.get(path).status_code == 404, path
        assert c.get("/healthz").status_code == 200
    production.setenv("HULEI_API_DOCS", "true")
    get_settings.cache_clear()
    with TestClient(create_app()) as c:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert c.get(path).status_code == 200, path
        docs = c.get("/docs")
        _assert_browser_headers(docs.headers)


def test_the_spec_is_exported_whatever_the_documentation_setting(production: pytest.MonkeyPatch) -> None:
    from backend.spec import render_openapi

    assert '"/api/v1/me"' in render_openapi()


def test_development_serves_the_documentation(client: TestClient) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 200, path
