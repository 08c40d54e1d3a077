"""The ``tariff:`` section of a scenario file, validated, and its translation to a core Tariff.

Money is written in currency units ("2.50", 2.5, 20) and stored as :class:`~decimal.Decimal`
with two decimal places; :meth:`TariffSpec.build` converts it to integer cents. Times of day are
``"HH:MM"`` strings (quote them: YAML 1.1 reads an unquoted ``10:00`` as the number 600). See
``docs/tariff_reference.md`` for every key with worked examples.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from twin.core.clock import Calendar
from twin.core.pricing import (
    DynamicPricing,
    EventRate,
    RateTable,
    SpecialDay,
    Tariff,
    TimeBand,
    TimeBandMultiplier,
    Validation,
    WindowCap,
)
from twin.scenario.common import DAY_NAMES, Days, Spec, day_numbers, parse_days

_CENT = Decimal("0.01")
_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")

#: Planner defaults for occupancy-based pricing when ``dynamic:`` is given without
#: ``occupancy_bands``: 20 % discount below 30 % full, list price to 80 %, +25 % from 80 %,
#: +50 % from 90 %.
DEFAULT_OCCUPANCY_BANDS: tuple[tuple[float, float], ...] = (
    (0.0, 0.8),
    (0.3, 1.0),
    (0.8, 1.25),
    (0.9, 1.5),
)


# --------------------------------------------------------------------------- field parsers


def _parse_money(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"must be an amount of money like 2.50, got {value!r}")
    text = str(value).strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"must be an amount of money like 2.50, got {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"must be an amount of money like 2.50, got {value!r}")
    if amount < 0:
        raise ValueError(f"money must not be negative, got {text}")
    if amount != amount.quantize(_CENT):
        raise ValueError(f"money has at most 2 decimal places (whole cents), got {text}")
    return amount.quantize(_CENT)


def _parse_hhmm(value: Any) -> str:
    msg = f"must be HH:MM between 00:00 and 24:00, got {value!r}"
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(
            f'{msg}; quote times in YAML ("10:00"): unquoted, 10:00 is read as the number 600'
        )
    if not isinstance(value, str):
        raise ValueError(msg)
    m = _HHMM.match(value.strip())
    if not m:
        raise ValueError(msg)
    hh, mm = int(m.group(1)), int(m.group(2))
    if mm > 59 or hh > 24 or (hh == 24 and mm != 0):
        raise ValueError(msg)
    return f"{hh:02d}:{mm:02d}"


Money = Annotated[Decimal, BeforeValidator(_parse_money)]
TimeOfDay = Annotated[str, BeforeValidator(_parse_hhmm)]


def _cents(amount: Decimal | None) -> int | None:
    return None if amount is None else int(amount * 100)


def _minute(hhmm: str) -> int:
    hh, mm = hhmm.split(":")
    return int(hh) * 60 + int(mm)


def _check_window(start: str, end: str) -> None:
    if start == "24:00":
        raise ValueError("start must be before 24:00 (a band starting at midnight is 00:00)")
    if start == end:
        raise ValueError(f"start and end are both {start}; use 00:00 to 24:00 for a whole day")


# --------------------------------------------------------------------------- models


class RateOverrides(Spec):
    """Rate keys a band or a special day may set for itself; each unset key inherits the
    tariff's top level (one list, so a band and a special day cannot drift apart)."""

    flat: Money | None = None
    free_minutes: int | None = Field(default=None, ge=0)
    period_minutes: int | None = Field(default=None, ge=1)
    per_period: Money | None = None
    grace_minutes: int | None = Field(default=None, ge=0)
    first_period_min: Money | None = None
    daily_max: Money | None = None


class BandSpec(RateOverrides):
    """A weekday/time-of-day window with its own rates; unset rate keys inherit the top level.

    ``flat: null`` or ``daily_max: null`` written explicitly removes an inherited value.
    """

    name: str | None = None
    days: Days
    start: TimeOfDay
    end: TimeOfDay

    @model_validator(mode="after")
    def _window(self) -> BandSpec:
        _check_window(self.start, self.end)
        return self


