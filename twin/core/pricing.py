"""Tariffs as data: what a stay costs, in integer cents.

A rate model in the spirit of the APDS v4 "rates" model: a :class:`RateTable` (flat or incremental
with free period, grace, first-period minimum and daily maximum), time-of-day/weekday
:class:`TimeBand` overrides, :class:`EventRate` flat event pricing and :class:`DynamicPricing`
multipliers (occupancy bands, time bands, event windows). Everything is pure stdlib; money is
always ``int`` cents and multipliers are applied with :class:`~decimal.Decimal`.

Pricing rules (all of them; :meth:`Tariff.price` implements exactly these)
---------------------------------------------------------------------------
Time and duration
    ``entry_s``/``exit_s`` are core seconds (see :mod:`twin.core.clock`). The stay's duration is
    ``d = exit_s - entry_s``; in minutes that is ``d / 60`` as a float. ``exit_s < entry_s``
    raises :class:`ValueError`. All comparisons are done in seconds (``minutes * 60``), which is
    the same as comparing ``d / 60`` with whole minutes but free of division rounding.

Table in force at entry
    The band covering the entry instant (first matching band in ``Tariff.bands`` order) or, if
    none covers it, ``Tariff.default``. Its free minutes, grace, period length, first-period
    minimum and daily maximum govern the whole stay.

Incremental tables (``flat_cents is None``)
    With free period ``F``, grace ``G`` and period length ``P`` (minutes, from the entry table),
    period ``k = 0, 1, 2, ...`` starts ``F + k*P`` minutes after entry and is *started* (charged
    in full) when the duration exceeds its start by strictly more than ``G`` minutes::

        d/60 > F + k*P + G

    so a stay of at most ``F + G`` minutes is free, free minutes are never charged, and with
    ``P = 30, G = 5`` a 34-minute stay is 1 period and a 36-minute stay is 2. The number of
    started periods is ``n = ceil((d/60 - F - G) / P)`` (0 if that is not positive).

    Each started period costs the ``period_cents`` of the table in force at the instant the
    period *starts* (a period straddling a band boundary is charged at the rate of the band
    where it starts). If that band's ``period_minutes`` differs from the entry table's ``P``, its
    rate is prorated to ``P`` minutes (``period_cents * P / period_minutes``, half-up to whole
    cents). A band table's ``flat_cents`` only matters when it is the entry table.

24-hour blocks, first-period minimum and daily maximum
    The stay is cut into 24 h blocks counted from entry; a period belongs to the block in which it
    starts. The first block whose charge is positive is raised to at least
    ``first_period_min_cents``. Then every block is capped at the daily maximum:
    ``Tariff.daily_max_cents`` if set (it wins), else the entry table's ``daily_max_cents``
    (``None`` = no cap). The cap never *raises* a block: a full 24 h block costs
    ``min(daily max, its periods)``. Without a daily max, a multi-day stay is simply priced
    continuously (periods counted from entry, no new free period per day).

Flat tables (``flat_cents`` set on the entry table)
    Every started 24 h block costs ``flat_cents`` (capped by the daily max if one applies); the
    incremental fields and other bands are ignored, except grace: block ``j >= 1`` is started
    when ``d/60 > j*1440 + G``. Block 0 is always started, so a 0-minute stay pays one flat
    amount.

Zero-minute stays
    Cost 0 unless a flat rate applies at entry (flat entry table or event flat rate).

Events
    An entry in ``[start_s, end_s)`` of an :class:`EventRate` with ``flat_cents`` set (first such
    event in tuple order) pays that amount for block 0 (the first 24 h) instead of the table; no
    first-period minimum and no daily cap apply to the event amount. Blocks 1, 2, ... are priced
    exactly as without the event (periods counted from entry, daily-capped). An event with
    ``flat_cents=None`` only marks an event window for the dynamic event multiplier.

Dynamic pricing
    The multiplier is the product of: the occupancy band multiplier (highest threshold <=
    occupancy at entry wins; below every threshold: 1), every time band covering the entry
    instant, and ``event_multiplier`` if the entry is inside any event window -- except that the
    event multiplier is left out when an event *flat* rate was applied and
    ``event_multiplier_on_flat`` is False. The product is clamped to
    ``[min_multiplier, max_multiplier]`` and applied once to the final amount, rounded half-up to
    whole cents with Decimal (each float multiplier enters as ``Decimal(str(m))``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal

from twin.core.clock import Calendar
from twin.core.pricing_days import DayPlan, group_caps
from twin.core.pricing_parts import (
    DAY_S,
    MINUTES_PER_DAY,
    MINUTES_PER_WEEK,
    WEEK_S,
    RateTable,
    SpecialDay,
    Validation,
    WindowCap,
    check_days,
    check_int,
    check_multiplier,
    check_opt_int,
    check_window,
    compress,
    paint_week,
    week_minutes,
)

__all__ = [
    "DAY_S",
    "MINUTES_PER_DAY",
    "MINUTES_PER_WEEK",
    "WEEK_S",
    "DynamicPricing",
    "EventRate",
    "PriceContext",
    "RateTable",
    "SpecialDay",
    "Tariff",
    "TimeBand",
    "TimeBandMultiplier",
    "Validation",
    "WindowCap",
]

#: How a day's maximum is counted: 24 h blocks from entry (the default), or operating days
#: between two daily boundaries at ``Tariff.day_start_minute``.
DAILY_MAX_PER = ("24h_from_entry", "operating_day")
#: Where an instant exactly on an edge (band, window, operating day, event) belongs.
AT_BOUNDARY = ("next", "previous")

_ONE = Decimal(1)


# --------------------------------------------------------------------------- data model


@dataclass(frozen=True, slots=True)
class TimeBand:
    """A weekday/time-of-day window with its own rate table.

    ``days``: 0 = Mon .. 6 = Sun; ``start_minute``/``end_minute``: minutes of day, end exclusive
    (1440 = midnight at the end of the day). ``start_minute > end_minute`` wraps past midnight
    and belongs to the day it starts on. Where bands overlap, the first in ``Tariff.bands`` wins.
    """

    days: frozenset[int]
    start_minute: int
    end_minute: int
    table: RateTable
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", check_days(self.days))
        check_window(self.start_minute, self.end_minute)
        if not isinstance(self.table, RateTable):
            raise TypeError("table must be a RateTable")


@dataclass(frozen=True, slots=True)
class EventRate:
    """Event pricing: an entry in ``[start_s, end_s)`` pays ``flat_cents`` for its first day.

    ``flat_cents=None`` declares an event window that only triggers the dynamic
    ``event_multiplier`` (table pricing otherwise unchanged). ``prepaid``: the flat rate is a
    product sold at entry (to ``share`` of the drivers entering in the window); drivers who take
    a normal ticket pay the normal tariff, at most ``flat_cents`` for their first day when
    ``cap_others``. ``lanes``: the product is sold only at these entry lanes (numbers from 1),
    to ``share`` of the drivers served there; ``None`` sells it at every lane (and in lots
    without barriers). A sign reads "Event $10, pay at lanes 1-2": the other lanes issue tickets.
    """

    name: str
    start_s: float
    end_s: float
    flat_cents: int | None = None
    prepaid: bool = False
    share: float = 1.0
    cap_others: bool = False
    lanes: frozenset[int] | None = None

    def __post_init__(self) -> None:
        check_opt_int("flat_cents", self.flat_cents)
        if self.lanes is not None:
            lanes = frozenset(self.lanes)
            if not lanes or any(
                isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in lanes
            ):
                raise ValueError(
                    f"event {self.name!r}: lanes must be a non-empty set of lane numbers >= 1"
                )
            if not self.prepaid:
                raise ValueError(f"event {self.name!r}: lanes sell a product: needs prepaid")
            object.__setattr__(self, "lanes", lanes)
        if not self.end_s > self.start_s:
            raise ValueError(f"event {self.name!r}: end_s must be after start_s")
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"event {self.name!r}: share must be in [0, 1]")
        if (self.prepaid or self.cap_others) and self.flat_cents is None:
            raise ValueError(f"event {self.name!r}: a prepaid product or cap needs flat_cents")


@dataclass(frozen=True, slots=True)
class TimeBandMultiplier:
    """A dynamic-pricing multiplier for entries in a weekday/time-of-day window (see TimeBand)."""

    days: frozenset[int]
    start_minute: int
    end_minute: int
    multiplier: float
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", check_days(self.days))
        check_window(self.start_minute, self.end_minute)
        check_multiplier("multiplier", self.multiplier)


@dataclass(frozen=True, slots=True)
class DynamicPricing:
    """Multipliers on the final amount (the DynamicPricingService of the reference design).

    ``occupancy_bands``: ``(min_occupancy_fraction, multiplier)`` pairs; the highest threshold
    <= the occupancy at entry wins, below every threshold the factor is 1. The core default is no
    bands (factor 1); the scenario layer supplies planner defaults. ``time_bands``: every band
    covering the entry instant multiplies. ``event_multiplier``: applied when the entry is inside
    an event window of the tariff (not on top of an event flat rate unless
    ``event_multiplier_on_flat``). The product is clamped to ``[min_multiplier, max_multiplier]``
    (``max_multiplier=None``: no upper bound).
    """

    occupancy_bands: tuple[tuple[float, float], ...] = ()
    time_bands: tuple[TimeBandMultiplier, ...] = ()
    event_multiplier: float = 1.0
    min_multiplier: float = 0.0
    max_multiplier: float | None = None
    event_multiplier_on_flat: bool = False

    def __post_init__(self) -> None:
        bands = tuple((float(t), m) for t, m in self.occupancy_bands)
        seen: set[float] = set()
        for t, m in bands:
            if not 0.0 <= t <= 1.0:
                raise ValueError(f"occupancy thresholds must be in [0, 1], got {t}")
            if t in seen:
                raise ValueError(f"duplicate occupancy threshold {t}")
            seen.add(t)
            check_multiplier("occupancy multiplier", m)
        object.__setattr__(self, "occupancy_bands", tuple(sorted(bands)))
        object.__setattr__(self, "time_bands", tuple(self.time_bands))
        check_multiplier("event_multiplier", self.event_multiplier)
        lo = Decimal(str(self.min_multiplier))
        if not lo.is_finite() or lo < 0:
            raise ValueError("min_multiplier must be >= 0")
        if self.max_multiplier is not None and Decimal(str(self.max_multiplier)) < lo:
            raise ValueError("max_multiplier must be >= min_multiplier")


@dataclass(frozen=True, slots=True)
class PriceContext:
    """What the lot knows at entry besides time: occupancy fraction (recorded at allocation)."""

    occupancy: float = 0.0
    lot_id: str | None = None
    extra: Mapping[str, object] | None = None
    #: The driver bought the event product sold at entry (see ``EventRate.prepaid``).
    prepaid: bool = False
    #: Index into ``Tariff.validations`` of the validation stamped on the ticket, if any.
    validation: int | None = None


@dataclass(frozen=True, slots=True)
class Tariff:
    """A complete tariff; see the module docstring for every pricing rule.

    Construction precomputes a week timeline of bands (and of dynamic time multipliers) so that
    :meth:`price` does no datetime work; with no bands, events or dynamic pricing it takes an
    integer-arithmetic fast path.
    """

    name: str
    default: RateTable
    bands: tuple[TimeBand, ...] = ()
    events: tuple[EventRate, ...] = ()
    daily_max_cents: int | None = None
    dynamic: DynamicPricing | None = None
    calendar: Calendar = field(default_factory=Calendar)
    daily_max_per: str = "24h_from_entry"
    day_start_minute: int = 0
    windows: tuple[WindowCap, ...] = ()
    special_days: tuple[SpecialDay, ...] = ()
    weekly_max_cents: int | None = None
    monthly_max_cents: int | None = None
    validations: tuple[Validation, ...] = ()
    at_boundary: str = "next"

    # precomputed (not part of identity)
    _off: float = field(init=False, repr=False, compare=False)
    _fast: bool = field(init=False, repr=False, compare=False)
    _tables: tuple[RateTable, ...] = field(init=False, repr=False, compare=False)
    _caps: tuple[int | None, ...] = field(init=False, repr=False, compare=False)
    _rates: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)
    _iv_start: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _iv_end: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _iv_table: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _ev: tuple[tuple[float, float, int | None], ...] = field(init=False, repr=False, compare=False)
    _occ_thr: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _dyn_start: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _mtab: tuple = field(init=False, repr=False, compare=False)
    _ev_on_flat: bool = field(init=False, repr=False, compare=False)
    # fast-path scalars (default table)
    _fg_s: float = field(init=False, repr=False, compare=False)
    _p_s: float = field(init=False, repr=False, compare=False)
    _g_s: float = field(init=False, repr=False, compare=False)
    _rate: int = field(init=False, repr=False, compare=False)
    _min: int = field(init=False, repr=False, compare=False)
    _cap: int | None = field(init=False, repr=False, compare=False)
    _flat: int | None = field(init=False, repr=False, compare=False)
    _plan: DayPlan | None = field(init=False, repr=False, compare=False)
    _prev: bool = field(init=False, repr=False, compare=False)
    _events: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sa = object.__setattr__
        if not isinstance(self.default, RateTable):
            raise TypeError("default must be a RateTable")
        bands = tuple(self.bands)
        events = tuple(self.events)
        for b in bands:
            if not isinstance(b, TimeBand):
                raise TypeError("bands must be TimeBand instances")
        for e in events:
            if not isinstance(e, EventRate):
                raise TypeError("events must be EventRate instances")
        check_opt_int("daily_max_cents", self.daily_max_cents)
        check_opt_int("weekly_max_cents", self.weekly_max_cents)
        check_opt_int("monthly_max_cents", self.monthly_max_cents)
        if self.daily_max_per not in DAILY_MAX_PER:
            raise ValueError(f"daily_max_per must be one of {DAILY_MAX_PER}")
        if self.at_boundary not in AT_BOUNDARY:
            raise ValueError(f"at_boundary must be one of {AT_BOUNDARY}")
        check_int("day_start_minute", self.day_start_minute)
        if self.day_start_minute >= MINUTES_PER_DAY:
            raise ValueError("day_start_minute must be in 0..1439")
        for name, kind in (
            ("windows", WindowCap),
            ("special_days", SpecialDay),
            ("validations", Validation),
        ):
            sa(self, name, tuple(getattr(self, name)))
            if not all(isinstance(x, kind) for x in getattr(self, name)):
                raise TypeError(f"{name} must be {kind.__name__} instances")
        sa(self, "bands", bands)
        sa(self, "events", events)
        sa(self, "_off", self.calendar.week_seconds(0.0))

        special_tables = tuple(sp.table for sp in self.special_days if sp.table is not None)
        tables = (self.default, *(b.table for b in bands), *special_tables)
        sa(self, "_tables", tables)
        sa(
            self,
            "_caps",
            tuple(
                self.daily_max_cents if self.daily_max_cents is not None else t.daily_max_cents
                for t in tables
            ),
        )
        # rates[entry_table][table]: period_cents of `table` prorated to entry table's period.
        rates = []
        for te in tables:
            row = []
            for t in tables:
                if t.period_minutes == te.period_minutes:
                    row.append(t.period_cents)
                else:
                    num = 2 * t.period_cents * te.period_minutes + t.period_minutes
                    row.append(num // (2 * t.period_minutes))
            rates.append(tuple(row))
        sa(self, "_rates", tuple(rates))

        # Week timeline of table indices (0 = default, i + 1 = bands[i]).
        band_layers = [(b.days, b.start_minute, b.end_minute, i + 1) for i, b in enumerate(bands)]
        if bands:
            starts, ends, vals = paint_week(band_layers, 0)
        else:
            starts, ends, vals = (0.0,), (WEEK_S,), (0,)
        sa(self, "_iv_start", starts)
        sa(self, "_iv_end", ends)
        sa(self, "_iv_table", vals)
        sa(self, "_ev", tuple((e.start_s, e.end_s, e.flat_cents) for e in events))

        dyn = self.dynamic
        if dyn is not None:
            occ_thr = tuple(t for t, _ in dyn.occupancy_bands)
            occ_m = (_ONE, *(Decimal(str(m)) for _, m in dyn.occupancy_bands))
            tweek = [_ONE] * MINUTES_PER_WEEK
            for tb in dyn.time_bands:
                mult = Decimal(str(tb.multiplier))
                for m in week_minutes(tb.days, tb.start_minute, tb.end_minute):
                    tweek[m] *= mult
            dstarts, _dends, tvals = compress(tweek)
            ev_m = Decimal(str(dyn.event_multiplier))
            lo = Decimal(str(dyn.min_multiplier))
            hi = None if dyn.max_multiplier is None else Decimal(str(dyn.max_multiplier))

            def clamp(x: Decimal) -> Decimal:
                if x < lo:
                    x = lo
                if hi is not None and x > hi:
                    x = hi
                return x

            # mtab[occupancy index + 1][time interval][in event window] -> clamped product
            mtab = tuple(
                tuple((clamp(om * tv), clamp(om * tv * ev_m)) for tv in tvals) for om in occ_m
            )
            sa(self, "_occ_thr", occ_thr)
            sa(self, "_dyn_start", dstarts)
            sa(self, "_mtab", mtab)
            sa(self, "_ev_on_flat", dyn.event_multiplier_on_flat)
        else:
            sa(self, "_occ_thr", ())
            sa(self, "_dyn_start", (0.0,))
            sa(self, "_mtab", ((_ONE, _ONE),))
            sa(self, "_ev_on_flat", False)

        general = (
            self.daily_max_per != "24h_from_entry"
            or self.at_boundary != "next"
            or self.windows
            or self.special_days
            or self.weekly_max_cents is not None
            or self.monthly_max_cents is not None
            or self.validations
            or any(e.prepaid or e.cap_others for e in events)
        )
        plan = None
        if general:
            index = iter(range(1 + len(bands), len(tables)))
            own = tuple(-1 if sp.table is None else next(index) for sp in self.special_days)
            plan = DayPlan(
                tables=tables,
                caps=self._caps,
                rates=self._rates,
                band_layers=band_layers,
                windows=self.windows,
                specials=self.special_days,
                special_tables=own,
                epoch=self.calendar.epoch.date(),
                week_offset_s=self._off,
                day_start_minute=(
                    self.day_start_minute if self.daily_max_per == "operating_day" else None
                ),
                boundary_to_previous=self.at_boundary == "previous",
                weekly_max_cents=self.weekly_max_cents,
                monthly_max_cents=self.monthly_max_cents,
            )
        sa(self, "_plan", plan)
        sa(self, "_prev", self.at_boundary == "previous")
        sa(
            self,
            "_events",
            tuple((e.start_s, e.end_s, e.flat_cents, e.prepaid, e.cap_others) for e in events),
        )

        d = self.default
        sa(self, "_fast", not bands and not events and dyn is None and plan is None)
        sa(self, "_fg_s", (d.free_minutes + d.grace_minutes) * 60.0)
        sa(self, "_p_s", d.period_minutes * 60.0)
        sa(self, "_g_s", d.grace_minutes * 60.0)
        sa(self, "_rate", d.period_cents)
        sa(self, "_min", d.first_period_min_cents)
        sa(self, "_cap", self._caps[0])
        sa(self, "_flat", d.flat_cents)

    # ------------------------------------------------------------------ public API

    def price(self, entry_s: float, exit_s: float, ctx: PriceContext | None = None) -> int:
        """Cents for a stay from ``entry_s`` to ``exit_s`` (core seconds).

        See the module docstring for the rules. ``ctx.occupancy`` (occupancy fraction at entry)
        only matters with dynamic pricing. Raises ValueError if ``exit_s < entry_s``.
        """
        if self._fast:
            d = exit_s - entry_s
            if not d >= 0:
                raise ValueError(f"exit {exit_s} is before entry {entry_s}")
            flat = self._flat
            if flat is not None:
                return self._flat_blocks(d, flat, self._cap, self._g_s, False)
            x = d - self._fg_s
            if x <= 0:
                return 0
            if d <= DAY_S:  # every started period starts in block 0
                amount = int(-(-x // self._p_s)) * self._rate
                if amount:
                    if amount < self._min:
                        amount = self._min
                    cap = self._cap
                    if cap is not None and amount > cap:
                        amount = cap
                return amount
            return self._incremental(d, 0.0, 0, 0, False)
        if self._plan is not None:
            return self._price_days(entry_s, exit_s, ctx)
        return self._price(entry_s, exit_s, 0.0 if ctx is None else ctx.occupancy)

    def quote(self, entry_s: float, expected_exit_s: float, occupancy: float = 0.0) -> int:
        """What a driver sees at the gate: ``price`` with the occupancy at entry (a normal
        ticket: no event product bought, no validation)."""
        if self._fast:
            return self.price(entry_s, expected_exit_s)
        if self._plan is not None:
            return self._price_days(entry_s, expected_exit_s, PriceContext(occupancy))
        return self._price(entry_s, expected_exit_s, occupancy)

    @property
    def by_operating_day(self) -> bool:
        """Whether prices come from the operating-day engine (:mod:`twin.core.pricing_days`):
        day caps with a boundary, window caps, weekly/monthly caps, special days or
        validations. Otherwise the table engine prices every stay (cheaper)."""
        return self._plan is not None

    @property
    def sells_products(self) -> bool:
        """Whether a price depends on what the driver bought or had stamped (event products,
        validations): then the seller must say so in the :class:`PriceContext`."""
        return bool(self.validations) or any(e.prepaid for e in self.events)

    def event_product_at(self, t_s: float) -> EventRate | None:
        """The prepaid event product on sale to an entry at ``t_s``, if any (the event that
        would price that entry, see the module docstring)."""
        for e in self.events:
            if e.flat_cents is not None and self._in_window(e, t_s):
                return e if e.prepaid else None
        return None

    @property
    def sells_at_lanes(self) -> bool:
        """Whether an event product is sold only at some entry lanes: then the seller must say
        which lane served each driver (:meth:`products_for`'s ``lane``)."""
        return any(e.prepaid and e.lanes is not None for e in self.events)

    def products_for(
        self, t_s: float, u_event: float, u_validation: float, lane: int | None = None
    ) -> PriceContext:
        """What a driver entering at ``t_s`` holds, given two uniform draws in [0, 1): the event
        product on sale if ``u_event < share`` (and, for a product sold at some lanes only, the
        driver was served at one of them: ``lane`` is its number from 1, ``None`` for an entry
        through no numbered lane, which such a product never reaches); the validation whose
        cumulative share first exceeds ``u_validation`` (validations in order), else none."""
        product = self.event_product_at(t_s)
        if product is not None and product.lanes is not None and lane not in product.lanes:
            product = None
        validation = None
        acc = 0.0
        for j, v in enumerate(self.validations):
            acc += v.share
            if u_validation < acc:
                validation = j
                break
        return PriceContext(
            prepaid=product is not None and u_event < product.share, validation=validation
        )

    def _in_window(self, e: EventRate, t_s: float) -> bool:
        if self.at_boundary == "previous":
            return e.start_s < t_s <= e.end_s
        return e.start_s <= t_s < e.end_s

    @property
    def table_names(self) -> tuple[str, ...]:
        """Names of the rate tables: ``"default"``, each band's name, then each special day's
        with a table of its own (index order)."""
        return (
            "default",
            *(b.name or f"band {i + 1}" for i, b in enumerate(self.bands)),
            *(sp.name for sp in self.special_days if sp.table is not None),
        )

    def table_index_at(self, t_s: float) -> int:
        """Which table is in force at ``t_s``: 0 = default, ``i + 1`` = ``bands[i]``, then the
        special days' own tables."""
        if self._plan is not None:
            return self._plan.table_at(t_s)
        ws = (t_s + self._off) % WEEK_S
        return self._iv_table[bisect_right(self._iv_start, ws) - 1]

    def hourly_rate_at(self, t_s: float) -> float:
        """Cents per hour of the incremental rate in force at ``t_s`` (0 for a flat table).

        What a driver compares when deciding whether to come at all (price elasticity) and
        what demand-responsive policies adjust.
        """
        table = self._tables[self.table_index_at(t_s)]
        if table.flat_cents is not None:
            return 0.0
        return table.period_cents * 60.0 / table.period_minutes

    def with_hourly_rates(self, rates: Mapping[int, int]) -> Tariff:
        """A copy whose tables (by index, see :meth:`table_index_at`) charge the given cents
        per hour, keeping each table's period length (rounded half-up to whole cents)."""
        tables = list(self._tables)
        for index, cents_per_hour in rates.items():
            t = tables[index]
            num = 2 * int(cents_per_hour) * t.period_minutes + 60
            tables[index] = replace(t, period_cents=num // 120)
        bands = tuple(replace(b, table=tables[i + 1]) for i, b in enumerate(self.bands))
        own = iter(tables[1 + len(bands) :])
        specials = tuple(
            sp if sp.table is None else replace(sp, table=next(own)) for sp in self.special_days
        )
        return replace(self, default=tables[0], bands=bands, special_days=specials)

    def multiplier(self, t_s: float, occupancy: float) -> Decimal:
        """Clamped dynamic multiplier for an entry at ``t_s`` (event multiplier included when
        ``t_s`` is in an event window); ``Decimal(1)`` without dynamic pricing."""
        if self.dynamic is None:
            return _ONE
        ws = (t_s + self._off) % WEEK_S
        in_event = any(self._in_window(e, t_s) for e in self.events)
        return self._mult(ws, occupancy, in_event)

    # ------------------------------------------------------------------ internals

    def _mult(self, ws: float, occupancy: float, in_event: bool) -> Decimal:
        oi = bisect_right(self._occ_thr, occupancy)
        ti = bisect_right(self._dyn_start, ws) - 1
        return self._mtab[oi][ti][1 if in_event else 0]

    def _price(self, entry_s: float, exit_s: float, occupancy: float) -> int:
        d = exit_s - entry_s
        if not d >= 0:
            raise ValueError(f"exit {exit_s} is before entry {entry_s}")
        ws0 = (entry_s + self._off) % WEEK_S
        idx = bisect_right(self._iv_start, ws0) - 1
        et = self._iv_table[idx]
        table = self._tables[et]
        in_event = False
        ev_flat = None
        for s, e, flat in self._ev:
            if s <= entry_s < e:
                in_event = True
                if flat is not None:
                    ev_flat = flat
                    break
        skip0 = ev_flat is not None
        if table.flat_cents is not None:
            amount = self._flat_blocks(
                d, table.flat_cents, self._caps[et], table.grace_minutes * 60.0, skip0
            )
        else:
            amount = self._incremental(d, ws0, idx, et, skip0)
        if skip0:
            amount += ev_flat
            if not self._ev_on_flat:
                in_event = False
        if amount and self.dynamic is not None:
            m = self._mult(ws0, occupancy, in_event)
            if m != _ONE:
                amount = int((Decimal(amount) * m).quantize(_ONE, rounding=ROUND_HALF_UP))
        return amount

    def _price_days(self, entry_s: float, exit_s: float, ctx: PriceContext | None) -> int:
        """The general path (operating days, windows, calendars, products, validations)."""
        d = exit_s - entry_s
        if not d >= 0:
            raise ValueError(f"exit {exit_s} is before entry {entry_s}")
        plan = self._plan
        et = plan.locate(entry_s)[0]
        table = self._tables[et]
        cap0 = self._caps[et]
        in_event = False
        ev_flat = None
        prev = self._prev
        for start, end, flat, prepaid, cap_others in self._events:
            if not ((start < entry_s <= end) if prev else (start <= entry_s < end)):
                continue
            in_event = True
            if flat is None:
                continue
            if not prepaid or (ctx is not None and ctx.prepaid):
                ev_flat = flat
            elif cap_others and (cap0 is None or flat < cap0):
                cap0 = flat
            break
        free_s = table.free_minutes * 60.0
        off = 0
        if ctx is not None and ctx.validation is not None:
            v = self.validations[ctx.validation]
            if v.free_minutes * 60.0 > free_s:
                free_s = v.free_minutes * 60.0
            off = v.amount_off_cents
        days = plan.day_charges(entry_s, d, et, free_s, ev_flat is not None, cap0)
        if ev_flat is not None:
            days[0] = ev_flat
            if not self._ev_on_flat:
                in_event = False
        amount = group_caps(days, self.weekly_max_cents, self.monthly_max_cents)
        if amount and self.dynamic is not None:
            ws0 = (entry_s + self._off) % WEEK_S
            m = self._mult(ws0, 0.0 if ctx is None else ctx.occupancy, in_event)
            if m != _ONE:
                amount = int((Decimal(amount) * m).quantize(_ONE, rounding=ROUND_HALF_UP))
        return amount - off if amount > off else 0

    @staticmethod
    def _flat_blocks(d: float, flat: int, cap: int | None, g_s: float, skip0: bool) -> int:
        x = d - g_s
        nb = 1 if x <= DAY_S else int(-(-x // DAY_S))
        if skip0:
            nb -= 1
        if cap is not None and flat > cap:
            flat = cap
        return nb * flat

    def _incremental(self, d: float, ws0: float, idx: int, et: int, skip0: bool) -> int:
        """Incremental pricing with bands and per-24 h-block caps (general path)."""
        t = self._tables[et]
        f_s = t.free_minutes * 60.0
        p_s = t.period_minutes * 60.0
        x = d - f_s - t.grace_minutes * 60.0
        if x <= 0:
            return 0
        n = int(-(-x // p_s))  # started periods
        limit = f_s + n * p_s  # period starts lie in [f_s, limit)
        rates = self._rates[et]
        cap = self._caps[et]
        fmin = t.first_period_min_cents
        lifted = skip0  # the event flat already counts as "something charged"
        starts = self._iv_start
        ends = self._iv_end
        ivt = self._iv_table
        niv = len(ivt)

        rate = rates[ivt[idx]]
        seg_end = ends[idx] - ws0
        block = 0
        block_end = DAY_S
        block_sum = 0
        total = 0
        pos = 0.0
        while True:
            end = seg_end if seg_end < block_end else block_end
            # period starts f_s + k*p_s in [pos, end), k in [0, n)
            lo = -(-(pos - f_s) // p_s)
            if lo < 0:
                lo = 0
            hi = -(-(end - f_s) // p_s)
            if hi > n:
                hi = n
            if hi > lo:
                block_sum += int(hi - lo) * rate
            if end >= limit:
                break
            if end == block_end:
                if block or not skip0:
                    if block_sum and not lifted:
                        lifted = True
                        if block_sum < fmin:
                            block_sum = fmin
                    if cap is not None and block_sum > cap:
                        block_sum = cap
                    total += block_sum
                block_sum = 0
                block += 1
                block_end += DAY_S
            if end == seg_end:
                idx += 1
                if idx == niv:
                    idx = 0
                seg_end += ends[idx] - starts[idx]
                rate = rates[ivt[idx]]
            pos = end
        if block or not skip0:
            if block_sum and not lifted and block_sum < fmin:
                block_sum = fmin
            if cap is not None and block_sum > cap:
                block_sum = cap
            total += block_sum
        return total
