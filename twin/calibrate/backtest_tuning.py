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
#: Prior means of the day factor tried per site and horizon: 1, the last 7 days' level, the
#: same weekday's level a week before, the flow level of 1 or 1–2 weeks before (see
#: twin_forecast's ``recent``). Today's morning levels ("today", "flow_today":
#: backtest_twin.today_level) are not among them: added, they gave a higher mean MAE at every
#: horizon on the earlier backtest (cut 2016-11-06, 4 h: 4.79 against 4.71 points), chosen
#: on 6 of 84 site-horizons there (see docs/validation.md).
LEVELS = (None, "week", "weekday", "flow", "flow2")
#: The last days of the training part on which a site's twin is tuned (see tune_site).
TUNE_DAYS = 14
#: Weekday profiles tried per site: each weekday its own (shrunk towards Mon–Fri), or the
#: one Mon–Fri profile (a flow level may already carry the weekday's own shape).
PROFILES = ("own", "shared")
#: Flow-factor CVs tried per site and horizon for the bands (see _tune).
DRIFT_CVS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)


@dataclass(frozen=True)
class Choice:
    """How the twin forecasts at one horizon: stay family, weekday profiles, the weight of the
    origin's count in the day factor's update and the day factor's prior level."""

    family: str
    profile: str = "own"
    weight: float = 1.0
    recent: str | None = None

    def apply(self, fit: SiteFit) -> SiteFit:
        """``fit`` with this choice's stay family (where fitted) and profiles."""
        f = fit.with_family(self.family) if self.family in fit.alternatives else fit
        return f.pooled() if self.profile == "shared" else f


@dataclass(frozen=True)
class TwinSetup:
    """How a site's twin forecasts, chosen on the training part only. ``fit``, ``weight``,
    ``recent`` and ``profile`` are the choice at the shortest horizon (and at every horizon
    when ``by_horizon`` is empty); ``by_horizon`` holds the choice made per horizon."""

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
    by_horizon: dict[int, Choice] = field(default_factory=dict)
    #: The fit the choices of ``by_horizon`` apply to (its own family and profiles).
    base_fit: SiteFit | None = field(default=None, compare=False, repr=False)

    def drift_for(self, pairs: pd.DataFrame) -> np.ndarray:
        return pairs["horizon_h"].map(self.drift_cv).fillna(0.0).to_numpy(float)

    def choice(self, h: int) -> Choice:
        """The choice at horizon ``h`` hours."""
        own = Choice(self.fit.law.family, self.profile, self.weight, self.recent)
        return self.by_horizon.get(int(h), own)


def _forecast(
    fit: SiteFit,
    choice: Choice,
    pairs: pd.DataFrame,
    series: pd.DataFrame,
    replications: int,
    rng: np.random.Generator,
    drift_cv: float | np.ndarray = 0.0,
) -> pd.DataFrame:
    """The twin's forecasts for ``pairs`` under ``choice`` (``fit`` already has its family
    and profiles), with ``recent_level`` (1 without a prior level)."""
    part = with_recent_level(fit, pairs, series, choice.recent) if choice.recent else pairs
    fc = twin_forecast(
        fit,
        part,
        replications,
        rng,
        weight=choice.weight,
        drift_cv=drift_cv,
        recent=choice.recent,
    )
    fc.index = pairs.index
    fc["recent_level"] = part["recent_level"].to_numpy() if choice.recent else 1.0
    return fc