class EventSpec(Spec):
    """An event window; entries inside ``[start, end)`` pay ``flat`` for their first day.

    ``prepaid: true`` sells the flat rate at entry to ``share`` of the drivers entering in the
    window; the others take a normal ticket, at most ``flat`` for their first day with
    ``cap_others: true``. ``lanes``: the entry lanes (numbers from 1) that sell the prepaid
    product; drivers served at the other lanes take a normal ticket (default: every lane).
    ``lots``: the network lots that run the event (default: every lot with this tariff).
    """

    name: str
    start: datetime
    end: datetime
    flat: Money | None = None
    prepaid: bool = False
    share: float = Field(default=1.0, ge=0, le=1)
    cap_others: bool = False
    lanes: list[int] | None = Field(
        default=None,
        description="entry lanes (numbers from 1) that sell the prepaid product; default every",
    )
    lots: list[str] | None = None

    @field_validator("start", "end")
    @classmethod
    def _naive(cls, v: datetime) -> datetime:
        if v.tzinfo is not None:
            raise ValueError(
                "use a local date-time without timezone offset (the scenario calendar is local)"
            )
        return v

    @model_validator(mode="after")
    def _order(self) -> EventSpec:
        if self.end <= self.start:
            raise ValueError(f"event {self.name!r}: end must be after start")
        if (self.prepaid or self.cap_others) and self.flat is None:
            raise ValueError(f"event {self.name!r}: prepaid or cap_others needs a flat price")
        if self.lanes is not None:
            if not self.prepaid:
                raise ValueError(
                    f"event {self.name!r}: lanes say where the prepaid product is sold: "
                    "needs prepaid: true"
                )
            if not self.lanes or min(self.lanes) < 1 or len(set(self.lanes)) != len(self.lanes):
                raise ValueError(
                    f"event {self.name!r}: lanes must be distinct entry lane numbers from 1, "
                    f"got {self.lanes}"
                )
        return self


class WindowSpec(Spec):
    """A window cap: the periods of a stay that start inside the window cost at most ``max``."""

    name: str | None = None
    days: Days = Field(default_factory=lambda: list(DAY_NAMES))
    start: TimeOfDay
    end: TimeOfDay
    max: Money

    @model_validator(mode="after")
    def _window(self) -> WindowSpec:
        _check_window(self.start, self.end)
        return self

    def build(self) -> WindowCap:
        return WindowCap(
            days=day_numbers(self.days),
            start_minute=_minute(self.start),
            end_minute=_minute(self.end),
            max_cents=_cents(self.max),
            name=self.name or f"{self.start}-{self.end}",
        )


class SpecialDaySpec(RateOverrides):
    """Dates priced as another weekday (``like: sun``) or with rate keys of their own (unset
    keys inherit the top level; bands do not apply on such a day)."""

    name: str
    dates: list[date] = Field(min_length=1)
    like: str | None = None

    @field_validator("like")
    @classmethod
    def _weekday(cls, v: str | None) -> str | None:
        if v is None:
            return v
        days = parse_days(v)
        if len(days) != 1:
            raise ValueError(f"like is one day name (mon ... sun), got {v!r}")
        return days[0]

    @model_validator(mode="after")
    def _one_kind(self) -> SpecialDaySpec:
        own = [k for k in _RATE_KEYS if k in self.model_fields_set]
        if (self.like is None) == (not own):
            raise ValueError(
                f"special day {self.name!r}: give either like: <day> or rate keys of its own "
                f"({', '.join(_RATE_KEYS)}), not both"
            )
        return self


class ValidationSpec(Spec):
    """A merchant validation given to ``share`` of the drivers: the first ``free_minutes`` free,
    then ``amount_off`` off the receipt."""

    name: str
    share: float = Field(default=0.0, ge=0, le=1)
    free_minutes: int = Field(default=0, ge=0)
    amount_off: Money = Decimal("0.00")

    def build(self) -> Validation:
        return Validation(
            name=self.name,
            free_minutes=self.free_minutes,
            amount_off_cents=_cents(self.amount_off),
            share=self.share,
        )


