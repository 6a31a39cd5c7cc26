"""The daily cap on full ID numbers typed into staff writes that match by number (从业查询).

A POST of a member and a real staff-list import each answer whether a typed full number is already
listed at the institution (201 against 409, `created` against `updated`): the one-member-per-number
rule makes that an oracle a clerk could run through candidate numbers. Each such number is taken from
the user's allowance for the China day (`staff_typed_numbers_per_day`), all of a request's numbers at
once or none: over the cap the request is 429 `staff-typed-numbers-capped` and writes nothing.

The allowance is taken in the request's own transaction by one conditional UPDATE (`typed = typed + n
WHERE typed + n <= cap`) after an INSERT .. ON CONFLICT DO NOTHING, as the SMS allowance is
(backend/notifications/fallback.py). So a write that is rolled back (a refused import, a server
fault) gives its numbers back with everything else, and two requests of one user queue on the row:
on PostgreSQL the second UPDATE waits for the first transaction and re-reads the committed count
(READ COMMITTED re-checks the WHERE on the new row), on SQLite writers run one at a time; together
they never pass the cap. It is the last lock a staff write takes (after its members are written), so
a write holding it never waits for another's member rows: no deadlock with a write of the same numbers.

A refusal that still answered the question (409 `staff-exists`) is rolled back like any refusal, so
it keeps its number as its aftermath (`kept`), written after the rollback: between the two, another
request of the same user may be let in against the lower count, so the cap can be passed by at most
one number per such refusal in flight at that moment; every number answered is counted."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session, col

from backend.accounts.principal import Principal
from backend.core import clock
from backend.core.config import get_settings
from backend.core.db import dialect_insert
from backend.core.errors import TooManyRequests
from backend.staff_checks.models import StaffNumberQuota


class StaffTypedNumbersCapped(TooManyRequests):
    code = "staff-typed-numbers-capped"
    title_zh = "今日输入的身份证号码已达上限，请明天再试"
    title_en = "Today's allowance of typed ID numbers is used up; try again tomorrow"


def cap() -> int:
    return get_settings().staff_typed_numbers_per_day


def today() -> date:
    """The allowance's day: it resets at Beijing midnight (16:00 UTC)."""
    return clock.china_date(clock.now())


def _row(session: Session, user_id: int, day: date) -> None:
    insert = dialect_insert(session)
    session.execute(insert(StaffNumberQuota).values(user_id=user_id, day=day, typed=0)
                    .on_conflict_do_nothing(index_elements=["user_id", "day"]))


def typed_on(session: Session, user_id: int, day: date) -> int:
    """The numbers the user typed on `day` (0 before the first)."""
    value = session.execute(select(col(StaffNumberQuota.typed)).where(
        col(StaffNumberQuota.user_id) == user_id, col(StaffNumberQuota.day) == day)).scalar_one_or_none()
    return int(value or 0)


def take(session: Session, principal: Principal, numbers: int) -> date:
    """Take `numbers` typed numbers from the user's allowance for today, all or none; the day taken
    from. Over the cap: StaffTypedNumbersCapped (429, Retry-After to the next China midnight)."""
    day = today()
    if numbers <= 0:
        return day
    limit = cap()
    _row(session, principal.user_id, day)
    taken = session.execute(
        update(StaffNumberQuota).where(col(StaffNumberQuota.user_id) == principal.user_id,
                                       col(StaffNumberQuota.day) == day,
                                       col(StaffNumberQuota.typed) + numbers <= limit)
        .values(typed=col(StaffNumberQuota.typed) + numbers).execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if taken:
        return day
    remaining = max(0, limit - typed_on(session, principal.user_id, day))
    seconds = max(1, math.ceil((clock.china_day_start(day + timedelta(days=1)) - clock.now()).total_seconds()))
    raise StaffTypedNumbersCapped(
        f"每人每天最多输入{limit}个完整身份证号码（登记或导入人员），今日还可输入{remaining}个，"
        f"本次需要{numbers}个；请明天（北京时间零点后）再试",
        f"Each user may type at most {limit} full ID numbers a day into staff lists (adding or importing "
        f"members); {remaining} remain today and this request needs {numbers}; try again after midnight "
        "Beijing time", headers={"Retry-After": str(seconds)}, limit=limit, remaining=remaining,
        requested=numbers, retry_after=seconds)


def _keep(user_id: int, day: date, numbers: int, session: Any) -> None:
    _row(session, user_id, day)
    session.execute(
        update(StaffNumberQuota).where(col(StaffNumberQuota.user_id) == user_id, col(StaffNumberQuota.day) == day)
        .values(typed=col(StaffNumberQuota.typed) + numbers).execution_options(synchronize_session=False))


def kept(principal: Principal, day: date, numbers: int) -> Callable[[Any], None]:
    """The aftermath of a refusal that answered for its typed numbers (409 `staff-exists`): the numbers
    taken on `day` are counted again after the rollback undid them (module docstring)."""
    return partial(_keep, principal.user_id, day, numbers)
