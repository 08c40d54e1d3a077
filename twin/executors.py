"""Where replications run: in this process, in a local process pool, or on a Dask cluster.

Every executor has one job: take tasks ``(scenario, replication index, seed)`` and hand back
each :class:`~twin.experiments.Replication` as soon as it finishes, in whatever order that is.
Because :func:`~twin.experiments.replicate` is a pure function of its arguments, the numbers do
not depend on the executor: a sweep started serially and resumed on a cluster gives the same
table, bit for bit (``tests/experiments/test_executors.py`` checks it).

Two choices keep long sweeps cheap:

* **A bounded window.** At most ``window`` tasks are in flight at once; the next task is only
  pulled from the (possibly lazy) task iterable when one finishes, and a finished result is
  dropped by the executor as soon as it is handed over. A 10,000-run sweep therefore holds a
  few results in memory, never all of them.
* **Frames on request.** A replication's per-vehicle table is by far its largest part. A task
  names the frames it needs (``keep``); the worker drops the others before the result is
  pickled back, so a sweep that only needs figures ships only figures.

Workers run :func:`run_task`, a module-level function, so the pool's ``spawn``/``forkserver``
children (and Dask workers) can import it; this is also what makes executors work from Jupyter,
where functions defined in the notebook cannot be sent to another process.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import logging
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from twin.tasks import FRAMES, Task  # noqa: F401 - FRAMES and Task re-exported: their old home

if TYPE_CHECKING:  # the CLI imports ExecutorName for --help: keep numpy, scipy, pydantic out
    from twin.replication import Replication


class ExecutorName(StrEnum):
    """The executors the CLI offers (``--executor``)."""

    serial = "serial"
    processes = "processes"
    dask = "dask"


class ExecutorError(Exception):
    """An executor cannot start (bad option, unreachable scheduler): a user error, not a bug."""


def run_task(task: Task) -> Replication:
    """Run one task (in a worker), building only the frames the caller asked for."""
    from twin.replication import replicate

    return replicate(task.scenario, task.replication, task.seed, frames=task.keep)


@dataclass
class Executor:
    """Base class: subclasses implement :meth:`map_tasks`; use as a context manager."""

    name: str = field(init=False, default="executor")

    def map_tasks(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, Replication]]:
        """Yield ``(task, replication)`` for every task, as each one finishes."""
        raise NotImplementedError

    def map_replications(self, tasks: Iterable[Task]) -> Iterator[Replication]:
        """Yield each task's :class:`Replication` as it finishes (finishing order)."""
        for _, rep in self.map_tasks(tasks):
            yield rep

    @property
    def workers(self) -> int:
        """How many replications run at the same time."""
        return 1

    def describe(self) -> str:
        """A short label for progress bars and logs."""
        return f"{self.name} ({self.workers} worker{'s' * (self.workers != 1)})"

    def close(self) -> None:
        """Release processes, clusters or connections; the executor cannot be used after."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class SerialExecutor(Executor):
    """Runs each task in this process, one after the other: no start-up cost, easy debugging."""

    def __post_init__(self) -> None:
        self.name = "serial"

    def map_tasks(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, Replication]]:
        for task in tasks:
            yield task, run_task(task)


def _init_worker(owner: int) -> None:
    """Pool initializer. Ctrl-C is the owner's to handle (it cancels the queue and tells the
    user how to resume): workers finish their current replication instead of each printing a
    traceback. And a worker exits when its owner dies (:func:`_exit_with`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(owner,), name="exit-with-owner", daemon=True).start()


def _exit_with(owner: int) -> None:
    """Block until process ``owner`` (the one that made the pool) is gone, then end this worker.

    Without it a ``kill -9`` of the owner leaves the workers waiting forever on a task queue
    whose other end they hold themselves, and with them the fork server (which waits for its
    children) and the resource tracker: ~560 MB of orphans. With ``forkserver`` a worker's
    parent is the fork server, not the owner, so ``PR_SET_PDEATHSIG`` (which watches the direct
    parent) would not fire; the owner is watched by pid instead: through a pidfd where Linux
    has them (woken the moment it exits, immune to pid reuse), else by polling once a second.
    """
    try:
        fd = os.pidfd_open(owner)
    except (AttributeError, OSError):  # no pidfd here, or the owner is already gone
        while _alive(owner):
            time.sleep(1.0)
    else:
        select.select([fd], [], [])
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def default_context() -> str:
    """``forkserver`` on Linux: forking a parent that runs threads (rich's progress refresher,
    Dask's event loop) can deadlock a child on a lock held by another thread; ``spawn``
    elsewhere (macOS and Windows have no safe fork).

    Both re-import the parent's ``__main__`` script in every worker (hence the usual
    ``if __name__ == "__main__":`` guard in scripts). When ``__main__`` names no file that can
    be re-imported (code piped to ``python -``), they cannot start at all, so Linux falls back
    to ``fork`` there. Notebooks and ``python -c`` have no main file and need neither.
    """
    if not sys.platform.startswith("linux"):
        return "spawn"
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    spec = getattr(main, "__spec__", None)
    if path is not None and spec is None and not os.path.isfile(path):
        return "fork"
    return "forkserver"


