"""Tariff pricing: hand-worked figures for every rule, properties, and the scenario schema.

Core time: seconds since the calendar epoch, Monday 2026-01-05 00:00 (``Calendar()``), so
``MON + 8 * H`` is Monday 08:00 and ``SAT`` is Saturday 00:00.
"""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from twin.core.clock import Calendar
from twin.core.pricing import (
    DynamicPricing,
    EventRate,
    PriceContext,
    RateTable,
    Tariff,
    TimeBand,
    TimeBandMultiplier,
)
from twin.scenario.tariff import TariffSpec

M = 60.0
H = 3_600.0
DAY = 86_400.0
MON, TUE, SAT, SUN = 0.0, DAY, 5 * DAY, 6 * DAY
WEEKDAYS = frozenset(range(5))
ALL_DAYS = frozenset(range(7))

HOURLY = RateTable(period_minutes=60, period_cents=200)  # $2 per started hour


def tariff(table: RateTable = HOURLY, **kw) -> Tariff:
    return Tariff("t", table, **kw)


def p(t: Tariff, minutes: float, entry: float = MON + 12 * H, occ: float | None = None) -> int:
    ctx = None if occ is None else PriceContext(occupancy=occ)
    return t.price(entry, entry + minutes * M, ctx)


# ----------------------------------------------------------------------------- basic periods


def test_zero_minute_stay_is_free():
    assert p(tariff(), 0) == 0
    # even with a first-period minimum: nothing is charged, so no minimum
    assert p(tariff(RateTable(period_cents=200, first_period_min_cents=500)), 0) == 0


def test_exactly_one_period():
    # 60 min = exactly 1 started hour -> 1 x 200
    assert p(tariff(), 60) == 200


def test_one_period_plus_one_minute_and_one_second():
    # 61 min: the second hour has started -> 2 x 200
    assert p(tariff(), 61) == 400
    # 60 min + 1 s: also a started second hour (no grace)
    assert tariff().price(MON, MON + H + 1) == 400
    # 1 s: first hour started -> 200
    assert tariff().price(MON, MON + 1) == 200


def test_grace_boundary():
    t = tariff(RateTable(period_minutes=30, period_cents=100, grace_minutes=5))
    # 5 min into the first period is still grace -> 0; one second more -> 1 period
    assert t.price(MON, MON + 5 * M) == 0
    assert t.price(MON, MON + 5 * M + 1) == 100
    # the spec's example: 34 min -> 1 period, 36 min -> 2 periods
    assert p(t, 34) == 100
    assert p(t, 36) == 200
    # exactly at grace of the second period (30 + 5 = 35 min) -> still 1 period
    assert t.price(MON, MON + 35 * M) == 100
    # one second past -> 2 periods
    assert t.price(MON, MON + 35 * M + 1) == 200


def test_free_first_hour():
    t = tariff(RateTable(free_minutes=60, period_minutes=60, period_cents=200))
    assert p(t, 59) == 0
    assert p(t, 60) == 0
    # 61 min: 1 minute past the free hour starts the first paid hour -> 200
    assert p(t, 61) == 200
    # 2 h: free hour + exactly one paid hour -> 200 (free minutes are never charged)
    assert p(t, 120) == 200
    assert p(t, 121) == 400


def test_free_first_hour_with_grace():
    t = tariff(RateTable(free_minutes=60, period_minutes=60, period_cents=200, grace_minutes=5))
    assert p(t, 61) == 0  # within 5 min grace after the free hour
    assert t.price(MON, MON + 65 * M) == 0  # exactly 60 + 5
    assert t.price(MON, MON + 65 * M + 1) == 200  # one second past
    assert t.price(MON, MON + 125 * M) == 200  # second paid hour still in grace
    assert t.price(MON, MON + 125 * M + 1) == 400


def test_first_period_minimum():
    t = tariff(RateTable(period_minutes=15, period_cents=50, first_period_min_cents=300))
    # 10 min: 1 period = 50 -> raised to the 300 minimum
    assert p(t, 10) == 300
    # 90 min: 6 periods = 300 -> 300 (minimum not binding)
    assert p(t, 90) == 300
    # 100 min: 7 periods = 350 -> 350
    assert p(t, 100) == 350


