"""Coordinates: the systems phones report in, distances, and geometry values for the database.

Everything is stored in WGS-84 (SRID 4326). AMap/Tencent-based apps report GCJ-02, the obfuscated
system China's consumer maps use; it is converted at the edge. The GCJ-02 formula is the widely
published one (no maintained library exists for it); the inverse is solved iteratively to
well under a centimetre.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from geoalchemy2.elements import WKTElement
from geoalchemy2.shape import to_shape
from pyproj import Geod
from shapely.geometry import mapping

SRID = 4326
_GEOD = Geod(ellps="WGS84")

_A = 6378245.0
_EE = 0.00669342162296594323


class CoordinateSystem(StrEnum):
    """The datum a phone's fix is expressed in."""

    wgs84 = "wgs84"
    gcj02 = "gcj02"


def outside_china(lon: float, lat: float) -> bool:
    """GCJ-02 leaves coordinates outside mainland China's rough bounding box unshifted."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _transform_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """Shift a WGS-84 point onto GCJ-02 (for display on AMap/Tencent base layers)."""
    if outside_china(lon, lat):
        return lon, lat
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * math.cos(radlat) * math.pi)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """Invert the GCJ-02 shift by fixed-point iteration (converges to < 1e-9 degrees)."""
    if outside_china(lon, lat):
        return lon, lat
    wlon, wlat = lon, lat
    for _ in range(30):
        glon, glat = wgs84_to_gcj02(wlon, wlat)
        dlon, dlat = glon - lon, glat - lat
        if abs(dlon) < 1e-10 and abs(dlat) < 1e-10:
            break
        wlon, wlat = wlon - dlon, wlat - dlat
    return wlon, wlat


def to_wgs84(lon: float, lat: float, system: CoordinateSystem) -> tuple[float, float]:
    """Normalise a phone's fix to the stored system."""
    if system is CoordinateSystem.gcj02:
        return gcj02_to_wgs84(lon, lat)
    return lon, lat


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Geodesic distance in metres on the WGS-84 ellipsoid."""
    _, _, dist = _GEOD.inv(lon1, lat1, lon2, lat2)
    return float(dist)


def distances_m(pairs: list[tuple[float, float, float, float]]) -> list[float]:
    """distance_m of many (lon1, lat1, lon2, lat2) at once: one call into PROJ for a whole sync batch."""
    if not pairs:
        return []
    lon1, lat1, lon2, lat2 = (list(column) for column in zip(*pairs, strict=True))
    _, _, dist = _GEOD.inv(lon1, lat1, lon2, lat2)
    return [float(d) for d in dist]


def point(lon: float, lat: float) -> WKTElement:
    """A WGS-84 point value for a Geometry column."""
    return WKTElement(f"POINT({lon!r} {lat!r})", srid=SRID)


def point_lon_lat(value: Any) -> tuple[float, float] | None:
    """(lon, lat) of a stored point, or None."""
    if value is None:
        return None
    shape = to_shape(value)
    return float(shape.x), float(shape.y)


def geometry_geojson(value: Any) -> dict[str, Any] | None:
    """A stored geometry as a GeoJSON geometry object."""
    if value is None:
        return None
    return dict(mapping(to_shape(value)))
