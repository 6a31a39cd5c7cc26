"""The calendar feed's GEO is RFC 5545 FLOAT (digits, one point, no exponent) with at most 6 decimals
(about 0.1 m): never the float noise of the stored point (GEO:23.1;108.30069999999999)."""

from __future__ import annotations

import math
import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session

from backend.core.geo import point
from backend.schedules.service import _ics_float
from backend.venues.models import Venue
from backend.venues.service import lon_lat
from tests.schedules.test_schedule_api import _login, _seed

GEO = re.compile(r"^GEO:(-?[0-9]+(?:\.[0-9]{1,6})?);(-?[0-9]+(?:\.[0-9]{1,6})?)$")


def test_the_feeds_geo_has_at_most_six_decimals_and_no_float_noise(client: TestClient, session: Session) -> None:
    town_id = _seed(session)
    coordinator = _login(client, "演示乡镇协调员")
    plan = client.post("/api/v1/schedules/generate", json={"org_unit_id": town_id}, headers=coordinator).json()
    assert client.post(f"/api/v1/schedules/{plan['id']}/publish", headers=coordinator).status_code == 200
    # Every venue a hair off a 4-decimal point: the float whose repr is 108.30069999999999-like noise.
    stored: dict[str, tuple[float, float]] = {}
    for venue in session.execute(select(Venue)).scalars():
        lon, lat = lon_lat(venue)
        lon, lat = math.nextafter(round(lon, 4), -math.inf), math.nextafter(round(lat, 4), math.inf)
        assert len(repr(lon)) > 12 and len(repr(lat)) > 12
        venue.location = point(lon, lat)
        session.add(venue)
        stored[f"{lat!r};{lon!r}"] = (lat, lon)
    session.commit()

    url = client.get("/api/v1/schedules/feed-url", headers=_login(client, "演示民警")).json()["url"]
    feed = client.get(url.split("testserver", 1)[1])
    assert feed.status_code == 200
    lines = [line for line in feed.text.split("\r\n") if line.startswith("GEO:")]
    assert lines, feed.text
    for line in lines:
        match = GEO.match(line)
        assert match is not None, line
        lat, lon = float(match.group(1)), float(match.group(2))
        assert any(abs(lat - a) <= 5e-7 and abs(lon - b) <= 5e-7 for a, b in stored.values()), line


def test_a_coordinate_is_written_as_a_plain_decimal() -> None:
    assert _ics_float(108.30069999999999) == "108.3007"
    assert _ics_float(23.1) == "23.1"
    assert _ics_float(-33.86881234567) == "-33.868812"
    assert _ics_float(100.0) == "100"
    assert _ics_float(1e-07) == "0" and _ics_float(-1e-07) == "0" and _ics_float(-0.0) == "0"
    assert _ics_float(1.5e-06) == "0.000002"