def _check_mult(v: float) -> float:
    if not v > 0 or v == float("inf"):
        raise ValueError(f"multiplier must be > 0, got {v}")
    return v


class OccupancyBandSpec(Spec):
    min_occupancy: float
    multiplier: float

    @field_validator("min_occupancy")
    @classmethod
    def _fraction(cls, v: float) -> float:
        if not 0.0 <= v <= 1.0:
            raise ValueError(
                f"occupancy thresholds must be in [0, 1] (a fraction, 0.8 = 80 % full), got {v}"
            )
        return v

    @field_validator("multiplier")
    @classmethod
    def _positive(cls, v: float) -> float:
        return _check_mult(v)


class TimeMultiplierSpec(Spec):
    name: str | None = None
    days: Days
    start: TimeOfDay
    end: TimeOfDay
    multiplier: float

    @field_validator("multiplier")
    @classmethod
    def _positive(cls, v: float) -> float:
        return _check_mult(v)

    @model_validator(mode="after")
    def _window(self) -> TimeMultiplierSpec:
        _check_window(self.start, self.end)
        return self


class DynamicSpec(Spec):
    """Dynamic pricing multipliers; see ``DEFAULT_OCCUPANCY_BANDS`` for the occupancy default."""

    occupancy_bands: list[OccupancyBandSpec] = Field(
        default_factory=lambda: [
            OccupancyBandSpec(min_occupancy=t, multiplier=m) for t, m in DEFAULT_OCCUPANCY_BANDS
        ]
    )
    time_bands: list[TimeMultiplierSpec] = Field(default_factory=list)
    event_multiplier: float = 1.0
    event_multiplier_on_flat: bool = False
    min_multiplier: float = Field(default=0.5, ge=0)
    max_multiplier: float | None = 2.0

    @field_validator("event_multiplier")
    @classmethod
    def _positive(cls, v: float) -> float:
        return _check_mult(v)

    @field_validator("max_multiplier")
    @classmethod
    def _max_positive(cls, v: float | None) -> float | None:
        return None if v is None else _check_mult(v)

    @model_validator(mode="after")
    def _consistent(self) -> DynamicSpec:
        thresholds = [b.min_occupancy for b in self.occupancy_bands]
        if len(set(thresholds)) != len(thresholds):
            raise ValueError(f"occupancy thresholds must be distinct, got {thresholds}")
        if self.max_multiplier is not None and self.max_multiplier < self.min_multiplier:
            raise ValueError(
                f"max_multiplier ({self.max_multiplier}) must be >= "
                f"min_multiplier ({self.min_multiplier})"
            )
        return self

    def build(self) -> DynamicPricing:
        return DynamicPricing(
            occupancy_bands=tuple((b.min_occupancy, b.multiplier) for b in self.occupancy_bands),
            time_bands=tuple(
                TimeBandMultiplier(
                    days=day_numbers(tb.days),
                    start_minute=_minute(tb.start),
                    end_minute=_minute(tb.end),
                    multiplier=tb.multiplier,
                    name=tb.name or f"{','.join(tb.days)} {tb.start}-{tb.end}",
                )
                for tb in self.time_bands
            ),
            event_multiplier=self.event_multiplier,
            min_multiplier=self.min_multiplier,
            max_multiplier=self.max_multiplier,
            event_multiplier_on_flat=self.event_multiplier_on_flat,
        )


_RATE_KEYS = tuple(RateOverrides.model_fields)


