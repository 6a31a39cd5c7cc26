"""China days and times from instants: a day in China starts at 16:00 UTC of the day before, whether an
instant comes naive (UTC, as SQLite returns it) or aware in any offset. Deadlines, due dates, report
periods and sealing all hang on which China day an instant falls in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.core import clock

# China has kept +08:00 without daylight saving since 1991; before that the properties below need
# not hold (1986-1991 had summer time), and no record of ours dates from then.
SINCE_1992 = st.dates(min_value=date(1992, 1, 1), max_value=date(9998, 12, 31))
EIGHT_HOURS = timedelta(hours=8)


@pytest.mark.parametrize("tzinfo", [None, UTC], ids=["naive-utc", "aware-utc"])
def test_one_second_before_1600_utc_is_still_that_china_day_and_1600_is_the_next(tzinfo: timezone | None) -> None:
    assert clock.china_date(datetime(2026, 11, 30, 15, 59, 59, tzinfo=tzinfo)) == date(2026, 11, 30)
    assert clock.china_date(datetime(2026, 11, 30, 16, 0, 0, tzinfo=tzinfo)) == date(2026, 12, 1)


def test_an_instant_in_another_offset_falls_on_the_china_day_of_its_instant() -> None:
    beijing = timezone(EIGHT_HOURS)
    new_york = timezone(-timedelta(hours=5))
    assert clock.china_date(datetime(2026, 12, 1, 0, 0, tzinfo=beijing)) == date(2026, 12, 1)
    assert clock.china_date(datetime(2026, 11, 30, 23, 59, 59, tzinfo=beijing)) == date(2026, 11, 30)
    # 10:59:59 in New York is 15:59:59 UTC, 11:00 is 16:00 UTC.
    assert clock.china_date(datetime(2026, 11, 30, 10, 59, 59, tzinfo=new_york)) == date(2026, 11, 30)
    assert clock.china_date(datetime(2026, 11, 30, 11, 0, 0, tzinfo=new_york)) == date(2026, 12, 1)


def test_today_in_china_follows_the_moved_clock_across_1600_utc() -> None:
    clock.freeze(datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC))
    try:
        assert clock.china_date(clock.now()) == date(2026, 12, 31)
        clock.advance(timedelta(seconds=1))
        assert clock.china_date(clock.now()) == date(2027, 1, 1)
    finally:
        clock.reset()


@given(day=SINCE_1992, seconds=st.integers(min_value=0, max_value=24 * 3600 - 1))
def test_the_china_day_is_the_utc_date_eight_hours_on_for_naive_and_aware_instants(day: date, seconds: int) -> None:
    naive = datetime.combine(day, datetime.min.time()) + timedelta(seconds=seconds)
    expected = (naive + EIGHT_HOURS).date()
    assert clock.china_date(naive) == expected
    assert clock.china_date(naive.replace(tzinfo=UTC)) == expected


def test_a_china_day_starts_at_1600_utc_the_day_before() -> None:
    start = clock.china_day_start(date(2027, 1, 1))
    assert start == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    assert start.utcoffset() == timedelta(0)


@given(day=SINCE_1992)
def test_a_china_days_start_is_its_first_instant(day: date) -> None:
    start = clock.china_day_start(day)
    assert start.tzinfo is not None and start.utcoffset() == timedelta(0)
    assert clock.china_date(start) == day
    assert clock.china_date(start - timedelta(microseconds=1)) == day - timedelta(days=1)
    assert clock.china_day_start(day + timedelta(days=1)) - start == timedelta(days=1)


@pytest.mark.parametrize("tzinfo", [None, UTC], ids=["naive-utc", "aware-utc"])
def test_china_time_reads_an_instant_on_the_wall_clock_in_china(tzinfo: timezone | None) -> None:
    shown = clock.china_time(datetime(2026, 11, 30, 16, 20, tzinfo=tzinfo))
    assert (shown.date(), shown.hour, shown.minute) == (date(2026, 12, 1), 0, 20)
    assert shown.utcoffset() == EIGHT_HOURS
    assert shown.isoformat() == "2026-12-01T00:20:00+08:00"


@given(day=st.dates(min_value=date(1992, 1, 1), max_value=date(9999, 12, 24)))
def test_next_monday_is_the_first_monday_after_the_day(day: date) -> None:
    monday = clock.next_monday(day)
    assert monday.weekday() == 0
    assert 1 <= (monday - day).days <= 7


def test_next_monday_of_a_sunday_is_the_next_day_and_of_a_monday_a_week_on() -> None:
    assert clock.next_monday(date(2026, 11, 29)) == date(2026, 11, 30)  # a Sunday
    assert clock.next_monday(date(2026, 11, 30)) == date(2026, 12, 7)  # a Monday
