"""Tariffs as posted: operating days, window caps, boundary semantics, event products,
calendars, validations. Hand-worked receipts to the second, and properties checked against an
independent reference pricer.

Core time: seconds since Monday 2026-01-05 00:00 (``Calendar()``): ``MON + 8 * H`` is Monday
08:00. The sign used throughout (issue 13): "$1.50 per 30 min, 10 min grace. Daily max $12; the
day runs 3 AM to 3 AM. Evenings 6 PM - 3 AM: $5 max."
"""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from twin.core.clock import Calendar
from twin.core.pricing import (
    DynamicPricing,
    EventRate,
    PriceContext,
    RateTable,
    SpecialDay,
    Tariff,
    TimeBand,
    Validation,
    WindowCap,
)
from twin.scenario.tariff import TariffSpec

M, H, DAY = 60.0, 3_600.0, 86_400.0
MON, TUE, WED, SAT, SUN = 0.0, DAY, 2 * DAY, 5 * DAY, 6 * DAY
ALL = frozenset(range(7))
HALF_HOUR = RateTable(period_minutes=30, period_cents=150, grace_minutes=10, daily_max_cents=1200)
EVENING = WindowCap(ALL, 18 * 60, 3 * 60, 500, "evening")


def sign(**kw) -> Tariff:
    base = dict(daily_max_per="operating_day", day_start_minute=180, windows=(EVENING,))
    return Tariff("city ramp", kw.pop("default", HALF_HOUR), **{**base, **kw})


RAMP = sign()


def stay(t: Tariff, entry: float, exit_: float, **ctx) -> int:
    return t.price(entry, exit_, PriceContext(**ctx) if ctx else None)


# ----------------------------------------------------------------------------- operating days


def test_periods_grace_and_day_max_within_one_day():
    assert stay(RAMP, MON + 8 * H, MON + 8 * H + 10 * M) == 0  # within grace
    assert stay(RAMP, MON + 8 * H, MON + 8 * H + 10 * M + 1) == 150
    assert stay(RAMP, MON + 8 * H, MON + 9 * H) == 300
    assert stay(RAMP, MON + 8 * H, MON + 9 * H + 10 * M) == 300
    assert stay(RAMP, MON + 8 * H, MON + 9 * H + 10 * M + 1) == 450
    assert stay(RAMP, MON + 8 * H, MON + 17 * H) == 1200  # 18 periods = $27, capped


def test_a_stay_crossing_the_day_boundary_pays_each_operating_day():
    # Mon 20:00 - Tue 10:00 without the evening cap: 14 periods to 02:30 ($21 -> $12) on
    # Monday's operating day, 14 from 03:00 to 09:30 ($21 -> $12) on Tuesday's.
    plain = sign(windows=())
    assert stay(plain, MON + 20 * H, TUE + 10 * H) == 2400
    # the same stay under the 24 h-from-entry cap is one capped block
    per_24h = Tariff("t", HALF_HOUR)
    assert stay(per_24h, MON + 20 * H, TUE + 10 * H) == 1200


def test_period_starting_exactly_at_the_boundary_belongs_to_the_new_day():
    plain = sign(windows=())
    # entry Mon 22:00: periods start 22:00 ... 02:30 (10 = $15 -> $12); 03:00 opens Tuesday
    assert stay(plain, MON + 22 * H, TUE + 3 * H + 10 * M) == 1200  # 03:00 period in grace
    assert stay(plain, MON + 22 * H, TUE + 3 * H + 10 * M + 1) == 1350


def test_several_boundaries_each_day_capped_and_the_last_partial():
    plain = sign(windows=())
    # Mon 12:00 - Thu 05:00: Mon, Tue, Wed capped (3 x $12); Thu 03:00, 03:30, 04:00, 04:30
    assert stay(plain, MON + 12 * H, 3 * DAY + 5 * H) == 3 * 1200 + 4 * 150


# ----------------------------------------------------------------------------- window caps


