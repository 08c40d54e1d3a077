"""The point forecast's combination with a level-shifted seasonal naive
(twin.calibrate.backtest_bands.shrink_choice): the week-old reading moved by today's level at
the origin (the origin's count against the reading a week before at that time) is taken where
today's level carries into the next hours, left out where it does not, and read only from what
is known at the origin."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from twin.calibrate.backtest_bands import level_shift, online_corrections, shrink_choice
from twin.calibrate.backtest_twin import BAND_Q

CAPACITY = 500
HOURS = np.arange(8, 20)  # readings on the hour, 08:00–19:00
SHAPE = 0.25 + 0.45 * np.sin(np.pi * (HOURS - 7) / 13)  # the weekly curve, the same each week


def _series(days: int, rng: np.random.Generator, *, carries: bool, level_sd: float = 0.08):
    """Readings (rates) per day and hour: SHAPE + a level + N(0, 0.01²). ``carries``: one
    level for the whole day (a busier morning is a busier afternoon); otherwise each hour's
    own, independent of the others' (the origin's level says nothing of the target's)."""
    rows = []
    for _ in range(days):
        level = rng.normal(0, level_sd, 1 if carries else len(HOURS))
        rows.append(np.clip(SHAPE + level + rng.normal(0, 0.01, len(HOURS)), 0.0, 1.0))
    return np.array(rows)


def _pairs(series: np.ndarray, rng: np.random.Generator, first: int, days: int, twin_sd: float):
    """(origin, target) pairs at 1 and 4 h from origins 08:00–15:00 of days first..first+days-1
    (day 0 is 2026-01-05); the twin's median is the actual + N(0, twin_sd²) (its band
    ±1.28 · twin_sd for the 80%); the week-old readings at the target and at the origin."""
    out = []
    z = {"p2_5": -1.96, "p10": -1.2816, "p50": 0.0, "p90": 1.2816, "p97_5": 1.96}
    for d in range(first, first + days):
        day = pd.Timestamp("2026-01-05") + pd.Timedelta(days=d)
        for h in (1, 4):
            o = np.arange(0, 8)  # origins 08:00–15:00 as indices into HOURS
            actual = series[d, o + h]
            p50 = actual + rng.normal(0, twin_sd, len(o))
            frame = {
                "day": day,
                "origin": day + pd.to_timedelta(HOURS[o], unit="h"),
                "target": day + pd.to_timedelta(HOURS[o] + h, unit="h"),
                "horizon_h": h,
                "actual": actual,
                "week_before": series[d - 7, o + h],
                "n0": np.rint(series[d, o] * CAPACITY),
                "capacity": float(CAPACITY),
                "week_before_origin": series[d - 7, o],
            }
            frame.update({q: p50 + z[q] * twin_sd for q in BAND_Q})
            out.append(pd.DataFrame(frame))
    return pd.concat(out, ignore_index=True)


def _mae(fc: pd.DataFrame, test: pd.DataFrame, h: int) -> float:
    at = (test["horizon_h"] == h).to_numpy()
    return float(np.mean(np.abs(fc["p50"].to_numpy()[at] - test["actual"].to_numpy()[at])))


def test_the_level_shift_is_the_origins_count_against_a_week_before():
    frame = pd.DataFrame(
        {"n0": [300.0, 250.0, np.nan], "capacity": 500.0, "week_before_origin": [0.5, np.nan, 0.4]}
    )
    np.testing.assert_allclose(level_shift(frame), [0.1, 0.0, 0.0])
    assert (level_shift(frame.drop(columns="n0")) == 0).all()  # no count: no shift


@pytest.mark.parametrize("seed", [0])
def test_a_level_that_carries_through_the_day_is_taken(seed):
    """Each day runs above or below last week's curve by one level, all day; the twin is
    noisy (sd 6 points). The combination takes the shifted week-old reading (κ = 1): 4 h
    ahead its error is a fraction of the plain naive's and of the combination without the
    shift's."""
    rng = np.random.default_rng(seed)
    series = _series(35, rng, carries=True)
    history = _pairs(series, rng, 7, 14, twin_sd=0.06)
    test = _pairs(series, rng, 21, 14, twin_sd=0.06)
    fc = online_corrections(history, test)
    assert (shrink_choice(history)[1]) == 1.0
    naive = float(np.mean(np.abs(test["week_before"] - test["actual"])[test["horizon_h"] == 4]))
    without = online_corrections(history, test.drop(columns=["n0", "week_before_origin"]))
    for h in (1, 4):
        assert _mae(fc, test, h) < 0.6 * _mae(without, test, h)
    assert _mae(fc, test, 4) < 0.5 * naive


@pytest.mark.parametrize("seed", [2])
def test_a_morning_level_that_does_not_carry_is_left_out(seed):
    """Each hour's level is independent of the others': shifting last week's reading by the
    origin's level adds noise. The combination keeps the plain week-old reading (κ = 0) on the
    past pairs, and the point forecast is as good as without the shift."""
    rng = np.random.default_rng(seed)
    series = _series(35, rng, carries=False)
    history = _pairs(series, rng, 7, 14, twin_sd=0.06)
    test = _pairs(series, rng, 21, 14, twin_sd=0.06)
    for h in (1, 4):
        assert shrink_choice(history[history["horizon_h"] == h])[1] == 0.0
    fc = online_corrections(history, test)
    without = online_corrections(history, test.drop(columns=["n0", "week_before_origin"]))
    assert _mae(fc, test, 4) <= _mae(without, test, 4) * 1.02


def test_the_shift_reads_only_what_is_known_at_each_origin():
    """The counts at origins after 11:00 of the test's sixth day, and every actual whose
    target is after 11:00 that day, are changed: forecasts made up to 11:00 do not move; a
    later origin's forecast moves with its own count (the shift is read at its origin)."""
    rng = np.random.default_rng(9)
    series = _series(35, rng, carries=True)
    history = _pairs(series, rng, 7, 14, twin_sd=0.06)
    test = _pairs(series, rng, 21, 7, twin_sd=0.06)
    base = online_corrections(history, test)
    cut = test["day"].sort_values().unique()[5] + pd.Timedelta(hours=11)
    after = (test["origin"] > cut).to_numpy()
    changed = test.assign(
        actual=np.where(test["target"] > cut, 0.99, test["actual"]),
        n0=np.where(after, test["n0"] + 100, test["n0"]),
    )
    moved = online_corrections(history, changed)
    pd.testing.assert_frame_equal(moved[~after], base[~after])
    same_day = after & (test["day"] == cut.normalize()).to_numpy()
    assert (moved.loc[same_day, "p50"] > base.loc[same_day, "p50"] + 1e-6).all()
