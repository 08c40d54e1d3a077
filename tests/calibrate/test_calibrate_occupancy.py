"""`calibrate occupancy`: counts from a known lot (the simulator, or an M_t/G/∞ process with a
known day factor) give back its arrivals, stays and day-to-day CV; dirty series are counted;
the real Birmingham data is fitted on a slice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bham import BIRMINGHAM
from typer.testing import CliRunner

from cli import app
from twin import api
from twin.calibrate.cleaning import clean_series
from twin.calibrate.occupancy import calibrate_series
from twin.calibrate.run import calibrate_occupancy
from twin.scenario.loader import load_scenario
from twin.scenario.model import Scenario

COLS = {"time": "t", "site": "site", "occupied": "n", "capacity": "cap"}
#: Arrivals per hour from 05:00 to 16:59 (the fit's assumption: none outside that window).
RATES = [0] * 5 + [10, 30, 80, 120, 100, 80, 70, 60, 50, 40, 30, 20] + [0] * 7
STAY_MEAN, STAY_SD = 180.0, 100.0  # minutes, lognormal


def _readings(day: pd.Timestamp) -> pd.DatetimeIndex:
    """Birmingham's clock: every 30 min from 07:45 to 16:15."""
    return pd.date_range(
        day + pd.Timedelta("7h45min"), day + pd.Timedelta("16h15min"), freq="30min"
    )


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    """Counts of a lot simulated by ParkTwin: one stream with RATES every day, lognormal stays,
    far more spots than cars (no one turned away), read on Birmingham's clock."""
    sc = Scenario.model_validate(
        {
            "name": "truth",
            "start": "2026-01-05T00:00:00",
            "horizon_days": 35,
            "facility": {"levels": [{"name": "L1", "spots": {"REGULAR": 3000}}]},
            "demand": [
                {
                    "name": "all",
                    "profile": {"all": RATES},
                    "dwell": {"type": "lognormal", "mean": STAY_MEAN, "sd": STAY_SD},
                }
            ],
            "output": {"interval_min": 15},
        }
    )
    occ = api.run(sc, replications=1, frames=("occupancy",)).occupancy
    occ = occ[occ["group_kind"] == "total"].set_index("time")
    times = np.concatenate([_readings(d) for d in pd.date_range("2026-01-05", periods=35)])
    n = occ["occupied"].reindex(times)
    return pd.DataFrame({"t": times, "site": "sim", "n": n.to_numpy(), "cap": 3000})


def _fit(frame: pd.DataFrame):
    clean, _ = clean_series(frame, COLS)
    return calibrate_series(clean).fits["sim"]


def test_simulated_lot_recovered(simulated):
    fit = _fit(simulated)
    mean_min = fit.law.mean_h * 60
    assert mean_min == pytest.approx(STAY_MEAN, rel=0.15), fit.law
    for kind in ("weekday", "sat", "sun"):
        assert fit.arrivals_per_day(kind) == pytest.approx(sum(RATES), rel=0.08), kind
    hourly = np.asarray(fit.blocks.hourly(fit.rates["weekday"]))
    # hours read at least an hour after they start: rates within 20 %
    for h in range(8, 15):
        assert hourly[h] == pytest.approx(RATES[h], rel=0.2), (h, hourly[h])
    assert fit.rmse_rate < 0.01  # of 3000 spots
    assert fit.day_factor_cv < 0.05  # the simulator has no day factor
    # every family's fit is kept: from counts alone they are near ties
    assert set(fit.alternatives) == {"lognormal", "gamma", "exponential"}
    expo = fit.with_family("exponential")
    assert expo.law.family == "exponential" and fit.law.family != "exponential"
    t = np.array([10.0, 12.0, 14.0])
    kinds = np.zeros(3, dtype=int)
    assert np.allclose(expo.predict(t, kinds), fit.predict(t, kinds), rtol=0.05)


