"""The simulator against queueing theory it must reproduce.

A lot with ``c`` spots, Poisson arrivals and drivers who leave when it is full is the M/G/c/c
loss system: the stationary probability that an arrival finds it full is Erlang's B(c, a) for
offered load a = λ·E[S], whatever the dwell distribution (insensitivity). Little's law links the
time-average number of parked cars to the admitted arrival rate, and the arrival process is a
non-homogeneous Poisson process whose hourly counts have known means.

Every estimate comes from R independent replications (replication indexes 0..R-1, one seed) and
is checked with a 99 % t interval. Each check also asserts that its interval is narrow enough to
be a real test, and a negative control shows the same machinery rejects a wrong value. Seeds are
fixed, so every outcome is deterministic.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from twin.results import metrics
from twin.scenario.loader import load_scenario, validate_scenario
from twin.sim.model import BLOCKED, PARKED, simulate

SEED = 1
CONFIDENCE = 0.99
MEAN_DWELL_MIN = 60.0
MEAN_DWELL_S = MEAN_DWELL_MIN * 60.0
WARMUP_H = 5 * MEAN_DWELL_MIN / 60.0  # 5 mean dwells: the empty start is forgotten

DWELLS = {
    "exponential": {"type": "exponential", "mean": MEAN_DWELL_MIN, "unit": "min"},
    # cv 1.5: far from exponential, same mean; Erlang B must not notice
    "lognormal": {"type": "lognormal", "mean": MEAN_DWELL_MIN, "sd": 90.0, "unit": "min"},
}

#: (spots c, offered load a in Erlangs, horizon days per replication): light, medium and
#: heavy load. Horizons are tuned so every interval is narrow (see the width assertions).
ERLANG_CASES = [(5, 3.0, 60.0), (20, 18.0, 30.0), (60, 60.0, 20.0)]
ERLANG_REPLICATIONS = 20


# -- theory ------------------------------------------------------------------------------------
def erlang_b(c: int, a: float) -> float:
    """B(c, a) by the stable recursion B(k) = a·B(k-1) / (k + a·B(k-1)), B(0) = 1."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_b_poisson(c: int, a: float) -> float:
    """B(c, a) as the truncated Poisson distribution at c: pmf(c) / cdf(c)."""
    return float(stats.poisson.pmf(c, a) / stats.poisson.cdf(c, a))


def t_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Mean and half-width of the t interval of the mean."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * values.std(ddof=1) / math.sqrt(n)
    return float(values.mean()), float(half)


# -- scenarios ---------------------------------------------------------------------------------
def loss_scenario(
    c: int,
    rate_per_hour: float,
    dwell: dict,
    horizon_days: float,
    warmup_hours: float = WARMUP_H,
    **extra,
) -> dict:
    """One level of ``c`` REGULAR spots, one Poisson stream, blocked drivers leave."""
    data = {
        "name": f"mgcc-{c}",
        "horizon_days": horizon_days,
        "warmup_hours": warmup_hours,
        "seed": SEED,
        "facility": {"strategy": "nearest", "levels": [{"name": "G", "spots": {"REGULAR": c}}]},
        "demand": [{"name": "cars", "rate_per_hour": rate_per_hour, "dwell": dwell}],
        "behaviour": {"when_full": "leave"},
    }
    data.update(extra)
    return data


