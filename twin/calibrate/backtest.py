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

Every method is scored on the same (origin, target) pairs: a target needs a reading within
±15 min of its slot, and one a week earlier for the seasonal naive forecast.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from twin.calibrate.cleaning import CalibrationInputError
from twin.calibrate.occupancy import (
    MIN_DAYS,
    MIN_READINGS,
    SiteFit,
    day_kind,
    fit_site,
)

#: Forecast horizons (hours) when none are given.
HORIZONS = (1, 2, 4)
#: Slot length of the daily grid (minutes); readings are matched to the nearest slot.
SLOT_MIN = 30
#: A slot of the day belongs to a site's grid when it holds a reading on this share of days.
SLOT_PRESENCE = 0.25
METHODS = ("twin", "seasonal_naive", "ets")
COLUMNS = ["site", "horizon_h", "method", "n", "mae", "rmse", "coverage80", "coverage95"]
#: Band quantiles of the twin's replications (Weibull plotting positions, as in forecasts).
BAND_Q = {"p2_5": 0.025, "p10": 0.10, "p50": 0.50, "p90": 0.90, "p97_5": 0.975}
#: A count within this share of capacity is taken as censored by the lot being full: it says
#: demand was at least that high, so it does not update the day factor.
FULL_SHARE = 0.98


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


# -- the slot grid ------------------------------------------------------------------------------
def slotted_series(series: pd.DataFrame) -> pd.DataFrame:
    """One reading per (site, day, slot): the one nearest the slot's time (±SLOT_MIN/2)."""
    df = series.copy()
    minutes = (df["time"] - df["time"].dt.normalize()).dt.total_seconds() / 60.0
    df["day"] = df["time"].dt.normalize()
    df["slot"] = np.rint(minutes / SLOT_MIN).astype(int)
    df["off"] = (minutes - df["slot"] * SLOT_MIN).abs()
    df = df.sort_values(["site", "day", "slot", "off"]).drop_duplicates(["site", "day", "slot"])
    df["rate"] = df["occupied"] / df["capacity"]
    df["t_h"] = minutes.loc[df.index] / 60.0
    return df.drop(columns="off").reset_index(drop=True)


def _site_slots(train: pd.DataFrame) -> np.ndarray:
    """Slots of the day on a site's grid: those holding a reading on >= SLOT_PRESENCE of days."""
    n_days = train["day"].nunique()
    share = train.groupby("slot")["day"].nunique() / max(n_days, 1)
    kept = share[share >= SLOT_PRESENCE].index.to_numpy()
    return np.arange(kept.min(), kept.max() + 1) if len(kept) else np.array([], dtype=int)


def origin_pairs(
    site_df: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp | None, horizons: Sequence[int]
) -> pd.DataFrame:
    """(origin, target) pairs: origin a reading on the hour in [start, end), target the reading
    h hours later the same day, and the reading one week before the target (may be NaN)."""
    by_key = site_df.set_index(["day", "slot"])
    per_hour = 60 // SLOT_MIN
    origins = site_df[(site_df["slot"] % per_hour == 0) & (site_df["day"] >= start)]
    if end is not None:
        origins = origins[origins["day"] < end]
    out = []
    for h in horizons:
        tgt_slot = origins["slot"].to_numpy() + h * per_hour
        key = pd.MultiIndex.from_arrays([origins["day"].to_numpy(), tgt_slot])
        tgt = by_key.reindex(key)
        week = by_key.reindex(
            pd.MultiIndex.from_arrays([origins["day"].to_numpy() - pd.Timedelta(days=7), tgt_slot])
        )
        frame = pd.DataFrame(
            {
                "horizon_h": h,
                "origin": origins["time"].to_numpy(),
                "day": origins["day"].to_numpy(),
                "origin_slot": origins["slot"].to_numpy(),
                "target_slot": tgt_slot,
                "t0_h": origins["t_h"].to_numpy(),
                "n0": origins["occupied"].to_numpy(),
                "capacity": origins["capacity"].to_numpy(),
                "target": tgt["time"].to_numpy(),
                "t1_h": tgt["t_h"].to_numpy(),
                "actual": tgt["rate"].to_numpy(),
                "week_before": week["rate"].to_numpy(),
            }
        )
        out.append(frame[frame["actual"].notna()])
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


