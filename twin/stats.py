"""Output analysis: confidence intervals, paired differences and warm-up truncation (MSER-5).

Everything here works on plain arrays of per-replication figures or on one time series, so it is
independent of the simulator and easy to test against synthetic data. :mod:`twin.experiments`
runs the replications; :mod:`twin.compare` builds the paired comparison on top of this module.

Why these methods:

* Replications are independent and identically distributed, so the mean of a figure over them is
  summarised by a Student t interval (Law, *Simulation Modeling and Analysis*, ch. 9).
* Two scenarios run with the same seed see the same drivers (common random numbers), so their
  figures per replication are *paired*: the right interval is the paired t interval of the
  differences, whose variance is lower by twice the covariance the shared drivers create.
* A lot that starts empty is biased low until it fills; MSER-5 (White 1997) picks the number of
  initial observations to discard from the data themselves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "MserResult",
    "PairedDifference",
    "confidence_interval",
    "half_width",
    "mser",
    "paired_difference",
]


def confidence_interval(
    values: np.ndarray, confidence: float = 0.95
) -> tuple[float, float, float, float]:
    """Mean, sample sd and the t interval of the mean; NaN interval with a single value.

    NaNs are dropped (a figure can be undefined in one replication, e.g. a mean price when
    nobody paid). A zero sd gives the degenerate interval [mean, mean] rather than NaN, so
    identical replications read as "exactly this value".
    """
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    n = len(values)
    if n == 0:
        return (math.nan,) * 4
    mean = float(values.mean())
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    sd = float(values.std(ddof=1))
    if sd == 0.0:
        return mean, 0.0, mean, mean
    lo, hi = stats.t.interval(confidence, n - 1, loc=mean, scale=sd / math.sqrt(n))
    return mean, sd, float(lo), float(hi)


def describe(values: np.ndarray, confidence: float = 0.95) -> dict[str, float]:
    """One summary row: mean, sd, interval bounds, half-width and how many values counted."""
    values = np.asarray(values, dtype=float)
    mean, sd, lo, hi = confidence_interval(values, confidence)
    return {
        "mean": mean,
        "sd": sd,
        "ci_low": lo,
        "ci_high": hi,
        "half_width": (hi - lo) / 2,
        "n": int(np.count_nonzero(~np.isnan(values))),
    }


def half_width(values: np.ndarray, confidence: float = 0.95) -> float:
    """Half-width of the t interval of the mean (NaN with fewer than two values)."""
    _, _, lo, hi = confidence_interval(values, confidence)
    return (hi - lo) / 2


# -- paired comparisons (common random numbers) --------------------------------------------------
@dataclass(frozen=True)
class PairedDifference:
    """B − A for one figure over paired replications, and what pairing bought.

    ``sd`` is the sd of the per-replication differences; ``unpaired_sd`` is the sd the
    difference of one A and one B replication would have if they were run with independent
    random numbers, ``sqrt(sd_A² + sd_B²)``. ``variance_reduction`` is ``1 − sd²/unpaired_sd²``:
    the share of the variance of the difference that common random numbers removed (negative if
    pairing hurt). ``unpaired_low``/``unpaired_high`` are the Welch interval the same data would
    give if they were treated as independent samples.
    """

    n: int
    mean_a: float
    mean_b: float
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    unpaired_sd: float
    unpaired_low: float
    unpaired_high: float

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2

    @property
    def unpaired_half_width(self) -> float:
        return (self.unpaired_high - self.unpaired_low) / 2

    @property
    def variance_reduction(self) -> float:
        if not self.unpaired_sd > 0:
            return math.nan
        return 1.0 - (self.sd / self.unpaired_sd) ** 2

    @property
    def significant(self) -> bool:
        """Does the interval exclude zero? (False when it cannot be computed.)"""
        return bool(self.ci_low > 0 or self.ci_high < 0)


def paired_difference(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> PairedDifference:
    """Paired t interval of mean(B − A) over replications run with common random numbers.

    Pairs where either side is NaN are dropped. The interval is ``scipy.stats.ttest_rel``'s; when
    every difference is identical the interval collapses to that value (scipy would return NaN).
    The Welch interval of ``scipy.stats.ttest_ind`` is given alongside for contrast.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples must have the same length, got {len(a)} and {len(b)}")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    n = len(a)
    nan = math.nan
    if n == 0:
        return PairedDifference(0, nan, nan, nan, nan, nan, nan, nan, nan, nan)
    d = b - a
    mean = float(d.mean())
    if n < 2:
        return PairedDifference(
            n, float(a.mean()), float(b.mean()), mean, nan, nan, nan, nan, nan, nan
        )
    sd = float(d.std(ddof=1))
    # The interval ttest_rel(b, a).confidence_interval() gives, computed directly: scipy's test
    # warns about "catastrophic cancellation" when the differences are nearly all equal, which
    # under common random numbers is the good case, not a problem.
    if sd == 0.0:
        lo = hi = mean
    else:
        lo, hi = _t_interval(mean, sd / math.sqrt(n), n - 1, confidence)
    sd_a, sd_b = float(a.std(ddof=1)), float(b.std(ddof=1))
    unpaired_sd = math.hypot(sd_a, sd_b)
    if unpaired_sd == 0.0:
        ulo = uhi = mean
    else:  # Welch: what ttest_ind(b, a, equal_var=False) would give for independent samples
        va, vb = sd_a**2 / n, sd_b**2 / n
        df = (va + vb) ** 2 / ((va**2 + vb**2) / (n - 1))
        ulo, uhi = _t_interval(mean, math.sqrt(va + vb), df, confidence)
    return PairedDifference(
        n, float(a.mean()), float(b.mean()), mean, sd, lo, hi, unpaired_sd, ulo, uhi
    )