@cache
def replicate(c: int, a: float, dwell_name: str, horizon_days: float, reps: int) -> dict:
    """Per-replication figures of an M/G/c/c lot with offered load ``a`` (cached per module)."""
    rate = a / (MEAN_DWELL_MIN / 60.0)  # arrivals per hour: a = λ·E[S]
    scenario = validate_scenario(loss_scenario(c, rate, DWELLS[dwell_name], horizon_days))
    t0, t1 = scenario.warmup_s, scenario.horizon_s
    rows, path_occupied = [], []
    for r in range(reps):
        rec = simulate(scenario, replication=r, seed=SEED)
        rows.append(metrics(rec))
        # occupied.mean rebuilt from the drivers alone: without lanes a parked car holds its
        # spot over [arrival, arrival + dwell), cut to the window
        d, parked = rec.drivers, rec.outcome == PARKED
        start, end = d.arrival[parked], d.arrival[parked] + d.dwell[parked]
        overlap = np.clip(np.minimum(end, t1) - np.maximum(start, t0), 0.0, None)
        path_occupied.append(overlap.sum() / (t1 - t0))
    return {
        "blocked_pct": np.array([m["blocked_pct"] for m in rows]),
        "occupied": np.array([m["occupied.mean"] for m in rows]),
        "occupied_from_drivers": np.array(path_occupied),
        "admitted_rate_s": np.array([m["parked"] / (t1 - t0) for m in rows]),
        "arrivals": np.array([m["arrivals"] for m in rows]),
    }


# -- Erlang B ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("c", "a"), [(5, 3.0), (20, 18.0), (60, 60.0), (1, 0.5), (200, 180.0)])
def test_erlang_b_formulas_agree(c: int, a: float) -> None:
    assert erlang_b(c, a) == pytest.approx(erlang_b_poisson(c, a), rel=1e-9)


def test_erlang_b_known_values() -> None:
    # B(1, a) = a / (1 + a); B(2, 1) = 0.5 / 2.5 = 0.2 by hand.
    assert erlang_b(1, 0.5) == pytest.approx(1 / 3)
    assert erlang_b(2, 1.0) == pytest.approx(0.2)


@pytest.mark.parametrize("dwell_name", list(DWELLS))
@pytest.mark.parametrize(("c", "a", "days"), ERLANG_CASES)
def test_blocking_matches_erlang_b(c: int, a: float, days: float, dwell_name: str) -> None:
    runs = replicate(c, a, dwell_name, days, ERLANG_REPLICATIONS)
    mean, half = t_interval(runs["blocked_pct"])
    b = 100.0 * erlang_b(c, a)
    print(
        f"c={c} a={a} {dwell_name}: simulated {mean:.3f} ± {half:.3f} % "
        f"(99 % CI, R={ERLANG_REPLICATIONS}, {runs['arrivals'].mean():.0f} arrivals/rep), "
        f"Erlang B {b:.3f} %"
    )
    # narrow enough to mean something: within 10 % of B relative
    assert half < 0.10 * b, f"interval too wide to test anything: ±{half:.3f} for B={b:.3f}"
    assert mean - half <= b <= mean + half, (
        f"Erlang B {b:.3f} % outside simulated {mean:.3f} ± {half:.3f} %"
    )


@pytest.mark.parametrize("dwell_name", list(DWELLS))
@pytest.mark.parametrize(("c", "a", "days"), ERLANG_CASES)
def test_erlang_check_has_power(c: int, a: float, days: float, dwell_name: str) -> None:
    """Negative control: one spot more or fewer than simulated is rejected by the same interval."""
    runs = replicate(c, a, dwell_name, days, ERLANG_REPLICATIONS)
    mean, half = t_interval(runs["blocked_pct"])
    for wrong in (c - 1, c + 1):
        b = 100.0 * erlang_b(wrong, a)
        assert not mean - half <= b <= mean + half, (
            f"B({wrong}, {a}) = {b:.3f} % is inside {mean:.3f} ± {half:.3f} %: no power"
        )
    wrong_load = 100.0 * erlang_b(c, 1.1 * a)  # 10 % more traffic than simulated
    assert not mean - half <= wrong_load <= mean + half


