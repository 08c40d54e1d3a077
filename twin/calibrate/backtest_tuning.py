"""How each site's twin forecasts in `parktwin backtest`, chosen on the training part only,
and the rolling weekly refit over the test weeks (see :mod:`twin.calibrate.backtest`)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from twin.calibrate.backtest_twin import origin_pairs, twin_forecast, with_recent_level
from twin.calibrate.occupancy import MIN_DAYS, MIN_READINGS, SiteFit, fit_site

#: Weights of the origin's count in the day factor's update, tried per site (see _tune).
WEIGHTS = (0.0, 0.25, 0.5, 1.0)
#: Prior means of the day factor tried per site: 1, the last 7 days' level, the same weekday's
#: level a week before (see twin_forecast's ``recent``).
LEVELS = (None, "week", "weekday", "flow", "flow2")
#: The last days of the training part on which a site's twin is tuned (see tune_site).
TUNE_DAYS = 14
#: Weekday profiles tried per site: each weekday its own (shrunk towards Mon–Fri), or the
#: one Mon–Fri profile (a flow level may already carry the weekday's own shape).
PROFILES = ("own", "shared")
#: Flow-factor CVs tried per site and horizon for the bands (see _tune).
DRIFT_CVS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)


@dataclass(frozen=True)
class TwinSetup:
    """How a site's twin forecasts, chosen on the training part only."""

    fit: SiteFit
    weight: float
    drift_cv: dict[int, float]  # per horizon (hours)
    recent: str | None = None
    tuned_on: str = ""
    #: "own": each weekday its own profile; "shared": one Mon–Fri profile (see PROFILES)
    profile: str = "own"
    #: The chosen twin's forecasts (with ``day``, ``horizon_h``, ``actual``, ``week_before``)
    #: on the tuning origins: past errors for the online corrections (backtest_bands).
    history: pd.DataFrame | None = field(default=None, compare=False, repr=False)

    def drift_for(self, pairs: pd.DataFrame) -> np.ndarray:
        return pairs["horizon_h"].map(self.drift_cv).fillna(0.0).to_numpy(float)


def _tune(
    fit: SiteFit, train_pairs: pd.DataFrame, series: pd.DataFrame, replications: int, seed: int
) -> tuple[TwinSetup, list[dict]]:
    """Choose, on the training origins only, the stay family and the day factor's update
    weight with the lowest MAE of the twin's forecasts, then the flow-factor CV whose 80% band
    holds closest to 80% of the training actuals (the model's own noise, Poisson plus the day
    factor, is far narrower than real forecast errors on a big lot)."""
    rows = []
    families = list(fit.alternatives) or [fit.law.family]
    actual = train_pairs["actual"].to_numpy() if len(train_pairs) else np.array([])
    best = (math.inf, TwinSetup(fit, 1.0, {}))
    if not len(train_pairs):
        return best[1], rows
    for family, profile in itertools.product(families, PROFILES):
        cand = fit.with_family(family) if fit.alternatives else fit
        cand = cand.pooled() if profile == "shared" else cand
        for w, recent in itertools.product(WEIGHTS, LEVELS):
            with_level = (
                with_recent_level(cand, train_pairs, series, recent) if recent else train_pairs
            )
            fc = twin_forecast(
                cand,
                with_level,
                replications,
                np.random.default_rng(seed),
                weight=w,
                recent=recent,
            )
            mae = float(np.mean(np.abs(fc["forecast"].to_numpy() - actual)))
            rows.append(
                {
                    "site": fit.site,
                    "family": family,
                    "profile": profile,
                    "stay_mean_min": cand.law.mean_h * 60,
                    "stay_sd_min": cand.law.sd_h * 60,
                    "aic": fit.family_aic.get(family, math.nan),
                    "weight": w,
                    "recent_level": recent or "none",
                    "train_mae": mae,
                    "n_train": len(train_pairs),
                }
            )
            if mae < best[0]:
                best = (mae, TwinSetup(cand, w, {}, recent, profile=profile))
    setup = best[1]
    gaps: dict[int, list[tuple[float, float]]] = {}
    tuned = (
        with_recent_level(setup.fit, train_pairs, series, setup.recent)
        if setup.recent
        else train_pairs
    )
    horizon = tuned["horizon_h"].to_numpy()
    by_cv = {}
    for d in DRIFT_CVS:
        fc = twin_forecast(
            setup.fit,
            tuned,
            replications,
            np.random.default_rng(seed),
            weight=setup.weight,
            drift_cv=d,
            recent=setup.recent,
        )
        by_cv[d] = fc
        in80 = (actual >= fc["p10"].to_numpy()) & (actual <= fc["p90"].to_numpy())
        in95 = (actual >= fc["p2_5"].to_numpy()) & (actual <= fc["p97_5"].to_numpy())
        for h in np.unique(horizon).tolist():
            at = horizon == h
            gap = abs(float(in80[at].mean()) - 0.80) + abs(float(in95[at].mean()) - 0.95)
            gaps.setdefault(int(h), []).append((gap, d))
    drift = {h: min(g)[1] for h, g in gaps.items()}
    past = pd.concat(
        [
            by_cv[d][horizon == h].assign(**_pair_columns(tuned[horizon == h]))
            for h, d in drift.items()
        ]
    ).sort_index()
    setup = replace(setup, drift_cv=drift, history=past.reset_index(drop=True))
    for r in rows:
        r["chosen"] = (
            r["family"] == setup.fit.law.family
            and r["profile"] == setup.profile
            and r["weight"] == setup.weight
            and r["recent_level"] == (setup.recent or "none")
        )
        r["drift_cv"] = (
            ",".join(f"{h}h:{d:g}" for h, d in sorted(setup.drift_cv.items()))
            if r["chosen"]
            else ""
        )
    return setup, rows