def _t_interval(mean: float, se: float, df: float, confidence: float) -> tuple[float, float]:
    lo, hi = stats.t.interval(confidence, df, loc=mean, scale=se)
    return float(lo), float(hi)


# -- warm-up truncation ----------------------------------------------------------------------
@dataclass(frozen=True)
class MserResult:
    """Where MSER cuts a series.

    ``truncate`` observations are discarded (``batches`` whole batches of ``batch_size``);
    ``statistic[d]`` is the MSER value for discarding ``d`` batches, over the candidates
    ``d = 0 .. max_batches``. ``at_boundary`` flags a minimum on the last allowed candidate: the
    series probably never settled inside its first half and is too short to warm up.
    """

    truncate: int
    batches: int
    batch_size: int
    statistic: np.ndarray
    max_batches: int

    @property
    def at_boundary(self) -> bool:
        return self.batches == self.max_batches and self.max_batches > 0


def mser(series: np.ndarray, batch_size: int = 5, max_fraction: float = 0.5) -> MserResult:
    """MSER-``batch_size`` truncation point of one output series (MSER-5 by default).

    The series is cut into ``k`` non-overlapping batches of ``batch_size`` observations (a
    partial batch at the end is dropped) with means ``Z_1..Z_k``. Discarding the first ``d``
    batches leaves ``k − d`` of them, and the MSER statistic

        MSER(d) = Σ_{j>d} (Z_j − Z̄(d))² / (k − d)²

    estimates the squared standard error of the truncated mean: bias from an initial transient
    inflates it, and discarding too much data inflates it through the smaller ``k − d``. The
    truncation point is the ``d`` that minimises it, searched only over the first
    ``max_fraction`` of the batches, because the statistic becomes erratic when only a few
    batches remain (Franklin & White's rule: a minimum in the second half means the run is too
    short). Ties go to the smallest ``d``, so a stationary series is not cut.

    References: K. P. White Jr. (1997), "An effective truncation heuristic for bias reduction
    in simulation output", *Simulation* 69(6):323–334; K. P. White Jr., M. J. Cobb and
    S. C. Spratt (2000), "A comparison of five steady-state truncation heuristics for
    simulation", *Proc. Winter Simulation Conference*, 755–760; W. W. Franklin and K. P. White
    Jr. (2008), "Stationarity tests and MSER-5: exploring the intuition behind
    mean-squared-error-reduction in warm-up period determination", *Proc. Winter Simulation
    Conference*, 541–546.
    """
    x = np.asarray(series, dtype=float)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not 0 < max_fraction < 1:
        raise ValueError(f"max_fraction must be in (0, 1), got {max_fraction}")
    if np.isnan(x).any():
        raise ValueError("the series contains NaN")
    k = len(x) // batch_size
    if k < 2:
        raise ValueError(
            f"MSER-{batch_size} needs at least {2 * batch_size} observations, got {len(x)}"
        )
    z = x[: k * batch_size].reshape(k, batch_size).mean(axis=1)
    # Sums over the tail z[d:], for every d at once. Centring first keeps the
    # sum-of-squares difference accurate for series with a large level and small noise.
    zc = z - z.mean()
    tail_sum = np.cumsum(zc[::-1])[::-1]
    tail_sq = np.cumsum((zc * zc)[::-1])[::-1]
    remaining = np.arange(k, 0, -1, dtype=float)  # k - d
    sse = np.clip(tail_sq - tail_sum**2 / remaining, 0.0, None)
    statistic = sse / remaining**2
    max_batches = min(math.floor(k * max_fraction), k - 2)
    candidates = statistic[: max_batches + 1]
    # argmin with a relative tolerance, so rounding noise on a flat series does not pick d > 0
    best = float(candidates.min())
    tol = 1e-12 * max(float(candidates.max()), 1e-300)
    d = int(np.flatnonzero(candidates <= best + tol)[0])
    return MserResult(
        truncate=d * batch_size,
        batches=d,
        batch_size=batch_size,
        statistic=candidates,
        max_batches=max_batches,
    )