def test_daily_max():
    t = tariff(RateTable(period_minutes=60, period_cents=200, daily_max_cents=2000))
    assert p(t, 9 * 60) == 1800  # 9 x 200
    assert p(t, 10 * 60) == 2000  # 10 x 200, at the cap
    assert p(t, 11 * 60) == 2000  # 2200 capped
    assert p(t, 24 * 60) == 2000


def test_tariff_daily_max_wins_over_table():
    t = tariff(RateTable(period_cents=200, daily_max_cents=2000), daily_max_cents=1000)
    # 10 h = 2000, tariff-level cap 1000 wins
    assert p(t, 10 * 60) == 1000


def test_three_day_stay_without_daily_max():
    # 75 h: priced continuously, 75 started hours x 200 = 15000
    assert p(tariff(), 75 * 60) == 15_000


def test_three_day_stay_with_daily_max():
    t = tariff(RateTable(period_cents=200, daily_max_cents=2000))
    # 75 h: blocks 0, 1, 2 each 24 x 200 = 4800 -> 2000; block 3: 3 x 200 = 600
    # 3 x 2000 + 600 = 6600
    assert p(t, 75 * 60) == 6600
    # exactly 72 h: 3 full blocks -> 6000; one second more starts a period in block 3 -> 6200
    assert p(t, 72 * 60) == 6000
    assert t.price(MON, MON + 72 * H + 1) == 6200


def test_three_day_stay_free_hour_and_daily_max():
    table = RateTable(free_minutes=60, period_cents=200, daily_max_cents=2000)
    # 72 h, no cap: 71 paid hours x 200 = 14200
    assert p(tariff(RateTable(free_minutes=60, period_cents=200)), 72 * 60) == 14_200
    # with the cap: block 0 has 23 paid hours (4600 -> 2000), blocks 1 and 2 have 24 -> 2000 each
    assert p(tariff(table), 72 * 60) == 6000


def test_daily_max_is_a_cap_not_a_price():
    # $0.50/h: a full day is 24 x 50 = 1200 < 2000, so two full days cost 2400, not 4000
    t = tariff(RateTable(period_cents=50, daily_max_cents=2000))
    assert p(t, 48 * 60) == 2400


def test_flat_rate():
    t = tariff(RateTable(flat_cents=1800, period_cents=999))  # incremental fields ignored
    assert p(t, 0) == 1800  # flat applies at entry
    assert p(t, 3 * 60) == 1800
    assert p(t, 24 * 60) == 1800
    assert t.price(MON, MON + DAY + 1) == 3600  # second day started
    assert p(t, 72 * 60) == 5400
    assert p(t, 73 * 60) == 7200


def test_flat_rate_grace_delays_next_day():
    t = tariff(RateTable(flat_cents=1800, grace_minutes=60))
    assert p(t, 24 * 60 + 59) == 1800
    assert p(t, 25 * 60) == 1800  # exactly 24 h + grace
    assert t.price(MON, MON + 25 * H + 1) == 3600


def test_flat_rate_capped_by_daily_max():
    assert p(tariff(RateTable(flat_cents=3000), daily_max_cents=2500), 60) == 2500


def test_exit_before_entry_raises():
    with pytest.raises(ValueError):
        tariff().price(MON + H, MON)
    with pytest.raises(ValueError):
        tariff(bands=(TimeBand(WEEKDAYS, 0, 600, HOURLY),)).price(MON + H, MON)


# ----------------------------------------------------------------------------- bands

PEAK = RateTable(period_minutes=60, period_cents=400)
DOWNTOWN = tariff(bands=(TimeBand(WEEKDAYS, 7 * 60, 10 * 60, PEAK, "am peak"),))


