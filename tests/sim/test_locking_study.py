"""The locking study: shape of the ceilings, physical bounds, determinism, and the CLI.

Runs use the default latency parameters with short measurement windows and a coarse sweep, so
the whole file stays fast; the full sweep is what `parktwin locking` prints (docs/locking.md).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from typer.testing import CliRunner

from cli import DEFAULT_LOCKING_STUDY, app
from twin.scenario.loader import ScenarioError
from twin.scenario.locking import LockingStudySpec, load_locking_study, validate_locking_study
from twin.sim.locking_study import COLUMNS, ceilings, run_locking_study, simulate_point

runner = CliRunner()

#: Default latency model, short windows: 300 claims (at least 0.1 s) per point.
QUICK = {
    "offered_tps": [100, 400, 1000, 2500, 6000, 15000],
    "measure": {
        "warmup_s": 0.05,
        "window_claims": 300,
        "min_window_s": 0.1,
        "drain_s": 0.2,
        "points_past_ceiling": 1,
    },
}


#: A PostgreSQL machine's measured inputs (ms) shared by the prediction tests below.
_PG_INPUTS = {
    "cores": 2.0,
    "pg_rtt_ms": 0.10,
    "pg_client_cpu_ms": 0.03,
    "pg_server_cpu_ms": 0.02,
    "statement_ms": 0.05,
    "pg_statement_cpu_ms": 0.04,
    "commit_ms": 0.2,
}


def quick_spec(**changes) -> LockingStudySpec:
    data = {**QUICK, **changes}
    return validate_locking_study(data)


@pytest.fixture(scope="module")
def quick() -> pd.DataFrame:
    return run_locking_study(quick_spec()).table


@pytest.fixture(scope="module")
def quick_ceilings(quick: pd.DataFrame) -> pd.DataFrame:
    return ceilings(quick).set_index("strategy")


# -- the shape of the seed's table ---------------------------------------------------------
def test_ceilings_order_atomic_over_optimistic_over_pessimistic(quick_ceilings) -> None:
    c = quick_ceilings["ceiling_tps"]
    assert c["atomic"] > c["optimistic"] > c["pessimistic"] > 0
    # and each ended inside the sweep (an open-ended ceiling would make the order vacuous)
    assert not quick_ceilings["limited_by"].str.startswith("not reached").any()


def test_optimistic_conflicts_explode_past_its_ceiling(quick: pd.DataFrame, quick_ceilings):
    opt = quick[quick["strategy"] == "optimistic"].set_index("offered_tps")
    ceiling_at = quick_ceilings.loc["optimistic", "ceiling_offered_tps"]
    per_claim = opt["conflicts"] / opt["claims"]
    beyond = per_claim[per_claim.index > ceiling_at]
    assert per_claim.loc[100] < 0.2
    assert beyond.max() > 3 * per_claim.loc[ceiling_at]
    assert opt["failed"].loc[opt.index > ceiling_at].sum() > 0  # gave up after max_retries
    # the other strategies never conflict or fail: they wait instead
    others = quick[quick["strategy"] != "optimistic"]
    assert (others[["conflicts", "retries", "failed"]] == 0).all().all()


def test_queue_is_bounded_by_its_consumer(quick: pd.DataFrame, quick_ceilings) -> None:
    spec = quick_spec()
    per_request = spec.queue.consumer_ms / 1000
    queue = quick[quick["strategy"] == "queue"]
    # every answer costs the one consumer a service: it can never give more than 1/service
    assert (queue["achieved_tps"] <= 1.15 / per_request).all()
    # within its objectives each grant also costs a release: about 1/(2 x service)
    assert quick_ceilings.loc["queue", "ceiling_tps"] <= 1.1 / (2 * per_request)
    assert (queue["blocked"] > 0).all()  # claims wait in line for the consumer


def test_throughput_never_exceeds_the_load(quick: pd.DataFrame) -> None:
    # answers in the window can only come from claims that arrived (plus a handful in flight)
    slack = 5 / quick["window_s"]
    assert (quick["achieved_tps"] <= 1.03 * quick["arrived_tps"] + slack).all()
    assert (quick["achieved_tps"] <= 1.2 * quick["offered_tps"]).all()
    below = quick[quick["offered_tps"] <= 400]
    assert (below["achieved_tps"] >= 0.9 * below["arrived_tps"]).all()  # light load: keeps up


def test_latency_increases_with_load(quick: pd.DataFrame) -> None:
    for name, group in quick.groupby("strategy"):
        g = group.sort_values("offered_tps")
        p95 = g["p95_ms"].replace(np.inf, 1e9).to_numpy()
        # flat while uncontended (a few % of sampling noise), then up: never a real drop
        assert (p95[1:] >= 0.9 * p95[:-1]).all(), f"{name}: p95 fell with more load: {p95}"
        assert p95[-1] > 5 * p95[0], name
        rho = stats.spearmanr(g["offered_tps"], p95).statistic
        if name != "atomic":  # atomic is flat until Redis saturates: ranks there are noise
            assert rho >= 0.8, f"{name}: p95 does not rise with load (Spearman {rho:.2f})"


def test_common_random_numbers_and_stable_points(quick: pd.DataFrame) -> None:
    """Every strategy sees the same claims at a load; a point does not depend on the sweep."""
    arrivals = quick.groupby("offered_tps")["claims"].nunique()
    assert (arrivals == 1).all()
    alone = simulate_point(quick_spec(), "pessimistic", 400)
    row = quick[(quick["strategy"] == "pessimistic") & (quick["offered_tps"] == 400)].iloc[0]
    assert alone == {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}


def test_refusals_at_light_load_match_erlang_b() -> None:
    """Stays are scaled to give each row the offered occupancy: with no contention, refusals
    are the Erlang-B loss of a row with `capacity` units and occupancy x capacity erlangs."""
    spec = quick_spec(offered_tps=[100], measure={**QUICK["measure"], "window_claims": 3000})
    row = simulate_point(spec, "atomic", 100)
    w = spec.workload
    load, loss = w.occupancy * w.capacity, 1.0
    for servers in range(1, w.capacity + 1):  # Erlang B recursion
        loss = load * loss / (servers + load * loss)
    observed = row["refused"] / row["claims"]
    sd = math.sqrt(loss * (1 - loss) / row["claims"])
    assert abs(observed - loss) < 5 * sd, (observed, loss)
    # a refusal with a unit free needs two INCRs on a full row around a release: rare here
    assert row["refused_while_free"] <= 0.1 * row["refused"]


def test_atomic_refuses_with_units_free_when_redis_is_overloaded(quick: pd.DataFrame) -> None:
    """INCR-then-DECR: queued DECRs leave the counter over capacity, so claims are refused
    while units are free (the core counts it; the study reports it)."""
    atomic = quick[quick["strategy"] == "atomic"].set_index("offered_tps")
    assert atomic.loc[100, "refused_while_free"] == 0
    assert atomic.loc[15000, "refused_while_free"] > atomic.loc[15000, "granted"]
    assert (quick[quick["strategy"] != "atomic"]["refused_while_free"] == 0).all()


# -- determinism ---------------------------------------------------------------------------
def test_same_seed_same_table_other_seed_other_table() -> None:
    spec = quick_spec(offered_tps=[300, 2500], strategies=["optimistic", "queue"])
    first = run_locking_study(spec).table
    again = run_locking_study(spec).table
    pd.testing.assert_frame_equal(first, again)
    other = run_locking_study(spec.model_copy(update={"seed": 2})).table
    assert not first.equals(other)
    assert list(first.columns) == list(COLUMNS)


# -- the study file ------------------------------------------------------------------------
def test_shipped_study_is_the_schema_defaults() -> None:
    spec = load_locking_study(DEFAULT_LOCKING_STUDY)
    named = {"name": LockingStudySpec().name, "description": ""}
    assert spec.model_copy(update=named) == LockingStudySpec()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"workload": {"rowz": 3}}, "workload.rowz: unknown key (allowed: rows, hot_share"),
        ({"offered_tps": [100, 50]}, "offered_tps: offered rates must be strictly ascending"),
        ({"strategies": ["redis"]}, "strategies[0]: Input should be 'pessimistic'"),
        ({"measure": {"drain_s": 0.01}}, "drain_s must be longer than slo.p95_ms"),
        ({"workload": {"hot_share": 2}}, "workload.hot_share: Input should be less than or"),
    ],
)
def test_bad_study_files_are_readable_errors(data: dict, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        validate_locking_study(data, "x.yaml")
    assert any(message in p for p in info.value.problems), info.value.problems


# -- CLI -----------------------------------------------------------------------------------
def _study_file(folder: Path, **changes) -> Path:
    data = {**QUICK, "offered_tps": [200, 3000], "strategies": ["pessimistic", "atomic"]}
    data.update(changes)
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_cli_prints_tables_and_writes_outputs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["locking", str(_study_file(tmp_path)), "--out", str(out), "--format", "csv"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "claims by strategy and offered load" in result.output
    assert "ceilings (p95 ≤ 50 ms" in result.output
    table = pd.read_csv(out / "locking_study.csv")
    assert list(table.columns) == list(COLUMNS)
    assert set(table["strategy"]) == {"pessimistic", "atomic"}
    assert set(pd.read_csv(out / "locking_ceilings.csv")["strategy"]) == {"pessimistic", "atomic"}
    png = (out / "locking_study.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_cli_strategy_option_and_parquet(tmp_path: Path) -> None:
    out = tmp_path / "out"
    study = _study_file(tmp_path)
    result = runner.invoke(app, ["locking", str(study), "--strategy", "atomic", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert set(pd.read_parquet(out / "locking_study.parquet")["strategy"]) == {"atomic"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.yaml"], "missing.yaml: cannot read file"),
        (["--strategy", "redis"], "unknown strategy 'redis' (allowed: pessimistic"),
        (["--out", "FILE"], "exists and is not a folder"),
        (["BROKEN"], "workload.rowz: unknown key"),
    ],
)
def test_cli_user_errors_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str):
    broken = tmp_path / "broken.yaml"
    broken.write_text("workload: {rowz: 3}\n")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    study = _study_file(tmp_path)
    args = [{"FILE": str(a_file), "BROKEN": str(broken)}.get(a, a) for a in args]
    if args[0].startswith("--"):
        args = [str(study), *args]
    result = runner.invoke(app, ["locking", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_client_cpu_on_shared_cores_caps_the_ceiling_and_is_off_by_default() -> None:
    """Clients on a small machine (the live benchmark's case): each command costs client CPU
    on ``client.cores`` shared cores, so 1 ms per command on one core allows at most ~500
    claims/s (a claim and its release are two commands), whatever Redis could do."""
    shared = quick_spec(client={"cpu_ms": 1.0, "cores": 1})
    own = quick_spec(client={"cpu_ms": 1.0})
    assert not simulate_point(shared, "atomic", 1000)["tracks"]
    assert simulate_point(shared, "atomic", 300)["tracks"]
    assert simulate_point(own, "atomic", 1000)["tracks"]  # only a delay: p50 grows by ~1 ms
    assert (
        simulate_point(own, "atomic", 1000)["p50_ms"]
        > simulate_point(quick_spec(), "atomic", 1000)["p50_ms"] + 0.9
    )
    # the default (cpu_ms 0) leaves the shipped study's numbers as they were
    assert quick_spec().client.cpu_ms == 0 and quick_spec().client.cores is None


def test_shared_host_puts_client_and_server_cpu_on_the_same_cores() -> None:
    """Clients and Redis on one machine (``host.cores``): 0.5 ms of client CPU plus 0.5 ms of
    Redis CPU per command, a claim and its release two commands, on one core is at most ~500
    claims/s; with their own CPUs Redis alone (1 ms per claim) would carry ~1,000."""
    latencies = {"client": {"cpu_ms": 0.5}, "atomic": {"op_ms": 0.5}}
    shared = quick_spec(**latencies, host={"cores": 1})
    own = quick_spec(**latencies)
    assert not simulate_point(shared, "atomic", 700)["tracks"]
    assert simulate_point(shared, "atomic", 250)["tracks"]
    assert simulate_point(own, "atomic", 700)["tracks"]
    # the queue's single consumer needs one of the host's cores too
    slow = {"client": {"cpu_ms": 0.5}, "queue": {"consumer_ms": 0.5}}
    assert simulate_point(quick_spec(**slow), "queue", 700)["tracks"]
    assert not simulate_point(quick_spec(**slow, host={"cores": 1}), "queue", 700)["tracks"]
    # off by default: the shipped study's numbers are unchanged
    assert quick_spec().host.cores is None


def test_predicted_spec_puts_the_measured_cpu_on_the_shared_host() -> None:
    """The live benchmark's prediction: off, each party has its own CPU (as before); on, the
    machine's cores are shared and a statement costs the CPU a whole claim spends per statement
    on the client and in PostgreSQL, the round trip only what is left of ``SELECT 1``."""
    from twin.locking_live import predicted_spec

    inputs = {
        **_PG_INPUTS,
        "pg_claim_client_cpu_ms": 0.4,
        "pg_claim_server_cpu_ms": 0.32,
        "redis_rtt_ms": 0.08,
        "redis_ping_cpu_ms": 0.05,
        "redis_ping_server_ms": 0.02,
        "redis_client_cpu_ms": 0.09,
        "op_ms": 0.04,
        "queue_consumer_ms": 0.4,
    }
    base = quick_spec()
    own = predicted_spec(base, inputs, "pessimistic", 8)
    assert own.host.cores is None and own.database.statement_ms == 0.05
    assert own.network.rtt_ms == pytest.approx(0.07)
    shared = predicted_spec(base, inputs, "pessimistic", 8, shared_host=True)
    # the store's protocol: BEGIN on its own, a release is BEGIN, UPDATE, COMMIT
    assert shared.pessimistic.begin_round_trip and shared.pessimistic.release_statements == 2
    # and its lock-wait path; the live clients: each its own arrivals, one request at a time
    assert shared.pessimistic.relock_on_wake and own.pessimistic.relock_on_wake
    assert shared.client.processes == own.client.processes == 8
    per_claim = 2 + base.pessimistic.statements_in_lock  # BEGIN, the locking read, 3 more
    assert shared.host.cores == 2 and shared.host.wakeup_ms == 0  # not measured: none
    assert shared.client.cpu_ms == pytest.approx(0.4 / per_claim)
    assert shared.database.statement_ms == pytest.approx(0.32 / per_claim)
    assert shared.network.rtt_ms == pytest.approx(0.05)
    redis = predicted_spec(base, inputs, "atomic", 8, shared_host=True)
    assert redis.host.cores == 2 and redis.network.rtt_ms == pytest.approx(0.01)
    # measured whole: a claim with its release (8 round trips), an optimistic one (3), and
    # the run queue's wait per wake-up
    whole = {
        **inputs,
        "pg_release_client_cpu_ms": 0.24,
        "pg_release_server_cpu_ms": 0.16,
        "pg_opt_client_cpu_ms": 0.3,
        "pg_opt_server_cpu_ms": 0.27,
        "wakeup_ms": 0.2,
    }
    pess = predicted_spec(base, whole, "pessimistic", 8, shared_host=True)
    assert pess.client.cpu_ms == pytest.approx((0.4 + 0.24) / 8)
    assert pess.database.statement_ms == pytest.approx((0.32 + 0.16) / 8)
    assert pess.host.wakeup_ms == 0.2
    opt = predicted_spec(base, whole, "optimistic", 8, shared_host=True)
    assert opt.client.cpu_ms == pytest.approx(0.3 / 3)
    assert opt.database.statement_ms == pytest.approx(0.27 / 3)
    # paced cycles, as the live clients run them, come first; each strategy its own run queue
    paced = {
        **whole,
        "cycle_optimistic_client_cpu_ms": 0.6,
        "cycle_optimistic_server_cpu_ms": 0.45,
        "cycle_optimistic_wakeup_ms": 0.3,
        "cycle_atomic_client_cpu_ms": 0.2,
        "cycle_atomic_server_cpu_ms": 0.04,
    }
    opt = predicted_spec(base, paced, "optimistic", 8, shared_host=True)
    assert opt.client.cpu_ms == pytest.approx(0.2) and opt.host.wakeup_ms == 0.3
    assert opt.database.statement_ms == pytest.approx(0.15)
    atomic = predicted_spec(base, paced, "atomic", 8, shared_host=True)
    assert atomic.client.cpu_ms == pytest.approx(0.1) and atomic.atomic.op_ms == 0.02
    assert atomic.host.wakeup_ms == 0.2  # no atomic probe's own: the median one
    assert predicted_spec(base, whole, "atomic", 8, shared_host=True).atomic.op_ms == 0.04
    # the backend's sleeps in each commit's WAL flush, as the paced probe counted them
    sleeps = {**paced, "cycle_pessimistic_commit_wakeups": 2.96}
    assert (
        predicted_spec(base, sleeps, "pessimistic", 8, shared_host=True).database.commit_wakeups
        == 3
    )
    assert (
        predicted_spec(base, paced, "pessimistic", 8, shared_host=True).database.commit_wakeups == 0
    )


def test_commit_wakeups_wait_for_a_core_at_load_and_keep_the_light_load_flush() -> None:
    """A synchronous commit's backend sleeps in its WAL write and fdatasync and is woken again
    (measured live: 3 sleeps per commit, none without synchronous commit). On a shared host
    each wake-up waits on the run queue and for a core, the row still locked: the hot row's
    hold grows with the load, while at light load the flush keeps the ``commit_ms`` it was
    measured as. Without ``host.cores`` there is no run queue and nothing changes."""
    from twin.sim.locking_chain import row_chain
    from twin.sim.locking_measure import measure_window
    from twin.sim.locking_study import trace_point

    def hold(wakeups: int, rate: float) -> float:
        spec = quick_spec(
            client={"cpu_ms": 0.1, "app_ms": 0.0},
            database={"statement_ms": 0.1, "commit_ms": 0.3, "commit_wakeups": wakeups},
            network={"rtt_ms": 0.05},
            host={"cores": 2, "wakeup_ms": 0.02},
        )
        _, trace = trace_point(spec, rate)
        win = measure_window(spec, rate)
        return row_chain(trace, since=win.start, until=win.end)["hold_ms"]

    assert hold(3, 100) == pytest.approx(hold(0, 100), abs=0.03)
    assert hold(3, 1500) > 1.04 * hold(0, 1500)
    own_cpus = {"database": {"commit_wakeups": 3}, "client": {"cpu_ms": 0.1}}
    assert simulate_point(quick_spec(**own_cpus), "pessimistic", 1000) == simulate_point(
        quick_spec(client={"cpu_ms": 0.1}), "pessimistic", 1000
    )
    assert quick_spec().database.commit_wakeups == 0


def test_traced_point_reports_the_hosts_wait_per_cpu_burst() -> None:
    """``trace_point`` gives the model's counterpart of the live ``schedstat`` wait per
    wake-up: at light load a burst waits only its run-queue wait (``host.wakeup_ms``), near
    the cores' capacity it also queues for a core."""
    from twin.sim.locking_study import trace_point

    spec = quick_spec(
        client={"cpu_ms": 0.1, "app_ms": 0.0},
        database={"statement_ms": 0.1, "commit_ms": 0.3},
        network={"rtt_ms": 0.05},
        host={"cores": 2, "wakeup_ms": 0.02},
    )
    light = trace_point(spec, 100)[0]["host_wait_ms"]
    busy = trace_point(spec, 1500)[0]["host_wait_ms"]
    assert light == pytest.approx(0.02, rel=0.2)
    assert busy > 1.5 * light
    assert math.isnan(trace_point(quick_spec(), 100)[0]["host_wait_ms"])  # no shared host


def test_round_trips_per_answer_counts_the_trips_the_models_claims_make() -> None:
    """The live probe's CPU per answered claim is spread over the round trips its claims made,
    retries and refusals included (``round_trips_per_answer``). Counted on the model's own
    optimistic claims: every READ and CAS a claim in the window performed until its answer,
    plus one release per grant, is exactly the formula times the answered claims; and with
    conflicts it is more than the conflict-free three (the double count it removes)."""
    from collections import Counter

    from twin.sim.locking_measure import round_trips, round_trips_per_answer
    from twin.sim.locking_study import _Point

    spec = quick_spec(workload={"rows": 3, "hot_share": 0.6, "capacity": 6, "occupancy": 0.9})
    point = _Point(spec, "optimistic", 600.0)
    steps: Counter = Counter()
    at_answer: dict[int, int] = {}
    step, body = point._step, point._claim_body

    def counted(cid: int):
        steps[cid] += 1
        return (yield from step(cid))

    def claim_body(cid: int, row: int):
        result = yield from body(cid, row)
        at_answer[cid] = steps[cid]  # a claim's READs and CASes, before its release's UPDATE
        return result

    point._step, point._claim_body = counted, claim_body
    row = point.run()
    assert row["unfinished"] == 0 and row["conflicts"] > 5 and row["refused"] > 5
    win = point.win
    mine = [i for i, t in enumerate(point.arrival) if win.start <= t < win.end]
    trips = sum(at_answer[i] for i in mine) + row["granted"]
    answered = row["granted"] + row["refused"] + row["failed"]
    assert answered == len(mine)
    assert trips == pytest.approx(round_trips_per_answer(spec, "optimistic", row) * answered)
    assert round_trips_per_answer(spec, "optimistic", row) > round_trips(spec, "optimistic")
    # the other protocols, by hand: a refused row lock is BEGIN, the locking read, ROLLBACK
    counts = {"granted": 90, "refused": 10, "failed": 0, "conflicts": 0}
    locked = spec.model_copy(
        update={"pessimistic": spec.pessimistic.model_copy(update={"begin_round_trip": True})}
    )
    # a claim: BEGIN, the locking read, 3 more in the lock; its release: BEGIN, UPDATE
    assert round_trips(locked, "pessimistic") == 7
    assert round_trips_per_answer(locked, "pessimistic", counts) == pytest.approx(
        (7 * 90 + 3 * 10) / 100
    )
    assert round_trips_per_answer(spec, "atomic", counts) == 2.0
    assert round_trips_per_answer(spec, "queue", counts) == pytest.approx(1.9)
    assert math.isnan(round_trips_per_answer(spec, "queue", dict.fromkeys(counts, 0)))


def test_predicted_spec_spreads_the_live_cpu_over_the_round_trips_the_live_claims_made() -> None:
    """With the live probe's own round trips per answered claim (``live_<s>_trips``), the
    model's CPU per round trip is the live CPU over those; without them (older inputs), over
    the conflict-free count, as before. The model then adds its own retries once."""
    from twin.locking_live import model_cpu_ms, predicted_spec

    inputs = {
        **_PG_INPUTS,
        "redis_rtt_ms": 0.08,
        "redis_ping_cpu_ms": 0.05,
        "redis_client_cpu_ms": 0.09,
        "op_ms": 0.04,
        "queue_consumer_ms": 0.4,
        "live_optimistic_client_cpu_ms": 0.64,
        "live_optimistic_server_cpu_ms": 0.48,
        "live_queue_client_cpu_ms": 0.6,
        "live_queue_server_cpu_ms": 0.9,
    }
    base = quick_spec()
    before = predicted_spec(base, inputs, "optimistic", 8, shared_host=True)
    assert before.client.cpu_ms == pytest.approx(0.64 / 3)
    assert model_cpu_ms(before, "optimistic") == pytest.approx(1.12)
    made = {**inputs, "live_optimistic_trips": 3.2, "live_queue_trips": 1.95}
    after = predicted_spec(base, made, "optimistic", 8, shared_host=True)
    assert after.client.cpu_ms == pytest.approx(0.64 / 3.2)
    assert after.database.statement_ms == pytest.approx(0.48 / 3.2)
    assert model_cpu_ms(after, "optimistic") == pytest.approx(1.12 * 3 / 3.2)
    queue = predicted_spec(base, made, "queue", 8, shared_host=True)
    assert queue.client.cpu_ms == pytest.approx(0.6 / 1.95)
    # the store's optimistic protocol: its UPDATE locks the row (the study's default: not)
    assert after.optimistic.row_lock_on_write and not base.optimistic.row_lock_on_write
    # a trip count without the live CPU it belongs to is not used
    paced = {k: v for k, v in made.items() if not k.endswith("_cpu_ms") or "live" not in k}
    assert predicted_spec(base, paced, "queue", 8, shared_host=True).client.cpu_ms == 0.09


@pytest.mark.parametrize("locked", [False, True])
def test_row_lock_on_write_a_losing_cas_writes_nothing_and_flushes_nothing(locked: bool) -> None:
    """PostgreSQL's optimistic CAS is an UPDATE: it locks the row until it commits, a CAS
    behind it waits for that commit, and one that then finds a newer version than it read
    fails at once, having written nothing, so with no WAL flush. With the option (one row, so
    every write is behind the same lock) no two writes are ever between their lock and their
    commit at once, a losing CAS flushes nothing and every other write flushes once; without
    it (the default: the shipped study) every CAS flushes, the losing ones too."""
    from twin.sim.locking_study import _Point

    spec = quick_spec(
        workload={"rows": 1, "capacity": 400, "occupancy": 0.5},
        database={"commit_ms": 3.0},
        optimistic={"row_lock_on_write": locked},
    )
    point = _Point(spec, "optimistic", 250.0)
    flushes, flushing, most = [0], [0], [0]
    flush = point._flush

    def counted_flush():
        flushes[0] += 1
        flushing[0] += 1
        most[0] = max(most[0], flushing[0])
        yield from flush()
        flushing[0] -= 1

    point._flush = counted_flush
    point.run()
    stats = point.core.stats
    assert stats.conflicts > 20
    cas_grants = stats.granted - (stats.claims - len(point.arrival))  # not the prefilled units
    succeeded = cas_grants + stats.released  # writes that committed
    if locked:
        assert most[0] == 1  # one row: its writes commit one at a time
        # the losing CASes flushed nothing (at most one write is mid-flush at the end)
        assert flushes[0] - succeeded in (0, 1)
    else:  # the model as before: writes flush side by side, the losing CASes too
        assert most[0] > 1
        assert flushes[0] >= succeeded + stats.conflicts
