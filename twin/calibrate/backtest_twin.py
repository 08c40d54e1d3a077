"""The twin's forecast law for `parktwin backtest`, and the data grid it reads.

The slot grid (one reading per site, day and 30-minute slot), the (origin, target) pairs the
methods are scored on, the twin's count law started from the observed count at the origin
(see :mod:`twin.calibrate.backtest` for the model), and the prior demand levels it may start
from (recent observed ÷ fitted levels, the newcomer flow implied by the same weekday's counts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from twin.calibrate.occupancy import SiteFit, day_kind

#: Slot length of the daily grid (minutes); readings are matched to the nearest slot.
SLOT_MIN = 30
#: A slot of the day belongs to a site's grid when it holds a reading on this share of days.
SLOT_PRESENCE = 0.25
#: Band quantiles of the twin's replications (Weibull plotting positions, as in forecasts).
BAND_Q = {"p2_5": 0.025, "p10": 0.10, "p50": 0.50, "p90": 0.90, "p97_5": 0.975}
#: A count within this share of capacity is taken as censored by the lot being full: it says
#: demand was at least that high, so it does not update the day factor.
FULL_SHARE = 0.98
#: Levels implied by the same weekday's counts over the forecast's window of hours, this many
#: weeks before (see implied_level).
WINDOW_LEVELS = {"flow": 1, "flow2": 2}
#: The implied newcomer factor is kept within [MIN_LEVEL, MAX_LEVEL] (a window with few
#: expected newcomers gives a noisy ratio; a prior mean of 0 would rule newcomers out).
MIN_LEVEL, MAX_LEVEL = 0.05, 3.0


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


def site_slots(train: pd.DataFrame) -> np.ndarray:
    """Slots of the day on a site's grid: those holding a reading on >= SLOT_PRESENCE of days."""
    n_days = train["day"].nunique()
    share = train.groupby("slot")["day"].nunique() / max(n_days, 1)
    kept = share[share >= SLOT_PRESENCE].index.to_numpy()
    return np.arange(kept.min(), kept.max() + 1) if len(kept) else np.array([], dtype=int)


def origin_pairs(
    site_df: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp | None, horizons: Sequence[int]
) -> pd.DataFrame:
    """(origin, target) pairs: origin a reading on the hour in [start, end), target the reading
    h hours later the same day, the reading one week before the target (``week_before``, may
    be NaN) and the one a week before the origin (``week_before_origin``, may be NaN): with the
    count at the origin, today's level against last week's, known at the origin."""
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
        week_ago = origins["day"].to_numpy() - pd.Timedelta(days=7)
        week = by_key.reindex(pd.MultiIndex.from_arrays([week_ago, tgt_slot]))
        week0 = by_key.reindex(pd.MultiIndex.from_arrays([week_ago, origins["slot"].to_numpy()]))
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
                "week_before_origin": week0["rate"].to_numpy(),
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


def with_recent_level(
    fit: SiteFit, pairs: pd.DataFrame, series: pd.DataFrame, mode: str = "week"
) -> pd.DataFrame:
    """``pairs`` with ``recent_level``: Σ observed ÷ Σ fitted counts over the site's readings
    of the 7 days before each pair's day (``mode`` "week") or of the same weekday a week
    before ("weekday"); 1 when there are none. Only the past is used. ``mode`` "flow" /
    "flow2": :func:`implied_level`."""
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
