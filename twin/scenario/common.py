"""What every section of the scenario schema shares: its base model, names and money rule.

Kept apart from :mod:`twin.scenario.model` so that the section modules (reservations,
permits, payments, sensors, ...) can use it while ``model`` imports them, without a cycle.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from twin.core.types import SpotType, VehicleClass

SpotTypeName = Literal["MOTORCYCLE", "COMPACT", "REGULAR", "LARGE", "HANDICAP", "EV"]
VehicleClassName = Literal["MOTORCYCLE", "COMPACT", "REGULAR", "LARGE"]
# the file's names and the core's enums must not drift apart
assert set(SpotTypeName.__args__) == set(SpotType.__members__)
assert set(VehicleClassName.__args__) == set(VehicleClass.__members__)

#: Day names as scenario files write them, Monday first (``datetime.weekday()`` order). The one
#: list: tariffs, closures, arrival profiles, permits and optimisation windows all read it.
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_SHORTCUTS = {
    "weekdays": DAY_NAMES[:5],
    "weekend": DAY_NAMES[5:],
    "all": DAY_NAMES,
}


def parse_days(value: Any) -> list[str]:
    """Day names as written (a name, a shortcut or a list) → short names in week order."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError("days must be a non-empty list of day names, e.g. [mon, tue] or weekdays")
    chosen: set[str] = set()
    for item in items:
        name = str(item).strip().lower()
        if name in _DAY_SHORTCUTS:
            chosen.update(_DAY_SHORTCUTS[name])
        elif name in DAY_NAMES:
            chosen.add(name)
        elif name in _FULL_NAMES:
            chosen.add(DAY_NAMES[_FULL_NAMES.index(name)])
        else:
            raise ValueError(
                f"unknown day {item!r}; use mon, tue, wed, thu, fri, sat, sun, "
                "weekdays, weekend or all"
            )
    return [d for d in DAY_NAMES if d in chosen]


#: A list of day names in a scenario file: ``[mon, tue]``, ``weekdays``, ``weekend``, ``all`` or
#: full names, case-insensitive; validated to short names in week order.
Days = Annotated[list[str], BeforeValidator(parse_days)]

#: A store or claim latency in milliseconds (the locking study and a scenario's ``claims:``):
#: at most a minute. A store slower than that is an outage, not a latency, and an absurd value
#: (1e300) would leave every claim unanswered: a run with no cars parked, not an error.
LatencyMs = Annotated[float, Field(ge=0, le=60_000)]


def day_numbers(days: list[str]) -> frozenset[int]:
    """Validated day names → ``datetime.weekday()`` numbers (Monday 0), as the core counts."""
    return frozenset(DAY_NAMES.index(d) for d in days)


class Spec(BaseModel):
    """A part of a scenario file: unknown keys are errors (a typo must not be ignored), and a
    validated scenario never changes underneath the run that uses it.

    Every float (and Decimal) in every section must be finite: YAML's ``.nan`` and ``.inf``
    pass ``ge``/``le`` bounds unnoticed (NaN compares false both ways) and then change results
    silently, e.g. a NaN willingness to pay never balks. A field where infinity means something
    must say so itself (``Field(allow_inf_nan=True)``) and handle it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def cents(amount: Decimal) -> int:
    """Currency units as written in the file (already a Decimal) to integer cents."""
    return int(amount * 100)


#: Simulated time is kept as pandas nanosecond timestamps, which span 1677-09-21..2262-04-11.
FIRST_START = datetime(1678, 1, 1)
LAST_END = datetime(2262, 1, 1)


def naive_local(value: datetime) -> datetime:
    """A date-time in a scenario or start state is local wall-clock time, as the calendar is:
    an offset would leave the run's weekday and hour ambiguous."""
    if value.tzinfo is not None:
        raise ValueError(
            "use a local date-time without a UTC offset (the scenario's calendar is local), "
            f"got {value.isoformat()}"
        )
    return value


def local_time(value: datetime) -> datetime:
    """A local date-time (:func:`naive_local`) inside the span of the calendar's timestamps."""
    naive_local(value)
    if not FIRST_START <= value <= LAST_END:
        raise ValueError(
            f"must be between {FIRST_START:%Y-%m-%d} and {LAST_END:%Y-%m-%d}, got {value}"
        )
    return value


#: A local date-time in the calendar's span (see :func:`local_time`).
LocalDateTime = Annotated[datetime, AfterValidator(local_time)]
