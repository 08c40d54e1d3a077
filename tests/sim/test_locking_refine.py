"""Refining a strategy's ceiling by bisection, and the model terms the live benchmark needs:
the store's real round trips (BEGIN on its own, a release in a transaction) and the OS run
queue on a shared host (``host.wakeup_ms``)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from twin.scenario.loader import ScenarioError
from twin.scenario.locking import validate_locking_study
from twin.sim.locking_refine import bracket, refine_ceilings
from twin.sim.locking_study import run_locking_study, simulate_point

QUICK_MEASURE = {
    "warmup_s": 0.05,
    "window_claims": 300,
    "min_window_s": 0.1,
    "drain_s": 0.2,
    "points_past_ceiling": 1,
}


def spec_with(**changes):
    return validate_locking_study({"measure": QUICK_MEASURE, **changes})


def threshold_point(ceiling_for_seed):
    """A point that passes exactly below a seed-dependent rate: the bisection's contract."""
    calls: list[tuple[int, float]] = []

    def point(spec, strategy, offered):
        calls.append((spec.seed, offered))
        ok = offered <= ceiling_for_seed(spec.seed)
        return {
            "strategy": strategy,
            "offered_tps": offered,
            "achieved_tps": offered * 0.99,
            "tracks": ok,
            "within_slo": ok,
        }

    point.calls = calls
    return point


def coarse_table(point, spec, strategy="atomic"):
    return pd.DataFrame([point(spec, strategy, rate) for rate in spec.offered_tps])


def test_bisection_brackets_each_repeats_ceiling_within_the_tolerance() -> None:
    spec = spec_with(offered_tps=[100, 300, 1000, 3000], seed=5)
    truth = {5: 1234.0, 6: 1400.0, 7: 2950.0}
    point = threshold_point(truth.__getitem__)
    table = coarse_table(point, spec)
    assert bracket(table, "atomic") == (1000.0, 3000.0)
    refined = refine_ceilings(spec, table, point, repeats=3, rel_tol=0.05)
    rows = refined.repeats.set_index("seed")
    for seed, ceiling in truth.items():
        lo, hi = rows.loc[seed, ["passing_offered_tps", "failing_offered_tps"]]
        assert lo <= ceiling < hi and hi / lo <= 1.05 * 1.001, (seed, lo, hi)
        assert rows.loc[seed, "ceiling_tps"] == pytest.approx(0.99 * lo)
    summary = refined.summary.set_index("strategy").loc["atomic"]
    assert summary["repeats"] == 3
    assert summary["min_tps"] < summary["ceiling_tps"] < summary["max_tps"]
    assert summary["spread"] == pytest.approx(
        (summary["max_tps"] - summary["min_tps"]) / summary["ceiling_tps"]
    )
    # every point the bisection ran is in `points`, tagged with its repeat
    assert len(refined.points) == rows["points"].sum()
    assert set(refined.points["repeat"]) == {0, 1, 2}


def test_a_repeat_whose_own_points_contradict_the_bracket_moves_it() -> None:
    """The coarse sweep (seed 1) put the ceiling in 1,000-3,000; repeat 2 (seed 2) fails at
    1,000 and repeat 3 (seed 3) passes at 3,000: each goes down or up a step first."""
    spec = spec_with(offered_tps=[100, 300, 1000, 3000], seed=1)
    truth = {1: 2000.0, 2: 500.0, 3: 5000.0}
    point = threshold_point(truth.__getitem__)
    refined = refine_ceilings(spec, coarse_table(point, spec), point, repeats=3, rel_tol=0.1)
    rows = refined.repeats.set_index("seed")
    for seed, ceiling in truth.items():
        lo, hi = rows.loc[seed, ["passing_offered_tps", "failing_offered_tps"]]
        assert lo <= ceiling < hi and hi / lo <= 1.1 * 1.001, (seed, lo, hi)


def test_no_ceiling_in_the_sweep_is_not_refined() -> None:
    spec = spec_with(offered_tps=[100, 300], seed=1)
    point = threshold_point(lambda seed: math.inf)
    refined = refine_ceilings(spec, coarse_table(point, spec), point, repeats=2)
    assert refined.repeats.empty
    assert refined.summary.set_index("strategy").loc["atomic", "repeats"] == 0


def test_refining_the_simulated_study_is_deterministic_and_narrows_the_grid() -> None:
    spec = spec_with(offered_tps=[200, 500, 1000, 2000, 5000])
    result = run_locking_study(spec, strategies=["queue"])
    lo, hi = bracket(result.table, "queue")
    first = refine_ceilings(spec, result.table, simulate_point, repeats=2, rel_tol=0.1)
    again = refine_ceilings(spec, result.table, simulate_point, repeats=2, rel_tol=0.1)
    pd.testing.assert_frame_equal(first.repeats, again.repeats)
    for row in first.repeats.itertuples():
        assert row.failing_offered_tps / row.passing_offered_tps <= 1.1 * 1.001
    # below the coarse sweep's first failing rate (a repeat may find its own below the coarse
    # passing one); the consumer (0.5 ms a request, claim and release) bounds it near 1,000/s
    assert first.summary["ceiling_tps"].iloc[0] <= hi and lo == 1000
    assert 700 <= first.summary["ceiling_tps"].iloc[0] <= 1100