@pytest.mark.parametrize(
    ("entry", "exit_", "cents", "why"),
    [
        (MON + 19 * H, MON + 23 * H, 500, "inside: 8 periods $12 -> evening max $5"),
        (MON + 16 * H, MON + 20 * H, 1100, "before then inside: $6 + min($6, $5)"),
        (MON + 16 * H, MON + 22 * H, 1100, "before then inside: $6 + min($12, $5)"),
        (MON + 10 * H, MON + 22 * H, 1200, "$24 by day + $5: the day max wins"),
        (MON + 17 * H, TUE + 10 * H, 2000, "Mon $3 + $5 evening; Tue 03:00-09:30 $21 -> $12"),
        (TUE + 2 * H, TUE + 4 * H, 600, "enters in Monday's evening: $3 (window), Tue $3"),
        (MON + 18 * H, MON + 18 * H + 10 * M + 1, 150, "a single evening period"),
    ],
)
def test_window_cap_receipts(entry, exit_, cents, why):
    assert stay(RAMP, entry, exit_) == cents, why


def test_window_edges_to_the_second():
    # entry 17:30: the 17:30 period is day rate; 18:00 starts in the window
    assert stay(RAMP, MON + 17.5 * H, MON + 18 * H + 10 * M) == 150
    assert stay(RAMP, MON + 17.5 * H, MON + 18 * H + 10 * M + 1) == 300
    # the window ends at 03:00 (exclusive): after $5 of evening, 03:00 is a new day's period
    assert stay(RAMP, MON + 23 * H, TUE + 3 * H + 10 * M) == 500
    assert stay(RAMP, MON + 23 * H, TUE + 3 * H + 10 * M + 1) == 650


def test_each_evening_has_its_own_window_cap():
    # Mon 19:00 - Wed 01:00: Mon evening $5; Tue 03:00-17:30 $12 (capped) + Tue evening:
    # day total min(12 + 5, 12) = $12
    assert stay(RAMP, MON + 19 * H, WED + 1 * H) == 500 + 1200
    no_day_cap = sign(default=RateTable(period_minutes=30, period_cents=150, grace_minutes=10))
    # without a day max the two evenings are capped separately: $5 + $45 (30 day periods)
    # + $5 (Tue 18:00 - Wed 00:30)
    assert stay(no_day_cap, MON + 19 * H, WED + 1 * H) == 500 + 30 * 150 + 500


# ----------------------------------------------------------------------------- boundary semantics


def test_at_boundary_chooses_whether_an_entry_at_a_band_start_is_inside():
    night_table = RateTable(flat_cents=500, period_minutes=60, period_cents=200)
    night = TimeBand(ALL, 18 * 60, 3 * 60, night_table, "night flat")
    day_rate = RateTable(period_minutes=60, period_cents=200)
    starts = Tariff("t", day_rate, bands=(night,))
    ends = Tariff("t", day_rate, bands=(night,), at_boundary="previous")
    assert stay(starts, MON + 18 * H, MON + 20 * H) == 500
    assert stay(ends, MON + 18 * H, MON + 20 * H) == 400  # 18:00 still pays the day rate
    assert stay(ends, MON + 18 * H + 1, MON + 20 * H) == 500  # 18:00:01 is inside
    # and the band's end: 03:00 belongs to the night under "previous", to the day under "next"
    assert stay(ends, TUE + 3 * H, TUE + 4 * H) == 500
    assert stay(starts, TUE + 3 * H, TUE + 4 * H) == 200


def test_at_boundary_previous_moves_a_period_on_the_day_edge_to_the_old_day():
    plain = sign(windows=(), at_boundary="previous")
    nxt = sign(windows=())
    # entry Mon 21:00: 12 periods to 02:30 ($18 -> $12), the 03:00 period decides
    assert stay(nxt, MON + 21 * H, TUE + 3 * H + 11 * M) == 1200 + 150
    assert stay(plain, MON + 21 * H, TUE + 3 * H + 11 * M) == 1200  # 03:00 still Monday


# ----------------------------------------------------------------------------- event products

CONCERT = EventRate("concert", MON + 17 * H, MON + 23 * H, 1000, prepaid=True, cap_others=True)
HOURLY = RateTable(period_minutes=60, period_cents=200)