def test_band_entirely_inside_peak():
    # Mon 07:30-09:30: periods start 07:30, 08:30, both peak -> 2 x 400
    assert p(DOWNTOWN, 120, entry=MON + 7.5 * H) == 800


def test_band_entirely_off_peak():
    # Mon 12:00-14:00 -> 2 x 200
    assert p(DOWNTOWN, 120, entry=MON + 12 * H) == 400


def test_band_straddling_ten_oclock():
    # Mon 08:30-11:30: periods start 08:30 (peak 400), 09:30 (peak 400, straddles 10:00 but is
    # charged where it starts), 10:30 (off-peak 200) -> 1000
    assert p(DOWNTOWN, 180, entry=MON + 8.5 * H) == 1000
    # Mon 09:00-11:00: 09:00 peak 400, 10:00 starts exactly at the boundary -> off-peak 200
    assert p(DOWNTOWN, 120, entry=MON + 9 * H) == 600
    # entry off-peak, stay runs into peak: Mon 06:30-08:30 -> 06:30 off 200, 07:30 peak 400
    assert p(DOWNTOWN, 120, entry=MON + 6.5 * H) == 600


def test_band_weekend_vs_weekday():
    # same clock times on Saturday: no weekday band -> 3 x 200
    assert p(DOWNTOWN, 180, entry=SAT + 8.5 * H) == 600
    # Friday is a weekday
    assert p(DOWNTOWN, 180, entry=4 * DAY + 8.5 * H) == 1000


def test_band_wrapping_midnight():
    night = RateTable(period_minutes=60, period_cents=100)
    t = tariff(bands=(TimeBand(ALL_DAYS, 22 * 60, 6 * 60, night, "night"),))
    # Mon 21:00 -> Tue 01:00: 21:00 day 200; 22:00, 23:00, 00:00 night 100 each -> 500
    assert p(t, 240, entry=MON + 21 * H) == 500
    # Sun 23:00 -> Mon 01:00 wraps the week: 23:00 and 00:00 night -> 200
    assert p(t, 120, entry=SUN + 23 * H) == 200
    # Tue 05:00 -> 08:00: 05:00 night 100, 06:00 and 07:00 day 200 -> 500
    assert p(t, 180, entry=TUE + 5 * H) == 500


def test_wrapping_band_belongs_to_its_start_day():
    night = RateTable(period_minutes=60, period_cents=100)
    t = tariff(bands=(TimeBand(frozenset({4}), 22 * 60, 6 * 60, night),))  # Fri 22:00-Sat 06:00
    assert p(t, 60, entry=SAT + 2 * H) == 100  # Sat 02:00 is inside Friday's night band
    assert p(t, 60, entry=4 * DAY + 2 * H) == 200  # Fri 02:00 is not (Thursday has no band)


def test_band_with_other_period_length_is_prorated():
    peak = RateTable(period_minutes=30, period_cents=250)
    t = tariff(bands=(TimeBand(WEEKDAYS, 7 * 60, 10 * 60, peak),))
    # entry Mon 09:00 in peak: 30-min periods; 09:00, 09:30 peak 250 each; 10:00, 10:30 off-peak
    # at 200/60 min prorated to 30 min = 100 each -> 700
    assert p(t, 120, entry=MON + 9 * H) == 700


def test_first_matching_band_wins():
    a = TimeBand(WEEKDAYS, 8 * 60, 9 * 60, RateTable(period_cents=111))
    b = TimeBand(WEEKDAYS, 7 * 60, 10 * 60, RateTable(period_cents=999))
    assert p(tariff(bands=(a, b)), 60, entry=MON + 8 * H) == 111
    assert p(tariff(bands=(b, a)), 60, entry=MON + 8 * H) == 999


def test_free_minutes_come_from_entry_band():
    early = RateTable(free_minutes=30, period_minutes=60, period_cents=300)
    t = tariff(bands=(TimeBand(WEEKDAYS, 6 * 60, 7 * 60, early),))
    # entry Mon 06:45 in the early band: 30 free min, then periods start 07:15, 08:15 (default
    # 200 each) -> 2h30 stay -> 2 periods -> 400
    assert p(t, 150, entry=MON + 6.75 * H) == 400
    # entry Mon 07:00 (default table, no free minutes): 2h30 -> 3 x 200 = 600
    assert p(t, 150, entry=MON + 7 * H) == 600


