"""The demo town's staff lists (从业查询): teachers of three village schools and the kindergarten, most
checked a year or less ago, some now due, one school's list never checked, so the overview, the due
list and the never-checked list all show something. Names are invented; numbers are valid for the
demo region (990101) and stored sealed like every other number."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Agency, User
from backend.institutions.models import Institution, InstitutionKind
from backend.registry import idnumber
from backend.staff_checks.models import CheckKind, CheckResult, StaffCheck, StaffStatus
from backend.staff_checks.service import new_member, today

_SURNAMES = "王李张刘陈杨黄赵周吴"
_GIVEN = ["春梅", "建国", "丽华", "志强", "秀英", "海燕", "国平", "晓红", "文静", "德明", "玉兰", "立新"]
_POSITIONS = ["教师", "班主任", "保育员", "门卫", "食堂工作人员"]


def seed_demo(session: Session, institutions: list[Institution]) -> int:
    """Staff lists for the demo schools; returns how many members were added."""
    police = session.execute(select(col(User.id)).where(col(User.agency) == Agency.police.value)
                             .order_by(col(User.id))).scalars().first()
    if police is None:
        return 0
    schools = [i for i in institutions if i.kind in (InstitutionKind.primary_school.value,
                                                     InstitutionKind.kindergarten.value)][:4]
    on = today()
    added, serial = 0, 0
    for school_index, school in enumerate(schools):
        assert school.id is not None
        for k in range(3):
            serial += 1
            born = date(1972 + serial, 1 + serial % 12, 1 + serial % 27)
            number = idnumber.parse(idnumber.make("990101", born, 100 + serial * 7), today=on)
            member = new_member(school.id, name=_SURNAMES[serial % 10] + _GIVEN[serial % 12],
                                number=number, position=_POSITIONS[(serial + k) % 5],
                                hire_date=on - timedelta(days=400 + 90 * serial), status=StaffStatus.employed)
            session.add(member)
            session.flush()
            added += 1
            if school_index == 3:
                continue  # one list never checked: the "never checked" list is not empty
            # Checked 200 to 420 days ago: with the default yearly interval some are due now.
            checked = on - timedelta(days=200 + 55 * (serial % 5))
            session.add(StaffCheck(member_id=member.id or 0, check_date=checked, kind=CheckKind.periodic.value,
                                   result=CheckResult.clear.value, checked_by_user_id=police))
            member.last_check_date = checked
            session.add(member)
    session.flush()
    return added
