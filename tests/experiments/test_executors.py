"""Executors: the same numbers wherever replications run, results streamed as they finish.

The process pool and the Dask cluster each start once per module (a few seconds on a shared
2-core machine) and are shut down by their fixtures.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from twin import api
from twin.api import load
from twin.executors import (
    DaskExecutor,
    Executor,
    ExecutorError,
    ExecutorName,
    ProcessExecutor,
    SerialExecutor,
    Task,
    make_executor,
    run_task,
)
from twin.experiments import Replication, run
from twin.scenario.model import Scenario

ROOT = Path(__file__).resolve().parents[2]
SURFACE = ROOT / "scenarios" / "surface_lot.yaml"
runner = CliRunner()


@pytest.fixture(scope="module")
def small() -> Scenario:
    """Half a day of the surface lot after its 6 h warm-up: ~100 drivers, milliseconds a run."""
    return load(SURFACE).model_copy(update={"horizon_days": 0.5})


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessExecutor]:
    with ProcessExecutor(max_workers=2) as ex:
        yield ex
    assert ex._pool is None  # closed by the context manager


@pytest.fixture(scope="module")
def dask_executor() -> Iterator[DaskExecutor]:
    ex = DaskExecutor(n_workers=2)
    with ex:
        yield ex
    assert ex._client is None and ex._cluster is None


def test_identical_results_from_all_three_executors(
    small: Scenario, pool: ProcessExecutor, dask_executor: DaskExecutor
) -> None:
    serial = run(small, replications=4, seed=11, executor=SerialExecutor())
    plain = run(small, replications=4, seed=11)
    processes = run(small, replications=4, seed=11, executor=pool)
    dask = run(small, replications=4, seed=11, executor=dask_executor)
    # The pool and the cluster really ran the work elsewhere.
    assert len(pool._pool._processes) == 2
    assert len(dask_executor._client.scheduler_info()["workers"]) == 2
    assert list(serial.metrics["replication"]) == [0, 1, 2, 3]
    assert serial.metrics["arrivals"].nunique() > 1  # replications differ from each other
    for other in (plain, processes, dask):
        pd.testing.assert_frame_equal(serial.metrics, other.metrics, check_exact=True)
        pd.testing.assert_frame_equal(serial.occupancy, other.occupancy, check_exact=True)
        pd.testing.assert_frame_equal(serial.vehicles, other.vehicles, check_exact=True)


def test_dask_runs_repeated_tasks_again_rather_than_from_cache(
    small: Scenario, dask_executor: DaskExecutor
) -> None:
    """The same task twice comes back twice (pure=False): a cache would merge or drop one."""
    tasks = [Task(small, 0, 5, keep=(), tag="a"), Task(small, 0, 5, keep=(), tag="b")]
    out = list(dask_executor.map_tasks(tasks))
    assert sorted(t.tag for t, _ in out) == ["a", "b"]
    assert out[0][1].metrics == out[1][1].metrics


def test_each_task_comes_back_once_with_its_tag(small: Scenario, pool: ProcessExecutor) -> None:
    tasks = [Task(small, r, 3, keep=(), tag=("p", r)) for r in range(6)]
    out = list(pool.map_tasks(tasks))
    assert sorted(t.tag for t, _ in out) == [("p", r) for r in range(6)]
    for task, rep in out:
        assert rep.index == task.replication
        assert rep.metrics == run_task(task).metrics


def test_in_flight_work_is_bounded_and_tasks_are_pulled_lazily(
    small: Scenario, pool: ProcessExecutor
) -> None:
    """A huge sweep must not be submitted (nor its results held) all at once."""
    pulled = 0

    def tasks() -> Iterator[Task]:
        nonlocal pulled
        for r in range(1000):
            pulled += 1
            yield Task(small, r, 1, keep=())

    bounded = ProcessExecutor(max_workers=2, window=3)
    bounded._pool = pool._get_pool()  # share the started pool: no second start-up
    stream = bounded.map_tasks(tasks())
    next(stream)
    assert pulled <= 4  # the window of 3, plus the one submitted when the first finished
    for _ in range(4):
        next(stream)
    assert pulled <= 8
    stream.close()  # cancels what is still queued
    bounded._pool = None


def test_keep_drops_unrequested_frames(small: Scenario) -> None:
    full = run_task(Task(small, 1, 9))
    lean = run_task(Task(small, 1, 9, keep=("occupancy",)))
    assert lean.vehicles.empty and lean.lanes.empty
    assert not full.vehicles.empty
    pd.testing.assert_frame_equal(full.occupancy, lean.occupancy, check_exact=True)
    assert full.metrics == lean.metrics
    with pytest.raises(ValueError, match="unknown frames"):
        Task(small, 0, 1, keep=("drivers",))


def test_make_executor_choices_and_refusals() -> None:
    assert isinstance(make_executor(None), SerialExecutor)
    assert isinstance(make_executor("processes", workers=3), ProcessExecutor)
    assert make_executor("processes", workers=3).workers == 3
    implied = make_executor(None, scheduler="tcp://127.0.0.1:8786")
    assert isinstance(implied, DaskExecutor) and implied.address == "tcp://127.0.0.1:8786"
    with pytest.raises(ExecutorError, match="needs the dask executor"):
        make_executor("processes", scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(ExecutorError, match="unknown executor"):
        make_executor("threads")
    with pytest.raises(ExecutorError, match="workers must be >= 1"):
        make_executor("processes", workers=0)
    with pytest.raises(ExecutorError, match=r"tcp://host:port"):
        make_executor("dask", scheduler="localhost:8786")


class Borrowed(Executor):
    """Lends the module's pool to the CLI (which closes its executor) without closing it."""

    def __init__(self, inner: Executor) -> None:
        super().__init__()
        self.inner, self.name, self.used = inner, inner.name, 0

    def map_tasks(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, Replication]]:
        self.used += 1
        return self.inner.map_tasks(tasks)


