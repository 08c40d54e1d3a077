"""Online corrections of the twin's forecasts from its own past errors, per site and horizon.

The twin's law (:mod:`twin.calibrate.backtest_twin`) is a model: its spread comes from Poisson
noise, the day factor and a flow factor tuned once on two training weeks, and its median from
a fit refitted weekly. What a forecaster in service would learn from the errors it has
already seen, and that this module applies, using only pairs whose target lies at or before
the forecast's origin (the tuning origins, the test days already past, the same day's pairs
already scored):

* **Shrinkage toward seasonal naive** (a forecast combination, Bates and Granger 1969): the
  combined forecast is c = w · twin + (1 − w) · seasonal naive, w in 0..1 the weight with the
  lowest (recency-weighted) absolute error on the past pairs. Where the twin has been better,
  w stays near 1; where the week-old reading has carried information the twin lacks (e.g.
  4 h ahead on a car park whose afternoon differs from the fitted profile), part of it is
  taken. The naive partner may be shifted by today's level: week_before + κ · (rate at the
  origin − rate a week before at the origin's time), κ in NAIVE_SHIFTS chosen with w on the
  same past pairs (κ = 1: last week's curve moved to pass through the count observed at the
  origin; 0: the plain week-old reading). Both terms are known at the origin.
* **Bands by split conformal prediction on standardized residuals**: a past pair's residual
  z = (actual − c) / s, s the twin's own 10–90% width (so the band keeps the twin's shape:
  narrow at opening time, wide at midday, wider 4 h ahead than 1 h); the 80% band is
  c + [q₁₀(z), q₉₀(z)] · s, the 95% band c + [q₂.₅(z), q₉₇.₅(z)] · s and the point forecast
  c + q₅₀(z) · s (the median error taken out), q the empirical quantiles of the past
  residuals of that site and horizon. Asymmetric errors (a twin that under-forecasts on a
  rising lot) move the band and the point, not only widen the band.
* **Adaptive conformal inference** (Gibbs and Candès 2021), as each target's actual arrives:
  the bands are made at each origin from the past pairs and the same day's pairs whose
  target is at or before that origin, and each band's record moves two things after each
  arrival: its miscoverage level, α ← α + γ (α_nominal − miss) / n, and its width about the
  median residual, k ← k · exp(γ_w (miss − α_nominal) / n), miss 1 if the actual fell outside
  the band issued for it, n the day's pairs of that horizon (so a day moves each by at most
  its step whatever the horizon: 4 h ahead a day has ~4 pairs whose errors move together,
  1 h ahead ~8). The level alone cannot widen a band past the largest residual seen (a
  quantile of the past is bounded by it), and a large step on the level sends a band to that
  residual after one bad day; the width grows smoothly.
* **The day's difficulty** (:func:`day_difficulty`): a day's errors are shared by its
  horizons, and the 1 h ones arrive hours before the 4 h ones (the first at 09:00, the first
  4 h one at noon). Each pair's conformal score is its residual's distance from the median
  divided by D, how far the same day's 1 h errors already known at its origin have run from
  the usual (1 on an ordinary day, and before any has arrived); a band made at an origin is
  then the quantiles of the past scores times that origin's D. The past pairs' scores carry
  their own days' D, so how much a hard morning says about the afternoon is learnt from the
  past (a normalized conformal score: where D says nothing, the scores spread and the bands
  widen everywhere instead).

Past pairs weigh 2^(−age / HALF_LIFE_DAYS) (age in days before the forecast's day; the same
day's pairs weigh 1): errors of the weeks before Christmas say more about the next day than
October's. The point forecast (shrinkage and median) is made once a day from the days before
it; the bands at each origin. The settings (half-life 7 days, γ = 0.1 and γ_w = 1 a day; the
difficulty from the 1 h errors, prior weight 4 pairs, power 1) were chosen on an earlier
backtest (cut 2016-11-06, two test weeks, see docs/validation.md), not on the weeks they are
reported on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from twin.calibrate.backtest_twin import BAND_Q

#: Twin weights in the combination with seasonal naive, tried on the past pairs.
SHRINK_WEIGHTS = np.round(np.linspace(0.0, 1.0, 21), 2)
#: Shares κ of today's level shift (rate at the origin − rate a week before at that time) added
#: to the week-old reading in the combination, tried with the weights on the past pairs (see
#: shrink_choice). Chosen against {0, 0.5, 1}, 0.5 or 1 fixed, and 0 (the earlier release) on
#: the earlier backtest (cut 2016-11-06), not on the weeks reported (docs/validation.md).
NAIVE_SHIFTS = (0.0, 1.0)
#: Floor of the residual scale (share of capacity): the twin's band at opening time can be a
#: car or two wide, and a residual divided by it would be meaningless.
MIN_SCALE = 0.01
#: At least this many past pairs (per horizon) before a correction is made; fewer: the twin's
#: own forecast and band.
MIN_PAST = 30
#: Half-life (days) of a past pair's weight in the shrinkage and the residual quantiles.
HALF_LIFE_DAYS = 7.0
#: Steps a day (each arrival: step / the day's pairs of that horizon) of adaptive conformal
#: inference: γ on each band's miscoverage level, γ_w on the log of its width.
ACI_STEP = 0.1
WIDTH_STEP = 1.0
FINITE_SAMPLE = True
#: Nominal miscoverage of the two bands, by their (lower, upper) quantile columns.
BANDS = {("p10", "p90"): 0.20, ("p2_5", "p97_5"): 0.05}
#: The day's difficulty (see :func:`day_difficulty`): the horizons whose same-day errors are
#: read (they arrive first: 1 h ahead the first at 09:00, 4 h ahead not before noon), the
#: weight in pairs of an ordinary day (D = 1) it starts from, and the power of D the band
#: widths follow (0: no difficulty term).
LEAD_HORIZONS = (1,)
DIFFICULTY_PRIOR = 4.0
DIFFICULTY_POWER = 1.0


def _scale(frame: pd.DataFrame) -> np.ndarray:
    return np.maximum(frame["p90"].to_numpy(float) - frame["p10"].to_numpy(float), MIN_SCALE)


def level_shift(frame: pd.DataFrame) -> np.ndarray:
    """Per pair: today's level against a week before, at the origin (rate at the origin −
    the reading a week before at the origin's slot; 0 where either is missing, or where
    ``frame`` lacks the columns). Known at the origin: the origin's own count and older."""
    if not {"n0", "capacity", "week_before_origin"} <= set(frame.columns):
        return np.zeros(len(frame))
    now = frame["n0"].to_numpy(float) / frame["capacity"].to_numpy(float)
    shift = now - frame["week_before_origin"].to_numpy(float)
    return np.where(np.isfinite(shift), shift, 0.0)