def test_prepaid_event_product_only_for_buyers():
    t = Tariff("t", HOURLY, events=(CONCERT,))
    assert stay(t, MON + 19 * H, MON + 19 * H, prepaid=True) == 1000  # paid on entry
    assert stay(t, MON + 19 * H, MON + 21 * H) == 400  # normal ticket, 2 h
    assert stay(t, MON + 19 * H, MON + 21 * H, prepaid=False) == 400
    assert stay(t, MON + 19 * H, MON + 24 * H) == 1000  # 5 h = $10, capped at the event price
    assert stay(t, MON + 19 * H, MON + 26 * H) == 1000  # 7 h = $14 -> $10
    uncapped = Tariff("t", HOURLY, events=(EventRate("c", MON + 17 * H, MON + 23 * H, 1000, True),))
    assert stay(uncapped, MON + 19 * H, MON + 26 * H) == 1400
    # outside the window nobody is sold anything
    assert stay(t, MON + 23 * H, TUE + 2 * H, prepaid=True) == 600
    assert t.event_product_at(MON + 23 * H - 1) is CONCERT
    assert t.event_product_at(MON + 23 * H) is None


def test_prepaid_event_covers_the_first_operating_day_only():
    t = sign(events=(CONCERT,))
    # Mon 19:00 - Tue 10:00 prepaid: Monday's day is the $10 product; Tuesday 03:00-09:30
    # is 14 periods ($21 -> $12)
    assert stay(t, MON + 19 * H, TUE + 10 * H, prepaid=True) == 1000 + 1200
    # a normal ticket: Mon evening $5 (under the $10 event cap) + Tuesday $12
    assert stay(t, MON + 19 * H, TUE + 10 * H) == 500 + 1200


def test_products_for_draws_buyers_and_validations_by_share():
    t = Tariff(
        "t",
        HOURLY,
        events=(EventRate("c", MON, MON + H, 900, prepaid=True, share=0.25),),
        validations=(Validation("cinema", 120, share=0.1), Validation("shop", 0, 300, 0.2)),
    )
    assert t.sells_products
    assert t.products_for(MON + 1, 0.24, 0.5).prepaid
    assert not t.products_for(MON + 1, 0.25, 0.5).prepaid
    assert not t.products_for(MON + H, 0.0, 0.5).prepaid  # window is over
    assert t.products_for(MON, 0.9, 0.05).validation == 0
    assert t.products_for(MON, 0.9, 0.1).validation == 1
    assert t.products_for(MON, 0.9, 0.29).validation == 1
    assert t.products_for(MON, 0.9, 0.31).validation is None


def test_a_product_sold_at_chosen_lanes_reaches_only_drivers_served_there():
    at_1_2 = EventRate("c", MON, MON + H, 900, prepaid=True, share=0.5, lanes=frozenset({1, 2}))
    t = Tariff("t", HOURLY, events=(at_1_2,))
    assert t.sells_products and t.sells_at_lanes
    assert not Tariff("t", HOURLY, events=(CONCERT,)).sells_at_lanes
    assert t.products_for(MON + 1, 0.49, 1.0, lane=1).prepaid
    assert t.products_for(MON + 1, 0.49, 1.0, lane=2).prepaid
    assert not t.products_for(MON + 1, 0.5, 1.0, lane=2).prepaid  # share among lanes 1-2
    assert not t.products_for(MON + 1, 0.0, 1.0, lane=3).prepaid  # lane 3 sells none
    assert not t.products_for(MON + 1, 0.0, 1.0).prepaid  # through no numbered lane
    assert not t.products_for(MON + H, 0.0, 1.0, lane=1).prepaid  # the sale is over
    # the lane decides the holding; the price follows from it
    held = t.products_for(MON + 1, 0.0, 1.0, lane=1)
    assert t.price(MON + 1, MON + 5 * H, held) == 900
    assert t.price(MON + 1, MON + 5 * H, t.products_for(MON + 1, 0.0, 1.0, lane=3)) == 1000


