"""`parktwin backtest`: forecasts from rolling origins on data the model was not fitted on.

Per site, the model is calibrated on the readings up to ``train_until`` (see
:mod:`twin.calibrate.occupancy`); then at every origin after it (each reading on the hour) the
occupancy 1, 2, 4 h ahead is forecast three ways and compared with what was observed:

``twin``
    The calibrated model started from the observed count at the origin. Each car already parked
    has an age from the model's law of elapsed stays at that time of day (density ∝ λ(t − a)
    S(a), :meth:`SiteFit.age_quantiles`) and stays on with probability S(a + h) / S(a); new
    arrivals come at the fitted hourly rates λ times the day's demand factor and are still
    parked at the target with probability S(target − arrival); the lot holds at most its
    capacity. Replications draw the count directly from that law: the survivors of the n cars
    parked are Binomial(n, p) with p = E[S(a + h) / S(a)] over the age law (the cars' ages are
    independent draws from it, so this is the count a replication drawing each car's age and
    remaining stay gives, exactly), the newcomers present at the target Poisson(f·m), m their
    M_t/G/∞ mean. The day factor f is the model's gamma day factor (CV from calibration)
    updated by the count at the origin (gamma-Poisson conjugacy: the count is Poisson(f·m₀)
    given f, m₀ the model's mean count then), drawn per replication, so the bands carry the
    day-to-day variation the calibration measured and narrow as the day reveals itself.
    The day factor's prior mean may be a recent level instead of 1, e.g. the newcomer flow
    the same weekday's counts implied over the same hours a week or two before (the "flow"
    level: one Mon–Fri profile cannot hold Friday afternoons, nor the weeks' drift to
    Christmas), chosen per site like the stay family.
    The stay family is chosen per site by forecast skill on the training part (mean absolute
    error of these forecasts from the training origins), not by the curve fit's AIC: from counts
    alone the families are near ties, and the survival tail is what a forecast depends on.
``seasonal_naive``
    The reading at the target's time of day one week earlier.
``ets``
    Holt-Winters exponential smoothing (statsmodels, additive level and season, no trend) on
    the daily grid of 30-minute slots the site publishes (Birmingham: 07:30–16:30, no nights):
    the slots of a day follow each other, then the next day's; the season is one week of
    slots, so it holds the daily shape of each weekday (daily and weekly seasonality together).
    Parameters are fitted on the training part; the filter then runs over the whole series
    with them fixed, and the forecast from an origin uses only the readings up to it. Missing
    slots (gaps, missing days) are filled causally for the filter only (the same slot a week
    earlier, else the last value); origins and targets are always real readings.

The twin's point forecast and bands are then corrected day by day from its own past errors
(shrinkage toward seasonal naive, conformal bands: :mod:`twin.calibrate.backtest_bands`);
``online=False`` scores the twin's law alone. The twin's law, the slot grid and the pairs are
in :mod:`twin.calibrate.backtest_twin`, the per-site tuning and the rolling refit in
:mod:`twin.calibrate.backtest_tuning`.

Every method is scored on the same (origin, target) pairs: a target needs a reading within
±15 min of its slot, and one a week earlier for the seasonal naive forecast.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from twin.calibrate.backtest_bands import online_corrections
from twin.calibrate.backtest_tuning import REFIT_DAYS, rolling_twin, tune_site
from twin.calibrate.backtest_twin import BAND_Q, origin_pairs, site_slots, slotted_series
from twin.calibrate.cleaning import CalibrationInputError

#: Forecast horizons (hours) when none are given.
HORIZONS = (1, 2, 4)
METHODS = ("twin", "seasonal_naive", "ets")
COLUMNS = ["site", "horizon_h", "method", "n", "mae", "rmse", "coverage80", "coverage95"]


@dataclass
class Backtest:
    """What :func:`backtest` returns; ``frames`` are exactly the CSV tables written."""

    table: pd.DataFrame  # backtest.csv: site, horizon_h, method, n, mae, rmse, coverage80/95
    forecasts: pd.DataFrame  # every (site, origin, horizon, method): actual, forecast, bands
    families: pd.DataFrame  # site, family, training MAE of its twin forecasts, chosen
    unusable: dict[str, str]
    calibration: object  # the twin.calibrate.run.Calibration fitted on the training part
    train_until: pd.Timestamp
    horizons: tuple[int, ...]
    files: list[Path] = field(default_factory=list)

    @property
    def frames(self) -> dict[str, pd.DataFrame]:
        return {
            "backtest": self.table,
            "forecasts": self.forecasts,
            "families": self.families,
            "unusable": pd.DataFrame(
                [{"site": s, "why": w} for s, w in self.unusable.items()], columns=["site", "why"]
            ),
        }

    def verdicts(self) -> pd.DataFrame:
        """Per site: does the twin beat seasonal naive at every horizon, ETS at how many, and
        is its 80% band's coverage within 5 points of nominal at every horizon."""
        rows = []
        t = self.table.set_index(["site", "horizon_h", "method"])
        for site in self.table["site"].unique():
            beats_naive = beats_ets = cov_ok = 0
            for h in self.horizons:
                if (site, h, "twin") not in t.index:
                    continue
                tw = t.loc[(site, h, "twin")]
                beats_naive += int(tw["mae"] < t.loc[(site, h, "seasonal_naive"), "mae"])
                beats_ets += int(tw["mae"] < t.loc[(site, h, "ets"), "mae"])
                cov_ok += int(abs(tw["coverage80"] - 0.80) <= 0.05)
            rows.append(
                {
                    "site": site,
                    "beats_naive_at": beats_naive,
                    "beats_ets_at": beats_ets,
                    "coverage80_ok_at": cov_ok,
                    "horizons": len(self.horizons),
                }
            )
        return pd.DataFrame(rows)