def _point(frame: pd.DataFrame, w: float, kappa: float = 0.0) -> np.ndarray:
    """w · twin + (1 − w) · (week-old reading + κ · today's level shift); the twin where
    there is no week-old reading."""
    twin = frame["p50"].to_numpy(float)
    naive = frame["week_before"].to_numpy(float)
    if kappa:
        naive = naive + kappa * level_shift(frame)
    return np.where(np.isfinite(naive), w * twin + (1 - w) * naive, twin)


def recency(past: pd.DataFrame, day: pd.Timestamp | None) -> np.ndarray:
    """Weights of past pairs: 2^(−age / HALF_LIFE_DAYS), age in days before ``day`` (all 1
    without a day)."""
    if day is None or not len(past):
        return np.ones(len(past))
    age = (pd.Timestamp(day) - pd.to_datetime(past["day"])).dt.days.to_numpy(float)
    return 0.5 ** (age / HALF_LIFE_DAYS)


def shrink_choice(past: pd.DataFrame, day: pd.Timestamp | None = None) -> tuple[float, float]:
    """The twin's weight w and the level shift's share κ (NAIVE_SHIFTS) with the lowest
    recency-weighted mean absolute error of w · twin + (1 − w) · (naive + κ · shift) on the
    past pairs ((1, 0) with fewer than MIN_PAST week-old readings; ties: the smaller κ).
    Why the shift: the week-old reading knows the afternoon's shape, which repeats from week to
    week on many car parks, but not today's level; the count at the origin does (a busier
    morning than last week's is mostly a busier afternoon), and the twin, started from that
    count, carries it only as far as its own fitted flows do."""
    ok = past["week_before"].notna().to_numpy()
    if ok.sum() < MIN_PAST:
        return 1.0, 0.0
    y = past["actual"].to_numpy(float)[ok]
    twin = past["p50"].to_numpy(float)[ok]
    naive = past["week_before"].to_numpy(float)[ok]
    shift = level_shift(past)[ok]
    wt = recency(past[ok], day)
    best = (np.inf, 1.0, 0.0)
    for kappa in NAIVE_SHIFTS:
        partner = naive + kappa * shift
        mix = SHRINK_WEIGHTS[:, None] * twin[None, :] + (1 - SHRINK_WEIGHTS[:, None]) * partner
        loss = (np.abs(mix - y[None, :]) * wt[None, :]).sum(axis=1)
        i = int(np.argmin(loss))
        if loss[i] < best[0] - 1e-12:
            best = (float(loss[i]), float(SHRINK_WEIGHTS[i]), float(kappa))
    return best[1], best[2]