# -- the twin -----------------------------------------------------------------------------------
def _block_mass(fit: SiteFit, kinds: np.ndarray, lo: np.ndarray, hi: np.ndarray, at: np.ndarray):
    """Σ_j λ_j(kind) ∫_{s in block j, lo <= s < hi} S(at − s) ds, elementwise over origins:
    the expected number of cars that arrived in [lo, hi) and are still parked at ``at``."""
    edges = np.asarray(fit.blocks.edges)
    a = np.maximum(edges[:-1][None, :], lo[:, None])
    b = np.maximum(a, np.minimum(edges[1:][None, :], hi[:, None]))
    mass = fit.law.G(at[:, None] - a) - fit.law.G(at[:, None] - b)
    lam = fit.rate_table()[kinds] if len(kinds) else np.zeros((0, 1))
    return np.sum(mass * lam, axis=1)


def twin_forecast(
    fit: SiteFit,
    pairs: pd.DataFrame,
    replications: int,
    rng: np.random.Generator,
    cv: float | None = None,
    weight: float = 1.0,
    drift_cv: float | np.ndarray = 0.0,
    recent: str | None = None,
) -> pd.DataFrame:
    """The twin's forecast (median and band quantiles, as occupancy rates) for every pair; see
    the module doc for the model. ``cv``: the day factor's CV (default: the calibration's);
    ``weight``: how much the count at the origin counts in the day factor's update (1: the full
    gamma-Poisson update; 0: none); ``drift_cv`` (one value, or one per pair): CV of a gamma
    factor (mean 1) on each of the two flows after the origin (cars leaving, cars arriving),
    drawn per replication: the demand and stays of the next hours differ from the fitted ones
    more than Poisson noise.
    ``recent`` (``"week"``, ``"weekday"``, ``"flow"`` or ``"flow2"``): the day factor's prior
    mean is a recent demand level (column ``recent_level`` of ``pairs``), not 1: observed ÷
    fitted counts of the 7 days before the origin's day or of the same weekday a week before;
    or ("flow", "flow2") the newcomer factor the same weekday's counts implied over the same
    hours 1 (or 1–2) weeks before (:func:`implied_level`). The twin so follows a level that
    drifts over weeks (e.g. Christmas shopping) or differs between weekdays, and between hours
    of a weekday, that the fitted Mon–Fri profile shares."""
    kinds = day_kind(pd.Series(pd.to_datetime(pairs["day"].to_numpy())))
    t0 = pairs["t0_h"].to_numpy(float)
    t1 = pairs["t1_h"].to_numpy(float)
    cap = pairs["capacity"].to_numpy(float)
    n0 = np.minimum(pairs["n0"].to_numpy(float), cap).astype(np.int64)
    start = np.full_like(t0, fit.blocks.edges[0])
    m0 = _block_mass(fit, kinds, start, t0, t0)  # cars expected parked at the origin
    kept = _block_mass(fit, kinds, start, t0, t1)  # of those, expected still there at target
    p_stay = np.where(m0 > 1e-9, np.clip(kept / np.maximum(m0, 1e-12), 0.0, 1.0), 0.0)
    m_new = _block_mass(fit, kinds, t0, t1, t1)  # newcomers expected at the target
    cv = fit.day_factor_cv if cv is None else cv
    n = len(pairs)
    level = pairs["recent_level"].to_numpy(float) if recent else np.ones(n)
    if cv is not None and math.isfinite(cv) and cv > 1e-6:
        alpha = 1.0 / cv**2
        censored = n0 >= FULL_SHARE * cap
        shape = alpha + weight * np.where(censored, 0.0, n0)
        rate = alpha / level + weight * np.where(censored, 0.0, m0)
        f = rng.gamma(shape[:, None], 1.0 / rate[:, None], size=(n, replications))
    else:
        f = np.repeat(level[:, None], replications, axis=1)
    stay = rng.binomial(n0[:, None], p_stay[:, None], size=(n, replications))
    new = rng.poisson(f * m_new[:, None])
    drift = np.broadcast_to(np.asarray(drift_cv, dtype=float), (n,))
    if (drift > 0).any():
        k = np.where(drift > 0, 1.0 / np.maximum(drift, 1e-9) ** 2, np.inf)[:, None]
        k = np.minimum(k, 1e12)  # cv 0: a factor of 1 to within 1e-6
        leaving = (n0[:, None] - stay) * rng.gamma(k, 1.0 / k, size=(n, replications))
        new = new * rng.gamma(k, 1.0 / k, size=(n, replications))
        stay = np.clip(n0[:, None] - leaving, 0.0, None)
    y = np.clip(stay + new, 0.0, cap[:, None]) / cap[:, None]
    qs = np.quantile(y, list(BAND_Q.values()), axis=1, method="weibull")
    out = pd.DataFrame({name: qs[k] for k, name in enumerate(BAND_Q)})
    out["forecast"] = out["p50"]
    return out


