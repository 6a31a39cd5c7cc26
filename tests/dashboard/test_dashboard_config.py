"""The page's settings endpoint and the server's GCJ-02 shift against published reference points."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from backend.core import clock
from backend.core.config import get_settings
from backend.core.geo import gcj02_to_wgs84, wgs84_to_gcj02


def test_without_a_base_layer_the_page_gets_none(client: TestClient) -> None:
    body = client.get("/api/v1/dashboard/config").json()
    assert {k: body[k] for k in ("default_locale", "base_layer")} == {"default_locale": "zh-CN", "base_layer": None}


@pytest.mark.parametrize(("instant", "today", "monday", "month"), [
    # The report month is the current China month under the default due rule (same_month, seed 002).
    # 07:30 China time on Monday 1 June is still Sunday 31 May in UTC.
    (datetime(2026, 5, 31, 23, 30, tzinfo=UTC), "2026-06-01", "2026-06-08", "2026-06"),
    # 23:30 China time on Sunday 31 May.
    (datetime(2026, 5, 31, 15, 30, tzinfo=UTC), "2026-05-31", "2026-06-01", "2026-05"),
    # 00:00 China time on 1 January: already the new year's January.
    (datetime(2026, 12, 31, 16, 0, tzinfo=UTC), "2027-01-01", "2027-01-04", "2027-01"),
])
def test_the_page_gets_china_dates_at_every_hour(
    client: TestClient, instant: datetime, today: str, monday: str, month: str
) -> None:
    clock.freeze(instant)
    body = client.get("/api/v1/dashboard/config").json()
    assert (body["china_today"], body["next_monday"], body["report_month"]) == (today, monday, month)


def test_a_gcj02_base_layer_is_announced_to_the_page(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HULEI_BASEMAP_URL_TEMPLATE", "http://tiles.intranet.example/{z}/{x}/{y}.png")
    monkeypatch.setenv("HULEI_BASEMAP_GCJ02", "true")
    monkeypatch.setenv("HULEI_BASEMAP_SUBDOMAINS", "1234")
    get_settings.cache_clear()
    layer = client.get("/api/v1/dashboard/config").json()["base_layer"]
    assert layer["gcj02"] is True and layer["subdomains"] == "1234"
    assert layer["url_template"].endswith("{z}/{x}/{y}.png")


def test_server_shift_matches_the_gcoord_reference_point() -> None:
    lon, lat = wgs84_to_gcj02(123, 45)
    assert abs(lon - 123.00607541) < 1e-8 and abs(lat - 45.00197815) < 1e-8
    back = gcj02_to_wgs84(123.00607541, 45.00197815)
    assert abs(back[0] - 123) < 1e-7 and abs(back[1] - 45) < 1e-7


def test_dashboard_page_and_local_leaflet_are_served(client: TestClient) -> None:
    page = client.get("/dashboard", follow_redirects=True)
    assert page.status_code == 200 and "vendor/leaflet/leaflet.js" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    leaflet = client.get("/dashboard/vendor/leaflet/leaflet.js")
    assert leaflet.status_code == 200 and "Leaflet" in leaflet.text[:400]
