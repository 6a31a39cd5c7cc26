"""Test data for prevention activities: push items and REST bodies as a phone writes them, and
activities stored directly (committed) for reads."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlmodel import Session

from backend.core import clock
from backend.prevention.models import Activity
from backend.prevention.service import local_today


def today() -> date:
    return local_today()


def school_data(institution_id: int, *, days_ago: int = 1, students: int = 120, **extra: Any) -> dict[str, Any]:
    return {"type_code": "campus", "held_date": (today() - timedelta(days=days_ago)).isoformat(),
            "place_kind": "school", "institution_id": institution_id,
            "audience": {"students": students, "parents": 8}, **extra}


def village_data(unit_id: int, *, days_ago: int = 1, type_code: str = "door_to_door", **extra: Any) -> dict[str, Any]:
    return {"type_code": type_code, "held_date": (today() - timedelta(days=days_ago)).isoformat(),
            "place_kind": "village", "org_unit_id": unit_id, "audience": {"villagers": 40, "parents": 12}, **extra}


def point_data(lon: float, lat: float, *, days_ago: int = 1, **extra: Any) -> dict[str, Any]:
    return {"type_code": "market_day", "held_date": (today() - timedelta(days=days_ago)).isoformat(),
            "place_kind": "point", "place_name": "集市口", "point": {"lon": lon, "lat": lat},
            "audience": {"villagers": 300}, **extra}


def item(data: dict[str, Any], client_uuid: str | None = None) -> dict[str, Any]:
    """A push item of kind `activity`."""
    return {"kind": "activity", "client_uuid": client_uuid or str(uuid.uuid4()), "data": data}


def make_activity(session: Session, *, unit_id: int, recorded_by: int, days_ago: int = 1,
                  institution_id: int | None = None, students: int = 0, villagers: int = 10,
                  type_code: str = "door_to_door", rev: int = 0) -> Activity:
    """An activity stored directly (as if pushed), committed."""
    activity = Activity(
        client_uuid=uuid.uuid4(), content_hash="0" * 64, type_code=type_code, organiser_unit_id=unit_id,
        held_date=today() - timedelta(days=days_ago), place_kind="school" if institution_id else "village",
        institution_id=institution_id, org_unit_id=unit_id, place_name="测试地点", students=students,
        villagers=villagers, photos=[], recorded_by=recorded_by, received_at=clock.now(), rev=rev)
    session.add(activity)
    session.commit()
    session.refresh(activity)
    return activity
