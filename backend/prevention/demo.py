"""Demo activities: a few weeks of the town's prevention work, stored through the same service as a
phone's push, so the coverage lists show schools and villages both reached and not. Deterministic."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts import service as accounts
from backend.accounts.models import User
from backend.demo.town import DemoTown
from backend.institutions import service as institutions
from backend.prevention import service
from backend.prevention.schemas import ActivityAudience, ActivityData, ActivityPoint

COORDINATOR_PHONE = "19900000003"  # the town coordinator (护蕾镇)
_NAMESPACE = uuid.UUID("6b1f3a2e-8a4d-4c1e-9d7a-5f0b2c3d4e18")


def seed_demo(session: Session, town: DemoTown) -> int:
    """Record the demo activities (every other school, the first villages, a market day); answers how
    many were stored (the caller commits). Run after the institutions' demo."""
    user_id = session.execute(select(col(User.id)).where(col(User.phone) == COORDINATOR_PHONE)).scalar_one()
    principal = accounts.principal_for(session, user_id, device_id=None, ip=None)
    assert principal is not None and town.town.id is not None
    today = service.local_today()
    plans: list[ActivityData] = []
    schools = list(session.execute(institutions.schools_in(session, town.town.id)).scalars())
    for n, school in enumerate(schools[::2]):
        plans.append(ActivityData(type_code="campus" if n % 2 else "legal_vice_principal", place_kind="school",
                                  institution_id=school.id, held_date=today - timedelta(days=3 + 5 * n),
                                  audience=ActivityAudience(students=min(school.student_count or 100, 400),
                                                            parents=10 + n)))
    for n, village in enumerate(town.villages[:3]):
        plans.append(ActivityData(type_code="door_to_door" if n else "parent_class", place_kind="village",
                                  org_unit_id=village.id, held_date=today - timedelta(days=2 + 4 * n),
                                  audience=ActivityAudience(parents=25 + 5 * n, villagers=40 + 10 * n)))
    plans.append(ActivityData(type_code="market_day", place_kind="point", place_name="护蕾镇集市",
                              point=ActivityPoint(lon=108.305, lat=30.005), held_date=today - timedelta(days=6),
                              audience=ActivityAudience(villagers=320, parents=45, students=30),
                              note="赶集日发放防性侵宣传资料"))
    stored = 0
    for n, data in enumerate(plans):
        client_uuid = uuid.uuid5(_NAMESPACE, f"demo-activity-{n}")
        stored += service.record_activity(session, principal, client_uuid, data, via="demo").created
    return stored