#: Weights of the origin's count in the day factor's update, tried per site (see _tune).
WEIGHTS = (0.0, 0.25, 0.5, 1.0)
#: Prior means of the day factor tried per site: 1, the last 7 days' level, the same weekday's
#: level a week before (see twin_forecast's ``recent``).
LEVELS = (None, "week", "weekday", "flow", "flow2")
#: Levels implied by the same weekday's counts over the forecast's window of hours, this many
#: weeks before (see implied_level).
WINDOW_LEVELS = {"flow": 1, "flow2": 2}
#: The implied newcomer factor is kept within [MIN_LEVEL, MAX_LEVEL] (a window with few
#: expected newcomers gives a noisy ratio; a prior mean of 0 would rule newcomers out).
MIN_LEVEL, MAX_LEVEL = 0.05, 3.0
#: The last days of the training part on which a site's twin is tuned (see _setup).
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

    def drift_for(self, pairs: pd.DataFrame) -> np.ndarray:
        return pairs["horizon_h"].map(self.drift_cv).fillna(0.0).to_numpy(float)


def _with_recent_level(
    fit: SiteFit, pairs: pd.DataFrame, series: pd.DataFrame, mode: str = "week"
) -> pd.DataFrame:
    """``pairs`` with ``recent_level``: Σ observed ÷ Σ fitted counts over the site's readings
    of the 7 days before each pair's day (``mode`` "week") or of the same weekday a week
    before ("weekday"); 1 when there are none. Only the past is used."""
    pred = fit.predict(series["t_h"].to_numpy(), day_kind(series["time"]))
    daily = (
        pd.DataFrame({"day": series["day"], "obs": series["occupied"], "pred": pred})
        .groupby("day")[["obs", "pred"]]
        .sum()
        .reindex(pd.date_range(series["day"].min(), series["day"].max(), freq="D"), fill_value=0)
    )
    out = pairs.copy()
    if mode in WINDOW_LEVELS:
        out["recent_level"] = implied_level(fit, series, pairs, WINDOW_LEVELS[mode])
        return out
    roll = daily.rolling(7, min_periods=1).sum().shift(1) if mode == "week" else daily.shift(7)
    level = (roll["obs"] / roll["pred"]).where(roll["pred"] > 0)
    out["recent_level"] = (
        level.reindex(pd.to_datetime(pairs["day"].to_numpy())).fillna(1.0).to_numpy()
    )
    return out


