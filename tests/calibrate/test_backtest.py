"""`parktwin backtest`: the twin starts from the observed count with the model's elapsed-stay
ages, the baselines use only the past, every method is scored on the same pairs, and the real
Birmingham data gives the table the issue asks for (two car parks, a week of origins)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bham import BIRMINGHAM
from typer.testing import CliRunner

from cli import app
from twin import api
from twin.calibrate.backtest import COLUMNS, METHODS, ets_forecast
from twin.calibrate.backtest_twin import (
    origin_pairs,
    slotted_series,
    twin_forecast,
)
from twin.calibrate.occupancy import Blocks, SiteFit, StayLaw

BHAM_COLS = "time=LastUpdated,site=SystemCodeNumber,occupied=Occupancy,capacity=Capacity"
SITES = ["BHMBCCMKT01", "Broad Street"]
birmingham = pytest.mark.skipif(not BIRMINGHAM.is_file(), reason=f"no real data: {BIRMINGHAM}")


def _fit(cv: float = float("nan")) -> SiteFit:
    """A known lot: arrivals 05:00-17:00 at 100/h, lognormal stays of 3 h (sd 2 h)."""
    blocks = Blocks.for_hours(7, 16)
    rates = {k: np.full(blocks.n, 100.0) for k in ("weekday", "sat", "sun")}
    return SiteFit(
        site="known",
        capacity=5000,
        law=StayLaw("lognormal", 3.0, 2.0),
        blocks=blocks,
        rates=rates,
        fitted_types=["weekday"],
        n_readings=0,
        n_days=0,
        rmse_rate=0.0,
        aic=0.0,
        day_factor_cv=cv,
    )


def _pair(t0: float, t1: float, n0: int, cap: int = 5000) -> pd.DataFrame:
    day = pd.Timestamp("2026-01-05")  # a Monday
    return pd.DataFrame({"day": [day], "t0_h": [t0], "t1_h": [t1], "n0": [n0], "capacity": [cap]})


def test_twin_survivors_follow_the_elapsed_stay_ages_car_by_car():
    """The binomial count of cars still parked equals drawing each car's age from the model's
    elapsed-stay law at that time of day and keeping it with probability S(a + h) / S(a)."""
    fit = _fit()
    t0, h, n0 = 11.0, 2.0, 400
    rng = np.random.default_rng(1)
    ages = fit.sample_ages(t0, "weekday", 200_000, rng)
    sf = fit.law.frozen().sf
    per_car = float(np.mean(sf(ages + h) / sf(ages)))
    # no newcomers: a lot whose arrivals stop at the origin
    closed = _fit()
    closed.rates = {
        k: np.where(np.asarray(closed.blocks.edges[:-1]) < t0, 100.0, 0.0) for k in closed.rates
    }
    fc = twin_forecast(closed, _pair(t0, t0 + h, n0), 4000, np.random.default_rng(2))
    got = fc["p50"].iloc[0] * 5000 / n0
    assert got == pytest.approx(per_car, abs=0.01)
    assert per_car < 0.9  # the check has something to measure


def test_twin_starts_from_the_observed_count_and_adds_the_models_arrivals():
    fit = _fit()
    now = twin_forecast(fit, _pair(10.0, 10.0 + 1e-6, 1234), 200, np.random.default_rng(0))
    assert now["p2_5"].iloc[0] * 5000 == pytest.approx(1234, abs=1)
    assert now["p97_5"].iloc[0] * 5000 == pytest.approx(1234, abs=1)
    # an hour later, from an empty lot: the newcomers' M_t/G/∞ mean, ∫ 100 S(1 - s) ds
    later = twin_forecast(fit, _pair(10.0, 11.0, 0), 4000, np.random.default_rng(0))
    expected = 100 * float(fit.law.G(np.array([1.0]))[0])
    assert later["p50"].iloc[0] * 5000 == pytest.approx(expected, rel=0.05)


def test_day_factor_widens_the_band_and_the_count_updates_it():
    base = _pair(10.0, 12.0, 300)
    plain = twin_forecast(_fit(), base, 2000, np.random.default_rng(0))
    varied = twin_forecast(_fit(0.3), base, 2000, np.random.default_rng(0), weight=0.0)
    width = lambda f: float(f["p90"].iloc[0] - f["p10"].iloc[0])  # noqa: E731
    assert width(varied) > 1.5 * width(plain)
    # a busy morning (twice the model's count) raises the forecast when the count counts
    busy = _pair(10.0, 12.0, 2 * 300)
    ignored = twin_forecast(_fit(0.3), busy, 2000, np.random.default_rng(0), weight=0.0)
    used = twin_forecast(_fit(0.3), busy, 2000, np.random.default_rng(0), weight=1.0)
    assert used["p50"].iloc[0] > ignored["p50"].iloc[0] + 0.01


def _series(days: int = 42, seed: int = 0) -> pd.DataFrame:
    """A site read every 30 min 07:30-16:30 with a weekly pattern and noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in pd.date_range("2026-01-05", periods=days, freq="D"):
        for t in pd.date_range(
            d + pd.Timedelta("7h30min"), d + pd.Timedelta("16h30min"), freq="30min"
        ):
            shape = np.sin(np.pi * (t.hour + t.minute / 60 - 7) / 10) * (
                0.5 if d.day_of_week > 4 else 1.0
            )
            rows.append((t, max(0, int(600 * shape + rng.normal(0, 20))), 1000))
    return pd.DataFrame(rows, columns=["time", "occupied", "capacity"]).assign(site="s")


