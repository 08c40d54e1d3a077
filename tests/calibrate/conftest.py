"""Count series of a known lot for the calibration tests: an M_t/G/∞ process with a gamma
day factor, read on Birmingham's clock, with event days or weeks lifted on request."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

#: Arrivals per hour from 05:00 to 16:59.
RATES = np.array([0] * 5 + [10, 30, 80, 120, 100, 80, 70, 60, 50, 40, 30, 20] + [0] * 7, float)
STAY_MEAN, STAY_SD = 180.0, 100.0  # minutes, lognormal


def count_lot(
    days: int, seed: int, scale: float = 1.0, cap: int = 5000, lift=None, cv: float = 0.1
) -> pd.DataFrame:
    """An M_t/G/∞ lot (gamma day factor of CV ``cv``, mean 1) read every 30 min 07:45–16:15;
    ``lift(day_index)`` multiplies a day's arrivals (event days)."""
    rng = np.random.default_rng(seed)
    s2 = np.log1p((STAY_SD / STAY_MEAN) ** 2)
    mu = np.log(STAY_MEAN) - s2 / 2
    rows = []
    for k, day in enumerate(pd.date_range("2026-01-05", periods=days)):
        g = (rng.gamma(cv**-2, cv**2) if cv > 0 else 1.0) * scale * (lift(k) if lift else 1.0)
        n = rng.poisson(g * RATES)
        arr = np.concatenate([h + rng.random(c) for h, c in enumerate(n)]) * 60
        leave = arr + rng.lognormal(mu, np.sqrt(s2), len(arr))
        times = pd.date_range(
            day + pd.Timedelta("7h45min"), day + pd.Timedelta("16h15min"), freq="30min"
        )
        for t in times:
            m = (t - day).total_seconds() / 60
            rows.append((t, min(cap, int(((arr <= m) & (leave > m)).sum()))))
    return pd.DataFrame(rows, columns=["t", "n"]).assign(site="sim", cap=cap)


@pytest.fixture
def lot() -> Callable[..., pd.DataFrame]:
    """:func:`count_lot`, for tests to call with their own days, seed and lifts."""
    return count_lot