# -- Little's law ------------------------------------------------------------------------------
@pytest.mark.parametrize("dwell_name", list(DWELLS))
@pytest.mark.parametrize(("c", "a", "days"), ERLANG_CASES)
def test_littles_law_with_blocking(c: int, a: float, days: float, dwell_name: str) -> None:
    """L = λ_admitted · E[S] replication by replication, and L = a·(1 − B) in the mean."""
    runs = replicate(c, a, dwell_name, days, ERLANG_REPLICATIONS)
    occupied = runs["occupied"]
    little = runs["admitted_rate_s"] * MEAN_DWELL_S
    # L and λ·E[S] move together across replications, so their difference is tight
    diff_mean, diff_half = t_interval(occupied - little)
    carried = a * (1.0 - erlang_b(c, a))
    l_mean, l_half = t_interval(occupied)
    print(
        f"c={c} a={a} {dwell_name}: L {l_mean:.4f} ± {l_half:.4f}, "
        f"L - λ_adm·E[S] = {diff_mean:+.4f} ± {diff_half:.4f}, a(1-B) = {carried:.4f}"
    )
    assert diff_half < 0.02 * carried
    assert abs(diff_mean) <= diff_half
    assert l_half < 0.02 * carried
    assert l_mean - l_half <= carried <= l_mean + l_half
    # power: 5 % more carried traffic than simulated is rejected
    assert not l_mean - l_half <= 1.05 * carried <= l_mean + l_half
    # the time average itself is exact bookkeeping of who was parked when
    np.testing.assert_allclose(occupied, runs["occupied_from_drivers"], rtol=1e-9)


@pytest.mark.parametrize("dwell_name", list(DWELLS))
def test_littles_law_without_blocking(dwell_name: str) -> None:
    """M/G/∞: with spots to spare, the mean number parked is the offered load λ·E[S]."""
    c, rate, reps = 200, 100.0, 10  # P(N ≥ 200) for Poisson(100) is ~1e-20
    scenario = validate_scenario(loss_scenario(c, rate, DWELLS[dwell_name], horizon_days=10))
    rows = [metrics(simulate(scenario, replication=r, seed=SEED)) for r in range(reps)]
    assert all(m["blocked_pct"] == 0.0 for m in rows)
    offered = rate / 3600.0 * MEAN_DWELL_S
    mean, half = t_interval(np.array([m["occupied.mean"] for m in rows]))
    print(f"M/G/inf {dwell_name}: L {mean:.3f} ± {half:.3f}, λ·E[S] = {offered:.3f}")
    assert half < 0.02 * offered
    assert mean - half <= offered <= mean + half
    # power: 3 % more or less demand is rejected
    assert not mean - half <= 1.03 * offered <= mean + half
    assert not mean - half <= 0.97 * offered <= mean + half


# -- non-homogeneous Poisson arrivals ----------------------------------------------------------
WEEKDAY = [0, 0, 0, 0, 0, 2, 10, 40, 60, 30, 15, 12, 20, 18, 12, 10, 15, 25, 12, 6, 4, 2, 1, 0]
WEEKEND = [0, 0, 0, 0, 0, 0, 0, 5, 10, 15, 20, 25, 25, 20, 15, 10, 8, 5, 3, 2, 1, 0, 0, 0]
PROFILE_START = datetime(2026, 1, 9, 12, 30)  # a Friday, mid-hour: slots follow the wall clock
PROFILE_DAYS = 3.75  # to Tuesday 06:30
MULTIPLIER = 1.5


def expected_hourly_counts(weekday: list[float], weekend: list[float]) -> np.ndarray:
    """Mean arrivals per (weekend?, hour of day) bin over the horizon, by walking the clock."""
    expected = np.zeros((2, 24))
    t = PROFILE_START
    end = PROFILE_START + timedelta(days=PROFILE_DAYS)
    while t < end:
        next_hour = min(t.replace(minute=0, second=0) + timedelta(hours=1), end)
        weekend_day = t.weekday() >= 5
        rates = weekend if weekend_day else weekday
        hours = (next_hour - t).total_seconds() / 3600.0
        expected[int(weekend_day), t.hour] += MULTIPLIER * rates[t.hour] * hours
        t = next_hour
    return expected