@pytest.mark.parametrize(
    ("lanes", "prepaid", "message"),
    [
        (frozenset(), True, "non-empty set of lane numbers"),
        (frozenset({0, 1}), True, "lane numbers >= 1"),
        (frozenset({True}), True, "lane numbers >= 1"),
        (frozenset({1}), False, "needs prepaid"),
    ],
)
def test_event_lanes_are_checked(lanes, prepaid, message):
    with pytest.raises(ValueError, match=message):
        EventRate("c", MON, MON + H, 900, prepaid=prepaid, lanes=lanes)


# ----------------------------------------------------------------------------- calendars

WEEKEND = TimeBand(frozenset({5, 6}), 0, 1440, RateTable(period_minutes=30, period_cents=100))


def test_holiday_priced_as_a_sunday_and_a_special_table():
    holiday = SpecialDay("holiday", frozenset({date(2026, 1, 6)}), like_weekday=6)
    market = SpecialDay("market", frozenset({date(2026, 1, 7)}), table=RateTable(flat_cents=700))
    t = Tariff("t", HALF_HOUR, bands=(WEEKEND,), special_days=(holiday, market))
    assert stay(t, MON + 10 * H, MON + 12 * H) == 600  # Monday: 4 x $1.50
    assert stay(t, TUE + 10 * H, TUE + 12 * H) == 400  # holiday: Sunday's 4 x $1.00
    assert stay(t, WED + 10 * H, WED + 12 * H) == 700  # market day's own flat
    assert stay(t, SUN + 10 * H, SUN + 12 * H) == 400
    # a stay from Monday into the holiday pays Monday rates, then Sunday's from midnight
    assert stay(t, MON + 23 * H, TUE + 1 * H) == 150 + 150 + 100 + 100
    assert t.table_names == ("default", "sat,sun 00:00-24:00", "market") or t.table_names[-1]


def test_special_day_follows_the_operating_day():
    holiday = SpecialDay("holiday", frozenset({date(2026, 1, 6)}), like_weekday=6)
    t = sign(windows=(), bands=(WEEKEND,), special_days=(holiday,))
    # the holiday's operating day runs Tue 03:00 - Wed 03:00: Tue 02:00 is still Monday
    assert stay(t, TUE + 2 * H, TUE + 3 * H) == 300
    assert stay(t, TUE + 3 * H, TUE + 4 * H) == 200
    # its last hours are those of a Sunday's operating day (Sun 03:00 - Mon 03:00): after
    # midnight, Monday-night rates, as on any Sunday
    assert stay(t, WED + 2 * H, WED + 3 * H) == 300
    assert stay(t, WED + 3 * H, WED + 4 * H) == 300
    assert stay(t, SUN + 23 * H, SUN + 24 * H) == 200


def test_weekly_and_monthly_caps_for_stays_of_weeks():
    t = Tariff(
        "t",
        RateTable(period_minutes=60, period_cents=200, daily_max_cents=1200),
        daily_max_per="operating_day",
        weekly_max_cents=5000,
        monthly_max_cents=15000,
    )
    assert stay(t, MON, MON + 7 * DAY) == 5000  # 7 x $12 = $84 -> $50
    assert stay(t, MON, MON + 8 * DAY) == 5000 + 1200  # a second week begins
    assert stay(t, MON, MON + 30 * DAY) == 15000  # 4 x $50 + 2 x $12 = $224 -> $150
    assert stay(t, MON, MON + 31 * DAY) == 15000 + 1200  # month 2, day 1
    assert stay(t, MON, MON + 2 * H) == 400


# ----------------------------------------------------------------------------- validations


def test_validation_free_hours_then_grace():
    t = sign(validations=(Validation("cinema", free_minutes=120),))
    cinema = {"validation": 0}
    assert stay(t, MON + 10 * H, MON + 12 * H + 10 * M, **cinema) == 0
    assert stay(t, MON + 10 * H, MON + 12 * H + 10 * M + 1, **cinema) == 150
    assert stay(t, MON + 10 * H, MON + 12 * H + 10 * M + 1) == 5 * 150  # not validated


