"""Detector thresholds from the model's own replications: the false-alarm budget, made exact.

A divergence detector's threshold is a trade: lower catches a fault sooner and raises more
false alarms. Rather than a hand-set number, each threshold here is the lowest that keeps the
detector's alarms on the *model's own replications* within a budget (alarms per day): the
replications are feeds with no fault, exactly as random as the model says a fault-free lot is.
Each replication is judged against the mean of the *other* replications (leave-one-out), as a
live feed is judged against replications it is not part of, so the noise in the prediction
itself is in the calibration too.

The detectors run here on the replications are the live ones, vectorized: the same
:func:`poisson_llr` increments and the same restart-and-clear rule for the arrivals CUSUM
(``twin.live.divergence``), the same rolling-window z-score for revenue. Everything is per
clock tick of the mirror (``tick_s``), so a threshold calibrated for 60-s ticks is used with
60-s ticks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Thresholds tried, one pass each (geometric steps of ~3 %).
CUSUM_GRID = np.geomspace(1.0, 30.0, 120)
BAND_GRID = np.linspace(1.5, 8.0, 131)


def poisson_llr(n, lam, ratio: float, phi: float):
    """Log-likelihood ratio of ``n`` arrivals at rate ``ratio`` × ``lam`` against ``lam``
    (Poisson), scaled down by the overdispersion ``phi`` (quasi-likelihood). Scalars or arrays."""
    return (n * math.log(ratio) - lam * (ratio - 1.0)) / phi


@dataclass
class Replicas:
    """Event times of each replication of the model, core seconds, inside [start_s, end_s)
    (the measured part, after the warm-up): what a fault-free feed could have been."""

    arrivals: list[np.ndarray]  # reached the entry barrier (the camera's plate read)
    entries: list[np.ndarray]  # passed it (gate entry)
    exits: list[np.ndarray]  # paid at the exit
    amounts: list[np.ndarray]  # what they paid (currency units)
    start_s: float
    end_s: float

    @property
    def replications(self) -> int:
        return len(self.arrivals)

    def per_tick(self, kind: str, tick_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(replications, ticks) sums per tick of ``kind`` (counts; revenue for "revenue"),
        and the tick starts."""
        first = math.ceil(self.start_s / tick_s) * tick_s
        n = int((self.end_s - first) // tick_s)
        out = np.zeros((self.replications, n))
        for r in range(self.replications):
            if kind == "revenue":
                times, weights = self.exits[r], self.amounts[r]
            else:
                times, weights = getattr(self, kind)[r], None
            k = ((times - first) // tick_s).astype(int)
            keep = (k >= 0) & (k < n)
            out[r] = np.bincount(
                k[keep], weights=None if weights is None else weights[keep], minlength=n
            )[:n]
        return out, first + np.arange(n) * tick_s


def leave_one_out(per_rep: np.ndarray, others: int | None = None) -> np.ndarray:
    """Each replication's row replaced by the mean of ``others`` other rows (the next ones,
    cyclically; default all the others): a replication judged against a prediction from as
    many replications as the live one, none of them itself."""
    r = per_rep.shape[0]
    if r < 2:
        return per_rep.copy()
    k = r - 1 if others is None else max(1, min(others, r - 1))
    out = np.zeros_like(per_rep, dtype=float)
    for j in range(1, k + 1):
        out += np.roll(per_rep, -j, axis=0)
    return out / k


def cusum_alarms(increments: np.ndarray, thresholds: np.ndarray, clear_ticks: float) -> np.ndarray:
    """Alerts raised by Page's CUSUM on each row of ``increments`` (replications, ticks), for
    each threshold: the statistic restarts at 0 after each signal, and a signal opens an
    alert only when none came in the last ``clear_ticks`` (the live rule). Returns the
    number of alerts per threshold (summed over replications)."""
    reps, ticks = increments.shape
    h = thresholds[:, None]
    s = np.zeros((len(thresholds), reps))
    last = np.full((len(thresholds), reps), -np.inf)
    alerts = np.zeros(len(thresholds), dtype=int)
    for t in range(ticks):
        s += increments[:, t]
        np.maximum(s, 0.0, out=s)
        signal = s > h
        if signal.any():
            alerts += (signal & (t - last > clear_ticks)).sum(axis=1)
            last[signal] = t
            s[signal] = 0.0
    return alerts


def band_alarms(z: np.ndarray, bands: np.ndarray, sustain_ticks: int) -> np.ndarray:
    """Alerts raised by a z-score series (replications, ticks) leaving ``±band`` and staying
    out for ``sustain_ticks`` ticks, for each band: one alert per excursion (per side)."""
    alerts = np.zeros(len(bands), dtype=int)
    for k, band in enumerate(bands):
        for out in (z > band, z < -band):
            # runs of True per row: starts where the value rises, ends where it falls
            padded = np.pad(out, ((0, 0), (1, 1))).astype(np.int8)
            edges = np.diff(padded, axis=1)
            starts = np.argwhere(edges == 1)
            ends = np.argwhere(edges == -1)
            lengths = ends[:, 1] - starts[:, 1]
            alerts[k] += int((lengths >= sustain_ticks).sum())
    return alerts


def lowest_within(thresholds: np.ndarray, alerts: np.ndarray, budget: float) -> float:
    """The lowest threshold whose alarm rate (and every higher one's) is within ``budget``."""
    over = np.flatnonzero(alerts > budget)
    if len(over) == 0:
        return float(thresholds[0])
    if over[-1] + 1 >= len(thresholds):
        return float(thresholds[-1])
    return float(thresholds[over[-1] + 1])


def cusum_threshold(
    counts: np.ndarray,
    expected: np.ndarray,
    ratio: float,
    phi: float,
    per_day: float,
    tick_s: float,
    clear_s: float,
) -> tuple[float, float]:
    """Threshold of the arrivals CUSUM for ``ratio`` keeping its alarms on the replications
    (``counts`` per tick, ``expected`` their leave-one-out means) at ``per_day`` or fewer;
    returns it and the alarm rate it gives there."""
    days = counts.size * tick_s / 86_400.0
    inc = poisson_llr(counts, np.maximum(expected, 1e-3 * tick_s / 60.0), ratio, phi)
    alerts = cusum_alarms(inc, CUSUM_GRID, clear_s / tick_s)
    h = lowest_within(CUSUM_GRID, alerts / days, per_day)
    return h, float(alerts[np.searchsorted(CUSUM_GRID, h)] / days)


def band_threshold(
    z: np.ndarray, per_day: float, tick_s: float, sustain_s: float
) -> tuple[float, float]:
    """Band (in sd) of a z-score detector sustained ``sustain_s`` that keeps its alarms on the
    replications at ``per_day`` or fewer; returns it and the alarm rate it gives there."""
    days = z.size * tick_s / 86_400.0
    sustain = max(1, round(sustain_s / tick_s))
    alerts = band_alarms(z, BAND_GRID, sustain)
    band = lowest_within(BAND_GRID, alerts / days, per_day)
    return band, float(alerts[np.searchsorted(BAND_GRID, band)] / days)


def revenue_z(paid, expected, m2, phi: float, floor: float):
    """z-score of revenue ``paid`` in a window against its ``expected`` value, with the
    compound Poisson variance ``m2`` (sum of squared payments expected) times the
    overdispersion ``phi``, floored at one payment's (``floor``: its mean square) so that a
    single payment in a quiet hour is not a surprise. Scalars or arrays."""
    return (paid - expected) / np.sqrt(phi * np.maximum(m2, floor))


def rolling(x: np.ndarray, window: int) -> np.ndarray:
    """Sum over the last ``window`` ticks (the tick itself included), along the last axis;
    the first ticks sum what there is."""
    c = np.cumsum(x, axis=-1)
    out = c.copy()
    out[..., window:] = c[..., window:] - c[..., :-window]
    return out


__all__ = [
    "BAND_GRID",
    "CUSUM_GRID",
    "Replicas",
    "band_alarms",
    "band_threshold",
    "cusum_alarms",
    "cusum_threshold",
    "leave_one_out",
    "lowest_within",
    "poisson_llr",
    "revenue_z",
    "rolling",
]