@cache
def profile_counts(reps: int = 12) -> np.ndarray:
    """Arrivals per (replication, weekend?, hour of day)."""
    scenario = validate_scenario(
        {
            "name": "nhpp",
            "start": PROFILE_START.isoformat(),
            "horizon_days": PROFILE_DAYS,
            "seed": SEED,
            "facility": {"levels": [{"name": "G", "spots": {"REGULAR": 500}}]},
            "demand": [
                {
                    "name": "cars",
                    "profile": {"weekday": WEEKDAY, "weekend": WEEKEND},
                    "multiplier": MULTIPLIER,
                    "dwell": {"type": "constant", "value": 10, "unit": "min"},
                }
            ],
            "behaviour": {"when_full": "leave"},
        }
    )
    counts = np.zeros((reps, 2, 24))
    for r in range(reps):
        arrival = simulate(scenario, replication=r, seed=SEED).drivers.arrival
        wall = [PROFILE_START + timedelta(seconds=float(s)) for s in arrival]
        for w in wall:
            counts[r, int(w.weekday() >= 5), w.hour] += 1
    return counts


def chi_square_p(counts: np.ndarray, expected_per_rep: np.ndarray) -> tuple[float, float, int]:
    """Goodness of fit of summed Poisson counts to their known means (no fitted parameters)."""
    observed = counts.sum(axis=0)
    expected = expected_per_rep * len(counts)
    used = expected > 0
    x2 = float((((observed - expected) ** 2)[used] / expected[used]).sum())
    df = int(used.sum())
    return x2, float(stats.chi2.sf(x2, df)), df


def test_nhpp_hourly_counts_match_profile() -> None:
    counts = profile_counts()
    expected = expected_hourly_counts(WEEKDAY, WEEKEND)
    # hours with zero rate (or outside the horizon) get no arrivals at all
    assert counts[:, expected == 0].sum() == 0
    x2, p, df = chi_square_p(counts, expected)
    total_obs, total_exp = counts.sum() / len(counts), expected.sum()
    print(f"NHPP: chi2 {x2:.1f} on {df} bins, p = {p:.3f}; {total_obs:.1f} vs {total_exp:.1f}/rep")
    assert p > 0.01
    # per bin: the replication mean's 99 % t interval holds the profile's mean, with a
    # Bonferroni correction over the bins
    busy = expected >= 20
    level = 1 - 0.01 / busy.sum()
    for k, h in zip(*np.nonzero(busy), strict=True):
        mean, half = t_interval(counts[:, k, h], confidence=level)
        assert mean - half <= expected[k, h] <= mean + half, (k, h, mean, half, expected[k, h])


def test_nhpp_check_has_power() -> None:
    """The same counts reject a profile shifted by one hour, and weekday rates on weekends."""
    counts = profile_counts()
    shifted = expected_hourly_counts(WEEKDAY[1:] + WEEKDAY[:1], WEEKEND[1:] + WEEKEND[:1])
    shifted[counts.sum(axis=0) == 0] = 0  # keep the statistic finite where nothing can arrive
    assert chi_square_p(counts, shifted)[1] < 1e-9
    no_weekend = expected_hourly_counts(WEEKDAY, WEEKDAY)
    assert chi_square_p(counts, no_weekend)[1] < 1e-9


# -- determinism and common random numbers -----------------------------------------------------
def record_arrays(rec) -> dict[str, bytes]:
    """Every array of a run record and its drivers, as raw bytes."""
    out = {
        name: value.tobytes() for name, value in vars(rec).items() if isinstance(value, np.ndarray)
    }
    for name, value in vars(rec.drivers).items():
        if isinstance(value, np.ndarray):
            out[f"drivers.{name}"] = value.tobytes()
    return out


def small_lot(**extra) -> dict:
    return loss_scenario(8, 10.0, DWELLS["lognormal"], horizon_days=3, warmup_hours=2, **extra)