def test_validation_amount_off_after_caps_and_multiplier():
    t = sign(
        validations=(Validation("shop", amount_off_cents=300),),
        dynamic=DynamicPricing(occupancy_bands=((0.8, 1.25),)),
    )
    shop = {"validation": 0}
    assert stay(t, MON + 10 * H, MON + 12 * H, **shop) == 300  # $6 - $3
    assert stay(t, MON + 10 * H, MON + 10 * H + 30 * M, **shop) == 0  # never below 0
    assert stay(t, MON + 8 * H, MON + 20 * H, **shop) == 900  # $12 day max - $3
    assert stay(t, MON + 10 * H, MON + 12 * H, occupancy=0.9, **shop) == 450  # 7.50 - 3


# ----------------------------------------------------------------------------- properties


CAL = Calendar()


def reference_price(spec: dict, entry: float, exit_: float, validation: int = 0) -> int:
    """Receipt worked out period by period with datetimes (independent of the engine)."""
    cal = CAL
    rate, p, g, free, fmin, cap = (spec[k] for k in ("rate", "p", "g", "free", "fmin", "cap"))
    band = spec.get("band")  # (start_minute, end_minute, rate, cap), every day, no wrap
    window = spec.get("window")  # (start_minute, end_minute, max), wraps past midnight
    day_start = spec.get("day_start")  # minutes, or None for 24 h blocks from entry

    def minute_of(t: float) -> int:
        dt = cal.to_datetime(t)
        return dt.hour * 60 + dt.minute

    def in_band(t: float) -> bool:
        return band is not None and band[0] * 60 <= cal.seconds_of_day(t) < band[1] * 60

    def table_cap(t: float) -> int | None:
        return band[3] if in_band(t) else cap

    def day_of(t: float) -> int:
        if day_start is None:
            return int((t - entry) // DAY)
        first = (cal.to_datetime(entry) - timedelta(minutes=day_start)).date()
        return ((cal.to_datetime(t) - timedelta(minutes=day_start)).date() - first).days

    free = max(free, validation)
    d = exit_ - entry
    days: dict[int, int] = {}
    left: dict[date, int] = {}
    k = 0
    while d > (free + k * p + g) * 60:
        s = entry + (free + k * p) * 60
        r = band[2] if in_band(s) else rate
        if window is not None:
            m = minute_of(s) + (cal.seconds_of_day(s) % 60) / 60
            if m >= window[0] or m < window[1]:
                opened = cal.to_datetime(s).date() - timedelta(days=0 if m >= window[0] else 1)
                r = min(r, left.setdefault(opened, window[2]))
                left[opened] -= r
        days[day_of(s)] = days.get(day_of(s), 0) + r
        k += 1
    total = 0
    lifted = False
    for j in sorted(days):
        v = days[j]
        if v and not lifted:
            lifted, v = True, max(v, fmin)
        if day_start is None or j == 0:
            c = table_cap(entry)
        else:
            first = cal.to_datetime(entry) - timedelta(minutes=day_start)
            start = cal.to_seconds(
                (first.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=j))
                + timedelta(minutes=day_start)
            )
            c = table_cap(start)
        total += v if c is None else min(v, c)
    return total


def build(spec: dict) -> Tariff:
    table = RateTable(
        free_minutes=spec["free"],
        period_minutes=spec["p"],
        period_cents=spec["rate"],
        grace_minutes=spec["g"],
        first_period_min_cents=spec["fmin"],
        daily_max_cents=spec["cap"],
    )
    band = spec.get("band")
    bands = ()
    if band is not None:
        bands = (TimeBand(ALL, band[0], band[1], replace_rate(table, band[2], band[3])),)
    window = spec.get("window")
    windows = () if window is None else (WindowCap(ALL, window[0], window[1], window[2]),)
    day_start = spec.get("day_start")
    return Tariff(
        "h",
        table,
        bands=bands,
        windows=windows,
        daily_max_per="24h_from_entry" if day_start is None else "operating_day",
        day_start_minute=day_start or 0,
        validations=(Validation("v", free_minutes=spec.get("vfree", 0)),),
    )


def replace_rate(table: RateTable, rate: int, cap: int | None) -> RateTable:
    return RateTable(
        free_minutes=table.free_minutes,
        period_minutes=table.period_minutes,
        period_cents=rate,
        grace_minutes=table.grace_minutes,
        first_period_min_cents=table.first_period_min_cents,
        daily_max_cents=cap,
    )


