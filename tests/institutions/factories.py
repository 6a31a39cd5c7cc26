"""Test data for the institution register: a school, a hotel ... committed, in a unit of the town."""

from __future__ import annotations

import itertools

from sqlmodel import Session

from backend.institutions.models import SUPERVISOR, Institution, InstitutionKind

_names = itertools.count(1)


def make_institution(session: Session, org_unit_id: int, kind: InstitutionKind = InstitutionKind.primary_school, *,
                     name: str | None = None, supervising_agency: str | None = None,
                     student_count: int | None = None, venue_id: int | None = None) -> Institution:
    institution = Institution(
        name=name or f"测试{kind.zh}{next(_names)}", kind=kind.value, org_unit_id=org_unit_id,
        supervising_agency=supervising_agency or SUPERVISOR[kind].value, venue_id=venue_id,
        student_count=student_count if student_count is not None else (300 if kind.is_school else None),
    )
    session.add(institution)
    session.commit()
    session.refresh(institution)
    return institution
