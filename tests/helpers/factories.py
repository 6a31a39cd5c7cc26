"""Children (registry rows) and helpers for the helper tests. All names are synthetic."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence

from sqlalchemy import text
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.core.geo import point
from backend.demo.town import grid_box
from backend.helpers.models import Assignment, AssignmentStatus, HelperProfile, Skill
from backend.orgunits.models import OrgUnit
from backend.registry import service as registry
from backend.registry.models import Household, Person, PersonRole, RiskLevel
from tests.factories import make_user

_n = itertools.count(1)


def ensure_sync_counter(session: Session) -> None:
    """The registry's revision counter row (seeded by migration 0002; emptied between PostGIS tests)."""
    session.execute(text("INSERT INTO sync_counter (id, value) SELECT 1, 0 WHERE NOT EXISTS "
                         "(SELECT 1 FROM sync_counter WHERE id = 1)"))
    session.commit()


def grid_point(village: int, grid: int = 0, *, east: float = 0.5) -> tuple[float, float]:
    west, south, e, north = grid_box(village, grid)
    return west + (e - west) * east, (south + north) / 2


def make_child(session: Session, grid: OrgUnit, *, sex: str = "female", at: tuple[float, float] | None = None,
               categories: Sequence[str] = (), vulnerable: bool = False, name: str | None = None) -> Person:
    """A committed child in a household of `grid` (at `at`), with no risk level yet."""
    ensure_sync_counter(session)
    assert grid.id is not None
    lon, lat = at if at is not None else (None, None)
    where = point(lon, lat) if lon is not None and lat is not None else None
    household = Household(uuid=uuid.uuid4(), org_unit_id=grid.id, address=f"测试地址{next(_n)}号",
                          content_hash="0" * 64, rev=0, lon=lon, lat=lat, location=where)
    session.add(household)
    session.flush()
    child = Person(uuid=uuid.uuid4(), role=PersonRole.child.value, household_id=household.id, org_unit_id=grid.id,
                   name=name or f"测试儿童{next(_n)}", sex=sex, categories=list(categories), vulnerable=vulnerable,
                   content_hash="0" * 64, rev=0)
    session.add(child)
    session.commit()
    return child


def raise_risk(session: Session, child: Person, level: RiskLevel) -> None:
    """Raise the child's level the way a visit does (registry.set_risk_level, history kept)."""
    ensure_sync_counter(session)
    assert child.id is not None
    registry.set_risk_level(session, person_id=child.id, previous=child.risk_level, level=level,
                            reasons=[{"rule": "test", "reason_zh": "测试", "reason_en": "test"}], source="visit")
    session.commit()
    session.refresh(child)


def make_helper(session: Session, unit: OrgUnit, *, sex: str, skills: Sequence[Skill] = (), capacity: int = 2,
                at: tuple[float, float] | None = None, active: bool = True) -> HelperProfile:
    """A user with the helper role and a committed profile."""
    user = make_user(session, unit, Role.helper)
    assert user.id is not None and unit.id is not None
    profile = HelperProfile(user_id=user.id, org_unit_id=unit.id, sex=sex, skills=sorted(s.value for s in skills),
                            capacity=capacity, home_lon=at[0] if at else None, home_lat=at[1] if at else None,
                            active=active)
    session.add(profile)
    session.commit()
    return profile


def assign(session: Session, child: Person, helper: HelperProfile,
           status: AssignmentStatus = AssignmentStatus.accepted) -> Assignment:
    """A committed assignment of `child` to `helper` in `status`, as the helpers' write path leaves it."""
    from backend.core import clock

    assert child.id is not None and helper.id is not None
    now = clock.now()
    offered = status is not AssignmentStatus.proposed
    row = Assignment(child_id=child.id, helper_id=helper.id, org_unit_id=child.org_unit_id, mode="one_to_one",
                     status=status.value, proposed_at=now, confirmed_at=now if offered else None,
                     answer_due_at=now if offered else None,
                     answered_at=now if status in (AssignmentStatus.accepted, AssignmentStatus.ended) else None,
                     ended_at=now if status is AssignmentStatus.ended else None)
    session.add(row)
    session.commit()
    return row