def _tune(
    fit: SiteFit, train_pairs: pd.DataFrame, series: pd.DataFrame, replications: int, seed: int
) -> tuple[TwinSetup, list[dict]]:
    """Choose, on the training origins only and per horizon, the stay family, weekday
    profiles, the day factor's update weight and prior level with the lowest MAE of the
    twin's forecasts at that horizon (what tells the next hour, the origin's count, is not
    what tells the afternoon, e.g. the same weekday's flow a week before), then the
    flow-factor CV whose 80% band holds closest to 80% of the training actuals (the model's
    own noise, Poisson plus the day factor, is far narrower than real forecast errors on a
    big lot)."""
    rows = []
    families = list(fit.alternatives) or [fit.law.family]
    if not len(train_pairs):
        return TwinSetup(fit, 1.0, {}), rows
    actual = train_pairs["actual"].to_numpy()
    horizon = train_pairs["horizon_h"].to_numpy()
    hs = [int(h) for h in np.unique(horizon)]
    best: dict[int, tuple[float, Choice]] = {h: (math.inf, Choice(fit.law.family)) for h in hs}
    for family, profile in itertools.product(families, PROFILES):
        cand = Choice(family, profile).apply(fit)
        for w, recent in itertools.product(WEIGHTS, LEVELS):
            choice = Choice(family, profile, w, recent)
            fc = _forecast(
                cand, choice, train_pairs, series, replications, np.random.default_rng(seed)
            )
            err = np.abs(fc["forecast"].to_numpy() - actual)
            row = {
                "site": fit.site,
                "family": family,
                "profile": profile,
                "stay_mean_min": cand.law.mean_h * 60,
                "stay_sd_min": cand.law.sd_h * 60,
                "aic": fit.family_aic.get(family, math.nan),
                "weight": w,
                "recent_level": recent or "none",
                "train_mae": float(np.mean(err)),
                "n_train": len(train_pairs),
            }
            for h in hs:
                mae = float(np.mean(err[horizon == h]))
                row[f"train_mae_{h}h"] = mae
                if mae < best[h][0]:
                    best[h] = (mae, choice)
            rows.append(row)
    by_h = {h: c for h, (_, c) in best.items()}
    gaps: dict[int, list[tuple[float, float]]] = {}
    by_cv: dict[tuple[int, float], pd.DataFrame] = {}
    for h, choice in by_h.items():
        at = horizon == h
        pairs_h = train_pairs[at]
        cand = choice.apply(fit)
        for d in DRIFT_CVS:
            fc = _forecast(
                cand, choice, pairs_h, series, replications, np.random.default_rng(seed), d
            )
            by_cv[(h, d)] = fc
            a = actual[at]
            in80 = (a >= fc["p10"].to_numpy()) & (a <= fc["p90"].to_numpy())
            in95 = (a >= fc["p2_5"].to_numpy()) & (a <= fc["p97_5"].to_numpy())
            gap = abs(float(in80.mean()) - 0.80) + abs(float(in95.mean()) - 0.95)
            gaps.setdefault(h, []).append((gap, d))
    drift = {h: min(g)[1] for h, g in gaps.items()}
    past = pd.concat(
        [
            by_cv[(h, d)]
            .drop(columns="recent_level")
            .assign(**_pair_columns(train_pairs[horizon == h]))
            for h, d in drift.items()
        ]
    ).sort_index()
    first = by_h[min(hs)]
    setup = TwinSetup(
        first.apply(fit),
        first.weight,
        drift,
        first.recent,
        profile=first.profile,
        history=past.reset_index(drop=True),
        by_horizon=by_h,
        base_fit=fit,
    )
    for r in rows:
        chosen_for = [
            h
            for h, c in by_h.items()
            if (r["family"], r["profile"], r["weight"], r["recent_level"])
            == (c.family, c.profile, c.weight, c.recent or "none")
        ]
        r["chosen"] = bool(chosen_for)
        r["chosen_for"] = ",".join(f"{h}h" for h in chosen_for)
        r["drift_cv"] = ",".join(f"{h}h:{drift[h]:g}" for h in chosen_for)
    return setup, rows


def _pair_columns(pairs: pd.DataFrame) -> dict[str, np.ndarray]:
    """What the online corrections need of a pair besides the twin's forecast."""
    return {
        c: pairs[c].to_numpy()
        for c in ("day", "origin", "horizon_h", "actual", "week_before", "capacity")
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
    full = setup.choice(min(horizons)).apply(fit)
    on = f"last {TUNE_DAYS} training days (fitted on the days before)"
    return replace(setup, fit=full, base_fit=fit, tuned_on=on), [
        {**r, "tuned_on": on} for r in rows
    ]


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
    horizon = test["horizon_h"].to_numpy()
    parts = []
    for b in np.unique(block).tolist():
        base = None
        start = cut + pd.Timedelta(days=b * int(refit_days or 0))
        before = readings[readings["time"] < start]
        if b > 0 and len(before) >= MIN_READINGS:
            base = fit_site(before, setup.fit.site)
        for h in np.unique(horizon[block == b]).tolist():
            pos = np.flatnonzero((block == b) & (horizon == h))
            choice = setup.choice(h)
            if base is not None:
                f = choice.apply(base)
            elif setup.by_horizon and setup.base_fit is not None:
                f = choice.apply(setup.base_fit)
            else:
                f = setup.fit
            rng = np.random.default_rng([seed, k, h] if b == 0 else [seed, k, b, h])
            part = test.iloc[pos]
            fc = _forecast(f, choice, part, site_df, replications, rng, setup.drift_for(part))
            fc.index = pos
            parts.append(fc)
    return pd.concat(parts).sort_index()
