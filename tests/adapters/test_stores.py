"""Claim stores against the real PostgreSQL and Redis: the invariants under real concurrency.

Several client *processes* (each with its own connection, as production gate controllers
would have) claim and release the units of a small lot at once. Whatever the interleaving the
servers produce: no target ever has more holders than its capacity (a spot never two), the
store's count never goes negative and ends where it began, every claim resolves, and for Redis
the availability cache never disagrees with the counters. A client killed with SIGKILL inside
a pessimistic transaction costs nothing: the server rolls it back and hands on the row lock.

Each test gets its own PostgreSQL schema or Redis key prefix and drops it afterwards. Where a
server is absent the tests skip, saying which and why.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
import time
import uuid

import pytest
import store_clients

pytest.importorskip("psycopg", reason="the `stores` extra is not installed")
pytest.importorskip("redis", reason="the `stores` extra is not installed")

from parktwin.adapters.stores import STORE_OF, open_store, run_claim, run_release
from parktwin.adapters.stores.postgres_store import MIGRATIONS, pg_available
from parktwin.adapters.stores.redis_store import redis_available, serve_until
from twin.core.locking import Status

CAPS = {"L1/REGULAR": 3, "L1/EV": 1, "L2/REGULAR": 2}  # a small lot; L1/EV is a single spot
# Children come from a fork server that has imported the clients once: no inherited sockets
# or pool threads (as with fork), and no second of imports per child on a busy machine (spawn).
SPAWN = mp.get_context("forkserver")
SPAWN.set_forkserver_preload(["store_clients", "parktwin.adapters.stores.redis_store"])
_MISSING = {"postgres": pg_available(), "redis": redis_available()}


@pytest.fixture
def namespace(request):
    """A fresh schema (PostgreSQL) or key prefix (Redis), dropped after the test."""
    strategy = request.param if hasattr(request, "param") else request.getfixturevalue("strategy")
    server = STORE_OF[strategy]
    if _MISSING[server]:
        pytest.skip(_MISSING[server])
    ns = f"pt_test_{uuid.uuid4().hex[:10]}"
    store = open_store(strategy, namespace=ns)
    store.setup(CAPS)
    consumer = stop = None
    if strategy == "queue":
        stop = SPAWN.Event()
        consumer = SPAWN.Process(target=serve_until, args=(None, ns, stop), daemon=True)
        consumer.start()
    yield ns, store
    if consumer is not None:
        stop.set()
        consumer.join(10)
    store.drop()
    store.close()


@pytest.mark.parametrize("strategy", list(STORE_OF))
def test_each_store_grants_to_capacity_then_refuses_and_takes_units_back(strategy, namespace):
    _, store = namespace
    got = [run_claim(store, f"c{i}", "L2/REGULAR").status for i in range(3)]
    assert got == [Status.GRANTED, Status.GRANTED, Status.REFUSED]
    assert store.counts()["L2/REGULAR"] == 2
    assert run_release(store, "c0", "L2/REGULAR").status is Status.RELEASED
    assert store.counts()["L2/REGULAR"] == 1
    assert run_claim(store, "c3", "L2/REGULAR").status is Status.GRANTED
    if hasattr(store, "snapshot"):  # Redis: the cache shows the same, per type and per level
        _, per_target, per_level = store.snapshot()
        assert per_target == {"L1/REGULAR": 3, "L1/EV": 1, "L2/REGULAR": 0}
        assert per_level == {"L1": 4, "L2": 0}


@pytest.mark.parametrize("strategy", list(STORE_OF))
def test_invariants_hold_with_several_client_processes(strategy, namespace):
    ns, store = namespace
    workers, claims = 4, 30
    tally = SPAWN.Array("i", len(CAPS))
    peak = SPAWN.Array("i", len(CAPS))
    results = SPAWN.Queue()
    procs = [
        SPAWN.Process(
            target=store_clients.churn,
            args=(strategy, None, ns, CAPS, seed, claims, tally, peak, results),
        )
        for seed in range(workers)
    ]
    for p in procs:
        p.start()
    lowest, samples = 0, 0
    while any(p.is_alive() for p in procs):  # watch the store while the clients race
        if hasattr(store, "snapshot"):
            counts, per_target, per_level = store.snapshot()
            caps = {t: c for t, c in CAPS.items()}
            # the cache is rewritten with every counter change, never half-updated
            assert per_target == {t: max(0, caps[t] - counts[t]) for t in caps}
            assert sum(per_target.values()) == sum(per_level.values())
        else:
            counts = store.counts()
            if strategy != "atomic":
                assert all(counts[t] <= CAPS[t] for t in CAPS)
        lowest = min(lowest, *counts.values())
        samples += 1
        time.sleep(0.005)
    outcomes = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    assert [o[2] for o in outcomes] == [None] * workers  # no client raised
    total = {k: sum(o[1][k] for o in outcomes) for k in ("granted", "refused", "failed")}
    assert sum(total.values()) == workers * claims  # every claim resolved
    assert total["granted"] > 0 and samples > 3
    assert list(peak) <= list(CAPS.values()) and all(
        p <= c for p, c in zip(peak, CAPS.values(), strict=True)
    )  # never more holders than capacity (the spot never two)
    assert max(peak) >= 1 and peak[1] <= 1
    assert lowest >= 0
    assert store.counts() == dict.fromkeys(CAPS, 0)  # every unit came back
    if hasattr(store, "holder_counts"):
        assert store.holder_counts() == {}
    if strategy != "optimistic":
        assert total["failed"] == 0  # only optimistic gives up


def test_contention_really_happens_and_a_spot_never_has_two_holders(namespace_spot):
    """Control for the test above: with every client on the one spot, grants are serialised."""
    ns, _ = namespace_spot
    caps = {"L1/EV": 1}
    tally, peak, results = SPAWN.Array("i", 1), SPAWN.Array("i", 1), SPAWN.Queue()
    procs = [
        SPAWN.Process(
            target=store_clients.churn,
            args=("pessimistic", None, ns, caps, seed, 25, tally, peak, results, 5.0),
        )
        for seed in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    outcomes = [results.get(timeout=5) for _ in procs]
    assert [o[2] for o in outcomes] == [None] * 3
    assert sum(o[1]["refused"] for o in outcomes) > 0  # they did collide
    assert peak[0] == 1


@pytest.fixture
def namespace_spot():
    if _MISSING["postgres"]:
        pytest.skip(_MISSING["postgres"])
    ns = f"pt_test_{uuid.uuid4().hex[:10]}"
    store = open_store("pessimistic", namespace=ns)
    store.setup({"L1/EV": 1})
    yield ns, store
    store.drop()
    store.close()


@pytest.mark.parametrize("strategy", ["pessimistic"])
def test_a_client_killed_mid_transaction_releases_the_row_and_loses_no_unit(strategy, namespace):
    ns, store = namespace
    ready = SPAWN.Queue()
    child = SPAWN.Process(target=store_clients.hold_then_lock, args=(None, ns, "L2/REGULAR", ready))
    child.start()
    assert ready.get(timeout=30) == child.pid  # it holds one unit and the row lock, mid-tx
    answer: queue.Queue = queue.Queue()
    waiter = threading.Thread(
        target=lambda: answer.put(run_claim(store, "after", "L2/REGULAR").status), daemon=True
    )
    waiter.start()
    time.sleep(0.5)
    assert waiter.is_alive()  # really blocked behind the child's row lock
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert answer.get(timeout=10) is Status.GRANTED  # the server rolled the child back
    assert store.counts()["L2/REGULAR"] == 2  # the child's committed unit + ours: none lost
    assert store.holder_counts() == {"L2/REGULAR": 2}
    assert run_release(store, "kept", "L2/REGULAR").status is Status.RELEASED  # still releasable
    assert store.counts()["L2/REGULAR"] == 1


def test_migrations_are_applied_once_and_setup_is_idempotent():
    if _MISSING["postgres"]:
        pytest.skip(_MISSING["postgres"])
    ns = f"pt_test_{uuid.uuid4().hex[:10]}"
    store = open_store("optimistic", namespace=ns)
    try:
        assert store.migrate() == len(MIGRATIONS)
        assert store.migrate() == 0
        store.setup(CAPS)
        assert run_claim(store, "a", "L1/EV").status is Status.GRANTED
        store.setup(CAPS)  # a second process starting up changes nothing held
        assert store.counts()["L1/EV"] == 1
    finally:
        store.drop()
        store.close()


# -- parktwin locking --backend: the study's sweep on a real store -----------------------------
TINY_STUDY = """\
kind: locking_study
name: tiny live study
offered_tps: [40]
workload: {rows: 3, hot_share: 0.5, capacity: 4, occupancy: 0.8}
measure: {warmup_s: 0.1, window_claims: 10, min_window_s: 0.6, drain_s: 0.3}
"""


def test_cli_locking_backend_measures_a_real_store_and_writes_the_study_tables(tmp_path):
    if _MISSING["redis"]:
        pytest.skip(_MISSING["redis"])
    import pandas as pd
    from typer.testing import CliRunner

    from cli import app
    from twin.sim.locking_study import COLUMNS

    study = tmp_path / "study.yaml"
    study.write_text(TINY_STUDY)
    out = tmp_path / "out"
    args = ["locking", str(study), "--backend", "redis://127.0.0.1:6379/0", "--clients", "2"]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--format", "csv"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "locking_study.csv")
    assert list(table.columns) == list(COLUMNS)
    assert list(table["strategy"]) == ["atomic", "queue"]  # what a Redis server runs
    assert (table["claims"] > 5).all() and (table["achieved_tps"] > 0).all()
    assert (table["unfinished"] == 0).all() and (table["p95_ms"] < 500).all()
    assert "tiny live study" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "mysql://x"], "expected postgres://... or redis://..."),
        (
            ["--backend", "redis://127.0.0.1:6379/0", "--strategy", "pessimistic"],
            "runs on postgres",
        ),
        (["--backend", "redis://127.0.0.1:1/0", "--strategy", "atomic"], "no Redis at"),
    ],
)
def test_cli_locking_backend_problems_are_one_line_and_exit_2(tmp_path, args, message):
    from typer.testing import CliRunner

    from cli import app

    study = tmp_path / "study.yaml"
    study.write_text(TINY_STUDY)
    result = CliRunner().invoke(app, ["locking", str(study), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
