"""Dirty count series: frozen counters of any length (within a day or across nights) and
counter offsets (a day's whole count shifted) are found against the site's own movement, set
aside with their reason, and never scored by the backtest; ordinary quiet, full or busy days
are left alone."""

from __future__ import annotations

import pandas as pd
import pytest
from bham import BIRMINGHAM

from twin.calibrate.backtest import origin_pairs, slotted_series
from twin.calibrate.cleaning import clean_series
from twin.calibrate.occupancy import calibrate_series
from twin.calibrate.run import calibrate_occupancy

BHAM = {
    "time": "LastUpdated",
    "site": "SystemCodeNumber",
    "occupied": "Occupancy",
    "capacity": "Capacity",
}
COLS = {"time": "t", "site": "site", "occupied": "n", "capacity": "cap"}


def _aside(frame: pd.DataFrame, reason: str) -> pd.DataFrame:
    _, rep = clean_series(frame, COLS)
    assert rep.used["readings"] + len(rep.set_aside) == len(frame)
    return rep.set_aside[rep.set_aside["reason"] == reason]


def test_a_counter_frozen_across_two_nights_is_set_aside_whole(lot):
    s = lot(42, seed=1)
    day = s["t"].dt.normalize()
    start = s.index[(day == "2026-01-15") & (s["t"].dt.hour == 14)][0]
    end = s.index[(day == "2026-01-17") & (s["t"].dt.hour == 11)][-1]
    s.loc[start:end, "n"] = s.loc[start, "n"]
    frozen = _aside(s, "frozen_counter")
    # every repeat after the first reading of the run, and nothing else
    assert sorted(frozen["time"]) == sorted(s.loc[start + 1 : end, "t"])


def test_three_equal_readings_in_a_busy_morning_are_frozen_an_empty_or_full_lot_is_not(lot):
    s = lot(42, seed=2, cap=2000)
    day = s["t"].dt.normalize()
    rise = s.index[(day == "2026-01-20") & (s["t"].dt.hour.isin([8, 9]))][:3]
    s.loc[rise, "n"] = s.loc[rise[0], "n"]
    full = s.index[(day == "2026-01-27") & (s["t"].dt.hour.isin([11, 12, 13, 14]))]
    s.loc[full, "n"] = 2000  # a full lot repeats its capacity
    empty = s.index[day == "2026-02-03"][:6]
    s.loc[empty, "n"] = [0, 0, 0, 30, 30, 30]  # an empty lot (<= 2 % full) stays put
    frozen = _aside(s, "frozen_counter")
    assert sorted(frozen["time"]) == sorted(s.loc[rise[1:], "t"])


def test_a_quiet_lots_natural_repeats_are_not_frozen(lot):
    """A lot with a few cars repeats its count often by nature: beyond chance is judged
    against that, so at most a stray reading is set aside."""
    s = lot(42, seed=3, scale=0.03)
    repeats = int((s["n"].diff() == 0).sum())
    assert repeats > 100  # the lot does stay put a lot
    assert len(_aside(s, "frozen_counter")) <= 2


def test_a_counter_offset_is_set_aside_an_event_day_is_not(lot):
    events = {20: 2.0}  # an event day: twice the arrivals, a normal opening
    s = lot(49, seed=4, lift=lambda k: events.get(k, 1.0))
    day = s["t"].dt.normalize()
    shifted = day.isin(pd.date_range("2026-02-10", periods=3))
    s.loc[shifted, "n"] += 600  # a counter that gained 600 phantom cars overnight, for 3 days
    offset = _aside(s, "counter_offset")
    assert set(offset["time"].dt.normalize()) == set(pd.date_range("2026-02-10", periods=3))
    assert len(offset) == int(shifted.sum())
    assert len(_aside(s, "frozen_counter")) == 0


def test_set_aside_readings_are_never_origins_or_targets_of_the_backtest(lot):
    """The backtest scores the calibration's readings (``frames["predictions"]``, usable
    readings only) through ``slotted_series`` and ``origin_pairs``: a set-aside reading is
    never an actual, the count a forecast starts from, nor a seasonal-naive forecast."""
    s = lot(42, seed=5)
    day = s["t"].dt.normalize()
    s.loc[day.isin(pd.date_range("2026-02-03", periods=2)), "n"] += 700  # offset, test period
    freeze = s.index[(day == "2026-02-06") & (s["t"].dt.hour >= 10)]
    s.loc[freeze, "n"] = s.loc[freeze[0], "n"]
    _, rep = clean_series(s, COLS)
    aside = set(rep.set_aside["time"])
    assert len(aside) == 2 * 18 + len(freeze) - 1
    cal = calibrate_occupancy(s, COLS, train_until="2026-01-31", plots=False)
    readings = cal.frames["predictions"]
    assert not set(readings["time"]) & aside
    cut = pd.Timestamp("2026-02-01")
    series = slotted_series(readings[["site", "time", "occupied", "capacity"]])
    pairs = origin_pairs(series, cut, None, (1, 2, 4))
    assert not (set(pairs["origin"]) | set(pairs["target"])) & aside
    # a target a week after a set-aside reading has no seasonal-naive forecast
    week_later = pairs[pairs["target"].isin({t + pd.Timedelta(days=7) for t in aside})]
    assert len(week_later) > 0 and week_later["week_before"].isna().all()
    # the days around are scored
    scored = set(pairs["target"].dt.normalize())
    assert {pd.Timestamp("2026-02-02"), pd.Timestamp("2026-02-05")} <= scored


birmingham = pytest.mark.skipif(
    not BIRMINGHAM.is_file(), reason=f"real data not here: {BIRMINGHAM}"
)


@birmingham
def test_birmingham_cccps119a_17_to_19_december_set_aside():
    """Others-CCCPS119a opens 17–19 Dec 2016 at ~1,000 cars (its other days: 50–400) and
    sits at 1,277 ± 1 for hours: a counter carrying ~660 phantom cars. Every reading of those
    days is set aside; the calibration's readings (what the backtest scores) hold none."""
    raw = pd.read_csv(BIRMINGHAM)
    clean, rep = clean_series(raw, BHAM)
    a = rep.set_aside
    site = a[(a["site"] == "Others-CCCPS119a") & (a["time"] >= "2016-12-17")]
    assert set(site["reason"]) <= {"frozen_counter", "counter_offset"}
    days = raw[(raw["SystemCodeNumber"] == "Others-CCCPS119a")]
    days = days[days["LastUpdated"] >= "2016-12-17"]
    assert len(site) == len(days) == 54
    # no other day of that site, and only the readme's known problems besides
    kept = clean[(clean["site"] == "Others-CCCPS119a") & clean["usable"]]
    assert kept["time"].max() < pd.Timestamp("2016-12-17")
    assert (kept["time"].dt.normalize().nunique()) >= 70
    cal = calibrate_series(clean, pd.Timestamp("2016-11-20"), ["Others-CCCPS119a"], calendar=False)
    p = cal.predictions
    assert p["time"].max() < pd.Timestamp("2016-12-17")