def weighted_quantiles(z: np.ndarray, weights: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Quantiles of ``z`` under ``weights`` (the weighted CDF at each value's midpoint,
    interpolated; equal weights give Hazen's plotting positions)."""
    order = np.argsort(z)
    cum = np.cumsum(weights[order])
    pos = (cum - 0.5 * weights[order]) / cum[-1]
    return np.interp(q, pos, z[order])


def corrected(
    past: pd.DataFrame,
    now: pd.DataFrame,
    day: pd.Timestamp | None = None,
    alphas: dict | None = None,
) -> pd.DataFrame:
    """The forecasts of ``now`` (rows of one horizon) corrected from ``past`` (same horizon,
    targets before ``now``'s origins, weighted by recency from ``day``): point forecast and
    band quantiles as occupancy rates, plus ``shrink_weight``. ``alphas``: each band's current
    miscoverage level (default: nominal, see BANDS)."""
    out = pd.DataFrame(index=now.index)
    if len(past) < MIN_PAST:
        for col in BAND_Q:
            out[col] = now[col].to_numpy(float)
        out["shrink_weight"] = 1.0
        out["naive_shift"] = 0.0
        return out
    alphas = alphas or BANDS
    w, kappa = shrink_choice(past, day)
    z = (past["actual"].to_numpy(float) - _point(past, w, kappa)) / _scale(past)
    wt = recency(past, day)
    c, s = _point(now, w, kappa), _scale(now)
    n_eff = wt.sum() ** 2 / np.sum(wt**2)
    for (lo, hi), alpha in alphas.items():
        a = float(np.clip(alpha, 0.002, 0.998))
        upper = min(1.0, (1 - a / 2) * (1 + 1 / n_eff)) if FINITE_SAMPLE else 1 - a / 2
        q_lo, q_hi = weighted_quantiles(z, wt, np.array([1 - upper, upper]))
        out[lo] = np.clip(c + q_lo * s, 0.0, 1.0)
        out[hi] = np.clip(c + q_hi * s, 0.0, 1.0)
    out["p50"] = np.clip(c + weighted_quantiles(z, wt, np.array([0.5]))[0] * s, 0.0, 1.0)
    out["shrink_weight"] = w
    out["naive_shift"] = kappa
    return out[[*BAND_Q, "shrink_weight", "naive_shift"]]


def day_difficulty(pairs: pd.DataFrame) -> np.ndarray:
    """For each pair (columns ``day``, ``origin``, ``horizon_h``, ``actual`` and the twin's
    quantiles), how hard its day has been so far: D = ((P + Σ|u|) / (P + n))^β, the sum over
    the n same-day pairs of the LEAD_HORIZONS whose target is at or before the pair's origin,
    u = (z − m) / E|z − m|, z their standardized residuals (as in :func:`corrected`, against
    the twin's median), m and E|z − m| the recency-weighted median and mean absolute
    deviation of the lead pairs of the days before (P = DIFFICULTY_PRIOR, β =
    DIFFICULTY_POWER). Why: a day's errors are shared by its horizons (a Saturday whose
    shoppers stay longer, an afternoon event), and the 1 h errors arrive hours before the
    4 h ones, so the band made 4 h ahead at 11:00 can already know that the morning went
    badly. D is 1 on an ordinary day, before any lead error of the day has arrived, and
    without MIN_PAST lead pairs of earlier days; it reads no actual after the pair's
    origin."""
    out = np.ones(len(pairs))
    if DIFFICULTY_POWER == 0 or not len(pairs):
        return out
    day = pd.to_datetime(pairs["day"]).to_numpy()
    origin = pd.to_datetime(pairs["origin"]).to_numpy()
    horizon = pairs["horizon_h"].to_numpy(int)
    lead = np.isin(horizon, LEAD_HORIZONS)
    target = origin + (horizon * 3600).astype("timedelta64[s]")
    z = (pairs["actual"].to_numpy(float) - pairs["p50"].to_numpy(float)) / _scale(pairs)
    for d in np.unique(day):
        before = lead & (day < d)
        if before.sum() < MIN_PAST:
            continue
        wt = recency(pd.DataFrame({"day": day[before]}), pd.Timestamp(d))
        m = weighted_quantiles(z[before], wt, np.array([0.5]))[0]
        mad = max(float(np.average(np.abs(z[before] - m), weights=wt)), 1e-9)
        today = np.flatnonzero(day == d)
        known = np.flatnonzero(lead & (day == d))
        u = np.abs(z[known] - m) / mad
        arrived = target[known][None, :] <= origin[today][:, None]
        n, total = arrived.sum(axis=1), (arrived * u[None, :]).sum(axis=1)
        out[today] = ((DIFFICULTY_PRIOR + total) / (DIFFICULTY_PRIOR + n)) ** DIFFICULTY_POWER
    return out


def _band(z, wt, n_eff, alpha, c, s, mid=0.0, k=1.0, g=None, g_past=None):
    """The band c + [q(1 − u), q(u)] · s, u = (1 − α/2)(1 + 1/n_eff) (finite-sample factor),
    q the weighted quantiles of the past standardized residuals z; with ``k`` its distance
    from ``mid`` (the median residual) times k; with the day's difficulty ``g`` of the band's
    pairs and ``g_past`` of the past residuals', that distance is measured in each one's
    difficulty: (z − mid) / g_past's quantiles times g (a normalized conformal score)."""
    a = float(np.clip(alpha, 0.002, 0.998))
    upper = min(1.0, (1 - a / 2) * (1 + 1 / n_eff)) if FINITE_SAMPLE else 1 - a / 2
    e = z - mid if g_past is None else (z - mid) / g_past
    q_lo, q_hi = weighted_quantiles(e, wt, np.array([1 - upper, upper]))
    g = 1.0 if g is None else g
    q_lo, q_hi = mid + k * g * q_lo, mid + k * g * q_hi
    return np.clip(c + q_lo * s, 0.0, 1.0), np.clip(c + q_hi * s, 0.0, 1.0)


def _arrive(level: dict, scale: dict, bounds: dict, y: np.ndarray, idx, share: float) -> None:
    """Each band's record as the actuals ``y[idx]`` arrive (each ``share`` of its day): its
    miscoverage level moves by ACI_STEP · share · (nominal − miss) (adaptive conformal
    inference) and the log of its width by WIDTH_STEP · share · (miss − nominal)."""
    for i in idx:
        for band, nominal in BANDS.items():
            lo, hi = bounds[band][i]
            miss = float(y[i] < lo or y[i] > hi)
            level[band] += share * ACI_STEP * (nominal - miss)
            scale[band] *= float(np.exp(share * WIDTH_STEP * (miss - nominal)))


def _horizon_online(past: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """:func:`online_corrections` for the pairs of one horizon (``test`` with ``origin`` and
    ``target``): the point forecast once a day, the bands at each origin from the pairs whose
    target is at or before it, each band's level and width moved as each actual arrives."""
    names = [*BAND_Q, "shrink_weight"]
    col = {name: k for k, name in enumerate(names)}
    out = np.full((len(test), len(names)), np.nan)
    level, scale = dict(BANDS), dict.fromkeys(BANDS, 1.0)
    cols = ["day", "actual", "week_before", *SHIFT_COLS, *BAND_Q, "difficulty"]
    for day, today in test.groupby("day", sort=True):
        rows = test.index.get_indexer(today.index)
        if len(past) < MIN_PAST:
            out[rows, : len(BAND_Q)] = today[list(BAND_Q)].to_numpy(float)
            out[rows, col["shrink_weight"]] = 1.0
            past = pd.concat([past, today[cols]], ignore_index=True)
            continue
        fc = corrected(past, today, day)
        out[rows, col["p50"]] = fc["p50"].to_numpy()
        out[rows, col["shrink_weight"]] = fc["shrink_weight"].to_numpy()
        w, kappa = float(fc["shrink_weight"].iloc[0]), float(fc["naive_shift"].iloc[0])
        z_past = (past["actual"].to_numpy(float) - _point(past, w, kappa)) / _scale(past)
        g_past, g_today = past["difficulty"].to_numpy(float), today["difficulty"].to_numpy(float)
        wt_past = recency(past, day)
        mid = weighted_quantiles(z_past, wt_past, np.array([0.5]))[0]
        c_today, s_today = _point(today, w, kappa), _scale(today)
        z_today = (today["actual"].to_numpy(float) - c_today) / s_today
        target, origins = today["target"].to_numpy(), today["origin"].to_numpy()
        y = today["actual"].to_numpy(float)
        scored = np.zeros(len(today), bool)
        bounds = {band: np.full((len(today), 2), np.nan) for band in BANDS}
        share = 1.0 / len(today)  # a day moves a band's level and width by at most a step
        for origin in np.unique(origins):
            known = target <= origin  # issued at an earlier origin, target passed
            _arrive(level, scale, bounds, y, np.flatnonzero(known & ~scored), share)
            scored |= known
            z = np.concatenate([z_past, z_today[known]])
            g = np.concatenate([g_past, g_today[known]])
            wt = np.concatenate([wt_past, np.ones(known.sum())])
            n_eff = wt.sum() ** 2 / np.sum(wt**2)
            now = origins == origin
            c, s = c_today[now], s_today[now]
            for band in BANDS:
                lo, hi = _band(z, wt, n_eff, level[band], c, s, mid, scale[band], g_today[now], g)
                bounds[band][now] = np.column_stack([lo, hi])
        _arrive(level, scale, bounds, y, np.flatnonzero(~scored), share)
        for (lo, hi), band in bounds.items():
            out[rows, col[lo]], out[rows, col[hi]] = band[:, 0], band[:, 1]
        past = pd.concat([past, today[cols]], ignore_index=True)
    return pd.DataFrame(out, index=test.index, columns=names)


#: The columns of a pair that :func:`level_shift` reads, carried with the past pairs.
SHIFT_COLS = ["n0", "capacity", "week_before_origin"]


def _with_shift_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with SHIFT_COLS, NaN where it lacks them (no level shift: κ has no effect)."""
    missing = {c: np.nan for c in SHIFT_COLS if c not in frame.columns}
    return frame.assign(**missing) if missing else frame


def online_corrections(history: pd.DataFrame | None, test: pd.DataFrame) -> pd.DataFrame:
    """Over ``test`` (columns ``day``, ``origin``, ``target``, ``horizon_h``, ``actual``,
    ``week_before`` and the twin's band quantiles), per horizon: the point forecast corrected
    once a day (:func:`corrected`) from the errors of ``history`` (the tuning origins) and of
    the test days before; the bands at each origin from those errors and the same day's pairs
    whose target has passed, each band's level adapted as each actual arrives (adaptive
    conformal inference: ACI_STEP, WIDTH_STEP). Same index as ``test``."""
    cols = ["day", "origin", "horizon_h", "actual", "week_before", *SHIFT_COLS, *BAND_Q]
    history = _with_shift_columns(history) if history is not None else None
    test = _with_shift_columns(test)
    seen = (
        history[cols].assign(day=pd.to_datetime(history["day"]))
        if history is not None and len(history)
        else pd.DataFrame({c: pd.Series(dtype=float) for c in cols}).astype(
            {"day": "datetime64[ns]", "origin": "datetime64[ns]"}
        )
    )
    test = test.assign(day=pd.to_datetime(test["day"]))
    every = pd.concat([seen, test[cols]], ignore_index=True)
    g = day_difficulty(every)
    seen = seen.assign(difficulty=g[: len(seen)]).drop(columns="origin")
    test = test.assign(difficulty=g[len(seen) :])
    parts = []
    for h, pairs in test.groupby("horizon_h", sort=True):
        past = seen[(seen["horizon_h"] == h).to_numpy()].drop(columns="horizon_h")
        parts.append(_horizon_online(past.reset_index(drop=True), pairs))
    return pd.concat(parts).loc[test.index]
