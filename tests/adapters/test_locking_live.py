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
from twin.locking_live import LiveStudy, measure_inputs, model_cpu_ms, predicted_spec
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
    # a pessimistic cycle is eight round trips, an optimistic one three
    assert inputs["cycle_pessimistic_client_cpu_ms"] > inputs["cycle_optimistic_client_cpu_ms"]
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
