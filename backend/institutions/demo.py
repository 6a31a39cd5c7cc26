"""The demo town's institutions: each village's primary school, the town's secondary school and
kindergarten, a training institution, and a hotel and an internet café linked to demo venues."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from backend.demo.town import DemoTown
from backend.institutions.models import SUPERVISOR, Institution, InstitutionKind
from backend.venues.models import Venue, VenueType


def _add(session: Session, name: str, kind: InstitutionKind, unit_id: int | None, *, address: str = "",
         students: int | None = None, venue_id: int | None = None) -> Institution:
    assert unit_id is not None
    institution = Institution(name=name, kind=kind.value, org_unit_id=unit_id,
                              supervising_agency=SUPERVISOR[kind].value, address=address,
                              student_count=students, venue_id=venue_id)
    session.add(institution)
    return institution


def _first_venue(session: Session, town: DemoTown, venue_type: VenueType) -> Venue | None:
    units = [g.id for grids in town.grids for g in grids] + [v.id for v in town.villages] + [town.town.id]
    return session.execute(select(Venue).where(col(Venue.venue_type) == venue_type.value,
                                               col(Venue.org_unit_id).in_(units)).order_by(col(Venue.id))).scalars().first()


def seed_demo(session: Session, town: DemoTown) -> list[Institution]:
    """Add the demo institutions (deterministic) in the caller's transaction."""
    out = []
    for index, village in enumerate(town.villages):
        stem = village.name.removesuffix("村").removesuffix("社区")
        out.append(_add(session, f"{stem}小学", InstitutionKind.primary_school, village.id,
                        address=f"护蕾镇{village.name}", students=120 + 37 * index))
    out.append(_add(session, "护蕾镇中学", InstitutionKind.secondary_school, town.town.id, address="护蕾镇镇区",
                    students=860))
    out.append(_add(session, "护蕾镇中心幼儿园", InstitutionKind.kindergarten, town.town.id, address="护蕾镇镇区",
                    students=210))
    out.append(_add(session, "护蕾镇启明培训学校", InstitutionKind.training, town.town.id, address="护蕾镇镇区"))
    for kind, venue_type in ((InstitutionKind.hotel, VenueType.hotel),
                             (InstitutionKind.internet_cafe, VenueType.internet_cafe)):
        venue = _first_venue(session, town, venue_type)
        if venue is not None:
            out.append(_add(session, venue.name, kind, venue.org_unit_id, address=venue.address, venue_id=venue.id))
    session.flush()
    return out
