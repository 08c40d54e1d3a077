"""Special days and calendar periods from occupancy counts alone.

A count series says which days were not ordinary: a day whose curve lies well above or below
what the fitted profile of its weekday predicts (an event, a bank holiday, a closure), and
which stretches of weeks ran at another level (the weeks before Christmas). Both are judged
against chance, as ``calibrate tickets`` judges special days from arrivals:

- a day's *level* is the ratio of its readings' sum to the sum the fitted curve predicts for
  them (the day factor of :mod:`twin.calibrate.occupancy`), taken relative to its week's
  level (the median of the week's other days: a day in a busy week is not special for
  being busy like the rest of its week; :func:`week_levels`). Under the model that relative level
  varies from day to day by the day-to-day spread (robust: 1.4826·MAD over all days, so a
  few special days do not hide themselves) and at least by the Poisson noise the M_t/G/∞
  model itself gives a day's readings (:func:`ratio_noise`). A day is special when its
  two-sided p-value is below SPECIAL_ALPHA divided by the days tested (Bonferroni). The test
  is on the level of the day's curve, not its shape: an evening event that leaves the day's
  total near normal is not found from counts read 07:45–16:30. A run of event days filling
  most of a week lifts that week's median and shows as a period rather than as days.
- a *period* is a calendar week (Monday to Sunday). Whether the weeks' levels differ beyond
  the day-to-day spread is a one-way ANOVA (scipy.stats.f_oneway) of the ordinary days'
  ratios grouped by week; only when it rejects at PERIOD_ALPHA does any week get a level of
  its own, and then only the weeks whose mean ratio differs from the centre beyond chance
  (t-test with the within-week spread, Bonferroni over the weeks). A linear trend of the
  ratios over the dates (scipy.stats.linregress) is reported beside it ("drift").

Each special day or week gets a ``multiplier`` of the usual arrival rates: the k for which the
model's capacity-limited mean curve, with every arrival rate times k, has the same sum over
that day's (week's) readings as the readings themselves. A day at capacity is censored (its
demand was at least that): its multiplier is then a lower bound, and is flagged so.

This module reads a fit through its methods only (``predict``, ``rate_table``, ``blocks``,
``law``): :mod:`twin.calibrate.occupancy` imports it, not the other way round.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import optimize, stats

if TYPE_CHECKING:
    from twin.calibrate.occupancy import SiteFit

#: A day is special when its level's two-sided p-value is below this, Bonferroni-divided by
#: the number of days tested (the same as ``calibrate tickets``).
SPECIAL_ALPHA = 0.01
#: Weeks get their own level only when the ANOVA across weeks rejects at this level, and then
#: each week whose mean differs beyond this, Bonferroni-divided by the number of weeks.
PERIOD_ALPHA = 0.01
#: A day needs this many readings to have a level; a week this many such days.
MIN_DAY_READINGS = 6
MIN_WEEK_DAYS = 3
#: Multipliers are searched in (1/MAX_MULTIPLIER, MAX_MULTIPLIER).
MAX_MULTIPLIER = 20.0
#: A reading within this share of capacity counts as the lot being full (censored demand).
FULL_SHARE = 0.98
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SPECIAL_COLUMNS = [
    "date",
    "weekday",
    "readings",
    "ratio",
    "z",
    "p_value",
    "multiplier",
    "censored",
    "test",
]
PERIOD_COLUMNS = ["week", "first", "last", "days", "ratio", "t", "p_value", "multiplier"]


def ratio_noise(fit: SiteFit, t: np.ndarray, kind: int) -> float:
    """Var(Σ N_i) / (Σ m_i)² for one day's readings under the fitted M_t/G/∞ (no day factor):
    Cov(N(t1), N(t2)) = ∫_{s<t1} λ(s) S(t2−s) ds, t1 <= t2."""
    rates = fit.rate_table()[kind]
    t = np.sort(t)
    a = np.asarray(fit.blocks.edges[:-1])
    b = np.asarray(fit.blocks.edges[1:])
    t1 = np.minimum.outer(t, t)  # earlier time of each pair
    t2 = np.maximum.outer(t, t)
    upper = np.minimum(b[None, None, :], t1[..., None])
    cov = (
        np.where(
            a[None, None, :] < t1[..., None],
            fit.law.G(t2[..., None] - a[None, None, :]) - fit.law.G(t2[..., None] - upper),
            0.0,
        )
        @ rates
    )
    total = np.diag(cov).sum()
    return float(cov.sum() / total**2) if total > 0 else 0.0


def multiplier(fit: SiteFit, t_h: np.ndarray, kind: np.ndarray, observed: float) -> float:
    """The k whose rates × k give the readings' sum ``observed`` (capacity-limited mean)."""
    lo, hi = 1.0 / MAX_MULTIPLIER, MAX_MULTIPLIER

    def gap(k: float) -> float:
        return float(fit.predict(t_h, kind, scale=k).sum()) - observed

    if gap(hi) <= 0:
        return hi
    if gap(lo) >= 0:
        return lo
    return float(optimize.brentq(gap, lo, hi, xtol=1e-4))


