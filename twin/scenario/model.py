"""The scenario: everything a planner states about a facility and its demand, validated.

Scenario files are YAML; every key maps to a field here. Models forbid unknown keys, so a typo
is an error that names the allowed keys instead of a setting silently ignored.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from twin.core.allocation import STRATEGIES
from twin.core.types import SpotType, VehicleClass
from twin.scenario.claims import ClaimsSpec
from twin.scenario.common import (
    DAY_NAMES,
    LAST_END,
    Days,
    LocalDateTime,
    Spec,
    SpotTypeName,
    VehicleClassName,
)
from twin.scenario.dists import Dist, Duration, resolve_path
from twin.scenario.payments import PaymentsSpec
from twin.scenario.permits import PermitsSpec
from twin.scenario.pricing_policy import ElasticitySpec, PricingPolicySpec
from twin.scenario.reservations import ReservationsSpec
from twin.scenario.sensors import SensorsSpec
from twin.scenario.state import StartState
from twin.scenario.tariff import TariffSpec, TimeOfDay

#: Allocation strategies by name, read from the core's registry (one place to add one).
StrategyName = Literal[tuple(STRATEGIES)]  # type: ignore[valid-type]

#: Bounds no real facility comes near; beyond them the model's per-barrier and per-spot
#: structures alone would exhaust memory (a billion spots hung for minutes, then 3.6 GB).
MAX_LANES = 1_000
MAX_SPOTS_PER_TYPE = 1_000_000


# -- facility -------------------------------------------------------------------------------
class LevelSpec(Spec):
    """One floor: spot counts per type and how far its ramp is from the entrance."""

    name: str
    spots: dict[SpotTypeName, int] = Field(description="number of spots of each type")
    entrance_distance_m: float | None = Field(
        default=None, ge=0, description="driving distance from the gate; default level × 60 m"
    )

    @field_validator("spots")
    @classmethod
    def _counts(cls, v: dict[str, int]) -> dict[str, int]:
        bad = {k: n for k, n in v.items() if n < 0}
        if bad:
            raise ValueError(f"spot counts must be >= 0, got {bad}")
        huge = {k: n for k, n in v.items() if n > MAX_SPOTS_PER_TYPE}
        if huge:
            raise ValueError(f"at most {MAX_SPOTS_PER_TYPE:,} spots per type and level, got {huge}")
        return v


class ClosureSpec(Spec):
    """Spots out of service on a schedule (maintenance, cleaning, an event's set-up): a level or
    a list of spots, closed from ``start`` to ``end`` on the chosen ``days`` (and, if given,
    only on those ``dates``). ``end`` at or before ``start`` runs past midnight into the next
    day. Cars parked when a closure starts stay; their spots close when they leave."""

    name: str | None = Field(default=None, description="what the closure is for (reports)")
    levels: list[str] | None = Field(default=None, description="level names to close whole")
    spots: list[str] | None = Field(default=None, description="spot ids to close")
    start: TimeOfDay = Field(description='time of day the closure begins, "HH:MM"')
    end: TimeOfDay = Field(description='time of day it ends, "HH:MM" (<= start: next day)')
    days: Days = Field(
        default_factory=lambda: list(DAY_NAMES), description="days it begins on (default all)"
    )
    dates: list[date] | None = Field(
        default=None, description="only on these dates (YYYY-MM-DD), within ``days``"
    )

    @model_validator(mode="after")
    def _what(self) -> ClosureSpec:
        if (self.levels is None) == (self.spots is None):
            raise ValueError("give exactly one of levels (names) or spots (ids) to close")
        if not (self.levels or self.spots):
            raise ValueError("the list of levels or spots to close is empty")
        if self.start == self.end == "00:00" or self.start == self.end == "24:00":
            return self  # all day
        if self.start == self.end:
            raise ValueError(f"start and end are both {self.start}: the closure has no length")
        return self

    @property
    def window_s(self) -> tuple[float, float]:
        """Start and end as seconds from the start day's midnight (end > start)."""
        a = _minute_of(self.start) * 60.0
        b = _minute_of(self.end) * 60.0
        return a, b if b > a else b + 86400.0


def _minute_of(hhmm: str) -> int:
    hh, mm = hhmm.split(":")
    return int(hh) * 60 + int(mm)


class FacilitySpec(Spec):
    name: str = "lot"
    strategy: StrategyName = "nearest"
    ev_open_to_all: bool = Field(
        default=False, description="may non-EVs park in EV bays (as a last resort)?"
    )
    level_distance_m: float = Field(default=60.0, ge=0)
    spot_spacing_m: float = Field(default=2.5, gt=0)
    levels: list[LevelSpec] = Field(default_factory=list)
    spots_csv: Path | None = Field(
        default=None,
        description="explicit spot list: columns id, level, type, distance_m (overrides counts)",
    )
    closures: list[ClosureSpec] = Field(
        default_factory=list, description="levels or spots out of service on a schedule"
    )

    @field_validator("spots_csv")
    @classmethod
    def _resolve(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        return None if v is None else resolve_path(v, info)

    @model_validator(mode="after")
    def _not_empty(self) -> FacilitySpec:
        if not self.levels:
            raise ValueError("the facility needs at least one level")
        if self.spots_csv is None and sum(sum(lv.spots.values()) for lv in self.levels) == 0:
            raise ValueError("the facility has no spots: give each level some spot counts")
        names = [lv.name for lv in self.levels]
        if len(set(names)) != len(names):
            raise ValueError(f"level names must be unique, got {names}")
        for k, closure in enumerate(self.closures):
            unknown = [lv for lv in closure.levels or () if lv not in names]
            if unknown:
                raise ValueError(
                    f"closures[{k}].levels: unknown level {unknown[0]!r} (allowed: {names})"
                )
        return self

    @property
    def total_spots(self) -> int:
        return sum(sum(lv.spots.values()) for lv in self.levels)


# -- lanes ----------------------------------------------------------------------------------
class LaneSpec(Spec):
    count: int = Field(ge=1, le=MAX_LANES, description="number of barriers working in parallel")
    service: Duration = Field(description="time at the barrier per vehicle (ticket, payment)")


class LanesSpec(Spec):
    entry: LaneSpec | None = None
    exit: LaneSpec | None = None


# -- demand ---------------------------------------------------------------------------------
class ProfileSpec(Spec):
    """Hourly arrival rates (vehicles/hour, 24 values from 00:00) by day.

    The most specific key wins: a day name (``mon``..``sun``) over ``weekday``/``weekend``
    over ``all``.
    """

    all: list[float] | None = None
    weekday: list[float] | None = None
    weekend: list[float] | None = None
    mon: list[float] | None = None
    tue: list[float] | None = None
    wed: list[float] | None = None
    thu: list[float] | None = None
    fri: list[float] | None = None
    sat: list[float] | None = None
    sun: list[float] | None = None

    @field_validator("*")
    @classmethod
    def _hours(cls, v: list[float] | None) -> list[float] | None:
        if v is not None:
            if len(v) != 24:
                raise ValueError(f"needs 24 hourly rates (00:00..23:00), got {len(v)}")
            if min(v) < 0:
                raise ValueError("hourly rates must be >= 0")
        return v

    @model_validator(mode="after")
    def _covers_week(self) -> ProfileSpec:
        missing = [d for d in range(7) if self.for_day(d) is None]
        if missing:
            raise ValueError(
                "no rates for "
                + ", ".join(DAY_NAMES[d] for d in missing)
                + " (give 'all', 'weekday'/'weekend' or the day names)"
            )
        return self

    def for_day(self, weekday: int) -> list[float] | None:
        specific = getattr(self, DAY_NAMES[weekday])
        if specific is not None:
            return specific
        group = self.weekday if weekday < 5 else self.weekend
        return group if group is not None else self.all


class TraceSpec(Spec):
    """Recorded arrivals replayed as they happened (e.g. last Tuesday's gate log).

    Every row needs a time (a finite number, or an ISO date-time without UTC offset); rows
    before the start or after the horizon are counted and reported once. Dwell cells are
    numbers >= 0; yes/no columns hold true/false, yes/no or 1/0 in any case. An empty dwell,
    class or yes/no cell means "not recorded": it is drawn as for a stream without that column
    (the stream's dwell distribution, vehicle_class, ev_share or handicap_share). Any other
    cell stops the run with its file row.
    """

    path: Path
    time_column: str = "arrival"
    time_unit: Literal["s", "min", "h", "datetime"] = Field(
        default="datetime", description="numbers since scenario start, or ISO datetimes"
    )
    dwell_column: str | None = None
    dwell_unit: Literal["s", "min", "h", "d"] = "min"
    class_column: str | None = None
    ev_column: str | None = None
    handicap_column: str | None = None

    @field_validator("path")
    @classmethod
    def _resolve(cls, v: Path, info: ValidationInfo) -> Path:
        return resolve_path(v, info)


class WillingnessSpec(Spec):
    """What a driver will pay at most, in dollars, per visit or per hour of their stay."""

    per: Literal["visit", "hour"] = "visit"
    distribution: Dist


class DwellBand(Spec):
    hours: tuple[int, int] = Field(description="[from, to) hour of arrival, 0..24")
    dwell: Duration

    @field_validator("hours")
    @classmethod
    def _range(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not 0 <= v[0] < v[1] <= 24:
            raise ValueError(f"need 0 <= from < to <= 24, got {list(v)}")
        return v


class DayFactorSpec(Spec):
    """Day-to-day variation of demand: each day's rates are multiplied by a gamma factor of
    mean 1 and coefficient of variation ``cv``, so a day's arrivals are negative binomial
    (variance m + cv²·m²) instead of Poisson (variance m). Real lots vary this much more than
    a Poisson process allows, and intervals that ignore it are too narrow."""

    #: Real lots show 0.05-0.3; beyond 2 one day in a hundred would bring ten times the usual
    #: demand, which is not day-to-day variation but another lot (and could exhaust memory).
    cv: float = Field(
        ge=0, le=2, description="coefficient of variation of the daily factor (0 = off, <= 2)"
    )
    group: str | None = Field(
        default=None,
        description="streams naming the same group share one factor per day (a busy day is "
        "busy for all of them); default: the stream's own",
    )


class DateDemandSpec(Spec):
    """Demand on particular dates (holidays, events, a calendar): a ``multiplier`` of the
    usual rates, or a 24-value hourly ``profile`` that replaces them on those dates."""

    name: str | None = Field(default=None, description="what the dates are (reports)")
    dates: list[date] = Field(min_length=1, description="dates, YYYY-MM-DD")
    multiplier: float | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="scales the day's rates"
    )
    profile: list[float] | None = Field(
        default=None, description="24 hourly rates (vehicles/hour, 00:00..23:00) for those dates"
    )

    @field_validator("profile")
    @classmethod
    def _hours(cls, v: list[float] | None) -> list[float] | None:
        if v is not None:
            if len(v) != 24:
                raise ValueError(f"needs 24 hourly rates (00:00..23:00), got {len(v)}")
            if min(v) < 0 or not all(math.isfinite(x) for x in v):
                raise ValueError("hourly rates must be finite and >= 0")
        return v

    @model_validator(mode="after")
    def _one_of(self) -> DateDemandSpec:
        if (self.multiplier is None) == (self.profile is None):
            raise ValueError("give exactly one of 'multiplier' or 'profile'")
        return self


class StreamSpec(Spec):
    """One arrival stream: a class of drivers with its own rate, dwell and behaviour."""

    name: str
    vehicle_class: VehicleClassName = "REGULAR"
    ev_share: float = Field(default=0.0, ge=0, le=1)
    handicap_share: float = Field(default=0.0, ge=0, le=1)
    rate_per_hour: float | None = Field(default=None, ge=0)
    profile: ProfileSpec | None = None
    trace: TraceSpec | None = None
    multiplier: float = Field(default=1.0, ge=0, description="scales the rate or profile")
    dwell: Duration | None = None
    dwell_by_hour: list[DwellBand] = Field(default_factory=list)
    willingness_to_pay: WillingnessSpec | None = None
    patience: Duration | None = None
    lot: str | None = Field(
        default=None, description="target lot name, or '*' for any lot at random (networks)"
    )
    elasticity: ElasticitySpec | None = Field(
        default=None, description="price elasticity of this stream's demand"
    )
    day_factor: DayFactorSpec | None = Field(
        default=None, description="random day-to-day demand factor (off by default)"
    )
    dates: list[DateDemandSpec] = Field(
        default_factory=list, description="dates with their own multiplier or profile"
    )

    @field_validator("dates")
    @classmethod
    def _dates_once(cls, v: list[DateDemandSpec]) -> list[DateDemandSpec]:
        seen: dict[date, int] = {}
        for k, entry in enumerate(v):
            for day in entry.dates:
                if day in seen:
                    raise ValueError(
                        f"{day.isoformat()} is in dates[{seen[day]}] and dates[{k}]: "
                        "give each date once"
                    )
                seen[day] = k
        return v

    def date_overrides(self) -> dict[date, DateDemandSpec]:
        """Each listed date and the entry that sets its demand."""
        return {day: entry for entry in self.dates for day in entry.dates}

    @model_validator(mode="after")
    def _one_source(self) -> StreamSpec:
        given = [k for k in ("rate_per_hour", "profile", "trace") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'rate_per_hour', 'profile' or 'trace'"
                + (f" (got {', '.join(given)})" if given else "")
            )
        trace_dwell = self.trace is not None and self.trace.dwell_column is not None
        if self.dwell is None and not trace_dwell and not self.dwell_by_hour:
            raise ValueError("needs a 'dwell' distribution (or a trace with a dwell_column)")
        if self.dwell_by_hour and self.dwell is None:
            covered = set()
            for band in self.dwell_by_hour:
                covered.update(range(*band.hours))
            if len(covered) < 24:
                raise ValueError("'dwell_by_hour' leaves hours uncovered: add a default 'dwell'")
        if self.trace is not None and (self.day_factor is not None or self.dates):
            raise ValueError(
                "'day_factor' and 'dates' shape generated demand, not a replayed trace"
            )
        return self


class BehaviourSpec(Spec):
    when_full: Literal["leave", "wait"] = Field(
        default="leave", description="leave at once (blocked) or wait up to 'patience'"
    )
    patience: Duration | None = None
    willingness_to_pay: WillingnessSpec | None = None

    @model_validator(mode="after")
    def _patience(self) -> BehaviourSpec:
        if self.when_full == "wait" and self.patience is None:
            raise ValueError("when_full: wait needs a 'patience' distribution")
        return self


class LotSpec(Spec):
    """One facility of a network; lanes and tariff default to the scenario's top-level ones."""

    name: str
    x_km: float = Field(default=0.0, description="position, for travel times from coordinates")
    y_km: float = 0.0
    facility: FacilitySpec
    lanes: LanesSpec | None = None
    tariff: TariffSpec | None = None


class LotGridSpec(Spec):
    """Many identical lots on a grid (city-scale studies): ``count`` lots named
    ``{prefix}{k:03d}``, ``columns`` per row, ``spacing_km`` apart."""

    count: int = Field(ge=1, le=10_000)
    columns: int = Field(default=25, ge=1)
    spacing_km: float = Field(default=0.4, gt=0)
    prefix: str = "L"
    facility: FacilitySpec
    lanes: LanesSpec | None = None
    tariff: TariffSpec | None = None

    def expand(self) -> list[LotSpec]:
        width = max(3, len(str(self.count - 1)))
        return [
            LotSpec(
                name=f"{self.prefix}{k:0{width}d}",
                x_km=(k % self.columns) * self.spacing_km,
                y_km=(k // self.columns) * self.spacing_km,
                facility=self.facility.model_copy(update={"name": f"{self.prefix}{k:0{width}d}"}),
                lanes=self.lanes,
                tariff=self.tariff,
            )
            for k in range(self.count)
        ]


class DiversionSpec(Spec):
    """Whether a driver turned away (full, priced out, tired of waiting) tries another lot.

    The probability of trying the next lot falls with the extra travel time and the extra
    price, as in SUMO's parking rerouter: ``base × exp(-per_minute·minutes - per_dollar·Δ$)``.
    """

    base_probability: float = Field(default=0.9, ge=0, le=1)
    per_minute: float = Field(default=0.05, ge=0, description="decay per minute of extra travel")
    per_dollar: float = Field(default=0.10, ge=0, description="decay per $ of extra price")
    max_tries: int = Field(default=3, ge=1, description="other lots tried before giving up")


class NetworkSpec(Spec):
    """Travel between lots: a matrix of minutes, or straight-line coordinates and a speed."""

    travel_time_min: list[list[float]] | None = None
    speed_kmh: float = Field(default=20.0, gt=0)
    circuity: float = Field(default=1.3, ge=1, description="road km per straight-line km")
    diversion: DiversionSpec = Field(default_factory=DiversionSpec)


class OperationsSpec(Spec):
    """How the lot is run day to day: each part switches on an operations component."""

    reservations: ReservationsSpec | None = None
    permits: PermitsSpec | None = None
    payments: PaymentsSpec | None = None
    sensors: SensorsSpec | None = None


class OutputSpec(Spec):
    interval_min: float = Field(default=15.0, gt=0, description="time-series sampling step")

    @field_validator("interval_min")
    @classmethod
    def _a_second_at_least(cls, v: float) -> float:
        if v < 1 / 60:
            raise ValueError(f"must be at least 1 s (1/60 min), got {v:g}")
        return v

    vehicles: bool = Field(
        default=True, description="keep the per-vehicle table (turn off for city-scale runs)"
    )


class Scenario(Spec):
    """A complete, runnable description of one facility under one demand."""

    name: str
    description: str = ""
    start: LocalDateTime = Field(
        default=datetime(2026, 1, 5), description="simulated start (local)"
    )
    horizon_days: float = Field(default=1.0, gt=0)
    # hours, or "auto": detected per run by MSER-5 on pilot replications (twin.experiments)
    warmup_hours: float | Literal["auto"] = 0.0
    seed: int = Field(default=1, ge=0)
    replications: int = Field(default=1, ge=1)
    facility: FacilitySpec | None = None
    lots: list[LotSpec] = Field(default_factory=list, description="several facilities")
    lot_grid: LotGridSpec | None = Field(default=None, description="many identical lots")
    network: NetworkSpec | None = None
    lanes: LanesSpec = Field(default_factory=LanesSpec)
    demand: list[StreamSpec] = Field(min_length=1)
    behaviour: BehaviourSpec = Field(default_factory=BehaviourSpec)
    tariff: TariffSpec | None = None
    pricing_policy: PricingPolicySpec | None = Field(
        default=None, description="demand-responsive rate adjustment during the run"
    )
    operations: OperationsSpec | None = Field(
        default=None, description="reservations, permits, payments, sensors and displays"
    )
    output: OutputSpec = Field(default_factory=OutputSpec)
    claims: ClaimsSpec | None = Field(
        default=None,
        description="gates and app reservations claim a unit of their lot from a store with a "
        "claim strategy (row lock, version check, atomic counter, queue) that takes time; "
        "off: at once",
    )
    # where the run begins: an empty lot, the lot's typical state at the start's time of day,
    # or a given state (its time must be the start); see twin.sim.initial
    initial: Literal["empty", "steady"] | StartState = "empty"

    @field_validator("warmup_hours", mode="before")
    @classmethod
    def _warmup(cls, value: object) -> float | str:
        """One readable error for a bad warm-up instead of one per union member."""
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        try:
            hours = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"must be hours >= 0 or 'auto', got {value!r}") from None
        if not 0 <= hours < math.inf:
            raise ValueError(f"must be hours >= 0 or 'auto', got {value!r}")
        return hours

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if (LAST_END - self.start).total_seconds() < self.horizon_s:
            raise ValueError(
                f"horizon_days ({self.horizon_days:g}) runs past {LAST_END:%Y-%m-%d}, the last "
                "date pandas timestamps can hold: shorten it or start earlier"
            )
        if self.warmup_hours != "auto" and self.warmup_hours >= self.horizon_days * 24:
            raise ValueError(
                f"warmup_hours ({self.warmup_hours}) must be shorter than the horizon "
                f"({self.horizon_days * 24:g} h)"
            )
        if isinstance(self.initial, StartState) and self.initial.time != self.start:
            raise ValueError(
                f"initial.time ({self.initial.time}) must be the scenario's start ({self.start})"
            )
        if self.claims is not None:
            self._claims_supported()
        names = [s.name for s in self.demand]
        if len(set(names)) != len(names):
            raise ValueError(f"demand stream names must be unique, got {names}")
        given = [k for k in ("facility", "lots", "lot_grid") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'facility' (one lot), 'lots' or 'lot_grid' (a network)"
                + (f"; got {', '.join(given)}" if given else "")
            )
        lots = self.lot_specs
        lot_names = [lot.name for lot in lots]
        if len(set(lot_names)) != len(lot_names):
            raise ValueError(f"lot names must be unique, got {lot_names}")
        for stream in self.demand:
            if stream.lot is not None and stream.lot != "*" and stream.lot not in lot_names:
                raise ValueError(
                    f"demand stream {stream.name!r}: unknown lot {stream.lot!r} "
                    f"(lots: {', '.join(lot_names)}, or '*')"
                )
            if stream.lot is None and len(lots) > 1:
                raise ValueError(f"demand stream {stream.name!r} needs a 'lot' (or '*')")
        for lot in lots:
            for event in lot.tariff.events if lot.tariff is not None else ():
                unknown = [name for name in event.lots or () if name not in lot_names]
                if unknown:
                    raise ValueError(
                        f"tariff event {event.name!r}: unknown lot(s) {', '.join(unknown)} "
                        f"(lots: {', '.join(lot_names)})"
                    )
                if event.lanes is not None:
                    entry = lot.lanes.entry if lot.lanes is not None else None
                    count = 0 if entry is None else entry.count
                    bad = [n for n in event.lanes if n > count]
                    if bad and (event.lots is None or lot.name in event.lots):
                        where = f"lot {lot.name!r}" if len(lots) > 1 else "the lot"
                        raise ValueError(
                            f"tariff event {event.name!r}: lanes {bad} do not exist; {where} "
                            f"has {count} entry lane(s) (lanes.entry.count)"
                            + (", numbered from 1" if count else "")
                        )
        matrix = self.network.travel_time_min if self.network is not None else None
        if matrix is not None and (
            len(matrix) != len(lots) or any(len(row) != len(lots) for row in matrix)
        ):
            raise ValueError(f"network.travel_time_min must be {len(lots)} x {len(lots)}")
        priced = [s.name for s in self.demand if s.elasticity is not None]
        untariffed = any(lot.tariff is None for lot in lots)
        if (self.pricing_policy is not None or priced) and untariffed:
            what = "pricing_policy" if self.pricing_policy is not None else f"elasticity ({priced})"
            raise ValueError(f"{what} needs a tariff")
        if any(s.trace is not None for s in self.demand if s.elasticity is not None):
            raise ValueError("elasticity applies to generated demand, not to a replayed trace")
        groups: dict[str, tuple[str, float]] = {}
        for stream in self.demand:
            factor = stream.day_factor
            if factor is None or factor.group is None:
                continue
            first = groups.setdefault(factor.group, (stream.name, factor.cv))
            if first[1] != factor.cv:
                raise ValueError(
                    f"demand streams {first[0]!r} and {stream.name!r} share day_factor group "
                    f"{factor.group!r} with different cv ({first[1]:g}, {factor.cv:g}): "
                    "a shared factor has one cv"
                )
        return self

    def _claims_supported(self) -> None:
        """Claims cover the walk-ins' gates, app reservations' holds and holders (and a start
        state's cars, granted at time 0); permit holders would take units the store never
        granted."""
        ops = self.operations
        if ops is not None and ops.permits is not None:
            raise ValueError(
                "claims cannot be combined with permits yet: only the gates and reservations "
                "claim through the store (see docs/locking.md, 'In the main model')"
            )

    _lot_specs_cache: tuple | None = PrivateAttr(default=None)

    @property
    def lot_specs(self) -> list[LotSpec]:
        """Every lot with its lanes and tariff resolved; one lot when ``facility`` is given.

        Cached (a city grid expands to hundreds of lots), keyed on the identity of the fields
        it reads, so a ``model_copy(update=...)`` that swaps any of them recomputes.
        """
        key = tuple(
            id(getattr(self, name)) for name in ("facility", "lots", "lot_grid", "lanes", "tariff")
        )
        cached = self._lot_specs_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        specs = self._resolve_lot_specs()
        self.__pydantic_private__["_lot_specs_cache"] = (key, specs)
        return specs

    def _resolve_lot_specs(self) -> list[LotSpec]:
        if self.facility is not None:
            return [
                LotSpec(
                    name=self.facility.name,
                    facility=self.facility,
                    lanes=self.lanes,
                    tariff=self.tariff,
                )
            ]
        lots = self.lot_grid.expand() if self.lot_grid is not None else self.lots
        return [
            lot.model_copy(
                update={
                    "lanes": lot.lanes if lot.lanes is not None else self.lanes,
                    "tariff": lot.tariff if lot.tariff is not None else self.tariff,
                }
            )
            for lot in lots
        ]

    def travel_minutes(self) -> list[list[float]]:
        """Driving minutes between lots (matrix, or coordinates × circuity ÷ speed)."""
        lots = self.lot_specs
        net = self.network or NetworkSpec()
        if net.travel_time_min is not None:
            return net.travel_time_min
        return [
            [
                60.0 * net.circuity * math.hypot(a.x_km - b.x_km, a.y_km - b.y_km) / net.speed_kmh
                for b in lots
            ]
            for a in lots
        ]

    @property
    def horizon_s(self) -> float:
        return self.horizon_days * 86400.0

    @property
    def warmup_s(self) -> float:
        if self.warmup_hours == "auto":
            raise ValueError(
                "warmup_hours is 'auto': detect it first (twin.experiments.resolve_warmup)"
            )
        return self.warmup_hours * 3600.0


SPOT_TYPES = {t.name: t for t in SpotType}
VEHICLE_CLASSES = {c.name: c for c in VehicleClass}