minutes = st.integers(0, 23 * 60)
specs = st.fixed_dictionaries(
    {
        "rate": st.integers(0, 400),
        "p": st.sampled_from([15, 30, 60]),
        "g": st.integers(0, 15),
        "free": st.sampled_from([0, 0, 30, 60]),
        "fmin": st.sampled_from([0, 0, 300]),
        "cap": st.one_of(st.none(), st.integers(0, 3000)),
        "band": st.one_of(
            st.none(),
            st.tuples(
                st.integers(0, 600),
                st.integers(660, 1440),
                st.integers(0, 400),
                st.one_of(st.none(), st.integers(0, 3000)),
            ),
        ),
        "window": st.one_of(
            st.none(),
            st.tuples(st.integers(900, 1380), st.integers(0, 360), st.integers(0, 1500)),
        ),
        "day_start": st.one_of(st.none(), st.sampled_from([0, 180, 240, 330])),
        "vfree": st.sampled_from([0, 120]),
    }
)
entries = st.floats(0.0, 14 * DAY).map(lambda t: round(t))
stays = st.integers(0, 4 * 86_400)


@settings(max_examples=150, deadline=None)
@given(specs, entries, stays, st.booleans())
def test_engine_agrees_with_the_reference_receipt(spec, entry, d, validated):
    t = build(spec)
    ctx = PriceContext(validation=0 if validated else None)
    expected = reference_price(spec, entry, entry + d, validation=spec["vfree"] * validated)
    assert t.price(entry, entry + d, ctx) == expected


@settings(max_examples=100, deadline=None)
@given(specs, entries, stays, st.integers(1, 2 * 86_400))
def test_price_never_decreases_when_a_stay_is_extended(spec, entry, d, more):
    t = build(spec)
    assert t.price(entry, entry + d) <= t.price(entry, entry + d + more)


@settings(max_examples=100, deadline=None)
@given(specs, entries, stays)
def test_price_never_exceeds_the_sum_of_its_day_caps(spec, entry, d):
    spec = {**spec, "cap": spec["cap"] if spec["cap"] is not None else 2500}
    if spec["band"] is not None and spec["band"][3] is None:
        spec["band"] = (*spec["band"][:3], 2000)
    t = build(spec)
    if spec["day_start"] is None:
        touched = max(1, -int(-d // DAY))  # 24 h blocks started
    else:
        shift = timedelta(minutes=spec["day_start"])
        first, last = (CAL.to_datetime(x) - shift for x in (entry, entry + d))
        touched = (last.date() - first.date()).days + 1
    worst = max(spec["cap"], spec["band"][3] if spec["band"] else 0)
    assert t.price(entry, entry + d) <= worst * touched


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 13),
    st.integers(0, 47),
    st.integers(0, 3 * 86_400),
    st.sampled_from([180, 240, 330]),
)
def test_price_is_the_sum_of_day_charges_across_boundaries(day, slot, d, day_start):
    """Entries on the period grid, no grace, no minimum, an evening window that ends by the
    day boundary: cutting the stay at each boundary and pricing the pieces gives the same
    receipt. (A window that runs over the boundary keeps one cap for the whole evening, so
    there a piece priced alone would get a fresh allowance.)"""
    table = RateTable(period_minutes=30, period_cents=150, daily_max_cents=1200)
    t = sign(default=table, day_start_minute=day_start)
    entry = day * DAY + slot * 30 * M
    exit_ = entry + d
    cuts = [entry]
    b = (entry - day_start * M) // DAY * DAY + day_start * M + DAY
    while b < exit_:
        cuts.append(b)
        b += DAY
    cuts.append(exit_)
    pieces = sum(t.price(a, z) for a, z in pairwise(cuts))
    assert t.price(entry, exit_) == pieces


old_tables = st.builds(
    RateTable,
    flat_cents=st.one_of(st.none(), st.none(), st.integers(0, 3000)),
    free_minutes=st.sampled_from([0, 30]),
    period_minutes=st.sampled_from([15, 30, 60]),
    period_cents=st.integers(0, 400),
    grace_minutes=st.integers(0, 15),
    first_period_min_cents=st.sampled_from([0, 500]),
    daily_max_cents=st.one_of(st.none(), st.integers(0, 4000)),
)


