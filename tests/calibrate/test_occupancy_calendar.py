"""Special days and calendar periods from counts alone: injected event days, a closure-like
day and a busier week are found (and nothing else), each with the multiplier it was given;
the ordinary profile is refitted without them; the written scenario carries them as ``dates``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bham import BIRMINGHAM

from twin.calibrate.occupancy_calendar import SPECIAL_ALPHA
from twin.calibrate.run import calibrate_occupancy
from twin.scenario.loader import load_scenario

COLS = {"time": "t", "site": "site", "occupied": "n", "capacity": "cap"}
#: Day index (from Mon 2026-01-05) → lift of that day's arrivals.
EVENT, CLOSURE, WEEK = 17, 30, range(35, 42)
LIFTS = {EVENT: 1.8, CLOSURE: 0.4, **{k: 1.3 for k in WEEK}}


def _date(k: int) -> str:
    return (pd.Timestamp("2026-01-05") + pd.Timedelta(days=k)).date().isoformat()


@pytest.fixture(scope="module")
def calendar_lot(tmp_path_factory):
    from conftest import count_lot  # the fixture's function, at module scope

    # no day factor: each lifted day's level is exactly its lift, up to the Poisson noise
    frame = count_lot(56, seed=11, lift=lambda k: LIFTS.get(k, 1.0), cv=0.0)
    out = tmp_path_factory.mktemp("cal")
    return calibrate_occupancy(frame, COLS, out, plots=False), out


def test_event_and_closure_days_found_with_their_multipliers(calendar_lot):
    cal, _ = calendar_lot
    sp = cal.frames["special_days"]
    assert list(sp["date"]) == [_date(EVENT), _date(CLOSURE)]
    k = sp.set_index("date")["multiplier"]
    assert k[_date(EVENT)] == pytest.approx(1.8, rel=0.12)
    assert k[_date(CLOSURE)] == pytest.approx(0.4, rel=0.12)
    assert (sp["p_value"] < SPECIAL_ALPHA / 56).all()


def test_a_busier_week_gets_its_own_level_and_no_other_week_does(calendar_lot):
    cal, _ = calendar_lot
    per = cal.frames["periods"]
    assert list(per["week"]) == [_date(WEEK[0])]
    assert per["multiplier"].iloc[0] == pytest.approx(1.3, rel=0.08)
    tests = cal.fits["sim"].period_tests
    assert tests["anova_p_value"] < 0.01 and tests["weeks"] == 8


def test_ordinary_profile_is_refitted_without_the_special_days(calendar_lot):
    """The fitted weekday level sits near the ordinary days' (1 on 6 of 8 weeks, 1.3 on one):
    the event day and the closure pull neither it nor the day-to-day CV."""
    cal, _ = calendar_lot
    fit = cal.fits["sim"]
    from conftest import RATES

    ordinary = (6 * 1.0 + 1.3) / 7
    assert fit.arrivals_per_day("weekday") == pytest.approx(RATES.sum() * ordinary, rel=0.08)
    # no day factor in the lot: what is left is the busier week's (it keeps its multiplier)
    assert fit.day_factor_cv < 0.15


def test_written_scenario_has_the_dates_and_loads(calendar_lot):
    _, out = calendar_lot
    sc = load_scenario(out / "scenarios" / "sim.yaml")
    dates = sc.demand[0].dates
    by_day = {d.isoformat(): e for e in dates for d in e.dates}
    assert by_day[_date(EVENT)].multiplier == pytest.approx(1.8, rel=0.12)
    assert by_day[_date(CLOSURE)].multiplier == pytest.approx(0.4, rel=0.12)
    week = [_date(k) for k in WEEK]
    assert all(by_day[d].multiplier == pytest.approx(1.3, rel=0.08) for d in week)
    assert len(by_day) == 2 + len(week)


def test_an_ordinary_lot_has_no_special_day_and_no_period(lot):
    """Eight weeks with a gamma day factor of CV 0.1: the day-to-day spread alone finds
    nothing beyond chance."""
    cal = calibrate_occupancy(lot(56, seed=12, cv=0.1), COLS, plots=False)
    assert len(cal.frames["special_days"]) == 0 and len(cal.frames["periods"]) == 0
    assert "dates" not in cal.scenarios["sim"].model_dump(exclude_unset=True)["demand"][0]


def test_fitted_curve_uses_the_multipliers_only_on_their_dates(calendar_lot):
    cal, _ = calendar_lot
    p = cal.frames["predictions"]
    day = p["time"].dt.normalize()
    event = p[day == _date(EVENT)]
    week_before = p[day == _date(EVENT - 7)]
    # the event day's fitted curve is its weekday's times ~1.8 (capacity far away)
    ratio = event["predicted"].sum() / week_before["predicted"].sum()
    assert ratio == pytest.approx(1.8, rel=0.12)
    err = (p["predicted"] - p["occupied"]).abs() / p["capacity"]
    assert err[day == _date(EVENT)].mean() < 3 * err.mean()


birmingham = pytest.mark.skipif(
    not BIRMINGHAM.is_file(), reason=f"real data not here: {BIRMINGHAM}"
)


@birmingham
def test_birmingham_event_days_from_counts():
    """Fitted on the weeks up to 2016-11-20, the NIA's car parks (an arena's) show Sunday
    20 Nov far above a Sunday's curve, and the week of 24 Oct (events on 26–29 Oct, most of
    the week) at a level of its own; each gets its multiplier in the scenario."""
    cal = calibrate_occupancy(
        BIRMINGHAM,
        "time=LastUpdated,site=SystemCodeNumber,occupied=Occupancy,capacity=Capacity",
        train_until="2016-11-20",
        sites=["NIA South"],
        plots=False,
    )
    sp = cal.frames["special_days"].set_index(["site", "date"])
    assert sp.loc[("NIA South", "2016-11-20"), "multiplier"] > 2.0
    assert (pd.to_datetime(sp.index.get_level_values("date")) <= "2016-11-20").all()
    per = cal.frames["periods"].set_index(["site", "week"])
    assert per.loc[("NIA South", "2016-10-24"), "multiplier"] > 1.3
    dates = cal.scenarios["NIA South"].demand[0].dates
    by_day = {d.isoformat(): e.multiplier for e in dates for d in e.dates}
    assert by_day["2016-11-20"] > 2.0 and by_day["2016-10-27"] > 1.3
    assert np.isfinite(cal.frames["special_days"]["multiplier"]).all()


def test_calendar_off_fits_every_day_into_the_profile(lot):
    """``calendar=False`` (api.calibrate, calibrate_occupancy): no special day, no week, and
    the event day is in the ordinary profile (its level higher than with the calendar)."""
    frame = lot(35, seed=11, lift=lambda k: 3.0 if k == 17 else 1.0, cv=0.0)
    on = calibrate_occupancy(frame, COLS, plots=False)
    off = calibrate_occupancy(frame, COLS, plots=False, calendar=False)
    assert list(on.frames["special_days"]["date"]) == [_date(17)]
    assert len(off.frames["special_days"]) == 0 and len(off.frames["periods"]) == 0
    thu_on, thu_off = (
        on.fits["sim"].arrivals_per_day("thu"),
        off.fits["sim"].arrivals_per_day("thu"),
    )
    assert thu_off > 1.05 * thu_on
