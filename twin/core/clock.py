"""Calendar arithmetic for clock-injected time.

Core time is a float number of seconds since an epoch the caller chooses (the simulator uses the
scenario start; a production system the lot's commissioning date). Nothing here reads the wall
clock, so the simulator and a live gate drive the same code with different time sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

DAY = 86_400.0
HOUR = 3_600.0
MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class Calendar:
    """Maps core seconds to weekday and time of day without datetime objects on the hot path."""

    epoch: datetime = datetime(2026, 1, 5)  # a Monday, 00:00
    #: Seconds from the Monday 00:00 before the epoch to the epoch, microseconds included:
    #: arrival times are epoch + t, so hour-of-day and band edges must count from the same
    #: instant. Computed once: every tariff quote and demand slot reads it.
    _offset: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        e = self.epoch
        offset = (
            e.weekday() * DAY
            + e.hour * HOUR
            + e.minute * MINUTE
            + e.second
            + e.microsecond / 1_000_000
        )
        object.__setattr__(self, "_offset", offset)

    def week_seconds(self, t: float) -> float:
        """Seconds since Monday 00:00 of the week containing ``t``."""
        return (t + self._offset) % (7 * DAY)

    def weekday(self, t: float) -> int:
        """0 = Monday ... 6 = Sunday."""
        return int(self.week_seconds(t) // DAY)

    def seconds_of_day(self, t: float) -> float:
        return self.week_seconds(t) % DAY

    def hour(self, t: float) -> int:
        return int(self.seconds_of_day(t) // HOUR)

    def to_datetime(self, t: float) -> datetime:
        return self.epoch + timedelta(seconds=t)

    def to_seconds(self, when: datetime) -> float:
        return (when - self.epoch).total_seconds()