def test_flat_band_applies_when_entry_table():
    evening = RateTable(flat_cents=500)
    t = tariff(bands=(TimeBand(ALL_DAYS, 18 * 60, 24 * 60, evening, "evening flat"),))
    assert p(t, 240, entry=MON + 19 * H) == 500
    # entry 17:00 at the hourly rate: 17:00 is 200; 18:00 and 19:00 start in the flat band,
    # whose period_cents is 0 -> 200
    assert p(t, 180, entry=MON + 17 * H) == 200


# ----------------------------------------------------------------------------- events

GAME = EventRate("game", MON + 18 * H, MON + 23 * H, 2500)
EVENTFUL = tariff(RateTable(period_cents=200, daily_max_cents=2000), events=(GAME,))


def test_event_flat_inside_window():
    assert p(EVENTFUL, 180, entry=MON + 19 * H) == 2500  # instead of 3 x 200 = 600
    assert p(EVENTFUL, 180, entry=MON + 18 * H) == 2500  # start is inclusive
    assert p(EVENTFUL, 0, entry=MON + 19 * H) == 2500  # flat applies at entry


def test_event_flat_at_end_boundary_and_outside():
    assert p(EVENTFUL, 120, entry=MON + 23 * H) == 400  # end is exclusive -> 2 x 200
    assert p(EVENTFUL, 120, entry=MON + 23 * H - 1) == 2500
    assert p(EVENTFUL, 120, entry=MON + 17 * H) == 400  # before the window


def test_event_stay_beyond_24h():
    # Mon 19:00 -> Tue 22:00 (27 h): first 24 h flat 2500; periods starting at 24 h, 25 h,
    # 26 h after entry priced normally, 3 x 200 = 600 -> 3100
    assert p(EVENTFUL, 27 * 60, entry=MON + 19 * H) == 3100
    # 60 h: 2500 + block 1 (24 x 200 capped 2000) + block 2 (12 x 200 = 2400 capped 2000) = 6500
    assert p(EVENTFUL, 60 * 60, entry=MON + 19 * H) == 6500


# ----------------------------------------------------------------------------- dynamic

OCC = ((0.0, 0.8), (0.3, 1.0), (0.8, 1.25), (0.9, 1.5))


def dyn_tariff(**kw) -> Tariff:
    extra = {k: kw.pop(k) for k in ("events", "bands") if k in kw}
    return tariff(HOURLY, dynamic=DynamicPricing(**kw), **extra)


@pytest.mark.parametrize(
    ("occ", "expected"),
    [
        (0.0, 320),  # 400 x 0.8
        (0.29, 320),
        (0.3, 400),  # threshold itself belongs to its band
        (0.7999, 400),
        (0.8, 500),  # 400 x 1.25
        (0.8999, 500),
        (0.9, 600),  # 400 x 1.5
        (1.0, 600),
    ],
)
def test_occupancy_thresholds(occ, expected):
    t = dyn_tariff(occupancy_bands=OCC)
    assert p(t, 120, entry=MON + 12 * H, occ=occ) == expected  # 2 h = 400 before multiplier
    assert t.quote(MON + 12 * H, MON + 14 * H, occ) == expected


def test_occupancy_below_every_threshold_is_one():
    t = dyn_tariff(occupancy_bands=((0.5, 1.2),))
    assert p(t, 120, occ=0.4) == 400
    assert p(t, 120, occ=0.5) == 480