def test_ets_forecast_uses_only_the_past():
    s = slotted_series(_series())
    cut = pd.Timestamp("2026-02-02")
    pairs = origin_pairs(s, cut, cut + pd.Timedelta(days=1), (1, 2))
    slots = np.arange(15, 34)
    before, _ = ets_forecast(s, pairs, slots, cut)
    future = s.copy()
    later = future["time"] >= cut + pd.Timedelta(days=1)
    future.loc[later, "rate"] = 0.99  # what happens after the origins' day
    after, _ = ets_forecast(future, pairs, slots, cut)
    np.testing.assert_allclose(before, after)
    assert np.isfinite(before).all()
    err = np.abs(before - pairs["actual"].to_numpy())
    assert err.mean() < 0.05  # it learnt the weekly pattern


@pytest.fixture(scope="module")
def birmingham_week():
    return api.backtest(
        BIRMINGHAM,
        BHAM_COLS,
        train_until="2016-11-20",
        sites=SITES,
        test_days=7,
        replications=100,
        plots=False,
    )


@birmingham
def test_birmingham_week_table(birmingham_week):
    t = birmingham_week.table
    assert list(t.columns) == COLUMNS
    assert len(t) == len(SITES) * 3 * len(METHODS)
    # the same pairs for every method
    assert (t.groupby(["site", "horizon_h"])["n"].nunique() == 1).all()
    assert (t["n"] >= 20).all()
    assert t["mae"].between(0, 0.3).all()
    base = t[t["method"] != "twin"]
    assert base["coverage80"].isna().all() and base["coverage95"].isna().all()
    tw = t[t["method"] == "twin"].set_index(["site", "horizon_h"])
    assert tw["coverage80"].between(0.5, 1).all() and (tw["coverage95"] >= tw["coverage80"]).all()
    naive = t[t["method"] == "seasonal_naive"].set_index(["site", "horizon_h"])
    # the twin starts from the count: at 1 h it beats a week-old reading on both car parks
    assert (tw.xs(1, level="horizon_h")["mae"] < naive.xs(1, level="horizon_h")["mae"]).all()


@birmingham
def test_birmingham_seasonal_naive_is_the_reading_a_week_earlier(birmingham_week):
    f = birmingham_week.forecasts
    sn = f[(f["method"] == "seasonal_naive") & (f["site"] == "Broad Street")].iloc[:5]
    raw = pd.read_csv(BIRMINGHAM, parse_dates=["LastUpdated"])
    raw = raw[raw["SystemCodeNumber"] == "Broad Street"]
    for row in sn.itertuples():
        week = raw[
            (raw["LastUpdated"] - (row.target - pd.Timedelta(days=7))).abs()
            <= pd.Timedelta(minutes=15)
        ]
        assert len(week) >= 1
        rates = week["Occupancy"] / week["Capacity"]
        assert np.isclose(rates, row.forecast).any()


