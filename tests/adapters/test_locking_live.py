"""The live locking benchmark's measurements on the real servers: the model's inputs, the CPU
and run-queue accounting per point, and a ceiling refined by bisection on a real store.

Loads are tiny (tens of claims per second): these check that the figures are measured and
mean what they say, not what they are on this machine (that is benchmarks/)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

pytest.importorskip("psycopg", reason="the `stores` extra is not installed")
pytest.importorskip("redis", reason="the `stores` extra is not installed")

from parktwin.adapters.stores.postgres_store import pg_available
from twin.locking_live import (
    LIVE_PROBE_LOAD,
    LiveStudy,
    live_cpu_probe,
    live_probe_rate,
    measure_inputs,
    model_cpu_ms,
    predicted_spec,
)
from twin.locking_probe import pg_workload_pids
from twin.scenario.locking import validate_locking_study
from twin.sim.locking_chain import row_chain
from twin.sim.locking_refine import refine_ceilings

PG = "postgresql://127.0.0.1:5432/test"
TINY = {
    "name": "tiny live study",
    "workload": {"rows": 3, "hot_share": 0.5, "capacity": 4, "occupancy": 0.8},
    "measure": {"warmup_s": 0.1, "window_claims": 10, "min_window_s": 0.5, "drain_s": 0.3},
}


@pytest.fixture(scope="module")
def postgres() -> str:
    missing = pg_available(PG)
    if missing:
        pytest.skip(missing)
    return PG


def test_inputs_include_paced_cycles_and_the_run_queue(postgres: str) -> None:
    inputs = measure_inputs({"postgres": postgres}, n=200)
    for strategy in ("pessimistic", "optimistic"):
        for part in ("client", "server"):
            assert inputs[f"cycle_{strategy}_{part}_cpu_ms"] > 0, (strategy, part)
        assert inputs[f"cycle_{strategy}_wakeup_ms"] >= 0
    # (not ordered by strategy: a paced cycle's CPU is mostly its wake-ups, not its round
    # trips; on this VM the optimistic cycle's client CPU came out higher in 2 of 4 pairs)
    assert math.isfinite(inputs["wakeup_ms"])
    spec = predicted_spec(validate_locking_study(TINY), inputs, "pessimistic", 2, shared_host=True)
    # the run queue's waits as the probe's own round trips suffered them, mean and spread
    assert inputs["pg_rt_wakeup_ms"] >= 0 and 0 < inputs["pg_rt_wakeup_cv"] <= 20
    assert spec.host.wakeup_ms == inputs["pg_rt_wakeup_ms"]
    assert spec.host.wakeup_cv == inputs["pg_rt_wakeup_cv"]
    whole = inputs["cycle_pessimistic_client_cpu_ms"] + inputs["cycle_pessimistic_server_cpu_ms"]
    assert model_cpu_ms(spec, "pessimistic") == pytest.approx(whole)
    # the backend's sleeps in a commit's WAL flush (beyond one per statement it waits for)
    assert spec.database.commit_wakeups == round(inputs["cycle_pessimistic_commit_wakeups"])


def test_each_live_point_records_its_cpu_and_a_refined_ceiling(postgres: str) -> None:
    spec = validate_locking_study({**TINY, "offered_tps": [20, 40]})
    with LiveStudy({"postgres": postgres}, clients=2) as live:
        row = live(spec, "pessimistic", 20)
        cpu = live.cpu[-1]
        assert cpu["strategy"] == "pessimistic" and cpu["offered_tps"] == 20
        # our clients and backends did the work of the claims they answered
        assert cpu["answered"] >= row["claims"] > 5
        assert cpu["clients_cpu_s"] > 0 and cpu["servers_cpu_s"] > 0
        assert cpu["host_busy_s"] >= 0.5 * (cpu["clients_cpu_s"] + cpu["servers_cpu_s"])
        assert cpu["wakeup_ms"] >= 0 and cpu["passes"] == (row["tracks"] and row["within_slo"])
        # seconds of the load: from the clients' common start to the last answer back, not
        # the 0.3 s before it (the clients stop at their last arrival before 0.9 s, the end
        # of the warm-up, window and drain)
        assert 0.6 < cpu["seconds"] < 0.9 + 0.25
        # a bracket from a pretend sweep (20 passed, 40 "failed"): bisected on the real store
        table = pd.DataFrame(
            [{**row, "offered_tps": 20.0}, {**row, "offered_tps": 40.0, "tracks": False}]
        )
        refined = refine_ceilings(spec, table, live, repeats=1, rel_tol=0.5, max_moves=1)
    assert len(refined.repeats) == 1
    assert len(live.cpu) == 1 + len(refined.points)


def test_traced_live_point_records_each_statement_of_the_row_lock(postgres: str) -> None:
    """With ``trace`` every claim and release comes back with its statements' answer times on
    the clock all processes share, in the store's protocol: a granted claim BEGIN, the locking
    read, UPDATE, INSERT, COMMIT; a refused one BEGIN, the read, ROLLBACK; a release BEGIN,
    the locking UPDATE, COMMIT."""
    spec = validate_locking_study({**TINY, "offered_tps": [40]})
    with LiveStudy({"postgres": postgres}, clients=2, trace=("pessimistic",)) as live:
        row = live(spec, "pessimistic", 40)
    (point,) = live.traces
    assert point["strategy"] == "pessimistic" and point["offered_tps"] == 40
    trace = point["trace"]
    claims = [r for r in trace if r[1] == 0]
    releases = [r for r in trace if r[1] == 1]
    assert len(claims) >= row["claims"] and releases
    for target, kind, start, first, done, answers in trace:
        assert 0 <= target < 3 and list(answers) == sorted(answers)
        assert len(answers) in ((5, 3) if kind == 0 else (3,))
        # first: just after the locking statement's answer; done: just after COMMIT's
        assert start <= answers[0] <= answers[1] <= first <= answers[2] <= answers[-1] <= done
    chain = row_chain(trace)
    assert chain["locks"] == sum(r[0] == 0 for r in trace) and chain["hold_ms"] > 0


def test_the_probe_and_the_live_points_count_the_same_postgres_processes(postgres: str) -> None:
    """Our backend and the server's own processes (WAL writer, checkpointer, ...), the
    postmaster too; not another session's backend, which is someone else's load."""
    import psycopg

    with psycopg.connect(postgres) as mine, psycopg.connect(postgres) as other:
        backend = int(mine.execute("SELECT pg_backend_pid()").fetchone()[0])
        stranger = int(other.execute("SELECT pg_backend_pid()").fetchone()[0])
        kinds = dict(mine.execute("SELECT pid, backend_type FROM pg_stat_activity").fetchall())
        pids = pg_workload_pids(mine, backend=backend)
    assert backend in pids and stranger not in pids
    walwriter = [pid for pid, kind in kinds.items() if kind == "walwriter"]
    assert walwriter and set(walwriter) <= set(pids)
    assert len(pids) == len(set(pids)) == sum(k != "client backend" for k in kinds.values()) + 2


def test_live_cpu_probe_runs_the_live_clients_at_a_share_of_the_cores(postgres: str) -> None:
    """The probe's rate is LIVE_PROBE_LOAD of the cores at the one-client cycle's CPU per
    claim; it measures the live clients' and servers' CPU per answered claim there, which
    the prediction then prefers to the one-client cycle."""
    spec = validate_locking_study({**TINY, "strategies": ["pessimistic"]})
    # a pretend cycle of 100 ms a claim: 0.6 of 2 cores is 12 TPS, rounded to 10
    cycle = {"cores": 2.0, "cycle_pessimistic_client_cpu_ms": 60.0}
    cycle["cycle_pessimistic_server_cpu_ms"] = 40.0
    assert live_probe_rate(cycle, "pessimistic") == 10.0 and LIVE_PROBE_LOAD == 0.6
    # traced, as the benchmark's sweep traces the row lock: the clients do the same work
    got = live_cpu_probe(
        {"postgres": postgres}, spec, "pessimistic", 2, cycle, trace=("pessimistic",)
    )
    assert got["live_pessimistic_tps"] == 10.0
    # a claim and its release: five and three round trips, each with CPU on both sides
    assert got["live_pessimistic_client_cpu_ms"] > 0.05
    assert got["live_pessimistic_server_cpu_ms"] > 0.05
    assert got["live_pessimistic_other_cpu_ms"] >= 0 and got["live_pessimistic_wakeup_ms"] >= 0
    # the round trips per answered claim the CPU is spread over: 8 granted, 3 refused
    assert 3.0 <= got["live_pessimistic_trips"] <= 8.0


def test_prediction_prefers_the_live_probe_and_gives_the_queue_its_clients_cpu() -> None:
    inputs = {
        "cores": 2.0,
        "pg_rtt_ms": 0.10,
        "pg_client_cpu_ms": 0.03,
        "pg_server_cpu_ms": 0.02,
        "statement_ms": 0.05,
        "commit_ms": 0.2,
        "cycle_pessimistic_client_cpu_ms": 0.56,
        "cycle_pessimistic_server_cpu_ms": 0.48,
        "redis_rtt_ms": 0.08,
        "redis_ping_cpu_ms": 0.05,
        "redis_client_cpu_ms": 0.09,
        "op_ms": 0.04,
        "queue_consumer_ms": 0.5,
    }
    base = validate_locking_study(TINY)
    before = predicted_spec(base, inputs, "pessimistic", 8, shared_host=True)
    assert model_cpu_ms(before, "pessimistic") == pytest.approx(1.04)
    live = {**inputs, "live_pessimistic_client_cpu_ms": 0.72}
    live["live_pessimistic_server_cpu_ms"] = 0.56
    after = predicted_spec(base, live, "pessimistic", 8, shared_host=True)
    assert model_cpu_ms(after, "pessimistic") == pytest.approx(1.28)
    assert after.client.cpu_ms == pytest.approx(0.72 / 8)
    # the queue: its clients' CPU per request from the live probe, the consumer's unchanged
    queue = predicted_spec(base, inputs, "queue", 8, shared_host=True)
    assert queue.client.cpu_ms == 0.09
    live_q = {**inputs, "live_queue_client_cpu_ms": 0.6, "live_queue_server_cpu_ms": 0.9}
    queue = predicted_spec(base, live_q, "queue", 8, shared_host=True)
    assert queue.client.cpu_ms == pytest.approx(0.3) and queue.queue.consumer_ms == 0.5
    # without the shared host each party has its own CPU, as before
    assert predicted_spec(base, live_q, "queue", 8).client.cpu_ms == 0.09
    # the queue's probe rate: at most 0.6 of its one consumer (two requests a claim)
    assert live_probe_rate(inputs, "queue") == 600.0


def test_paced_probe_counts_the_commits_sleeps_and_none_without_synchronous_commit(
    postgres: str,
) -> None:
    """The backend blocks once per statement it waits for; with synchronous commit it also
    sleeps in each commit's WAL write and fdatasync (3 times on the benchmark's VM), and
    without it (the flush left to the WAL writer) it does not."""
    from twin.locking_live import _cycle_probe

    url = postgres + ("&" if "?" in postgres else "?") + "options=-c%20synchronous_commit%3Doff"
    off = _cycle_probe("pessimistic", url, "parktwin_t_sleeps", n=100)
    on = _cycle_probe("pessimistic", postgres, "parktwin_t_sleeps", n=100)
    assert off["cycle_pessimistic_commit_wakeups"] < 0.5
    assert on["cycle_pessimistic_commit_wakeups"] >= off["cycle_pessimistic_commit_wakeups"]