@settings(max_examples=150, deadline=None)
@given(
    old_tables,
    old_tables,
    st.integers(0, 1439),
    st.integers(1, 1440),
    st.booleans(),
    entries,
    stays,
)
def test_general_engine_prices_old_tariffs_exactly_as_the_fast_path(
    default, band_table, start, end, event, entry, d
):
    """A tariff of bands and event flats priced by the day engine (forced by a window cap that
    can never bind) gives the old engine's every cent: existing tariffs are unchanged."""
    bands = () if start == end else (TimeBand(frozenset({0, 2, 4, 6}), start, end, band_table),)
    events = (EventRate("e", 2 * DAY, 3 * DAY, 1800),) if event else ()
    old = Tariff("t", default, bands=bands, events=events)
    new = Tariff(
        "t", default, bands=bands, events=events, windows=(WindowCap(ALL, 0, 1440, 10**9),)
    )
    assert new.by_operating_day and not old.by_operating_day
    assert new.price(entry, entry + d) == old.price(entry, entry + d)


# ----------------------------------------------------------------------------- schema

SIGN_YAML = """
period_minutes: 30
per_period: 1.50
grace_minutes: 10
daily_max: 12.00
day_starts: "03:00"
windows: [{name: evening, start: "18:00", end: "03:00", max: 5.00}]
events: [{name: event night, start: 2026-01-05T17:00, end: 2026-01-05T23:00, flat: 10.00,
          prepaid: true, share: 0.5, lots: [north]}]
"""


def test_the_sign_in_yaml_builds_the_same_tariff():
    import yaml

    spec = TariffSpec.model_validate(yaml.safe_load(SIGN_YAML))
    t = spec.build(Calendar(), lot="north")
    assert t.daily_max_per == "operating_day" and t.day_start_minute == 180
    for entry, exit_ in [(MON + 17 * H, TUE + 10 * H), (TUE + 2 * H, TUE + 4 * H)]:
        assert t.price(entry, exit_) == RAMP.price(entry, exit_)
    assert t.price(MON + 19 * H, TUE + 10 * H, PriceContext(prepaid=True)) == 2200
    assert spec.build(Calendar(), lot="south").events == ()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"daily_max_per": "24h_from_entry"}, "cannot go with daily_max_per"),
        ({"validations": [{"name": "a", "share": 0.7}, {"name": "b", "share": 0.5}]}, "add up"),
        ({"special_days": [{"name": "x", "dates": ["2026-01-01"]}]}, "either like"),
        (
            {"special_days": [{"name": "x", "dates": ["2026-01-01"], "like": "sun", "flat": 5}]},
            "not both",
        ),
        ({"special_days": [{"name": "x", "dates": ["2026-01-01"], "like": "weekend"}]}, "one day"),
        (
            {
                "events": [
                    {
                        "name": "e",
                        "start": "2026-01-05T17:00",
                        "end": "2026-01-05T18:00",
                        "prepaid": True,
                    }
                ]
            },
            "needs a flat price",
        ),
        ({"windows": [{"start": "18:00", "end": "18:00", "max": 5}]}, "both 18:00"),
        ({"at_boundary": "inside"}, "next"),
    ],
)
def test_schema_rejects_with_a_message(extra, message):
    with pytest.raises(ValidationError, match=message):
        TariffSpec.model_validate({"per_period": 1, "day_starts": "03:00", **extra})


def test_event_lots_must_name_lots_of_the_scenario():
    import yaml

    from twin.scenario.loader import ScenarioError, validate_scenario

    data = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "scenarios" / "city_ramp_tariff.yaml").read_text()
    )
    data["tariff"]["events"][0]["lots"] = ["Nowhere Garage"]
    with pytest.raises(ScenarioError, match="unknown lot"):
        validate_scenario(data)
    data["tariff"]["events"][0]["lots"] = ["City Ramp"]
    assert validate_scenario(data).tariff.events[0].lots == ["City Ramp"]