def test_dynamic_time_band_product_and_clamp():
    peak = TimeBandMultiplier(WEEKDAYS, 7 * 60, 10 * 60, 1.2, "weekday peak")
    t = dyn_tariff(occupancy_bands=OCC, time_bands=(peak,))
    # Mon 08:00, 2 h = 400; occupancy 0.5 -> 1.0; peak 1.2 -> 480
    assert p(t, 120, entry=MON + 8 * H, occ=0.5) == 480
    # product: occupancy 0.85 -> 1.25 x 1.2 = 1.5 -> 600
    assert p(t, 120, entry=MON + 8 * H, occ=0.85) == 600
    assert t.multiplier(MON + 8 * H, 0.85) == Decimal("1.5")
    # Saturday 08:00: no time band -> 1.25 -> 500
    assert p(t, 120, entry=SAT + 8 * H, occ=0.85) == 500
    # clamp high: max 1.4 -> 400 x 1.4 = 560
    t = dyn_tariff(occupancy_bands=OCC, time_bands=(peak,), max_multiplier=1.4)
    assert p(t, 120, entry=MON + 8 * H, occ=0.85) == 560
    # clamp low: 0.8 raised to min 0.9 -> 360
    t = dyn_tariff(occupancy_bands=OCC, min_multiplier=0.9)
    assert p(t, 120, occ=0.1) == 360
    assert t.multiplier(MON + 12 * H, 0.1) == Decimal("0.9")


def test_dynamic_rounds_half_up_with_decimal():
    # 1 period at 250 x 1.25 = 312.5 -> 313 (half-up, not banker's 312)
    t = tariff(RateTable(period_cents=250), dynamic=DynamicPricing(occupancy_bands=((0.0, 1.25),)))
    assert p(t, 60) == 313
    # 150 x 1.15 = 172.5 exactly in Decimal (float gives 172.49999999999997) -> 173
    t = tariff(RateTable(period_cents=150), dynamic=DynamicPricing(occupancy_bands=((0.0, 1.15),)))
    assert p(t, 60) == 173
    # 0 cents stays 0
    assert p(t, 0) == 0


def test_event_multiplier_and_flat():
    window = EventRate("concert", MON + 18 * H, MON + 23 * H)  # no flat: multiplier only
    t = dyn_tariff(events=(window,), event_multiplier=1.5)
    assert p(t, 120, entry=MON + 19 * H) == 600  # 400 x 1.5
    assert p(t, 120, entry=MON + 23 * H) == 400  # outside
    assert t.multiplier(MON + 19 * H, 0.0) == Decimal("1.5")
    # event flat rate: not multiplied by default...
    t = dyn_tariff(events=(GAME,), event_multiplier=1.5)
    assert p(t, 120, entry=MON + 19 * H) == 2500
    # ...unless event_multiplier_on_flat: 2500 x 1.5 = 3750
    t = dyn_tariff(events=(GAME,), event_multiplier=1.5, event_multiplier_on_flat=True)
    assert p(t, 120, entry=MON + 19 * H) == 3750


def test_no_dynamic_multiplier_is_one():
    assert tariff().multiplier(MON, 0.99) == Decimal(1)


# ----------------------------------------------------------------------------- validation


def test_core_validation():
    with pytest.raises(TypeError):
        RateTable(period_cents=1.5)  # money is integer cents
    with pytest.raises(ValueError):
        RateTable(period_minutes=0)
    with pytest.raises(ValueError):
        RateTable(period_cents=-1)
    with pytest.raises(ValueError):
        TimeBand(WEEKDAYS, 600, 600, HOURLY)
    with pytest.raises(ValueError):
        TimeBand(frozenset({7}), 0, 600, HOURLY)
    with pytest.raises(ValueError):
        EventRate("x", 10.0, 10.0, 100)
    with pytest.raises(ValueError):
        DynamicPricing(occupancy_bands=((1.5, 1.0),))
    with pytest.raises(ValueError):
        DynamicPricing(occupancy_bands=((0.5, 0.0),))


# ----------------------------------------------------------------------------- properties