def day_levels(
    fit: SiteFit, t_h: np.ndarray, kind: np.ndarray, frame: pd.DataFrame
) -> pd.DataFrame:
    """Per day of ``frame`` (``time``, ``occupied``) with MIN_DAY_READINGS readings or more:
    ``date, kind, readings, observed, expected, ratio, noise_sd, full`` (``t_h``, ``kind``:
    each reading's hour of day and day-kind code, as the fit takes them)."""
    pred = fit.predict(t_h, kind)
    days = frame["time"].dt.normalize().to_numpy()
    obs = frame["occupied"].to_numpy(dtype=float)
    rows = []
    for day in np.unique(days):
        sel = days == day
        if sel.sum() < MIN_DAY_READINGS or pred[sel].sum() <= 0:
            continue
        rows.append(
            {
                "date": pd.Timestamp(day),
                "kind": int(kind[sel][0]),
                "readings": int(sel.sum()),
                "observed": float(obs[sel].sum()),
                "expected": float(pred[sel].sum()),
                "ratio": float(obs[sel].sum() / pred[sel].sum()),
                "noise_sd": math.sqrt(ratio_noise(fit, t_h[sel], int(kind[sel][0]))),
                "full": bool((obs[sel] >= FULL_SHARE * fit.capacity).any()),
            }
        )
    return pd.DataFrame(
        rows,
        columns=["date", "kind", "readings", "observed", "expected", "ratio", "noise_sd", "full"],
    )


def _centre_spread(ratios: np.ndarray) -> tuple[float, float]:
    centre = float(np.median(ratios))
    return centre, 1.4826 * float(np.median(np.abs(ratios - centre)))


def _monday(dates: pd.Series) -> pd.Series:
    return dates - pd.to_timedelta(dates.dt.day_of_week, unit="D")


def week_levels(levels: pd.DataFrame) -> np.ndarray:
    """Each day's week level: the median ratio of the *other* days of its calendar week
    (robust to an event day or two in it; the day itself left out, or the median day of each
    week would sit exactly on its level and shrink the spread) when there are MIN_WEEK_DAYS of
    them, else the median of all days."""
    ratios = levels["ratio"].to_numpy()
    week = _monday(levels["date"]).to_numpy()
    out = np.full(len(ratios), float(np.median(ratios)))
    for i in range(len(ratios)):
        others = ratios[(week == week[i]) & (np.arange(len(ratios)) != i)]
        if len(others) >= MIN_WEEK_DAYS:
            out[i] = float(np.median(others))
    return out


