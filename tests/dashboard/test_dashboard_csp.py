"""The dashboard works under its Content-Security-Policy (issue 14): in a real browser, signed in as
the demo coordinator, the map draws the villages over the tiles of a configured base map on another
host, and the browser reports no violation of the policy."""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from PIL import Image
from sqlmodel import Session

from backend.demo.town import DEMO_PASSWORD, seed_demo

COORDINATOR_PHONE = "19900000003"


def _tile() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 220, 200)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def tile_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A base-map tile server on its own port (another origin than the dashboard's), configured as
    HULEI_BASEMAP_URL_TEMPLATE for the live server; yields the paths it was asked for."""
    tile, asked = _tile(), []

    class Tiles(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(tile)))
            self.end_headers()
            with contextlib.suppress(ConnectionError):  # Leaflet drops tiles it no longer needs
                self.wfile.write(tile)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HULEI_BASEMAP_URL_TEMPLATE", f"http://127.0.0.1:{server.server_port}/{{z}}/{{x}}/{{y}}.png")
    try:
        yield asked
    finally:
        server.shutdown()
        server.server_close()


def test_the_dashboard_runs_under_its_policy_with_a_base_map(
    tile_server: list[str], live_server: str, browser: Any, session: Session
) -> None:
    seed_demo(session)
    session.commit()
    page = browser.new_page(viewport={"width": 1200, "height": 800}, locale="zh-CN")
    page.add_init_script("window.__violations = [];"
                         "document.addEventListener('securitypolicyviolation', e => window.__violations.push("
                         "e.violatedDirective + ' ' + e.blockedURI));")
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(live_server + "/dashboard/")
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#phone", COORDINATOR_PHONE)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_function("() => document.querySelectorAll('path[data-unit-name]').length === 8")
    page.wait_for_function("() => document.querySelectorAll('img.leaflet-tile-loaded').length > 0")
    page.wait_for_selector(".legend i")  # the legend's colour swatches are styled inline
    page.wait_for_timeout(300)
    assert page.evaluate("window.__violations") == [] and console == [], (page.evaluate("window.__violations"),
                                                                          console)
    assert tile_server  # the tiles came from the base map's host
