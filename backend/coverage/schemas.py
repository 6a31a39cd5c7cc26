"""API shapes for coverage lists (the map itself is GeoJSON built in the service)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from backend.coverage.service import NotVisitedHousehold


class NotVisitedPublic(BaseModel):
    household_id: int
    grid_id: int
    grid_name: str
    address: str
    head_name_masked: str | None
    last_visit_at: datetime | None

    @classmethod
    def of(cls, item: NotVisitedHousehold) -> NotVisitedPublic:
        return cls(household_id=item.household_id, grid_id=item.grid_id, grid_name=item.grid_name,
                   address=item.address, head_name_masked=item.head_name_masked, last_visit_at=item.last_visit_at)