@dataclass
class ProcessExecutor(Executor):
    """A local pool of worker processes (``concurrent.futures.ProcessPoolExecutor``).

    ``max_workers`` defaults to ``os.cpu_count()``. The pool starts on first use and is reused
    across calls until :meth:`close`. Each worker imports ParkTwin once (about a second), so
    the pool pays off when replications take longer than that or there are many of them.
    """

    max_workers: int | None = None
    context: str | None = None
    window: int | None = None
    _pool: cf.ProcessPoolExecutor | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.name = "processes"
        if self.max_workers is not None and self.max_workers < 1:
            raise ExecutorError(f"workers must be >= 1, got {self.max_workers}")
        self.context = self.context or default_context()
        if self.context not in multiprocessing.get_all_start_methods():
            raise ExecutorError(
                f"start method {self.context!r} is not available here; "
                f"allowed: {', '.join(multiprocessing.get_all_start_methods())}"
            )

    @property
    def workers(self) -> int:
        return self.max_workers or os.cpu_count() or 1

    def _get_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context(self.context)
            if self.context == "forkserver":
                # The server imports ParkTwin (pandas, scipy, simpy) once and forks each worker
                # from it, instead of every worker importing it again.
                ctx.set_forkserver_preload(["twin.executors"])
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=ctx,
                initializer=_init_worker,
                initargs=(os.getpid(),),
            )
        return self._pool

    def map_tasks(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, Replication]]:
        pool = self._get_pool()
        window = self.window or 2 * self.workers
        source = iter(tasks)
        pending: dict[cf.Future[Replication], Task] = {}
        try:
            for task in itertools.islice(source, window):
                pending[pool.submit(run_task, task)] = task
            while pending:
                done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    task = pending.pop(future)
                    rep = future.result()
                    for nxt in itertools.islice(source, 1):
                        pending[pool.submit(run_task, nxt)] = nxt
                    yield task, rep
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


@dataclass
class DaskExecutor(Executor):
    """Runs tasks on a Dask cluster through ``distributed.Client``.

    With ``address`` (``tcp://host:port``) it connects to a running scheduler and leaves the
    cluster alone when closed; the workers must have ParkTwin installed (and see any trace or
    CSV files the scenario names at the same paths). Without an address it starts a
    ``LocalCluster`` of ``n_workers`` single-threaded worker processes and shuts it down on
    :meth:`close`. Tasks are submitted with ``pure=False``: Dask would otherwise recognise a
    task it has seen before and hand back a cached result instead of running it again.
    """

    address: str | None = None
    n_workers: int = 2
    window: int | None = None
    timeout: float = 10.0
    _client: Any = field(init=False, default=None, repr=False)
    _cluster: Any = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.name = "dask"
        if self.n_workers < 1:
            raise ExecutorError(f"workers must be >= 1, got {self.n_workers}")

    def _get_client(self) -> Any:
        if self._client is not None:
            return self._client
        from distributed import Client, LocalCluster

        if self.address:
            try:
                self._client = Client(self.address, timeout=self.timeout)
            except (OSError, TimeoutError, ValueError) as exc:
                raise ExecutorError(
                    f"cannot reach the Dask scheduler at {self.address}: {exc}"
                ) from None
        else:
            self._cluster = LocalCluster(
                n_workers=self.n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self._client = Client(self._cluster)
        return self._client

    @property
    def workers(self) -> int:
        if self._client is not None and self.address:
            return sum(self._client.nthreads().values()) or 1
        return self.n_workers

    def describe(self) -> str:
        where = self.address or "local cluster"
        return f"dask at {where} ({self.workers} worker{'s' * (self.workers != 1)})"

    def map_tasks(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, Replication]]:
        from distributed import as_completed

        client = self._get_client()
        # Each task is a network round trip: keep more in flight than with a local pool.
        window = self.window or 4 * max(self.workers, 1)
        source = iter(tasks)
        owner: dict[str, Task] = {}
        first = []
        for task in itertools.islice(source, window):
            future = client.submit(run_task, task, pure=False)
            owner[future.key] = task
            first.append(future)
        stream = as_completed(first)
        try:
            for future in stream:
                task = owner.pop(future.key)
                rep = future.result()
                future.release()
                for nxt in itertools.islice(source, 1):
                    new = client.submit(run_task, nxt, pure=False)
                    owner[new.key] = nxt
                    stream.add(new)
                yield task, rep
        finally:
            stream.clear()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def make_executor(
    name: ExecutorName | str | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
) -> Executor:
    """The executor a command line asks for; ``scheduler`` alone implies Dask.

    Raises :class:`ExecutorError` for combinations that make no sense (a scheduler address
    with a non-Dask executor, fewer than one worker).
    """
    if name is None:
        name = ExecutorName.dask if scheduler else ExecutorName.serial
    try:
        kind = ExecutorName(name)
    except ValueError:
        allowed = ", ".join(e.value for e in ExecutorName)
        raise ExecutorError(f"unknown executor {name!r}; allowed: {allowed}") from None
    if scheduler and kind is not ExecutorName.dask:
        raise ExecutorError(f"--scheduler needs the dask executor, not {kind.value}")
    if workers is not None and workers < 1:
        raise ExecutorError(f"workers must be >= 1, got {workers}")
    if kind is ExecutorName.serial:
        return SerialExecutor()
    if kind is ExecutorName.processes:
        return ProcessExecutor(max_workers=workers)
    if scheduler and not scheduler.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        raise ExecutorError(f"scheduler address must look like tcp://host:port, got {scheduler!r}")
    return DaskExecutor(address=scheduler, n_workers=workers or 2)