# -- ETS ----------------------------------------------------------------------------------------
def _grid(site_df: pd.DataFrame, slots: np.ndarray) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """The site's rates on the (day × slot) grid, NaN where no reading."""
    days = pd.date_range(site_df["day"].min(), site_df["day"].max(), freq="D")
    grid = (
        site_df[site_df["slot"].isin(slots)]
        .pivot_table(index="day", columns="slot", values="rate", aggfunc="first")
        .reindex(index=days, columns=slots)
    )
    return days, grid.to_numpy(float)


def _fill_causal(y: np.ndarray) -> np.ndarray:
    """Fill missing slots using only the past: the same slot a week earlier, else the last
    value before it (the first values, before any reading: the first reading)."""
    y = y.copy()
    for d in range(7, y.shape[0]):
        miss = np.isnan(y[d])
        y[d, miss] = y[d - 7, miss]
    flat = pd.Series(y.ravel()).ffill().bfill()
    return flat.to_numpy()


def ets_forecast(
    site_df: pd.DataFrame, pairs: pd.DataFrame, slots: np.ndarray, train_end: pd.Timestamp
) -> tuple[np.ndarray, dict]:
    """Holt-Winters forecasts (rates, clipped to 0..1) for every pair; see the module doc."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    days, y = _grid(site_df, slots)
    s = len(slots)
    m = 7 * s
    flat = _fill_causal(y)
    n_train = int(np.sum(days < train_end)) * s
    if n_train < 2 * m + 10:
        raise CalibrationInputError(f"ETS needs two weeks of training readings ({n_train} slots)")
    fitted = ExponentialSmoothing(
        flat[:n_train],
        trend=None,
        seasonal="add",
        seasonal_periods=m,
        initialization_method="heuristic",
    ).fit()
    p = fitted.params
    run = ExponentialSmoothing(
        flat,
        trend=None,
        seasonal="add",
        seasonal_periods=m,
        initialization_method="known",
        initial_level=p["initial_level"],
        initial_seasonal=p["initial_seasons"],
    ).fit(
        smoothing_level=p["smoothing_level"],
        smoothing_seasonal=p["smoothing_seasonal"],
        optimized=False,
    )
    level, season = np.asarray(run.level), np.asarray(run.season)
    day_idx = days.get_indexer(pd.to_datetime(pairs["day"].to_numpy()))
    first = int(slots[0])
    i0 = day_idx * s + pairs["origin_slot"].to_numpy() - first
    k = pairs["target_slot"].to_numpy() - pairs["origin_slot"].to_numpy()
    ok = (day_idx >= 0) & (pairs["target_slot"].to_numpy() <= slots[-1]) & (i0 >= 0)
    fc = np.full(len(pairs), np.nan)
    fc[ok] = level[i0[ok]] + season[i0[ok] + k[ok] - m]
    params = {
        "alpha": float(p["smoothing_level"]),
        "gamma": float(p["smoothing_seasonal"]),
        "season_slots": m,
    }
    return np.clip(fc, 0.0, 1.0), params


# -- scoring ------------------------------------------------------------------------------------
def score(forecasts: pd.DataFrame) -> pd.DataFrame:
    """backtest.csv from the per-pair forecasts: MAE, RMSE (occupancy rate), band coverage."""
    rows = []
    for (site, h, method), g in forecasts.groupby(["site", "horizon_h", "method"], sort=False):
        err = g["forecast"].to_numpy() - g["actual"].to_numpy()
        has_band = g["p10"].notna().all() and method == "twin"
        a = g["actual"].to_numpy()
        rows.append(
            {
                "site": site,
                "horizon_h": int(h),
                "method": method,
                "n": len(g),
                "mae": float(np.mean(np.abs(err))),
                "rmse": float(math.sqrt(np.mean(err**2))),
                "coverage80": float(np.mean((a >= g["p10"]) & (a <= g["p90"])))
                if has_band
                else None,
                "coverage95": float(np.mean((a >= g["p2_5"]) & (a <= g["p97_5"])))
                if has_band
                else None,
            }
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    order = {m: i for i, m in enumerate(METHODS)}
    table["_o"] = table["method"].map(order)
    return table.sort_values(["site", "horizon_h", "_o"]).drop(columns="_o").reset_index(drop=True)


# -- end to end ---------------------------------------------------------------------------------
def backtest(
    source: str | Path | pd.DataFrame,
    columns: str | Mapping[str, str],
    out: str | Path | None = None,
    *,
    train_until: str | pd.Timestamp,
    horizons: Sequence[int] = HORIZONS,
    sites: list[str] | None = None,
    replications: int = 200,
    seed: int = 0,
    test_days: int | None = None,
    plots: bool = True,
    refit_days: int | None = REFIT_DAYS,
    online: bool = True,
) -> Backtest:
    """Calibrate on readings up to ``train_until`` (a date, inclusive), forecast from every
    hourly origin after it (the first ``test_days`` days only, if given) at ``horizons`` hours
    with the twin, seasonal naive and ETS, and score them (see the module doc). With ``out``,
    writes backtest.csv, forecasts.csv, families.csv, unusable.csv, and (``plots``) PNGs and
    backtest.html there. ``refit_days``: refit each site's profiles and stay law every so
    many test days on the readings before (None or 0: one fit at the cut; see
    :func:`rolling_twin`). ``online``: correct the twin's point forecast and bands day by day
    from its past errors (:mod:`twin.calibrate.backtest_bands`; False: the twin's own law).
    Raises CalibrationInputError on inputs the caller can fix."""
    from twin.calibrate.run import calibrate_occupancy

    if train_until is None:
        raise CalibrationInputError("--train-until: a backtest needs a date to split at")
    horizons = tuple(int(h) for h in horizons)
    if not horizons or min(horizons) < 1 or max(horizons) > 12:
        raise CalibrationInputError(f"--horizons: whole hours from 1 to 12, got {horizons}")
    if replications < 20:
        raise CalibrationInputError("--replications: at least 20 (for the 95% band)")
    cal = calibrate_occupancy(
        source, columns, None, train_until=train_until, sites=sites, plots=False
    )
    if not cal.fits:
        why = "; ".join(f"{s}: {w}" for s, w in cal.estimates.get("unusable", {}).items())
        raise CalibrationInputError(f"--train-until {train_until}: no site can be fitted ({why})")
    cut = pd.Timestamp(train_until).normalize() + pd.Timedelta(days=1)
    end = None if test_days is None else cut + pd.Timedelta(days=int(test_days))
    series = slotted_series(cal.frames["predictions"][["site", "time", "occupied", "capacity"]])
    unusable = dict(cal.estimates.get("unusable", {}))
    all_fc, fam_rows = [], []
    for k, (site, fit) in enumerate(sorted(cal.fits.items())):
        site_df = series[series["site"] == site]
        train_df = site_df[site_df["day"] < cut]
        slots = site_slots(train_df)
        test = origin_pairs(site_df, cut, end, horizons)
        test = test[test["week_before"].notna()] if len(test) else test
        if len(test) == 0:
            unusable[site] = "no test origin with a reading at the target and a week before"
            continue
        setup, rows = tune_site(fit, train_df, site_df, cut, horizons, replications, seed + k)
        fam_rows += rows
        try:
            ets, _ = ets_forecast(site_df, test, slots, cut)
        except CalibrationInputError as exc:
            unusable[site] = str(exc)
            continue
        readings = cal.frames["predictions"]
        readings = readings[readings["site"] == site][["time", "occupied", "capacity"]]
        twin = rolling_twin(setup, test, site_df, readings, cut, refit_days, replications, seed, k)
        if setup.recent:
            test = test.assign(recent_level=twin.pop("recent_level").to_numpy())
        if online:
            raw = test.assign(**{q: twin[q].to_numpy() for q in BAND_Q})
            twin = online_corrections(setup.history, raw.reset_index(drop=True))
            twin["forecast"] = twin["p50"]
        base = test[["horizon_h", "origin", "target", "n0", "capacity", "actual"]].copy()
        base.insert(0, "site", site)
        for method, values in (
            ("twin", twin),
            ("seasonal_naive", test["week_before"].to_numpy()),
            ("ets", ets),
        ):
            fc = base.copy()
            fc["method"] = method
            if method == "twin":
                for col in ("forecast", *BAND_Q):
                    fc[col] = values[col].to_numpy()
            else:
                fc["forecast"] = values
                for col in BAND_Q:
                    fc[col] = np.nan
            all_fc.append(fc)
    forecasts = pd.concat(all_fc, ignore_index=True) if all_fc else pd.DataFrame()
    if len(forecasts):
        forecasts = forecasts[forecasts["forecast"].notna()]
        # every method on the same pairs: keep the pairs every method forecast
        key = ["site", "horizon_h", "origin"]
        complete = forecasts.groupby(key)["method"].transform("nunique") == len(METHODS)
        forecasts = forecasts[complete].reset_index(drop=True)
    if not len(forecasts):
        raise CalibrationInputError(
            f"--train-until {train_until}: no forecast origin after it (a reading on the hour "
            "with one at the target and one a week before the target)"
        )
    table = score(forecasts)
    result = Backtest(
        table=table,
        forecasts=forecasts,
        families=pd.DataFrame(fam_rows),
        unusable=unusable,
        calibration=cal,
        train_until=pd.Timestamp(train_until),
        horizons=horizons,
    )
    if out is not None:
        write_backtest(result, Path(out), plots)
    return result


def write_backtest(result: Backtest, out: Path, plots: bool = True) -> list[Path]:
    """The tables (CSV) and, with ``plots``, the PNGs and backtest.html."""
    from twin.outputs import write_frame

    out.mkdir(parents=True, exist_ok=True)
    files = [write_frame(frame, out / f"{name}.csv") for name, frame in result.frames.items()]
    if plots:
        from twin.calibrate.backtest_report import write_report

        files += write_report(result, out)
    result.files = files
    return files