# -- the store's round trips ------------------------------------------------------------------
def test_begin_round_trip_adds_one_round_trip_to_every_claim() -> None:
    """Deterministic services, light load, many rows (no lock waits): a claim's latency is
    the sum of its round trips, and BEGIN on its own adds exactly one round trip and one
    statement."""
    base = {
        "service_cv": 0,
        "offered_tps": [50],
        "workload": {"rows": 50, "hot_share": 0.02, "occupancy": 0.5},
        "network": {"rtt_ms": 1.0},
        "database": {"statement_ms": 0.25, "commit_ms": 1.0},
    }
    plain = simulate_point(spec_with(**base), "pessimistic", 50)
    begin = simulate_point(
        spec_with(**base, pessimistic={"begin_round_trip": True}), "pessimistic", 50
    )
    assert begin["p50_ms"] - plain["p50_ms"] == pytest.approx(1.25, abs=0.01)


def test_a_release_in_a_transaction_holds_the_hot_row_longer() -> None:
    """UPDATE then COMMIT a round trip later keeps the row locked for that round trip: at a
    load the one-statement release carries, the hot row's lock saturates."""
    base = {
        "offered_tps": [300],
        "workload": {"rows": 4, "hot_share": 0.7},
        "network": {"rtt_ms": 1.0},
        "pessimistic": {"statements_in_lock": 1},
    }
    # the hot row: 210 claims/s holding it ~2.75 ms, 210 releases ~1.25 ms (+1.25 in a tx)
    one = simulate_point(spec_with(**base), "pessimistic", 300)
    two = simulate_point(
        spec_with(**{**base, "pessimistic": {"statements_in_lock": 1, "release_statements": 2}}),
        "pessimistic",
        300,
    )
    assert one["tracks"] and one["within_slo"]
    assert not two["within_slo"] and two["p95_ms"] > 3 * one["p95_ms"]


# -- the OS run queue on a shared host ----------------------------------------------------------
def test_wakeup_needs_a_shared_host() -> None:
    with pytest.raises(ScenarioError, match="wakeup_ms needs cores"):
        validate_locking_study({"host": {"wakeup_ms": 0.5}})
    assert validate_locking_study({}).host.wakeup_ms == 0  # off by default


def test_waiting_on_the_run_queue_lowers_the_row_lock_ceiling() -> None:
    """Each CPU burst waits ``wakeup_ms`` on average first; a lock holder waits with the row
    locked. At light load the claim's latency grows by about the bursts' waits; and a load
    the row lock carried without them no longer fits its objective."""
    host = {"cores": 2}
    base = {
        "offered_tps": [50, 700],
        "client": {"cpu_ms": 0.05},
        "network": {"rtt_ms": 0.1},
        "database": {"statement_ms": 0.05, "commit_ms": 0.2},
    }
    quiet = spec_with(**base, host=host)
    busy = spec_with(**base, host={**host, "wakeup_ms": 1.0})
    light_quiet = simulate_point(quiet, "pessimistic", 50)
    light_busy = simulate_point(busy, "pessimistic", 50)
    # a claim is 4 statements, each a client burst and a server burst: 8 waits of 1 ms mean
    assert 5 < light_busy["p50_ms"] - light_quiet["p50_ms"] < 11
    assert simulate_point(quiet, "pessimistic", 700)["within_slo"]
    assert not simulate_point(busy, "pessimistic", 700)["within_slo"]


# -- the live benchmark's client processes and PostgreSQL's lock-wait path ---------------------
def test_client_processes_serve_one_request_at_a_time() -> None:
    """An atomic claim and its release are two round trips (~2.1 ms): one client process can
    serve at most ~480 claims/s, eight or a shared pool many more; off by default."""
    base = {"offered_tps": [600], "service_cv": 0, "network": {"rtt_ms": 1.0}}
    assert spec_with(**base).client.processes is None
    one = simulate_point(spec_with(**base, client={"processes": 1}), "atomic", 600)
    eight = simulate_point(spec_with(**base, client={"processes": 8}), "atomic", 600)
    pool = simulate_point(spec_with(**base), "atomic", 600)
    assert not one["tracks"]
    assert eight["tracks"] and pool["tracks"]
    # the same claims either way (their own stream picks the process): only waits differ
    assert eight["claims"] == pool["claims"]
    assert eight["p95_ms"] >= pool["p95_ms"]


def test_a_woken_waiter_relocks_the_row_with_one_more_statement() -> None:
    """Most claims on one row: waiters woken by a commit spend one more statement's CPU
    (0.5 ms here) with the row held, so claims wait longer; off by default."""
    base = {
        "offered_tps": [250],
        "workload": {"rows": 2, "hot_share": 0.9},
        "network": {"rtt_ms": 0.5},
        "database": {"statement_ms": 0.5},
    }
    assert not spec_with(**base).pessimistic.relock_on_wake
    plain = simulate_point(spec_with(**base), "pessimistic", 250)
    relock = simulate_point(
        spec_with(**base, pessimistic={"relock_on_wake": True}), "pessimistic", 250
    )
    assert plain["blocked"] > 0
    assert relock["p50_ms"] > plain["p50_ms"] and relock["p95_ms"] > plain["p95_ms"]
