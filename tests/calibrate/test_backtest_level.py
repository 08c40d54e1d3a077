"""Today's demand level in `parktwin backtest`: read from the origin's own day, before the
origin only, it measures how much busier the day is than the fit and carries that to the
afternoon the twin forecasts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from twin.calibrate.backtest_twin import (
    origin_pairs,
    slotted_series,
    today_level,
    twin_forecast,
    with_recent_level,
)
from twin.calibrate.occupancy import fit_site

BUSY_DAY = 21  # a Monday, three weeks after the first day
LIFT = 1.5


def _lot(count_lot) -> tuple[pd.DataFrame, object, pd.DataFrame]:
    """A known lot (no day-to-day variation) with day BUSY_DAY's arrivals LIFT × the usual,
    the fit on the three weeks before it, and the slotted series."""
    raw = count_lot(28, seed=3, scale=4.0, cv=0.0, lift=lambda k: LIFT if k == BUSY_DAY else 1.0)
    readings = raw.rename(columns={"t": "time", "n": "occupied", "cap": "capacity"})
    busy = pd.Timestamp("2026-01-05") + pd.Timedelta(days=BUSY_DAY)
    fit = fit_site(readings[readings["time"] < busy][["time", "occupied", "capacity"]], "sim")
    series = slotted_series(readings)
    return (
        series,
        fit,
        origin_pairs(series, busy - pd.Timedelta(days=7), busy + pd.Timedelta(days=1), (4,)),
    )


def test_today_level_is_the_mornings_inflow_against_the_fit(lot):
    """On an ordinary day the morning's inflow matches the fit (level ~1); on a day whose
    arrivals are 1.5 × the usual, the level is ~1.5 once the morning has been seen, and the
    twin started with it forecasts that day's afternoon far better than with the fitted
    level."""
    series, fit, pairs = _lot(lot)
    noon = pairs[pairs["origin_slot"] == 24]  # 12:00, target 16:00
    day = pd.to_datetime(noon["day"]).dt.day_of_week.to_numpy()
    busy = (pd.to_datetime(noon["day"]) == noon["day"].max()).to_numpy()
    level = today_level(fit, series, noon)
    assert level[busy][0] == pytest.approx(LIFT, abs=0.15)
    ordinary = level[~busy & (day < 5)]
    assert len(ordinary) >= 4 and np.all(np.abs(ordinary - 1.0) < 0.15)
    # scaled: the week-before flow level (~1, an ordinary Monday) times today's ratio to it
    scaled = today_level(fit, series, noon, scaled=1)
    assert scaled[busy][0] == pytest.approx(LIFT, abs=0.2)
    # the twin, 4 h ahead from noon on the busy day: the level closes most of the gap
    on_busy = noon[busy]
    plain = twin_forecast(fit, on_busy, 400, np.random.default_rng(0), weight=0.0)
    lifted = twin_forecast(
        fit,
        with_recent_level(fit, on_busy, series, "today"),
        400,
        np.random.default_rng(0),
        weight=0.0,
        recent="today",
    )
    actual = on_busy["actual"].iloc[0]
    gap_plain = abs(plain["p50"].iloc[0] - actual)
    assert gap_plain > 0.03  # the fitted level misses the busy afternoon
    assert abs(lifted["p50"].iloc[0] - actual) < 0.3 * gap_plain


@pytest.mark.parametrize("scaled", [0, 1])
def test_today_level_reads_no_reading_at_or_after_the_origin(lot, scaled):
    """Changing the origin's own reading, or any later one of that day or later days, leaves
    the level unchanged; changing an earlier reading of the same morning changes it."""
    series, fit, pairs = _lot(lot)
    pairs = pairs[pairs["day"] == pairs["day"].max()]
    base = today_level(fit, series, pairs, scaled)
    for _, pair in pairs.iterrows():
        one = pairs.loc[[pair.name]]
        after = (series["day"] > pair["day"]) | (
            (series["day"] == pair["day"]) & (series["slot"] >= pair["origin_slot"])
        )
        changed = series.assign(occupied=np.where(after, 4999, series["occupied"]))
        assert today_level(fit, changed, one, scaled)[0] == base[pairs.index.get_loc(pair.name)]
    late = pairs[pairs["origin_slot"] >= 22].iloc[[0]]
    same_day = series["day"] == late["day"].iloc[0]
    last = series.loc[same_day & (series["slot"] < late["origin_slot"].iloc[0]), "slot"].max()
    before = same_day & (series["slot"] == last)
    assert before.sum() == 1
    moved = series.assign(occupied=np.where(before, series["occupied"] + 300, series["occupied"]))
    assert (
        today_level(fit, moved, late, scaled)[0] > today_level(fit, series, late, scaled)[0] + 0.1
    )
