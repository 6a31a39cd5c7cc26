"""Coordinate systems and distances."""

from __future__ import annotations

import pytest

from backend.core.geo import CoordinateSystem, distance_m, gcj02_to_wgs84, to_wgs84, wgs84_to_gcj02


def test_gcj02_shift_is_hundreds_of_metres_in_china() -> None:
    lon, lat = 116.397428, 39.90923  # Tian'anmen, WGS-84
    glon, glat = wgs84_to_gcj02(lon, lat)
    shift = distance_m(lon, lat, glon, glat)
    assert 100 < shift < 700


@pytest.mark.parametrize(("lon", "lat"), [(116.397428, 39.90923), (108.33, 30.02), (121.4737, 31.2304),
                                          (87.6168, 43.8256)])
def test_gcj02_inverse_round_trips_to_a_centimetre(lon: float, lat: float) -> None:
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert distance_m(lon, lat, *back) < 0.01


def test_outside_china_nothing_is_shifted() -> None:
    assert wgs84_to_gcj02(2.35, 48.85) == (2.35, 48.85)


def test_phone_fix_is_normalised_to_wgs84() -> None:
    assert to_wgs84(108.3, 30.0, CoordinateSystem.wgs84) == (108.3, 30.0)
    lon, lat = to_wgs84(*wgs84_to_gcj02(108.3, 30.0), CoordinateSystem.gcj02)
    assert distance_m(108.3, 30.0, lon, lat) < 0.01


def test_geodesic_distance_of_one_degree_of_latitude() -> None:
    assert distance_m(108.0, 30.0, 108.0, 31.0) == pytest.approx(110_861, rel=1e-3)


def test_gcj02_matches_published_reference_points() -> None:
    """Reference values from the gcoord project's test suite (WGS-84 (123, 45) <-> GCJ-02)."""
    glon, glat = wgs84_to_gcj02(123.0, 45.0)
    assert glon == pytest.approx(123.00607541, abs=1e-7)
    assert glat == pytest.approx(45.00197815, abs=1e-7)
    # gcoord's inverse is a single-step approximation; ours iterates, so agree to ~2 cm.
    wlon, wlat = gcj02_to_wgs84(123.0, 45.0)
    assert wlon == pytest.approx(122.99395597, abs=1e-6)
    assert wlat == pytest.approx(44.99804071, abs=1e-6)