@birmingham
def test_backtest_cli_writes_the_table_and_report(tmp_path):
    out = tmp_path / "bt"
    res = CliRunner().invoke(
        app,
        [
            "backtest",
            str(BIRMINGHAM),
            "--columns",
            BHAM_COLS,
            "--train-until",
            "2016-11-20",
            "--sites",
            "Broad Street",
            "--test-days",
            "3",
            "--replications",
            "40",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    t = pd.read_csv(out / "backtest.csv")
    assert list(t.columns) == COLUMNS and set(t["method"]) == set(METHODS)
    assert (out / "backtest.html").is_file()
    for png in ("mae.png", "coverage.png", "week_Broad_Street.png"):
        assert (out / "plots" / png).stat().st_size > 5000


@birmingham
def test_backtest_cli_bad_input_is_one_line(tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "backtest",
            str(BIRMINGHAM),
            "--columns",
            BHAM_COLS,
            "--train-until",
            "soon",
            "--out",
            str(tmp_path / "x"),
            "--no-plots",
        ],
    )
    assert res.exit_code == 2
    assert "--train-until" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(
        app,
        [
            "backtest",
            str(BIRMINGHAM),
            "--columns",
            BHAM_COLS,
            "--train-until",
            "2016-11-20",
            "--horizons",
            "1,x",
            "--out",
            str(tmp_path / "y"),
            "--no-plots",
        ],
    )
    assert res.exit_code == 2 and "--horizons" in res.output


def test_twin_law_matches_the_simulator_started_from_the_same_state():
    """The backtest draws the twin's count from its law; the SimPy model, started through
    twin.api.forecast from a state holding the same cars (ages from the model's elapsed-stay
    law) and running the calibrated scenario, gives the same distribution."""
    from datetime import datetime

    from twin.calibrate.scenarios import occupancy_scenario

    fit = _fit()
    scenario = occupancy_scenario(fit, "synthetic", datetime(2026, 1, 4))
    t0, n0 = 11.0, 400
    ages = fit.sample_ages(t0, "weekday", n0, np.random.default_rng(0)) * 60
    state = {
        "time": "2026-01-05T11:00:00",
        "lots": [{"sessions": [{"elapsed_min": float(a)} for a in ages]}],
    }
    sim = api.forecast(state, scenario, hours=2, replications=40, seed=1).occupancy
    sim = sim[sim["group_kind"] == sim["group_kind"].iloc[0]]
    for h in (1, 2):
        at = sim[sim["time_s"] == h * 3600.0]["occupied"].to_numpy(float)
        ours = twin_forecast(fit, _pair(t0, t0 + h, n0), 4000, np.random.default_rng(0)) * 5000
        assert abs(at.mean() - ours["p50"].iloc[0]) < 3 * at.std() / np.sqrt(len(at)) + 2
        sim_p10, sim_p90 = np.quantile(at, [0.1, 0.9])
        assert ours["p10"].iloc[0] == pytest.approx(sim_p10, abs=0.6 * at.std())
        assert ours["p90"].iloc[0] == pytest.approx(sim_p90, abs=0.6 * at.std())


@birmingham
@pytest.mark.parametrize("until", ["2016-12-25", "2016-10-06"])
def test_backtest_with_nothing_to_fit_or_score_is_one_line(tmp_path, until):
    """A cut after the data (no origin) or before enough of it (no fit): exit 2, one line."""
    res = CliRunner().invoke(
        app,
        [
            "backtest",
            str(BIRMINGHAM),
            "--columns",
            BHAM_COLS,
            "--train-until",
            until,
            "--sites",
            "Broad Street",
            "--out",
            str(tmp_path / "o"),
            "--no-plots",
        ],
    )
    assert res.exit_code == 2, res.output
    assert "--train-until" in res.output and "Traceback" not in res.output


def test_flow_level_is_what_the_same_weekday_implied_and_uses_only_the_past():
    """The 'flow' prior level is the newcomer factor that would have made the twin's mean
    forecast exact on the same weekday a week before (same origin and target slots), from
    readings of earlier days only: changing the pair's own day or any later day changes
    nothing."""
    from twin.calibrate.backtest_twin import flow_pieces, implied_level

    fit = _fit()
    monday, before = pd.Timestamp("2026-01-12"), pd.Timestamp("2026-01-05")
    rows = [
        (before + pd.Timedelta(hours=10), 900, 5000),  # origin a week before: 900 parked
        (before + pd.Timedelta(hours=12), 800, 5000),  # target a week before: 800
        (monday + pd.Timedelta(hours=10), 50, 5000),
        (monday + pd.Timedelta(hours=12), 4000, 5000),
    ]
    s = slotted_series(
        pd.DataFrame(rows, columns=["time", "occupied", "capacity"]).assign(site="s")
    )
    pairs = origin_pairs(s, monday, None, (2,))
    assert len(pairs) == 1
    p_stay, m_new = flow_pieces(fit, pairs.assign(day=before))
    expected = (800 - 900 * p_stay[0]) / m_new[0]
    level = implied_level(fit, s, pairs, 1)
    assert level[0] == pytest.approx(expected)
    assert abs(level[0] - 1.0) > 0.1  # the week before was not the fitted mean: it shows
    # the pair's own day and later days are not read
    later = s.copy()
    later.loc[later["day"] >= monday, "occupied"] = 10
    assert implied_level(fit, later, pairs, 1)[0] == pytest.approx(expected)
    # no reading a week before: the prior level is 1
    assert implied_level(fit, s[s["day"] >= monday], pairs, 1)[0] == 1.0


def test_rolling_refit_uses_only_readings_before_each_block():
    """The twin is refitted every 7 test days on the readings before the block: readings of
    the block's own days and later change none of its forecasts; readings of the week before
    the block (after the cut) do, which the one fit at the cut would not see."""
    from twin.calibrate.backtest_tuning import TwinSetup, rolling_twin

    rng = np.random.default_rng(4)
    days = pd.date_range("2026-01-05", periods=35)
    times = np.concatenate(
        [
            pd.date_range(d + pd.Timedelta("7h45min"), d + pd.Timedelta("16h15min"), freq="30min")
            for d in days
        ]
    )
    h = (pd.Series(times) - pd.Series(times).dt.normalize()).dt.total_seconds().to_numpy() / 3600
    n = rng.poisson(1500 * np.clip(1 - ((h - 12.5) / 5) ** 2, 0.05, None))
    readings = pd.DataFrame({"time": times, "occupied": n, "capacity": 5000})
    cut = pd.Timestamp("2026-01-26")  # three weeks of fit, two test weeks
    from twin.calibrate.occupancy import fit_site

    fit = fit_site(readings[readings["time"] < cut], "s")
    site_df = slotted_series(readings.assign(site="s"))
    test = origin_pairs(site_df, cut, None, (2,))
    setup = TwinSetup(fit, 1.0, {2: 0.1})

    def run(r: pd.DataFrame, refit: int | None = 7) -> pd.DataFrame:
        return rolling_twin(setup, test, site_df, r, cut, refit, 100, 0, 0)

    base = run(readings)
    second = pd.to_datetime(test["day"].to_numpy()) >= cut + pd.Timedelta(days=7)
    assert second.any() and (~second).any()
    late = readings["time"] >= cut + pd.Timedelta(days=7)
    changed_late = readings.assign(occupied=np.where(late, 4900, readings["occupied"]))
    pd.testing.assert_frame_equal(run(changed_late), base)
    first_week = (readings["time"] >= cut) & ~late
    busier = readings.assign(
        occupied=np.where(first_week, readings["occupied"] * 2, readings["occupied"])
    )
    moved = run(busier)
    assert not np.allclose(moved["p50"].to_numpy()[second], base["p50"].to_numpy()[second])
    pd.testing.assert_frame_equal(moved[~second], base[~second])
    # without the refit the first test week's readings never reach the fit
    pd.testing.assert_frame_equal(run(busier, None), run(readings, None))