def reference_price(t: Tariff, entry: int, exit_: int) -> int:
    """Slow, literal implementation of the rules for incremental tables (no events/dynamic)."""
    cal = t.calendar

    def table_at(s: float) -> RateTable:
        wd, mod = cal.weekday(s), cal.seconds_of_day(s) / 60
        for b in t.bands:
            if b.start_minute < b.end_minute:
                if wd in b.days and b.start_minute <= mod < b.end_minute:
                    return b.table
            elif (wd in b.days and mod >= b.start_minute) or (
                (wd - 1) % 7 in b.days and mod < b.end_minute
            ):
                return b.table
        return t.default

    et = table_at(entry)
    cap = t.daily_max_cents if t.daily_max_cents is not None else et.daily_max_cents
    d = exit_ - entry
    if et.flat_cents is not None:
        blocks = 1
        while d > blocks * DAY + et.grace_minutes * M:
            blocks += 1
        return blocks * (et.flat_cents if cap is None else min(cap, et.flat_cents))
    sums: dict[int, Decimal] = {}
    k = 0
    while d > (et.free_minutes + k * et.period_minutes + et.grace_minutes) * M:
        start = (et.free_minutes + k * et.period_minutes) * M
        tab = table_at(entry + start)
        rate = Decimal(tab.period_cents * et.period_minutes) / tab.period_minutes
        cents = int(rate.quantize(Decimal(1), rounding="ROUND_HALF_UP"))
        block = int(start // DAY)
        sums[block] = sums.get(block, 0) + cents
        k += 1
    total, lifted = 0, False
    for block in sorted(sums):
        s = sums[block]
        if s and not lifted:
            s, lifted = max(s, et.first_period_min_cents), True
        total += s if cap is None else min(cap, s)
    return total


tables = st.builds(
    RateTable,
    flat_cents=st.one_of(st.none(), st.none(), st.integers(0, 5000)),
    free_minutes=st.sampled_from([0, 0, 15, 60, 90]),
    period_minutes=st.sampled_from([1, 7, 15, 20, 30, 60, 90, 1440]),
    period_cents=st.integers(0, 1000),
    grace_minutes=st.sampled_from([0, 0, 3, 5, 10]),
    first_period_min_cents=st.sampled_from([0, 0, 150, 700]),
    daily_max_cents=st.one_of(st.none(), st.integers(0, 6000)),
)
incremental_tables = tables.filter(lambda r: r.flat_cents is None)


@st.composite
def bands(draw) -> TimeBand:
    start = draw(st.integers(0, 1439))
    end = draw(st.integers(0, 1440).filter(lambda e: e != start))
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    return TimeBand(days, start, end, draw(tables))


tariffs = st.builds(
    Tariff,
    name=st.just("h"),
    default=tables,
    bands=st.lists(bands(), max_size=3).map(tuple),
    daily_max_cents=st.one_of(st.none(), st.integers(0, 6000)),
)
entries = st.integers(0, 14 * 86_400)
durations = st.integers(0, 4 * 86_400)


@settings(max_examples=300, deadline=None)
@given(tariffs, entries, durations)
def test_matches_reference_implementation(t, entry, d):
    assert t.price(entry, entry + d) == reference_price(t, entry, entry + d)


@settings(max_examples=300, deadline=None)
@given(tariffs, entries, durations, durations)
def test_nonnegative_int_and_monotone(t, entry, d1, d2):
    a, b = sorted((d1, d2))
    pa, pb = t.price(entry, entry + a), t.price(entry, entry + b)
    assert type(pa) is int and type(pb) is int
    assert 0 <= pa <= pb


@settings(max_examples=300, deadline=None)
@given(tariffs, entries, durations, st.integers(0, 6000))
def test_bounded_by_daily_max_per_started_day(t, entry, d, cap):
    capped = Tariff(t.name, t.default, t.bands, daily_max_cents=cap)
    started_days = max(1, math.ceil(d / DAY))
    assert capped.price(entry, entry + d) <= cap * started_days


@settings(max_examples=200, deadline=None)
@given(incremental_tables, entries, durations)
def test_fast_path_equals_general_path(table, entry, d):
    fast = Tariff("f", table)
    # an event window long ago forces the general path without changing any price
    slow = Tariff("s", table, events=(EventRate("past", -10 * DAY, -9 * DAY),))
    assert fast.price(entry, entry + d) == slow.price(entry, entry + d)


@settings(max_examples=200, deadline=None)
@given(
    tariffs,
    entries,
    durations,
    st.floats(0, 1),
    st.lists(st.tuples(st.floats(0, 1), st.floats(0.1, 3)), max_size=4, unique_by=lambda x: x[0]),
)
def test_dynamic_prices_are_nonnegative_ints(t, entry, d, occ, occ_bands):
    dyn = Tariff(t.name, t.default, t.bands, dynamic=DynamicPricing(tuple(occ_bands)))
    got = dyn.price(entry, entry + d, PriceContext(occupancy=occ))
    assert type(got) is int and got >= 0


# ----------------------------------------------------------------------------- scenario schema

DOWNTOWN_YAML = """
name: downtown
per_period: 2.50
period_minutes: 60
grace_minutes: 5
daily_max: "20"
bands:
  - name: am peak
    days: weekdays
    start: "07:00"
    end: "10:00"
    per_period: 4
  - name: weekend night
    days: [sat, sun]
    start: "22:00"
    end: "06:00"
    flat: 5.00
    daily_max: null
events:
  - name: game
    start: 2026-01-10T18:00:00
    end: 2026-01-10T23:00:00
    flat: "25"
dynamic:
  occupancy_bands:
    - {min_occupancy: 0.0, multiplier: 1.0}
    - {min_occupancy: 0.9, multiplier: 1.5}
  time_bands:
    - {days: [mon, tue, wed, thu, fri], start: "16:00", end: "19:00", multiplier: 1.2}
  max_multiplier: 1.6
"""


def test_spec_builds_the_right_tariff():
    cal = Calendar()
    built = TariffSpec.model_validate(yaml.safe_load(DOWNTOWN_YAML)).build(cal)
    base = RateTable(period_minutes=60, period_cents=250, grace_minutes=5, daily_max_cents=2000)
    expected = Tariff(
        name="downtown",
        default=base,
        bands=(
            TimeBand(
                WEEKDAYS,
                420,
                600,
                RateTable(period_cents=400, grace_minutes=5, daily_max_cents=2000),
                "am peak",
            ),
            TimeBand(
                frozenset({5, 6}),
                1320,
                360,
                RateTable(flat_cents=500, period_cents=250, grace_minutes=5),  # cap removed
                "weekend night",
            ),
        ),
        events=(EventRate("game", SAT + 18 * H, SAT + 23 * H, 2500),),
        dynamic=DynamicPricing(
            occupancy_bands=((0.0, 1.0), (0.9, 1.5)),
            time_bands=(
                TimeBandMultiplier(WEEKDAYS, 960, 1140, 1.2, "mon,tue,wed,thu,fri 16:00-19:00"),
            ),
            min_multiplier=0.5,
            max_multiplier=1.6,
        ),
        calendar=cal,
    )
    assert built == expected
    # and it prices: Mon 08:30-11:30 at 0.5 occupancy -> 400 + 400 + 250 = 1050
    assert built.price(MON + 8.5 * H, MON + 11.5 * H, PriceContext(0.5)) == 1050
    # Sat 19:00 inside the game window -> 2500 flat (occupancy 0.5 -> x 1.0)
    assert built.price(SAT + 19 * H, SAT + 21 * H, PriceContext(0.5)) == 2500
    # the occupancy multiplier still applies to an event flat rate: 2500 x 1.5 = 3750
    assert built.price(SAT + 19 * H, SAT + 21 * H, PriceContext(0.95)) == 3750


def test_spec_money_forms():
    for raw, cents in [(2.5, 250), ("2.50", 250), (20, 2000), ("0.05", 5), ("1.10", 110)]:
        t = TariffSpec(per_period=raw).build(Calendar())
        assert t.default.period_cents == cents


def test_spec_dynamic_defaults():
    spec = TariffSpec.model_validate({"per_period": 2, "dynamic": {}})
    dyn = spec.build(Calendar()).dynamic
    assert dyn.occupancy_bands == ((0.0, 0.8), (0.3, 1.0), (0.8, 1.25), (0.9, 1.5))
    assert (dyn.min_multiplier, dyn.max_multiplier) == (0.5, 2.0)


def test_band_inherits_and_overrides():
    spec = TariffSpec.model_validate(
        {
            "per_period": 2,
            "free_minutes": 30,
            "daily_max": 20,
            "bands": [
                {"days": "all", "start": "00:00", "end": "24:00", "period_minutes": 30},
                {"days": ["Monday"], "start": "7:00", "end": "08:00", "daily_max": None},
            ],
        }
    )
    a, b = (band.table for band in spec.build(Calendar()).bands)
    assert a == RateTable(
        free_minutes=30, period_minutes=30, period_cents=200, daily_max_cents=2000
    )
    assert b == RateTable(free_minutes=30, period_cents=200, daily_max_cents=None)
    assert spec.bands[1].days == ["mon"] and spec.bands[1].start == "07:00"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"per_period": -1}, "must not be negative"),
        ({"per_period": "-0.01"}, "must not be negative"),
        ({"daily_max": 2.505}, "at most 2 decimal places"),
        ({"flat": "1.999"}, "at most 2 decimal places"),
        ({"per_period": "two"}, "amount of money"),
        ({"bands": [{"days": "all", "start": "25:00", "end": "10:00"}]}, "HH:MM"),
        ({"bands": [{"days": "all", "start": "07:60", "end": "10:00"}]}, "HH:MM"),
        ({"bands": [{"days": "all", "start": "7am", "end": "10:00"}]}, "HH:MM"),
        ({"bands": [{"days": "all", "start": "07:00", "end": 600}]}, "quote times"),
        ({"bands": [{"days": "all", "start": "24:00", "end": "06:00"}]}, "before 24:00"),
        ({"bands": [{"days": "all", "start": "07:00", "end": "07:00"}]}, "00:00 to 24:00"),
        ({"bands": [{"days": ["mon", "funday"], "start": "07:00", "end": "10:00"}]}, "funday"),
        ({"bands": [{"days": [], "start": "07:00", "end": "10:00"}]}, "non-empty"),
        ({"bands": [{"days": "all", "start": "07:00", "end": "10:00", "rate": 2}]}, "rate"),
        ({"per_hour": 2}, "per_hour"),
        ({"free_minutes": -5}, "greater than or equal to 0"),
        ({"period_minutes": 0}, "greater than or equal to 1"),
        ({"currency": "dollars"}, "currency"),
        ({"dynamic": {"occupancy_bands": [{"min_occupancy": 80, "multiplier": 1.2}]}}, "[0, 1]"),
        ({"dynamic": {"occupancy_bands": [{"min_occupancy": 0.8, "multiplier": 0}]}}, "> 0"),
        ({"dynamic": {"event_multiplier": -1}}, "multiplier must be > 0"),
        ({"dynamic": {"min_multiplier": 1.5, "max_multiplier": 1.2}}, "max_multiplier"),
        (
            {"dynamic": {"occupancy_bands": [{"min_occupancy": 0.5, "multiplier": 1}] * 2}},
            "distinct",
        ),
        (
            {"events": [{"name": "e", "start": "2026-01-10T18:00", "end": "2026-01-10T17:00"}]},
            "end must be after start",
        ),
        (
            {"events": [{"name": "e", "start": "2026-01-10T18:00+01:00", "end": "2026-01-11"}]},
            "timezone",
        ),
    ],
)
def test_spec_rejects(data, message):
    with pytest.raises(ValidationError) as err:
        TariffSpec.model_validate(data)
    assert message in str(err.value)


def test_pricing_core_imports_stdlib_only():
    import ast
    import pathlib

    import twin.core.pricing as mod

    tree = ast.parse(pathlib.Path(mod.__file__).read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    assert roots <= {"__future__", "bisect", "collections", "dataclasses", "decimal", "twin"}