def test_cli_run_with_processes_matches_serial(
    tmp_path: Path, pool: ProcessExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple] = []
    lent = Borrowed(pool)

    def fake_make_executor(name, *, workers=None, scheduler=None) -> Executor:
        asked.append((name, workers, scheduler))
        return lent

    base = ["run", str(SURFACE), "--days", "0.75", "--replications", "3"]
    serial = runner.invoke(app, [*base, "--out", str(tmp_path / "s")])
    assert serial.exit_code == 0, serial.output
    monkeypatch.setattr(api, "make_executor", fake_make_executor)
    parallel = runner.invoke(
        app, [*base, "--executor", "processes", "--workers", "2", "--out", str(tmp_path / "p")]
    )
    assert parallel.exit_code == 0, parallel.output
    assert asked == [(ExecutorName.processes, 2, None)] and lent.used == 1
    a = json.loads((tmp_path / "s" / "summary.json").read_text())
    b = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert a == b
    assert a["replications"] == 3


def test_cli_run_rejects_a_scheduler_without_dask() -> None:
    args = ["run", str(SURFACE), "--executor", "processes", "--scheduler", "tcp://127.0.0.1:1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "--scheduler needs the dask executor" in result.output
    assert "Traceback" not in result.output


def test_start_method_avoids_fork_unless_main_cannot_be_reimported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Workers re-import the parent's main script; code piped to `python -` has none on disk."""
    import sys
    import types

    from twin.executors import default_context

    if not sys.platform.startswith("linux"):
        pytest.skip("the fork fallback is Linux-only")
    piped = types.ModuleType("__main__")
    piped.__file__ = "<stdin>"
    monkeypatch.setitem(sys.modules, "__main__", piped)
    assert default_context() == "fork"
    notebook = types.ModuleType("__main__")  # IPython kernels and `python -c`: no file at all
    monkeypatch.setitem(sys.modules, "__main__", notebook)
    assert default_context() == "forkserver"
    script = types.ModuleType("__main__")
    script.__file__ = __file__
    monkeypatch.setitem(sys.modules, "__main__", script)
    assert default_context() == "forkserver"


def test_pool_workers_exit_when_their_owner_is_killed(tmp_path: Path) -> None:
    """``kill -9`` of a ``--executor processes`` sweep once left the fork server, the workers
    and the resource tracker running as orphans; now all of them end within seconds."""
    import psutil

    out = tmp_path / "s"
    args = [sys.executable, "-m", "cli", "sweep", str(ROOT / "scenarios" / "surface_lot.yaml")]
    args += ["--grid", "tariff.per_period=1,2,3,4", "--days", "30", "--replications", "50"]
    args += ["--executor", "processes", "--workers", "2", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        owner = psutil.Process(proc.pid)
        deadline = time.monotonic() + 120
        while not list(out.glob("runs/point=*/rep=*.parquet")):  # the workers are running
            assert proc.poll() is None and time.monotonic() < deadline, "sweep did not start"
            time.sleep(0.1)
        family = owner.children(recursive=True)
        assert len(family) >= 3  # fork server, two workers (and the resource tracker)
    finally:
        proc.kill()
        proc.wait()

    def running(p: psutil.Process) -> bool:
        try:
            return p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + 10
    while any(running(p) for p in family) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [f"{p.pid} {p.name()}" for p in family if running(p)]
    for p in family:  # never leave them behind, even when the test fails
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    assert not left, f"still running after their owner was killed: {left}"
