"""A small hand-counted world for coverage numbers, written straight through the other domains'
models (the write paths' own rules are tested in their domains).

Period: March 2026; "today" is 5 April 2026, 10:00 in China. In the demo town:

village 0 (青山村)
  grid 0: H1 visited 10 Mar                        -> visited
          H2 visited 20 Feb only                   -> not visited in March, not never-visited
          H3 "nobody home" 15 Mar                  -> not visited, never visited
  grid 1: H4 visited 12 Mar, location mismatch     -> visited, one mismatch visit
          H5 visited 14 Mar, amended to nobody home -> not visited, never visited
          H6 registered 2 Apr                      -> outside the period (not counted)
village 1 (溪口村)
  grid 0: H7 visited 31 Mar 23:30 China time       -> visited (still March in China)
          H8 visited 1 Apr 00:30 China time        -> not visited in March, never visited by its end
villages 2..7: nothing.

Children: H1 重大风险 + 较大风险, H2 低风险, H4 unassessed (village 0); H7 一般风险 (village 1).
Problems (village 0, grid 0 venue): open with deadline 30 Apr, rectifying with deadline 1 Apr
(overdue), verified (closed). Referrals: village 0 - new on 10 Mar (receive window passed:
overdue), received in Feb (handle window passed: overdue, not in March); village 1 - handled 12 Mar.

Helpers (follow-ups due: 重大 7 days, 较大 14, otherwise 30 after the last follow-up or the acceptance):
  village 0: A1 severe child, helper X, accepted 1 Mar, follow-ups 8 + 20 Mar      -> due 27 Mar: overdue
             A2 severe child, helper Y, accepted 1 Mar, follow-ups 8/15/22/29 Mar + 1 Apr -> due 8 Apr
             A3 major child, helper X, accepted 10 Mar, no follow-up              -> due 24 Mar: overdue
             A4 H4's child, helper Y, accepted 1 Feb, follow-up 1 Mar, ended 15 Mar -> not counted as overdue
             A5 H2's child, offered 4 Apr (not yet in effect); A6 H2's child, 1 Jan to 20 Feb (before March)
  village 1: B1 general child, helper Y, accepted 1 Feb, follow-up 1 Mar 00:30 China time (28 Feb in UTC)
                                                                                   -> due 31 Mar: overdue

Expected (village 0 / village 1):
  households 5 / 2, visited 2 / 1, percent 40.0 / 50.0, never visited 2 / 1, mismatch 1 / 0,
  children severe 1, major 1, low 1, none 1 / general 1,
  problems open 2 overdue 1 / 0 0, referrals new 1 received 0 handled 0 overdue 2 / handled 1 overdue 0,
  overdue follow-ups 2 / 1;
  in March: assignments in effect 4 / 1, started 3 / 0, ended 1 / 0, follow-ups 7 / 1.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session

from backend.accounts.models import User
from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.geo import point
from backend.demo.town import DemoTown, grid_box
from backend.helpers.models import Assignment, AssignmentStatus, FollowUp, HelperProfile
from backend.inspections.models import Inspection, Problem, ProblemStatus
from backend.orgunits.models import OrgUnit
from backend.referrals.models import Referral, ReferralStatus
from backend.registry.models import Household, Person, PersonRole, RiskLevel
from backend.venues.models import Venue
from backend.visits.models import Visit
from tests.factories import make_town, make_user

CST = clock.SHANGHAI
TODAY = datetime(2026, 4, 5, 10, 0, tzinfo=CST)
MONTH = "2026-03"
_rev = itertools.count(1)


def cst(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    """A China-time instant in 2026, stored as UTC."""
    return datetime(2026, month, day, hour, minute, tzinfo=CST).astimezone(UTC)


@dataclass
class World:
    town: DemoTown
    recorder: User
    households: dict[str, Household]
    children: dict[str, Person]
    assignments: dict[str, Assignment]


def _centre(unit_box: tuple[float, float, float, float], k: int) -> tuple[float, float]:
    west, south, east, north = unit_box
    return west + (east - west) * (0.2 + 0.1 * k), south + (north - south) * 0.5


def add_household(session: Session, grid: OrgUnit, name: str, lon: float, lat: float, created: datetime) -> Household:
    assert grid.id is not None
    h = Household(uuid=uuid.uuid4(), org_unit_id=grid.id, address=f"{grid.name}{name}号", head_name=f"王{name}",
                  lon=lon, lat=lat, location=point(lon, lat), content_hash="0" * 64, rev=next(_rev),
                  created_at=created, updated_at=created)
    session.add(h)
    session.flush()
    return h


def add_child(session: Session, household: Household, level: RiskLevel | None) -> Person:
    p = Person(uuid=uuid.uuid4(), role=PersonRole.child.value, household_id=household.id,
               org_unit_id=household.org_unit_id, name="测试儿童", risk_level=level.value if level else None,
               content_hash="0" * 64, rev=next(_rev))
    session.add(p)
    session.flush()
    return p


def add_visit(session: Session, household: Household, user: User, when: datetime, outcome: str = "visited", *,
              mismatch: bool = False, amends: Visit | None = None) -> Visit:
    assert household.id is not None and user.id is not None
    v = Visit(client_uuid=uuid.uuid4(), content_hash="0" * 64, amends_id=amends.id if amends else None,
              household_id=household.id, org_unit_id=household.org_unit_id, recorded_by=user.id,
              template_code="six-looks", template_version=1, outcome=outcome, device_time=when,
              received_at=when + timedelta(minutes=5), location_mismatch=mismatch)
    session.add(v)
    session.flush()
    return v


def build_world(session: Session) -> World:
    """Create the world described above and commit it."""
    town = make_town(session)
    recorder = make_user(session, town.villages[0], Role.volunteer)
    g00, g01, g10 = town.grids[0][0], town.grids[0][1], town.grids[1][0]
    feb = cst(2, 1)
    hh: dict[str, Household] = {}
    for key, grid, (v, g), k, created in [
        ("H1", g00, (0, 0), 0, feb), ("H2", g00, (0, 0), 1, feb), ("H3", g00, (0, 0), 2, feb),
        ("H4", g01, (0, 1), 0, feb), ("H5", g01, (0, 1), 1, feb), ("H6", g01, (0, 1), 2, cst(4, 2)),
        ("H7", g10, (1, 0), 0, feb), ("H8", g10, (1, 0), 1, feb),
    ]:
        lon, lat = _centre(grid_box(v, g), k)
        hh[key] = add_household(session, grid, key, lon, lat, created)
    add_visit(session, hh["H1"], recorder, cst(3, 10))
    add_visit(session, hh["H2"], recorder, cst(2, 20))
    add_visit(session, hh["H3"], recorder, cst(3, 15), "nobody_home")
    add_visit(session, hh["H4"], recorder, cst(3, 12), mismatch=True)
    wrong = add_visit(session, hh["H5"], recorder, cst(3, 14))
    add_visit(session, hh["H5"], recorder, cst(3, 14, 11), "nobody_home", amends=wrong)
    add_visit(session, hh["H6"], recorder, cst(4, 3))
    add_visit(session, hh["H7"], recorder, cst(3, 31, 23, 30))
    add_visit(session, hh["H8"], recorder, cst(4, 1, 0, 30))
    children = {
        "severe": add_child(session, hh["H1"], RiskLevel.severe),
        "major": add_child(session, hh["H1"], RiskLevel.major),
        "low": add_child(session, hh["H2"], RiskLevel.low),
        "none": add_child(session, hh["H4"], None),
        "general": add_child(session, hh["H7"], RiskLevel.general),
    }
    assignments = add_helpers(session, town, children)

    lon, lat = _centre(grid_box(0, 0), 5)
    assert g00.id is not None and recorder.id is not None
    venue = Venue(venue_type="hotel", name="测试旅馆", credit_code="91500000MA000TEST", location=point(lon, lat),
                  org_unit_id=g00.id)
    session.add(venue)
    session.flush()
    assert venue.id is not None
    inspection = Inspection(client_uuid=str(uuid.uuid4()), payload_hash="0" * 64, venue_id=venue.id,
                            org_unit_id=g00.id, recorded_by_user_id=recorder.id, checklist_code="five-musts",
                            checklist_version=1, started_at=cst(3, 5), is_joint=True)
    session.add(inspection)
    session.flush()
    assert inspection.id is not None
    for status, deadline, verified in [(ProblemStatus.open, date(2026, 4, 30), None),
                                       (ProblemStatus.rectifying, date(2026, 4, 1), None),
                                       (ProblemStatus.verified, date(2026, 3, 20), cst(3, 18))]:
        session.add(Problem(venue_id=venue.id, org_unit_id=g00.id, found_in_inspection_id=inspection.id,
                            description="未登记未成年人身份", measure="整改登记", responsible_party="店主",
                            deadline_date=deadline, status=status.value, verified_at=verified,
                            created_at=cst(3, 5), updated_at=cst(3, 5)))
    visits_for_referrals = [add_visit(session, hh[k], recorder, when, "nobody_home")
                            for k, when in (("H1", cst(3, 10, 12)), ("H2", cst(2, 20, 12)), ("H7", cst(3, 12, 12)))]
    for visit, status, created in zip(visits_for_referrals,
                                      (ReferralStatus.new, ReferralStatus.received, ReferralStatus.handled),
                                      (cst(3, 10, 12), cst(2, 20, 12), cst(3, 12, 12)), strict=True):
        assert visit.id is not None
        session.add(Referral(visit_id=visit.id, household_id=visit.household_id, org_unit_id=visit.org_unit_id,
                             status=status.value, created_at=created, receive_due_at=created + timedelta(hours=2),
                             handle_due_at=created + timedelta(hours=72)))
    session.commit()
    clock.freeze(TODAY)
    return World(town, recorder, hh, children, assignments)


def add_assignment(session: Session, child: Person, helper: HelperProfile, status: AssignmentStatus, *,
                   answered: datetime | None, followups: tuple[datetime, ...] = (), ended: datetime | None = None,
                   mode: str = "one_to_one") -> Assignment:
    """An assignment as the helpers' write path leaves it (last_followup_at = the latest follow-up)."""
    assert child.id is not None and helper.id is not None
    proposed = (answered or cst(4, 4)) - timedelta(days=1)
    a = Assignment(child_id=child.id, helper_id=helper.id, org_unit_id=child.org_unit_id, mode=mode,
                   status=status.value, proposed_at=proposed, confirmed_at=proposed, answered_at=answered,
                   ended_at=ended, last_followup_at=max(followups) if followups else None)
    session.add(a)
    session.flush()
    assert a.id is not None
    for when in followups:
        session.add(FollowUp(assignment_id=a.id, visited_at=when, recorded_at=when))
    session.flush()
    return a


