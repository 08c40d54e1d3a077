"""Building blocks of a tariff shared by :mod:`twin.core.pricing` and :mod:`twin.core.pricing_days`.

Value checks, the week-minute painting that turns weekly windows into a run-length timeline, the
:class:`RateTable` and the parts of a posted sign beyond rate tables: window caps, special days
and validations. Kept apart so that the pricing engine for operating days can use them without
importing :mod:`twin.core.pricing` (which imports it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

DAY_S = 86_400.0
WEEK_S = 604_800.0
MINUTES_PER_DAY = 1_440
MINUTES_PER_WEEK = 10_080

# --------------------------------------------------------------------------- validation helpers


def check_int(name: str, value: object, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def check_opt_int(name: str, value: object, minimum: int = 0) -> None:
    if value is not None:
        check_int(name, value, minimum)


def check_multiplier(name: str, value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    dec = Decimal(str(value))
    if not dec.is_finite() or dec <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return dec


def check_days(days: Iterable[int]) -> frozenset[int]:
    fs = frozenset(days)
    if not fs:
        raise ValueError("days must not be empty")
    for d in fs:
        if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6:
            raise ValueError(f"days must be ints 0 (Mon) .. 6 (Sun), got {d!r}")
    return fs


def check_window(start_minute: int, end_minute: int) -> None:
    check_int("start_minute", start_minute)
    check_int("end_minute", end_minute)
    if start_minute >= MINUTES_PER_DAY:
        raise ValueError(f"start_minute must be in 0..1439, got {start_minute}")
    if end_minute > MINUTES_PER_DAY:
        raise ValueError(f"end_minute must be in 0..1440, got {end_minute}")
    if start_minute == end_minute:
        raise ValueError("start_minute == end_minute is an empty band; use 0..1440 for all day")


def week_minutes(days: frozenset[int], start_minute: int, end_minute: int) -> Iterable[int]:
    """Minutes of the week (0 = Mon 00:00) covered by a daily window on ``days``.

    A wrapping window (start > end) belongs to the day it starts on: Fri 22:00-06:00 covers
    Fri 22:00 to Sat 06:00 (and Sun 22:00-06:00 runs into Monday).
    """
    for d in sorted(days):
        a = d * MINUTES_PER_DAY + start_minute
        b = d * MINUTES_PER_DAY + end_minute
        if end_minute < start_minute:
            b += MINUTES_PER_DAY
        for m in range(a, b):
            yield m % MINUTES_PER_WEEK


def compress(values: list) -> tuple[tuple[float, ...], tuple[float, ...], tuple]:
    """Run-length encode a per-minute week array into (starts_s, ends_s, values)."""
    starts: list[float] = []
    ends: list[float] = []
    vals: list = []
    for m, v in enumerate(values):
        if not vals or v != vals[-1]:
            if vals:
                ends.append(m * 60.0)
            starts.append(m * 60.0)
            vals.append(v)
    ends.append(WEEK_S)
    return tuple(starts), tuple(ends), tuple(vals)


def paint_week(layers: Iterable[tuple[frozenset[int], int, int, object]], background: object):
    """Run-length timeline of a week painted with daily windows: ``(starts_s, ends_s, values)``.

    ``layers`` are ``(days, start_minute, end_minute, value)``; where windows overlap the first
    layer wins (layers are painted last to first).
    """
    week = [background] * MINUTES_PER_WEEK
    for days, start, end, value in reversed(list(layers)):
        for m in week_minutes(days, start, end):
            week[m] = value
    return compress(week)


# --------------------------------------------------------------------------- data model


@dataclass(frozen=True, slots=True)
class RateTable:
    """One rate table; all money in integer cents, all durations in whole minutes.

    ``flat_cents`` set: each started day (24 h block or operating day) costs that amount
    (incremental fields ignored, grace still delays the start of days after the first).
    Otherwise incremental: after ``free_minutes``, every started ``period_minutes`` costs
    ``period_cents``; a period is only started once more than ``grace_minutes`` of it have
    elapsed. ``first_period_min_cents`` is the minimum charge once anything is charged;
    ``daily_max_cents`` caps each day.
    """

    flat_cents: int | None = None
    free_minutes: int = 0
    period_minutes: int = 60
    period_cents: int = 0
    grace_minutes: int = 0
    first_period_min_cents: int = 0
    daily_max_cents: int | None = None

    def __post_init__(self) -> None:
        check_opt_int("flat_cents", self.flat_cents)
        check_int("free_minutes", self.free_minutes)
        check_int("period_minutes", self.period_minutes, 1)
        check_int("period_cents", self.period_cents)
        check_int("grace_minutes", self.grace_minutes)
        check_int("first_period_min_cents", self.first_period_min_cents)
        check_opt_int("daily_max_cents", self.daily_max_cents)


@dataclass(frozen=True, slots=True)
class WindowCap:
    """At most ``max_cents`` for the periods of a stay that start inside a daily window.

    Window as for a band (``days`` 0 = Mon, minutes of day, ``start > end`` wraps past midnight
    and belongs to the day it starts on). Each occurrence of the window (each evening) has its
    own cap; the day's total stays under the day's maximum.
    """

    days: frozenset[int]
    start_minute: int
    end_minute: int
    max_cents: int
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", check_days(self.days))
        check_window(self.start_minute, self.end_minute)
        check_int("max_cents", self.max_cents)


@dataclass(frozen=True, slots=True)
class SpecialDay:
    """Dates priced differently: as another weekday (``like_weekday``, 0 = Mon: "Sunday rates on
    public holidays") or with a table of their own that applies all day (bands ignored).

    A date covers the operating day that starts on it (from the tariff's day start).
    """

    name: str
    dates: frozenset[date]
    like_weekday: int | None = None
    table: RateTable | None = None

    def __post_init__(self) -> None:
        dates = frozenset(self.dates)
        if not dates or not all(isinstance(d, date) for d in dates):
            raise ValueError(f"special day {self.name!r}: dates must be a non-empty set of dates")
        object.__setattr__(self, "dates", dates)
        if (self.like_weekday is None) == (self.table is None):
            raise ValueError(f"special day {self.name!r}: give like_weekday or table, not both")
        if self.like_weekday is not None:
            check_days((self.like_weekday,))
        if self.table is not None and not isinstance(self.table, RateTable):
            raise TypeError("table must be a RateTable")


@dataclass(frozen=True, slots=True)
class Validation:
    """A merchant validation: the first ``free_minutes`` of the stay free, then
    ``amount_off_cents`` off the receipt (never below 0). ``share`` is the fraction of drivers
    who get it (a simulator draws who; a gate is told by the validator)."""

    name: str
    free_minutes: int = 0
    amount_off_cents: int = 0
    share: float = 0.0

    def __post_init__(self) -> None:
        check_int("free_minutes", self.free_minutes)
        check_int("amount_off_cents", self.amount_off_cents)
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"validation {self.name!r}: share must be in [0, 1]")