class TariffSpec(Spec):
    """The ``tariff:`` section. Money in currency units, durations in whole minutes."""

    name: str = "tariff"
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    flat: Money | None = None
    free_minutes: int = Field(default=0, ge=0)
    period_minutes: int = Field(default=60, ge=1)
    per_period: Money = Decimal("0.00")
    grace_minutes: int = Field(default=0, ge=0)
    first_period_min: Money = Decimal("0.00")
    daily_max: Money | None = None
    daily_max_per: Literal["24h_from_entry", "operating_day"] | None = None
    day_starts: TimeOfDay | None = None
    at_boundary: Literal["next", "previous"] = "next"
    bands: list[BandSpec] = Field(default_factory=list)
    windows: list[WindowSpec] = Field(default_factory=list)
    events: list[EventSpec] = Field(default_factory=list)
    special_days: list[SpecialDaySpec] = Field(default_factory=list)
    weekly_max: Money | None = None
    monthly_max: Money | None = None
    validations: list[ValidationSpec] = Field(default_factory=list)
    dynamic: DynamicSpec | None = None

    @model_validator(mode="after")
    def _days(self) -> TariffSpec:
        if self.daily_max_per == "24h_from_entry" and self.day_starts is not None:
            raise ValueError(
                "day_starts sets operating days; it cannot go with daily_max_per: 24h_from_entry"
            )
        if self.day_starts == "24:00":
            raise ValueError("day_starts must be before 24:00 (a day starting at midnight: 00:00)")
        total = sum(v.share for v in self.validations)
        if total > 1:
            raise ValueError(f"validations: shares add up to {total:g}, at most 1")
        return self

    @property
    def per_operating_day(self) -> bool:
        """Day maximums per operating day: asked for, or implied by a ``day_starts``."""
        if self.daily_max_per is None:
            return self.day_starts is not None
        return self.daily_max_per == "operating_day"

    def _table(self, band: BandSpec | SpecialDaySpec | None = None) -> RateTable:
        values = {k: getattr(self, k) for k in _RATE_KEYS}
        if band is not None:
            for k in _RATE_KEYS:
                v = getattr(band, k)
                if k in ("flat", "daily_max"):
                    if k in band.model_fields_set:
                        values[k] = v
                elif v is not None:
                    values[k] = v
        return RateTable(
            flat_cents=_cents(values["flat"]),
            free_minutes=values["free_minutes"],
            period_minutes=values["period_minutes"],
            period_cents=_cents(values["per_period"]),
            grace_minutes=values["grace_minutes"],
            first_period_min_cents=_cents(values["first_period_min"]),
            daily_max_cents=_cents(values["daily_max"]),
        )

    def build(self, calendar: Calendar, lot: str | None = None) -> Tariff:
        """The core :class:`Tariff`; event date-times become core seconds via ``calendar``.

        ``lot``: the network lot the tariff is for (events naming other lots are left out).
        """
        return Tariff(
            name=self.name,
            default=self._table(),
            bands=tuple(
                TimeBand(
                    days=day_numbers(b.days),
                    start_minute=_minute(b.start),
                    end_minute=_minute(b.end),
                    table=self._table(b),
                    name=b.name or f"{','.join(b.days)} {b.start}-{b.end}",
                )
                for b in self.bands
            ),
            events=tuple(
                EventRate(
                    name=e.name,
                    start_s=calendar.to_seconds(e.start),
                    end_s=calendar.to_seconds(e.end),
                    flat_cents=_cents(e.flat),
                    prepaid=e.prepaid,
                    share=e.share,
                    cap_others=e.cap_others,
                    lanes=None if e.lanes is None else frozenset(e.lanes),
                )
                for e in self.events
                if e.lots is None or lot is None or lot in e.lots
            ),
            dynamic=None if self.dynamic is None else self.dynamic.build(),
            calendar=calendar,
            daily_max_per="operating_day" if self.per_operating_day else "24h_from_entry",
            day_start_minute=0 if self.day_starts is None else _minute(self.day_starts),
            windows=tuple(w.build() for w in self.windows),
            special_days=tuple(
                SpecialDay(
                    name=sp.name,
                    dates=frozenset(sp.dates),
                    like_weekday=None if sp.like is None else DAY_NAMES.index(sp.like),
                    table=None if sp.like is not None else self._table(sp),
                )
                for sp in self.special_days
            ),
            weekly_max_cents=_cents(self.weekly_max),
            monthly_max_cents=_cents(self.monthly_max),
            validations=tuple(v.build() for v in self.validations),
            at_boundary=self.at_boundary,
        )
