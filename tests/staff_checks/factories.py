"""Test data for staff checks: members with synthetic, checksum-valid ID numbers (region 990101)."""

from __future__ import annotations

import itertools
from datetime import date

from sqlmodel import Session

from backend.institutions.models import Institution
from backend.registry import idnumber
from backend.staff_checks import service
from backend.staff_checks.models import StaffMember, StaffStatus

_sequence = itertools.count(101)


def staff_number(birth: date = date(1985, 3, 14)) -> str:
    """A fresh valid adult ID number (a new sequence each call)."""
    return idnumber.make("990101", birth, next(_sequence) % 1000)


def make_member(session: Session, institution: Institution, *, name: str = "测试教师", number: str | None = None,
                status: StaffStatus = StaffStatus.employed, last_check: date | None = None,
                hire_date: date | None = None) -> StaffMember:
    """A committed member of `institution`, sealed as the service seals one."""
    assert institution.id is not None
    member = service.new_member(institution.id, name=name, number=idnumber.parse(number or staff_number()),
                                position="教师", hire_date=hire_date, status=StaffStatus.candidate)
    member.status = status.value  # any status, for tests of what follows from it
    member.last_check_date = last_check
    session.add(member)
    session.commit()
    session.refresh(member)
    return member
