"""The hot row's chain from per-operation timestamps (twin.sim.locking_chain), and the
simulated study's trace of the same instants (trace_point) with FIFO and random waiter order."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin.scenario.locking import validate_locking_study
from twin.sim.locking_chain import row_chain, wakeups_from_round_trips
from twin.sim.locking_study import simulate_point, trace_point


def test_chain_of_a_hand_made_trace() -> None:
    # (row, kind, start, first, done, (asked,)); row 1 is another row and is left out
    trace = [
        (0, 0, 0.000, 0.001, 0.003, (0.0005,)),  # a: holds 1..3 ms
        (0, 1, 0.0015, 0.0035, 0.004, (0.002,)),  # b asked at 2 ms, waited, got it 0.5 ms later
        (0, 0, 0.0025, 0.0045, 0.006, (0.0022,)),  # c asked after b: FIFO so far
        (0, 0, 0.0100, 0.0101, 0.0102, (0.0100,)),  # d found the row free: no hand-off
        (1, 0, 0.0, 0.002, 0.009, (0.001,)),
    ]
    chain = row_chain(trace)
    assert chain["locks"] == 4
    assert chain["hold_ms"] == pytest.approx((2 + 0.5 + 1.5 + 0.1) / 4)
    assert chain["claim_hold_ms"] == pytest.approx((2 + 1.5 + 0.1) / 3)
    assert chain["release_hold_ms"] == pytest.approx(0.5)
    # hand-offs only where the next one had asked before the row was freed: a→b, b→c
    assert chain["handoff_ms"] == pytest.approx(0.5)
    assert chain["waited_share"] == pytest.approx(2 / 4)
    # b's grant had b and c waiting and went to the oldest (b); c's had c alone
    assert chain["contested"] == 1 and chain["oldest_share"] == 1 and chain["mean_rank"] == 0
    # the window keeps the grants inside it only
    assert row_chain(trace, since=0.004)["locks"] == 2
    # served the other way round: c (asked later) granted before b
    swapped = [
        trace[0],
        (0, 0, 0.0025, 0.0035, 0.004, (0.0022,)),
        (0, 1, 0.0015, 0.0045, 0.006, (0.002,)),
    ]
    assert row_chain(swapped)["mean_rank"] == 1


def test_trace_point_is_the_simulated_point_and_random_order_shows_in_the_chain() -> None:
    spec = validate_locking_study(
        {
            "name": "hot row",
            "workload": {"rows": 2, "hot_share": 0.9, "capacity": 50, "occupancy": 0.5},
            "network": {"rtt_ms": 1.0},
            "measure": {"warmup_s": 0.2, "window_claims": 400, "min_window_s": 0.5},
        }
    )
    row, trace = trace_point(spec, 300)
    # tracing changes nothing; it adds the host's wait per CPU burst (no shared host: none)
    assert math.isnan(row.pop("host_wait_ms"))
    assert row == simulate_point(spec, "pessimistic", 300)
    fifo = row_chain(trace, since=0.2)
    # the row is held from the lock's answer for two more round trips and a commit (1 ms)
    assert fifo["claim_hold_ms"] >= 2.0 and 0 < fifo["busy"] <= 1.05
    assert fifo["contested"] > 20 and fifo["mean_rank"] < 0.1  # FIFO: the oldest first
    spec_random = spec.model_copy(
        update={"pessimistic": spec.pessimistic.model_copy(update={"waiter_order": "random"})}
    )
    random_row, random_trace = trace_point(spec_random, 300)
    shuffled = row_chain(random_trace, since=0.2)
    assert shuffled["contested"] > 20 and 0.3 < shuffled["mean_rank"] < 0.7
    # same mean hold; the waits' tail grows when the row goes to any waiter
    assert shuffled["hold_ms"] == pytest.approx(fifo["hold_ms"], rel=0.2)
    assert random_row["p99_ms"] > row["p99_ms"] or math.isinf(random_row["p99_ms"])


def test_wakeups_from_round_trips_recovers_the_waits_mean_and_spread() -> None:
    rng = np.random.default_rng(7)
    n, fixed = 20_000, 0.2e-3
    for cv in (1.0, 3.0):
        shape = cv**-2  # two independent waits per round trip, mean 0.1 ms each
        waits = rng.standard_gamma(shape, (2, n)) / shape * 0.1e-3
        mean_ms, got_cv = wakeups_from_round_trips(fixed + waits.sum(axis=0))
        assert mean_ms == pytest.approx(0.1, rel=0.15)
        assert got_cv == pytest.approx(cv, rel=0.15)
    assert wakeups_from_round_trips([0.3e-3] * 50) == (0.0, 1.0)  # no waits at all


def test_wakeup_cv_keeps_the_mean_and_lengthens_the_tail() -> None:
    base = {
        "name": "shared host",
        "workload": {"rows": 4, "hot_share": 0.5, "capacity": 50, "occupancy": 0.5},
        "network": {"rtt_ms": 0.1},
        "client": {"cpu_ms": 0.05, "processes": 4},
        "host": {"cores": 2, "wakeup_ms": 0.5},
        "measure": {"warmup_s": 0.2, "window_claims": 400, "min_window_s": 0.5},
    }
    exponential = validate_locking_study(base)
    assert exponential.host.wakeup_cv == 1
    heavy = validate_locking_study({**base, "host": {**base["host"], "wakeup_cv": 4.0}})
    _, light_trace = trace_point(exponential, 100)
    _, heavy_trace = trace_point(heavy, 100)
    light, tail = row_chain(light_trace, since=0.2), row_chain(heavy_trace, since=0.2)
    # the same mean wait per burst: holds alike on average, but a few holders stall long
    assert tail["hold_ms"] == pytest.approx(light["hold_ms"], rel=0.35)
    assert tail["hold_p50_ms"] < light["hold_p50_ms"]
    assert tail["hold_p95_ms"] > light["hold_p95_ms"]
