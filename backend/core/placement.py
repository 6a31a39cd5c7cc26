"""Which clock places a record made on a phone in a reporting period (sync.md "Which clock counts").

A volunteer offline for days records a visit on 31 October and pushes it on 30 November: it counts
in October, by the phone's time. A phone clock can also be plainly wrong (a dead battery resets it
to 1970 or to its firmware date, a user sets it a year ahead): such a time would count the record in
a month nobody reports, or in a future one. The server's receipt time is the only time it can trust,
so an implausible device time is kept as the phone sent it but the record is placed by receipt time
and flagged for coordinators.

Placement is decided once, when the record is first stored; a resend or an edit never moves it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from backend.core import clock
from backend.core.config import get_settings


@dataclass(frozen=True)
class Placement:
    counted_at: datetime  # the instant that puts the record in a period (aware UTC)
    clock_suspect: bool  # the phone's time was implausible; counted_at is the receipt time


def earliest_plausible() -> datetime:
    """The first instant a phone's time may name: the earliest date's midnight in China."""
    return clock.china_day_start(get_settings().device_clock_earliest_date)


def place(device_time: datetime | None, received_at: datetime) -> Placement:
    """Place a record by the phone's time when it is plausible, else by the server's receipt time.

    Plausible means: not after receipt by more than `device_clock_max_ahead_minutes`, not before it by
    more than `device_clock_max_age_days`, and not before `device_clock_earliest_date`; the bounds
    themselves are plausible. A time slightly ahead is a clock running fast: it is trusted but capped
    at receipt, since nothing is recorded after the server received it. No device time (an app that
    sends none, a record made on the web) is placed by receipt and is not suspect."""
    return Placer(received_at).place(device_time)


class Placer:
    """`place` for many records received at one instant (a sync push): the bounds are worked out
    once, not per record."""

    def __init__(self, received_at: datetime) -> None:
        settings = get_settings()
        self.received = clock.as_utc(received_at)
        self.latest = self.received + timedelta(minutes=settings.device_clock_max_ahead_minutes)
        self.earliest = max(self.received - timedelta(days=settings.device_clock_max_age_days),
                            earliest_plausible())

    def place(self, device_time: datetime | None) -> Placement:
        if device_time is None:
            return Placement(self.received, False)
        device = clock.as_utc(device_time)
        if device > self.latest or device < self.earliest:
            return Placement(self.received, True)
        return Placement(min(device, self.received), False)


def counted_from(column: str) -> Callable[[Any], datetime]:
    """A column default for `counted_at` on writes that place nothing themselves (imports, the demo
    town, test fixtures, rows from before placement existed): the record's own time column, which is
    how such records were always counted."""

    def default(context: Any) -> datetime:
        value = context.get_current_parameters().get(column)
        return clock.as_utc(value) if isinstance(value, datetime) else clock.now()

    return default
