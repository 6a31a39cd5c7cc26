"""Who is sealed: a person under 18 on the day of the record (the day in China).

The one rule of sealing (犯罪记录封存, seed 002): a record that names a person as a risk person (附件2)
or, in any later record kind, as a suspect is sealed when that person was a minor on the record's
day. The birth date comes from the ID number (digits 7-14) or, without one, from a birth date given
with the record. The record's day is the day it was entered, in China's time zone, and it does not
move: a record made at 17 stays sealed after the person turns 18.
"""

from __future__ import annotations

from datetime import date, datetime

from backend.core import clock

ADULT_AGE = 18


def age_on(birth: date, day: date) -> int:
    """Whole years from `birth` to `day` (someone born on 29 February turns a year older on 1 March
    in a year without one)."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def minor_at(birth: date | None, at: datetime) -> bool | None:
    """Whether a person born on `birth` was under 18 on the day of `at`; None when the birth date is
    unknown (the record is judged on what is known, see sealing.service.judge)."""
    if birth is None:
        return None
    return age_on(birth, clock.china_date(at)) < ADULT_AGE