def _mtg_inf(days: int, cv: float, seed: int) -> pd.DataFrame:
    """An M_t/G/∞ lot with a gamma day factor of the given CV (mean 1) on arrivals."""
    rng = np.random.default_rng(seed)
    s2 = np.log1p((STAY_SD / STAY_MEAN) ** 2)
    mu = np.log(STAY_MEAN) - s2 / 2
    rows = []
    for day in pd.date_range("2026-01-05", periods=days):
        g = rng.gamma(1 / cv**2, cv**2) if cv > 0 else 1.0
        n = rng.poisson(g * np.asarray(RATES, dtype=float))
        arr = np.concatenate([h + rng.random(k) for h, k in enumerate(n)]) * 60
        leave = arr + rng.lognormal(mu, np.sqrt(s2), len(arr))
        for t in _readings(day):
            m = (t - day).total_seconds() / 60
            rows.append((t, int(((arr <= m) & (leave > m)).sum())))
    frame = pd.DataFrame(rows, columns=["t", "n"])
    return frame.assign(site="sim", cap=5000)


@pytest.mark.parametrize("cv", [0.0, 0.2])
def test_day_factor_cv_recovered(cv):
    fit = _fit(_mtg_inf(70, cv, seed=3))
    assert fit.day_factor_cv == pytest.approx(cv, abs=0.06), fit.day_factor_cv


def test_dirty_series_counted_and_handled(simulated):
    s = simulated.iloc[:400].copy()
    s["n"] = s["n"].astype(float)
    s.loc[5, "n"] = 3050  # above capacity: kept, clipped
    s.loc[6, "n"] = -3  # negative: set aside
    s = pd.concat([s, s.iloc[[20, 21]]], ignore_index=True)  # duplicate timestamps
    s.loc[40:45, "n"] = s.loc[40, "n"]  # a frozen counter: 6 equal readings
    s.loc[100:105, "n"] = [3000, 3001, 3000, 3002, 3000, 3000]  # full for 3 h: not frozen
    s = s.drop(index=[60, 61, 62])  # a gap
    clean, rep = clean_series(s, COLS)
    c = rep.counts
    assert c["above_capacity"] == 3 and c["negative_count"] == 1
    assert c["duplicate_timestamp"] == 2 and c["frozen_counter"] == 5 and c["gap"] >= 1
    assert clean["occupied"].max() <= 3000
    assert rep.used["readings"] + len(rep.set_aside) == len(s)
    assert set(rep.set_aside["reason"]) == {
        "negative_count",
        "duplicate_timestamp",
        "frozen_counter",
    }


birmingham = pytest.mark.skipif(
    not BIRMINGHAM.is_file(), reason=f"real data not here: {BIRMINGHAM}"
)


@birmingham
def test_birmingham_cleaning_matches_its_readme():
    raw = pd.read_csv(BIRMINGHAM)
    _, rep = clean_series(
        raw,
        {
            "time": "LastUpdated",
            "site": "SystemCodeNumber",
            "occupied": "Occupancy",
            "capacity": "Capacity",
        },
    )
    c = rep.counts
    assert (c["duplicate_timestamp"], c["negative_count"], c["above_capacity"]) == (216, 12, 373)


@birmingham
def test_birmingham_slice_fitted(tmp_path):
    sites = ["BHMBCCMKT01", "Broad Street", "Others-CCCPS202"]
    res = CliRunner().invoke(
        app,
        [
            "calibrate",
            "occupancy",
            str(BIRMINGHAM),
            "--columns",
            "time=LastUpdated,site=SystemCodeNumber,occupied=Occupancy,capacity=Capacity",
            "--train-until",
            "2016-11-20",
            "--sites",
            ",".join(sites),
            "--out",
            str(tmp_path / "o"),
            "--no-plots",
        ],
    )
    assert res.exit_code == 0, res.output
    est = pd.read_csv(tmp_path / "o" / "estimates.csv").set_index("site")
    assert list(est.index) == sites
    assert (est["fit_mae_rate"] < 0.06).all(), est["fit_mae_rate"]
    assert (est["held_out_mae_rate"] < 0.10).all(), est["held_out_mae_rate"]
    assert est["day_factor_cv"].between(0.02, 0.5).all()
    ebh = pd.read_csv(tmp_path / "o" / "error_by_hour.csv")
    assert set(ebh["hour"]) == set(range(7, 17))
    sc = load_scenario(tmp_path / "o" / "scenarios" / "Broad_Street.yaml")
    day = api.run(sc, replications=1, days=1, frames=())
    assert day.summary().loc["arrivals_per_day", "mean"] > 100
    js = api.calibrate(
        "occupancy",
        BIRMINGHAM,
        "time=LastUpdated,site=SystemCodeNumber,occupied=Occupancy,capacity=Capacity",
        train_until="2016-11-20",
        sites=sites[:1],
    )
    assert js.estimates["sites"]["BHMBCCMKT01"]["day_factor_cv"] > 0


