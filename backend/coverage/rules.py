"""Map rules: simplification per zoom, and who may see household points where."""

from __future__ import annotations

import math

from backend.accounts.permissions import Action, Role
from backend.accounts.principal import Principal
from backend.orgunits.models import OrgLevel

# Coordinators see single households only when zoomed in to street level.
COORDINATOR_POINTS_MIN_ZOOM = 15
FIELD_ROLES = frozenset({Role.volunteer, Role.grid_worker})
MIN_ZOOM, MAX_ZOOM = 0, 22


def degrees_per_pixel(zoom: int) -> float:
    """Width of one 256-px web-map tile pixel in degrees of longitude."""
    return 360.0 / float(256 * 2**zoom)


def simplify_tolerance(zoom: int) -> float:
    """Half a pixel: simplification below that is invisible at this zoom."""
    return degrees_per_pixel(zoom) / 2


def coordinate_digits(zoom: int) -> int:
    """Decimal digits that keep coordinates exact to about a tenth of a pixel (3..7)."""
    return max(3, min(7, math.ceil(-math.log10(degrees_per_pixel(zoom))) + 1))


def points_allowed(principal: Principal, unit_level: str, zoom: int) -> bool:
    """Household points: door-knockers inside a grid of their jurisdiction (their own grid);
    coordinators in a grid or village at zoom >= 15. Everyone else sees aggregates only."""
    if not principal.can(Action.coverage_households):
        return False
    if principal.roles & FIELD_ROLES and unit_level == OrgLevel.grid.value:
        return True
    return (
        Role.coordinator in principal.roles
        and zoom >= COORDINATOR_POINTS_MIN_ZOOM
        and unit_level in (OrgLevel.grid.value, OrgLevel.village.value)
    )


def tile_level(zoom: int) -> OrgLevel:
    """Which units a vector tile at this zoom draws."""
    if zoom <= 9:
        return OrgLevel.town
    if zoom <= 12:
        return OrgLevel.village
    return OrgLevel.grid