def special_days(
    fit: SiteFit, levels: pd.DataFrame, t_h: np.ndarray, kind: np.ndarray, frame: pd.DataFrame
) -> pd.DataFrame:
    """The days of ``levels`` whose level lies beyond chance from their weekday's fitted curve
    at their week's level (see the module doc), with their multiplier against the curve;
    columns SPECIAL_COLUMNS, sorted by date."""
    if len(levels) < 5:
        return pd.DataFrame(columns=SPECIAL_COLUMNS)
    within = levels["ratio"].to_numpy() / week_levels(levels)
    centre, spread = _centre_spread(within)
    sd = np.maximum(spread, levels["noise_sd"].to_numpy())
    z = (within - centre) / np.where(sd > 0, sd, np.inf)
    p = 2 * stats.norm.sf(np.abs(z))
    days = frame["time"].dt.normalize().to_numpy()
    rows = []
    for i in np.flatnonzero(p < SPECIAL_ALPHA / len(levels)):
        row = levels.iloc[i]
        sel = days == row["date"].to_datetime64()
        rows.append(
            {
                "date": row["date"].date().isoformat(),
                "weekday": DAY_NAMES[row["date"].day_of_week],
                "readings": int(row["readings"]),
                "ratio": float(row["ratio"]),
                "z": float(z[i]),
                "p_value": float(p[i]),
                "multiplier": multiplier(fit, t_h[sel], kind[sel], float(row["observed"])),
                "censored": bool(row["full"]),
                "test": "level / its week's vs its weekday's fitted curve, two-sided z, "
                f"p < {SPECIAL_ALPHA:g}/{len(levels)} days",
            }
        )
    return pd.DataFrame(rows, columns=SPECIAL_COLUMNS)


def calendar_periods(
    fit: SiteFit,
    levels: pd.DataFrame,
    t_h: np.ndarray,
    kind: np.ndarray,
    frame: pd.DataFrame,
    special: pd.DataFrame,
) -> tuple[pd.DataFrame, dict]:
    """Weeks whose level differs beyond chance (see the module doc): (PERIOD_COLUMNS frame,
    the tests: ANOVA across weeks and the linear trend of the day levels)."""
    ordinary = levels[~levels["date"].dt.strftime("%Y-%m-%d").isin(set(special["date"]))]
    week = _monday(ordinary["date"])
    groups = {
        w: g["ratio"].to_numpy() for w, g in ordinary.groupby(week) if len(g) >= MIN_WEEK_DAYS
    }
    tests: dict = {"weeks": len(groups)}
    if len(ordinary) >= 5:
        x = (ordinary["date"] - ordinary["date"].min()).dt.days.to_numpy(dtype=float)
        trend = stats.linregress(x, ordinary["ratio"].to_numpy())
        tests["trend_per_week"] = float(trend.slope * 7)
        tests["trend_p_value"] = float(trend.pvalue)
    if len(groups) < 2:
        return pd.DataFrame(columns=PERIOD_COLUMNS), tests
    anova = stats.f_oneway(*groups.values())
    tests["anova_f"], tests["anova_p_value"] = float(anova.statistic), float(anova.pvalue)
    tests["anova_alpha"] = PERIOD_ALPHA
    if not anova.pvalue < PERIOD_ALPHA:
        return pd.DataFrame(columns=PERIOD_COLUMNS), tests
    centre, _ = _centre_spread(ordinary["ratio"].to_numpy())
    dof = sum(len(g) - 1 for g in groups.values())
    within = math.sqrt(sum(float(((g - g.mean()) ** 2).sum()) for g in groups.values()) / dof)
    days = frame["time"].dt.normalize()
    obs = frame["occupied"].to_numpy(dtype=float)
    rows = []
    for w, g in sorted(groups.items()):
        t_stat = (g.mean() - centre) / (within / math.sqrt(len(g)))
        p = 2 * stats.t.sf(abs(t_stat), dof)
        if not p < PERIOD_ALPHA / len(groups):
            continue
        dates = ordinary["date"][week == w]
        sel = days.isin(dates).to_numpy()
        rows.append(
            {
                "week": w.date().isoformat(),
                "first": dates.min().date().isoformat(),
                "last": dates.max().date().isoformat(),
                "days": len(g),
                "ratio": float(g.mean()),
                "t": float(t_stat),
                "p_value": float(p),
                "multiplier": multiplier(fit, t_h[sel], kind[sel], float(obs[sel].sum())),
            }
        )
    return pd.DataFrame(rows, columns=PERIOD_COLUMNS), tests


def period_dates(periods: pd.DataFrame, special: pd.DataFrame) -> dict[str, list[str]]:
    """Week → the dates its level applies to: Monday to Sunday, clipped to the week's first
    and last days with readings, special days left out (they have their own)."""
    skip = set(special["date"]) if len(special) else set()
    out = {}
    for row in periods.itertuples():
        span = pd.date_range(row.first, row.last, freq="D")
        out[row.week] = [d.date().isoformat() for d in span if d.date().isoformat() not in skip]
    return out