def _pair_columns(pairs: pd.DataFrame) -> dict[str, np.ndarray]:
    """What the online corrections need of a pair besides the twin's forecast."""
    return {
        c: pairs[c].to_numpy()
        for c in (
            "day",
            "origin",
            "horizon_h",
            "actual",
            "week_before",
            "capacity",
            "n0",
            "week_before_origin",
        )
    }


def tune_site(
    fit: SiteFit,
    train_df: pd.DataFrame,
    site_df: pd.DataFrame,
    cut: pd.Timestamp,
    horizons: Sequence[int],
    replications: int,
    seed: int,
) -> tuple[TwinSetup, list[dict]]:
    """Tune a site's twin as a backtest would find it: refit on the training part less its
    last TUNE_DAYS days, choose (see :func:`_tune`) on forecasts from origins in those days,
    and apply the choice to the fit on the whole training part. Tuning on the fit's own
    readings would be optimistic (in-sample errors are smaller, so the bands come out too
    narrow); only when the split leaves too little to fit is it done in-sample (``tuned_on``)."""
    split = cut - pd.Timedelta(days=TUNE_DAYS)
    early = train_df[train_df["day"] < split]
    tune_fit = None
    if len(early) >= MIN_READINGS and early["day"].nunique() >= MIN_DAYS:
        tune_fit = fit_site(early[["time", "occupied", "capacity"]], fit.site)
    if tune_fit is None:
        pairs = origin_pairs(train_df, train_df["day"].min(), None, horizons)
        setup, rows = _tune(fit, pairs, site_df, replications, seed)
        return replace(setup, tuned_on="training readings (in-sample)"), rows
    pairs = origin_pairs(train_df, split, cut, horizons)
    setup, rows = _tune(tune_fit, pairs, site_df, replications, seed)
    family = setup.fit.law.family
    full = fit.with_family(family) if family in fit.alternatives else fit
    full = full.pooled() if setup.profile == "shared" else full
    on = f"last {TUNE_DAYS} training days (fitted on the days before)"
    return replace(setup, fit=full, tuned_on=on), [{**r, "tuned_on": on} for r in rows]


#: The twin is refitted on every reading before the day every this many test days (see
#: rolling_twin).
REFIT_DAYS = 7


def rolling_twin(
    setup: TwinSetup,
    test: pd.DataFrame,
    site_df: pd.DataFrame,
    readings: pd.DataFrame,
    cut: pd.Timestamp,
    refit_days: int | None,
    replications: int,
    seed: int,
    k: int,
) -> pd.DataFrame:
    """The twin's forecasts for the test pairs, in their order, refitted as the test weeks go
    by: the pairs of test days [cut + i·refit_days, cut + (i+1)·refit_days) are forecast by the
    calibration refitted (:func:`fit_site`) on the site's readings before the block's first day
    — the profiles, per weekday too, and the stay law follow the weeks' drift (e.g. towards
    Christmas) — with the choices tuned at the cut (stay family, profile, weight, level, band
    width) kept. Only readings before each origin's day are used. Column ``recent_level`` is
    the prior level used (1 without one)."""
    days = pd.to_datetime(test["day"].to_numpy())
    block = (
        np.zeros(len(test), dtype=int)
        if not refit_days
        else ((days - cut).days.to_numpy() // int(refit_days)).astype(int)
    )
    parts = []
    for b in np.unique(block).tolist():
        pos = np.flatnonzero(block == b)
        part = test.iloc[pos]
        f = setup.fit
        start = cut + pd.Timedelta(days=b * int(refit_days or 0))
        before = readings[readings["time"] < start]
        if b > 0 and len(before) >= MIN_READINGS:
            f = fit_site(before, f.site)
            f = f.with_family(setup.fit.law.family) if setup.fit.law.family in f.alternatives else f
            f = f.pooled() if setup.profile == "shared" else f
        if setup.recent:
            part = with_recent_level(f, part, site_df, setup.recent)
        fc = twin_forecast(
            f,
            part,
            replications,
            np.random.default_rng([seed, k] if b == 0 else [seed, k, b]),
            weight=setup.weight,
            drift_cv=setup.drift_for(part),
            recent=setup.recent,
        )
        fc.index = pos
        fc["recent_level"] = part["recent_level"].to_numpy() if setup.recent else 1.0
        parts.append(fc)
    return pd.concat(parts).sort_index()
