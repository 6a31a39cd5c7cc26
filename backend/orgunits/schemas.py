"""API shapes for org units."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from backend.orgunits.models import OrgLevel


class OrgUnitPublic(BaseModel):
    id: int
    code: str
    name: str
    level: OrgLevel
    parent_id: int | None
    has_boundary: bool


class OrgUnitFeature(BaseModel):
    """A GeoJSON Feature of one unit's boundary."""

    type: str = "Feature"
    id: int
    geometry: dict[str, Any] | None
    properties: dict[str, Any]