def test_same_seed_and_replication_give_identical_records() -> None:
    scenario = validate_scenario(small_lot())
    first = simulate(scenario, replication=3, seed=11)
    second = simulate(scenario, replication=3, seed=11)
    a, b = record_arrays(first), record_arrays(second)
    assert len(a) >= 20
    assert a == b
    assert (first.outcome == BLOCKED).any() and (first.outcome == PARKED).any()


def test_other_replication_or_seed_draws_other_drivers() -> None:
    scenario = validate_scenario(small_lot())
    base = simulate(scenario, replication=0, seed=11).drivers
    for other in (
        simulate(scenario, replication=1, seed=11).drivers,
        simulate(scenario, replication=0, seed=12).drivers,
    ):
        n = min(len(base), len(other))
        assert not np.array_equal(base.arrival[:n], other.arrival[:n])
        assert not np.array_equal(base.dwell[:n], other.dwell[:n])


HOURLY_TARIFF = {"name": "hourly", "free_minutes": 30, "per_period": "2.00", "daily_max": "15"}
FLAT_ZERO = {"name": "free", "flat": 0}


@pytest.mark.parametrize(
    "change",
    [
        {"facility": {"strategy": "best_fit", "levels": [{"name": "G", "spots": {"REGULAR": 8}}]}},
        {"facility": {"strategy": "spread", "levels": [{"name": "G", "spots": {"REGULAR": 8}}]}},
        {"tariff": HOURLY_TARIFF},
        {"tariff": FLAT_ZERO},
    ],
    ids=["best_fit", "spread", "hourly-tariff", "flat-zero-tariff"],
)
def test_policy_changes_keep_the_drivers(change: dict) -> None:
    """Common random numbers: a policy change never alters who arrives or how long they stay."""
    base = simulate(validate_scenario(small_lot()), replication=2, seed=5)
    changed = simulate(validate_scenario(small_lot(**change)), replication=2, seed=5)
    assert np.array_equal(base.drivers.arrival, changed.drivers.arrival)
    assert np.array_equal(base.drivers.dwell, changed.drivers.dwell)


SURFACE_LOT = Path(__file__).resolve().parents[2] / "scenarios" / "surface_lot.yaml"


@pytest.mark.parametrize(
    "overrides",
    [
        {"facility.strategy": "best_fit"},
        {"facility.strategy": "spread"},
        {"tariff.per_period": "3.00", "tariff.daily_max": "20"},
    ],
    ids=["best_fit", "spread", "dearer-tariff"],
)
def test_policy_changes_keep_the_drivers_in_a_rich_scenario(overrides: dict) -> None:
    """The same on a lot with lanes, several streams, willingness to pay and patience."""
    base = simulate(load_scenario(SURFACE_LOT, {"horizon_days": 2}), replication=1)
    changed = simulate(load_scenario(SURFACE_LOT, {"horizon_days": 2, **overrides}), replication=1)
    for name, value in vars(base.drivers).items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, getattr(changed.drivers, name), err_msg=name)
    if "tariff.per_period" in overrides:  # the change did take effect
        assert not np.array_equal(base.amount_cents, changed.amount_cents, equal_nan=True)


def test_adding_a_stream_does_not_shift_another() -> None:
    one = small_lot()
    two = small_lot()
    two["demand"] = [
        *one["demand"],
        {
            "name": "vans",
            "vehicle_class": "LARGE",
            "rate_per_hour": 3,
            "dwell": DWELLS["exponential"],
        },
    ]
    two["facility"] = {"levels": [{"name": "G", "spots": {"REGULAR": 8, "LARGE": 2}}]}
    base = simulate(validate_scenario(one), replication=0, seed=9).drivers
    more = simulate(validate_scenario(two), replication=0, seed=9).drivers
    cars = more.stream == 0
    assert (~cars).any()
    assert np.array_equal(base.arrival, more.arrival[cars])
    assert np.array_equal(base.dwell, more.dwell[cars])
