"""The backtest's online corrections (twin.calibrate.backtest_bands): each day's twin forecasts
are corrected from the errors of earlier days only; the conformal bands hold their nominal
share of actuals when the twin's own band is too narrow or biased; the combination with
seasonal naive takes the forecaster that has been right."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from twin.calibrate.backtest_bands import online_corrections, shrink_weight
from twin.calibrate.backtest_twin import BAND_Q


def _frame(days: int, rng: np.random.Generator, *, sd: float, bias: float, naive_sd: float):
    """Pairs at horizon 1 and 4, 8 a day: the twin's band is N(p50, 0.02²)'s quantiles, the
    actual is p50 + bias + N(0, sd²), the week-old reading actual + N(0, naive_sd²)."""
    rows = []
    z = {"p2_5": -1.96, "p10": -1.2816, "p50": 0.0, "p90": 1.2816, "p97_5": 1.96}
    for d in pd.date_range("2026-01-05", periods=days):
        for h in (1, 4):
            p50 = rng.uniform(0.3, 0.7, 8)
            actual = p50 + bias + rng.normal(0, sd * h**0.5, 8)
            row = {
                "day": d,
                "horizon_h": h,
                "actual": actual,
                "week_before": actual + rng.normal(0, naive_sd, 8),
            }
            row.update({q: p50 + z[q] * 0.02 for q in BAND_Q})
            rows.append(pd.DataFrame(row))
    return pd.concat(rows, ignore_index=True)


def test_corrections_use_only_earlier_days():
    rng = np.random.default_rng(0)
    history = _frame(14, rng, sd=0.05, bias=0.0, naive_sd=0.05)
    test = _frame(10, rng, sd=0.05, bias=0.0, naive_sd=0.05)
    test["day"] = test["day"] + pd.Timedelta(days=14)
    base = online_corrections(history, test)
    assert list(base.index) == list(test.index)
    day5 = test["day"].sort_values().unique()[5]
    later = test.assign(actual=np.where(test["day"] >= day5, 0.99, test["actual"]))
    moved = online_corrections(history, later)
    before = (test["day"] <= day5).to_numpy()  # day 5 itself is forecast before its actuals
    pd.testing.assert_frame_equal(moved[before], base[before])
    after = (test["day"] > day5).to_numpy()
    assert not np.allclose(moved.loc[after, "p90"], base.loc[after, "p90"])


@pytest.mark.parametrize("seed", [1, 2])
def test_conformal_bands_hold_their_share_when_the_twin_is_too_narrow_and_biased(seed):
    """The twin's own 80% band is ~5 times too narrow and off centre by 3 points: it holds
    few actuals; the corrected bands hold close to 80% and 95%, at both horizons."""
    rng = np.random.default_rng(seed)
    history = _frame(14, rng, sd=0.05, bias=0.03, naive_sd=0.5)
    test = _frame(28, rng, sd=0.05, bias=0.03, naive_sd=0.5)
    test["day"] = test["day"] + pd.Timedelta(days=14)
    a = test["actual"].to_numpy()
    raw80 = np.mean((a >= test["p10"]) & (a <= test["p90"]))
    assert raw80 < 0.4
    fc = online_corrections(history, test)
    for h in (1, 4):
        at = (test["horizon_h"] == h).to_numpy()
        y, f = a[at], fc[at]
        assert np.mean((y >= f["p10"]) & (y <= f["p90"])) == pytest.approx(0.80, abs=0.06)
        assert np.mean((y >= f["p2_5"]) & (y <= f["p97_5"])) == pytest.approx(0.95, abs=0.04)
        # the bias is learnt: the point forecast's error is centred
        assert abs(np.median(y - f["p50"])) < 0.015
    assert (fc["shrink_weight"] >= 0.8).all()  # a noisy naive gets little weight


def test_shrinkage_follows_the_forecaster_that_has_been_right():
    rng = np.random.default_rng(3)
    twin_right = _frame(14, rng, sd=0.01, bias=0.0, naive_sd=0.1)
    assert shrink_weight(twin_right) >= 0.9
    naive_right = _frame(14, rng, sd=0.1, bias=0.0, naive_sd=0.01)
    assert shrink_weight(naive_right) <= 0.1
    # too few past pairs: the twin alone
    assert shrink_weight(naive_right.iloc[:10]) == 1.0


def test_band_level_adapts_when_errors_outgrow_the_past():
    """Errors three times as large from the test's first day on (the weeks before Christmas):
    quantiles of the past alone give a band too narrow for weeks; the adaptive level and the
    recency weights bring the band's record back near nominal within the test."""
    rng = np.random.default_rng(5)
    history = _frame(14, rng, sd=0.02, bias=0.0, naive_sd=0.5)
    test = _frame(28, rng, sd=0.06, bias=0.0, naive_sd=0.5)
    test["day"] = test["day"] + pd.Timedelta(days=14)
    fc = online_corrections(history, test)
    a = test["actual"].to_numpy()
    inside = ((a >= fc["p10"]) & (a <= fc["p90"])).to_numpy()
    first = (test["day"] < test["day"].min() + pd.Timedelta(days=2)).to_numpy()
    assert inside[first].mean() < 0.6  # the first days' bands come from the calm past
    assert inside.mean() == pytest.approx(0.80, abs=0.06)  # the run as a whole: near nominal


def test_without_enough_past_errors_the_twins_own_forecast_is_kept():
    rng = np.random.default_rng(6)
    test = _frame(3, rng, sd=0.05, bias=0.05, naive_sd=0.05)  # 8 pairs a day and horizon
    fc = online_corrections(None, test)
    # fewer than MIN_PAST (30) past pairs of a horizon before each of the three days
    for q in BAND_Q:
        np.testing.assert_allclose(fc[q], test[q])
    assert (fc["shrink_weight"] == 1.0).all()
    # a fourth day has 24 past pairs per horizon: still none; a fifth has 32: corrected
    more = _frame(5, np.random.default_rng(6), sd=0.05, bias=0.05, naive_sd=0.05)
    fc = online_corrections(None, more)
    last = (more["day"] == more["day"].max()).to_numpy()
    assert not np.allclose(fc.loc[last, "p90"], more.loc[last, "p90"])
    np.testing.assert_allclose(fc.loc[~last, "p90"], more.loc[~last, "p90"])