def add_helpers(session: Session, town: DemoTown, children: dict[str, Person]) -> dict[str, Assignment]:
    """Two helpers and the assignments described in the module docstring."""
    helpers = []
    for sex in ("female", "male"):
        user = make_user(session, town.town, Role.helper)
        assert user.id is not None and town.town.id is not None
        profile = HelperProfile(user_id=user.id, org_unit_id=town.town.id, sex=sex, skills=[], capacity=5)
        session.add(profile)
        helpers.append(profile)
    session.flush()
    x, y = helpers
    accepted, ended = AssignmentStatus.accepted, AssignmentStatus.ended
    return {
        "A1": add_assignment(session, children["severe"], x, accepted, answered=cst(3, 1),
                             followups=(cst(3, 8), cst(3, 20)), mode="many_to_one"),
        "A2": add_assignment(session, children["severe"], y, accepted, answered=cst(3, 1),
                             followups=(cst(3, 8), cst(3, 15), cst(3, 22), cst(3, 29), cst(4, 1)),
                             mode="many_to_one"),
        "A3": add_assignment(session, children["major"], x, accepted, answered=cst(3, 10)),
        "A4": add_assignment(session, children["none"], y, ended, answered=cst(2, 1), followups=(cst(3, 1),),
                             ended=cst(3, 15)),
        "A5": add_assignment(session, children["low"], x, AssignmentStatus.offered, answered=None),
        "A6": add_assignment(session, children["low"], y, ended, answered=cst(1, 1), ended=cst(2, 20)),
        "B1": add_assignment(session, children["general"], y, accepted, answered=cst(2, 1),
                             followups=(cst(3, 1, 0, 30),)),
    }