def test_cli_bad_date_one_line(tmp_path, simulated):
    path = tmp_path / "s.csv"
    simulated.iloc[:50].to_csv(path, index=False)
    res = CliRunner().invoke(
        app,
        [
            "calibrate",
            "occupancy",
            str(path),
            "--columns",
            "time=t,site=site,occupied=n,capacity=cap",
            "--train-until",
            "soon",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert res.exit_code == 2
    assert "--train-until" in res.output and "Traceback" not in res.output
    with pytest.raises(ValueError, match="--train-until"):
        calibrate_occupancy(path, "time=t,site=site,occupied=n,capacity=cap", train_until="soon")


def test_ages_of_parked_cars_follow_the_model():
    """The elapsed-stay law a forecast gives the cars already parked: with the true rates and
    stay law, ages at 12:00 match those of an M_t/G/∞ simulation (two-sample KS)."""
    from scipy import stats

    from twin.calibrate.occupancy import Blocks, SiteFit, StayLaw

    blocks = Blocks((5.0, 6.0, *[float(h) for h in range(7, 18)]))
    rates = np.asarray([RATES[5], RATES[6], *RATES[7:17]], dtype=float)
    fit = SiteFit(
        "x",
        5000,
        StayLaw("lognormal", STAY_MEAN / 60, STAY_SD / 60),
        blocks,
        {k: rates for k in ("weekday", "sat", "sun")},
        ["weekday"],
        0,
        0,
        0.0,
        0.0,
    )
    rng = np.random.default_rng(11)
    s2 = np.log1p((STAY_SD / STAY_MEAN) ** 2)
    ages = []
    for _ in range(60):
        n = rng.poisson(np.asarray(RATES, dtype=float))
        arr = np.concatenate([h + rng.random(k) for h, k in enumerate(n)])
        stay = rng.lognormal(np.log(STAY_MEAN / 60) - s2 / 2, np.sqrt(s2), len(arr))
        present = (arr <= 12) & (arr + stay > 12)
        ages.append(12 - arr[present])
    ages = np.concatenate(ages)
    model = fit.sample_ages(12.0, "weekday", 4000, np.random.default_rng(5))
    assert stats.ks_2samp(ages, model).pvalue > 0.01
    assert np.mean(model) == pytest.approx(np.mean(ages), rel=0.05)
    # and a wrong stay law is told apart
    wrong = SiteFit(
        "x",
        5000,
        StayLaw("lognormal", 2 * STAY_MEAN / 60, STAY_SD / 60),
        blocks,
        fit.rates,
        ["weekday"],
        0,
        0,
        0.0,
        0.0,
    )
    assert (
        stats.ks_2samp(
            ages, wrong.sample_ages(12.0, "weekday", 4000, np.random.default_rng(5))
        ).pvalue
        < 1e-6
    )


def test_fitted_scenario_reproduces_the_observed_curve(simulated):
    """Close the loop: the scenario written from the fit, run by the simulator, gives back the
    observed weekday curve (what the backtest will start from)."""
    from twin.calibrate.scenarios import occupancy_scenario

    fit = _fit(simulated)
    sc = occupancy_scenario(fit, "test", pd.Timestamp("2026-01-05").to_pydatetime())
    sc = Scenario.model_validate(
        sc.model_dump(mode="json", exclude_unset=True) | {"output": {"interval_min": 15}}
    )
    occ = api.run(sc, replications=3, frames=("occupancy",)).occupancy
    occ = occ[occ["group_kind"] == "total"]
    wd = occ[occ["time"].dt.day_of_week < 5]
    h = (wd["time"] - wd["time"].dt.normalize()).dt.total_seconds() / 3600
    sim_curve = wd.groupby(h)["occupied"].mean()
    obs = simulated.assign(
        h=(simulated["t"] - simulated["t"].dt.normalize()).dt.total_seconds() / 3600
    )
    obs = obs[obs["t"].dt.day_of_week < 5].groupby("h")["n"].mean()
    both = pd.concat([sim_curve.rename("sim"), obs.rename("obs")], axis=1).dropna()
    assert len(both) >= 8
    gap = (both["sim"] - both["obs"]).abs() / both["obs"].max()
    assert gap.max() < 0.06, both


def _weekday_lot(fridays: int, friday_scale: float, seed: int = 5) -> pd.DataFrame:
    """An M_t/G/∞ lot whose Fridays have ``friday_scale`` times the afternoon arrivals of the
    other days (hours 12–16); ``fridays``: how many Fridays the series keeps."""
    rng = np.random.default_rng(seed)
    s2 = np.log1p((STAY_SD / STAY_MEAN) ** 2)
    mu = np.log(STAY_MEAN) - s2 / 2
    rows, seen = [], 0
    for day in pd.date_range("2026-01-05", periods=42):
        if day.day_of_week == 4:
            seen += 1
            if seen > fridays:
                continue
        rates = np.asarray(RATES, dtype=float)
        if day.day_of_week == 4:
            rates[12:17] *= friday_scale
        n = rng.poisson(rates)
        arr = np.concatenate([h + rng.random(k) for h, k in enumerate(n)]) * 60
        leave = arr + rng.lognormal(mu, np.sqrt(s2), len(arr))
        for t in _readings(day):
            m = (t - day).total_seconds() / 60
            rows.append((t, int(((arr <= m) & (leave > m)).sum())))
    return pd.DataFrame(rows, columns=["t", "n"]).assign(site="sim", cap=5000)


def test_each_weekday_gets_its_own_profile():
    """A lot busier on Friday afternoons: the fit gives Friday its own, higher afternoon rates
    (near the truth), leaves Monday near the shared ones, predicts Friday's curve better than
    the shared Mon–Fri profile, and the written scenario carries the day names."""
    from twin.calibrate.occupancy import day_kind
    from twin.calibrate.scenarios import occupancy_scenario

    frame = _weekday_lot(fridays=6, friday_scale=1.8)
    fit = _fit(frame)
    fri = np.asarray(fit.blocks.hourly(fit.rates["fri"]))
    mon = np.asarray(fit.blocks.hourly(fit.rates["mon"]))
    truth = np.asarray(RATES[12:15], dtype=float) * 1.8
    assert fri[12:15].sum() == pytest.approx(truth.sum(), rel=0.2), fri
    assert mon[12:15].sum() == pytest.approx(sum(RATES[12:15]), rel=0.2), mon
    is_fri = frame["t"].dt.day_of_week == 4
    t = ((frame["t"] - frame["t"].dt.normalize()).dt.total_seconds() / 3600).to_numpy()[is_fri]
    own = fit.predict(t, day_kind(frame["t"][is_fri]))
    shared = fit.pooled().predict(t, day_kind(frame["t"][is_fri]))
    y = frame["n"].to_numpy()[is_fri]
    assert np.abs(own - y).mean() < 0.6 * np.abs(shared - y).mean()
    sc = occupancy_scenario(fit, "test", pd.Timestamp("2026-01-05").to_pydatetime())
    assert sc.demand[0].profile.for_day(4) == [round(r, 4) for r in fri]


def test_a_weekday_seen_once_stays_near_the_shared_profile():
    """Shrinkage: with one Friday in the data its own profile moves only part of the way."""
    one = _fit(_weekday_lot(fridays=1, friday_scale=1.8))
    many = _fit(_weekday_lot(fridays=6, friday_scale=1.8))
    pm = float(np.sum(one.rates["weekday"]))

    def lift(fit):
        return float(np.sum(fit.rates["fri"])) / float(np.sum(fit.rates["weekday"]))

    assert 1.0 < lift(one) < lift(many)
    assert pm > 0


def test_weekday_profiles_use_only_readings_before_the_cut():
    """No look-ahead: changing every reading after train_until leaves each weekday's fitted
    profile exactly as it was."""
    frame = _weekday_lot(fridays=6, friday_scale=1.8)
    later = frame["t"] >= pd.Timestamp("2026-02-02")
    changed = frame.assign(n=np.where(later, frame["n"] * 2 + 7, frame["n"]))
    fits = [
        calibrate_series(clean_series(f, COLS)[0], train_until=pd.Timestamp("2026-02-01")).fits[
            "sim"
        ]
        for f in (frame, changed)
    ]
    for k in ("mon", "tue", "wed", "thu", "fri"):
        assert np.array_equal(fits[0].rates[k], fits[1].rates[k]), k