def flow_pieces(fit: SiteFit, pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: the share of the cars parked at the origin the model expects still there at
    the target (p_stay), and the newcomers it expects there (m_new, cars)."""
    kinds = day_kind(pd.Series(pd.to_datetime(pairs["day"].to_numpy())))
    t0 = pairs["t0_h"].to_numpy(float)
    t1 = pairs["t1_h"].to_numpy(float)
    start = np.full_like(t0, fit.blocks.edges[0])
    m0 = _block_mass(fit, kinds, start, t0, t0)
    kept = _block_mass(fit, kinds, start, t0, t1)
    p_stay = np.where(m0 > 1e-9, np.clip(kept / np.maximum(m0, 1e-12), 0.0, 1.0), 0.0)
    return p_stay, _block_mass(fit, kinds, t0, t1, t1)


def implied_level(fit: SiteFit, series: pd.DataFrame, pairs: pd.DataFrame, weeks: int):
    """Per pair: the newcomer factor that would have made the twin's mean forecast exact on
    the same weekday 1..``weeks`` weeks before, from the same origin slot to the same target
    slot: Σ (count at target − count at origin × p_stay) ÷ Σ m_new over those days (p_stay,
    m_new: :func:`flow_pieces`). It is the flow of the hours the forecast spans, as observed
    on that weekday recently, relative to the fit: what one Mon–Fri profile cannot hold
    (Friday afternoons are not Monday's) and what drifts over the weeks (Christmas shopping).
    Only readings of days before the pair's day are used; 1 where there are none."""
    by_key = series.drop_duplicates(["day", "slot"]).set_index(["day", "slot"])["occupied"]
    days = pd.to_datetime(pairs["day"].to_numpy())
    num = np.zeros(len(pairs))
    den = np.zeros(len(pairs))
    for w in range(1, weeks + 1):
        before = days - pd.Timedelta(days=7 * w)
        n0 = by_key.reindex(pd.MultiIndex.from_arrays([before, pairs["origin_slot"].to_numpy()]))
        n1 = by_key.reindex(pd.MultiIndex.from_arrays([before, pairs["target_slot"].to_numpy()]))
        shadow = pairs.assign(day=before)
        p_stay, m_new = flow_pieces(fit, shadow)
        n0, n1 = n0.to_numpy(float), n1.to_numpy(float)
        ok = np.isfinite(n0) & np.isfinite(n1) & (m_new > 1e-9)
        num[ok] += np.maximum(n1[ok] - n0[ok] * p_stay[ok], 0.0)
        den[ok] += m_new[ok]
    return np.where(den > 0, np.clip(num / np.maximum(den, 1e-9), MIN_LEVEL, MAX_LEVEL), 1.0)


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
                _with_recent_level(cand, train_pairs, series, recent) if recent else train_pairs
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
        _with_recent_level(setup.fit, train_pairs, series, setup.recent)
        if setup.recent
        else train_pairs
    )
    horizon = tuned["horizon_h"].to_numpy()
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
        in80 = (actual >= fc["p10"].to_numpy()) & (actual <= fc["p90"].to_numpy())
        in95 = (actual >= fc["p2_5"].to_numpy()) & (actual <= fc["p97_5"].to_numpy())
        for h in np.unique(horizon).tolist():
            at = horizon == h
            gap = abs(float(in80[at].mean()) - 0.80) + abs(float(in95[at].mean()) - 0.95)
            gaps.setdefault(int(h), []).append((gap, d))
    setup = replace(setup, drift_cv={h: min(g)[1] for h, g in gaps.items()})
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


def _setup(
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
            part = _with_recent_level(f, part, site_df, setup.recent)
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
) -> Backtest:
    """Calibrate on readings up to ``train_until`` (a date, inclusive), forecast from every
    hourly origin after it (the first ``test_days`` days only, if given) at ``horizons`` hours
    with the twin, seasonal naive and ETS, and score them (see the module doc). With ``out``,
    writes backtest.csv, forecasts.csv, families.csv, unusable.csv, and (``plots``) PNGs and
    backtest.html there. ``refit_days``: refit each site's profiles and stay law every so
    many test days on the readings before (None or 0: one fit at the cut; see
    :func:`rolling_twin`). Raises CalibrationInputError on inputs the caller can fix."""
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
        slots = _site_slots(train_df)
        test = origin_pairs(site_df, cut, end, horizons)
        test = test[test["week_before"].notna()] if len(test) else test
        if len(test) == 0:
            unusable[site] = "no test origin with a reading at the target and a week before"
            continue
        setup, rows = _setup(fit, train_df, site_df, cut, horizons, replications, seed + k)
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
