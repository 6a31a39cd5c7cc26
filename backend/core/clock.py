"""The one source of time. Tests move it instead of sleeping."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, AwareDatetime

SHANGHAI = ZoneInfo("Asia/Shanghai")

_offset = timedelta(0)
_frozen: datetime | None = None


def now() -> datetime:
    """Aware UTC now, shifted by whatever the tests asked for."""
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC) + _offset


def advance(delta: timedelta) -> None:
    """Move the clock forward (tests only)."""
    global _offset, _frozen
    if _frozen is not None:
        _frozen = _frozen + delta
    else:
        _offset += delta


def freeze(at: datetime) -> None:
    """Stop the clock at a given instant (tests only)."""
    global _frozen
    _frozen = at.astimezone(UTC)


def reset() -> None:
    """Back to real time."""
    global _offset, _frozen
    _offset = timedelta(0)
    _frozen = None


def china_date(at: datetime) -> date:
    """The China (Asia/Shanghai) calendar day of an instant."""
    return as_utc(at).astimezone(SHANGHAI).date()


def china_time(at: datetime) -> datetime:
    """An instant as China (Asia/Shanghai, +08:00) wall-clock time, the way people there read it."""
    return as_utc(at).astimezone(SHANGHAI)


def next_monday(day: date) -> date:
    """The Monday of the week after the one `day` falls in (a Monday gives the one seven days on): the
    week plans are made for, a China week when `day` is today in China."""
    return day + timedelta(days=7 - day.weekday())


def china_day_start(day: date) -> datetime:
    """The instant (aware UTC) a China calendar day begins: its midnight in Asia/Shanghai, 16:00 UTC
    of the day before (China has had no summer time since 1991). A period of China days runs from its
    first day's start to the start of the day after its last."""
    return datetime.combine(day, time.min, tzinfo=SHANGHAI).astimezone(UTC)


def as_utc(value: datetime) -> datetime:
    """Treat naive datetimes (as SQLite returns them) as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _in_utc_range(value: datetime) -> datetime:
    """A time whose UTC instant exists (9999-12-31T23:59:59-14:00 does not: it is in year 10000)."""
    if value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError as exc:
            raise ValueError("the time is out of range") from exc
    return value


# Times phones send: any offset, but one that names a real UTC instant (checked as a field, so one
# absurd clock rejects its record, not the batch it came in).
PhoneTime = Annotated[datetime, AfterValidator(_in_utc_range)]
AwarePhoneTime = Annotated[AwareDatetime, AfterValidator(_in_utc_range)]
