"""How many claims per second each claim strategy sustains, and at what latency.

A SimPy model drives one :mod:`twin.core.locking` strategy at a time with claims arriving as a
Poisson process, at each offered rate of a sweep. Every change of shared state is a ``step``
of the core strategy; the model only decides *when* each step happens, from a latency model:

* network: a claim's messages take ``rtt/2`` each way between the app and the store;
* database (``pessimistic``, ``optimistic``): a connection from a pool of ``connections`` is
  held from sending a statement to receiving its reply (for ``pessimistic``: the whole
  transaction, lock waits included); each statement needs one of ``workers`` for
  ``statement_ms``; a committing write waits ``commit_ms`` for its WAL flush;
* pessimistic: after ``SELECT ... FOR UPDATE`` the client gets the row, works ``app_ms`` and
  sends ``statements_in_lock`` more statements (the last is COMMIT), each a round trip with the
  row locked. The row lock is therefore held about
  ``statements_in_lock × (rtt + statement) + app + commit`` per claim. A release's UPDATE
  locks the row until its COMMIT (``release_statements``: 1 autocommitted statement, or
  UPDATE then COMMIT a round trip later); with ``begin_round_trip`` each transaction first
  sends BEGIN on its own (a round trip without the lock, as psycopg does); with
  ``relock_on_wake`` a waiter woken by the holder's commit spends one more statement's CPU
  re-reading the row's new version and locking it (PostgreSQL's EvalPlanQual), the row
  already its own;
* optimistic: READ, ``app_ms``, then CAS; a conflict backs off (exponential, full jitter) and
  starts again with a READ; after ``max_retries`` retries the claim fails;
* atomic: each Redis command is a round trip plus ``op_ms`` on one of ``servers`` threads
  (INCR, and DECR when refused);
* queue: one message to the broker, ``consumer_ms`` of the single consumer, the reply back;
* client processes (``client.processes``, off by default): each claim goes to one of that many
  client processes at random (a Poisson stream of ``rate / processes`` each), which serves its
  claims and the releases of the units it granted one at a time, in the order they are due,
  as the live benchmark's clients do. A claim blocked on the hot row then also holds up every
  later claim and release of its process, cold rows included (head-of-line blocking), where
  the shared pool would serve them on another connection;
* shared host (``host.cores``, off by default): clients and servers run on one machine, so the
  clients' CPU per call, every statement, every Redis command and the queue consumer's work
  each also need one of the host's ``cores`` (the WAL flush and the network do not). With
  ``host.wakeup_ms`` each of those CPU bursts first waits on the OS run queue (exponential,
  that mean): the process had blocked on its socket, and other load on the machine and the
  scheduler delay it before it runs. A client or a backend holding a row lock waits there
  too, so the lock is held longer; this is how other load reaches the ceilings. A backend
  that waited for a row lock is woken by the holder's commit and needs a core again before
  it answers, with the row already locked.

Granted units are given back after a stay (exponential), through the same strategy, so exits
load the store as entries do. Stays are scaled with the offered rate so that every row sees the
same offered occupancy at every load point: otherwise a higher claim rate would only mean a
fuller lot, and the study would measure refusals instead of contention. Rows start at a
Poisson draw of that occupancy.

Measured per point: claims that *arrive* in the window give the latency percentiles (a claim
not answered by the end of the drain period counts as infinitely late), the conflict, retry,
failure and blocking counts, and the arrived rate; answers (grants and refusals) *given* in the
window give the achieved throughput. A point *tracks* its load when achieved ≥ ``tracking`` ×
arrived (the realised Poisson count, not the nominal rate, so sampling noise is not read as
saturation). A strategy's ceiling is the achieved throughput at the highest offered
rate up to which every point both tracks the offered rate and keeps p95 within the objective.

Randomness: one numpy Generator per purpose (arrivals, rows, stays, service, back-off), seeded
from ``SeedSequence(seed, spawn_key=(offered rate in mTPS, crc32(purpose)))``. Every strategy
therefore sees the same claims at a given load (common random numbers), and adding a load point
to the sweep changes no other point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import simpy

from twin.core.locking import (
    CLAIM_STRATEGIES,
    ClaimStrategy,
    Status,
    Step,
    make_claim_strategy,
)
from twin.outputs import claim, write_frame
from twin.scenario.locking import LockingStudySpec
from twin.sim.claim_latency import ClaimTransactions, Latencies, service_factors
from twin.sim.locking_measure import (
    COLUMNS,
    OPEN,
    OUTCOME_CODE,
    MeasureWindow,
    Progress,
    ceiling_text,
    ceilings,
    measure_point,
    measure_window,
    passes,
    row_shares_and_stays,
)
from twin.sim.locking_plot import plot_locking_study
from twin.sim.rng import BlockDraws, stream_key

# the measurement and the figure live in their own modules; importing them from here still works
__all__ = [
    "COLUMNS",
    "OUTCOME_CODE",
    "LockingStudyResult",
    "MeasureWindow",
    "ceiling_text",
    "ceilings",
    "choose_strategies",
    "measure_point",
    "measure_window",
    "plot_locking_study",
    "row_shares_and_stays",
    "run_locking_study",
    "simulate_point",
    "trace_point",
]


def _generator(seed: int, offered: float, purpose: str) -> np.random.Generator:
    seq = np.random.SeedSequence(
        entropy=seed, spawn_key=(round(offered * 1000), stream_key(purpose))
    )
    return np.random.Generator(np.random.PCG64(seq))


class _Point(ClaimTransactions):
    """One strategy at one offered rate: the SimPy processes around one core strategy."""

    def __init__(self, spec: LockingStudySpec, name: str, offered: float) -> None:
        self.spec = spec
        self.name = name
        self.offered = offered
        self.win = measure_window(spec, offered)
        env = self.env = simpy.Environment()
        w = spec.workload
        pick = None
        if name == "pessimistic" and spec.pessimistic.waiter_order == "random":
            order = _generator(spec.seed, offered, "waiter_order")  # its own stream
            draws = BlockDraws(lambda n: order.random(n))

            def pick(k: int) -> int:
                return min(int(draws() * k), k - 1)

        self.core: ClaimStrategy = make_claim_strategy(
            name,
            dict.fromkeys(range(w.rows), w.capacity),
            max_retries=spec.optimistic.max_retries,
            pick=pick,
        )
        c = spec.client
        # one machine for clients and servers: every CPU term queues for the same cores
        self.host_cpu = simpy.Resource(env, spec.host.cores) if spec.host.cores else None
        if self.host_cpu is not None:
            self.client_cpu: simpy.Resource | None = self.host_cpu
        else:
            self.client_cpu = simpy.Resource(env, c.cores) if c.cores else None
        self.send_cpu = c.cpu_ms / 1000
        self.waiting: dict[int, simpy.Event] = {}
        #: in the window: seconds CPU bursts on the host waited (run queue and a core), bursts
        self.run_wait = [0.0, 0]
        self.woke = False  # the last step performed had to wait (set by _step)
        seed = spec.seed
        gen = {p: _generator(seed, offered, p) for p in ("arrivals", "rows", "stays", "service")}
        gen["backoff"] = _generator(seed, offered, "backoff")
        self.gap = BlockDraws(lambda n: gen["arrivals"].exponential(1 / offered, n))
        self.unit = BlockDraws(lambda n: gen["rows"].random(n))
        self.stay1 = BlockDraws(lambda n: gen["stays"].exponential(1.0, n))
        db, p, o = spec.database, spec.pessimistic, spec.optimistic
        self.open_store(
            env,
            name,
            Latencies(
                rtt_ms=spec.network.rtt_ms,
                app_ms=c.app_ms,
                statement_ms=db.statement_ms,
                commit_ms=db.commit_ms,
                redis_op_ms=spec.atomic.op_ms,
                consumer_ms=spec.queue.consumer_ms,
                statements_in_lock=p.statements_in_lock,
                backoff_base_ms=o.backoff_base_ms,
                backoff_cap_ms=o.backoff_cap_ms,
                release_statements=p.release_statements,
                begin_round_trip=p.begin_round_trip,
                row_lock_on_write=o.row_lock_on_write,
            ),
            connections=db.connections,
            workers=db.workers,
            redis_servers=spec.atomic.servers,
            svc=service_factors(gen["service"], spec.service_cv),
            jitter=BlockDraws(lambda n: gen["backoff"].random(n)),
        )
        self.wake = spec.host.wakeup_ms / 1000
        if self.wake > 0:  # its own stream: the other draws stay the same with or without it
            gen["wakeup"] = _generator(seed, offered, "wakeup")
            shape = spec.host.wakeup_cv**-2
            if shape == 1:
                self.wake1 = BlockDraws(lambda n: gen["wakeup"].exponential(1.0, n))
            else:  # gamma, mean 1: most waits short, a few long when the cv is above 1
                self.wake1 = BlockDraws(lambda n: gen["wakeup"].standard_gamma(shape, n) / shape)
        # client processes: one lane each, served one request at a time (own stream of draws)
        n_lanes = spec.client.processes or 0
        self.lanes = [simpy.Resource(env, 1) for _ in range(n_lanes)]
        self.lane_of: dict[int, int] = {}
        if n_lanes:
            gen["clients"] = _generator(seed, offered, "clients")
            self.pick = BlockDraws(lambda n: gen["clients"].random(n))
        self.shares, self.stay_mean = row_shares_and_stays(w, offered)
        self.cum = np.cumsum(self.shares).tolist()
        self.rng_init = gen["stays"]
        # per claim records, indexed by claim id (claims are numbered 0, 1, ... on arrival)
        self.arrival: list[float] = []
        self.answer: list[float] = []
        self.code: list[int] = []
        self.conflicts: list[int] = []
        self.blocked: list[bool] = []
        self.spurious: list[bool] = []  # refused although a unit of the row was free
        #: pessimistic, when tracing: (row, kind, start, first, done, (asked,)) per claim (kind
        #: 0) and release (1), as the live clients record them (adapters/stores/load.py)
        self.trace: list[tuple] | None = None
        self.row_of: dict[int, int] = {}

    # -- helpers ----------------------------------------------------------------------------
    def _row(self) -> int:
        u = self.unit()
        for i, c in enumerate(self.cum):
            if u < c:
                return i
        return len(self.cum) - 1

    def _step(self, cid: int) -> Generator[simpy.Event, Step, Step]:
        """Perform the claim's next operation now; if it blocks, wait until it is woken."""
        step = self.core.step(cid, self.env.now)
        for woken in step.woken:
            self.waiting.pop(woken.claim_id).succeed(woken)
        self.woke = step.status is Status.BLOCKED
        if self.woke:
            if cid >= 0:
                self.blocked[cid] = True
            event = self.env.event()
            self.waiting[cid] = event
            step = yield event
            self.woke = True  # read at once by the caller, before any other process runs
        return step

    def _lock_step(self, cid: int) -> Generator[simpy.Event, Step, Step]:
        """A locking statement's step. On a shared host, a backend that waited for the row
        sleeps until the holder's commit wakes it, then needs a core again (after the run
        queue's wait) to answer: time the row is already its own."""
        step = yield from self._step(cid)
        if self.woke and self.spec.pessimistic.relock_on_wake:
            # PostgreSQL's lock-wait path: the row changed under the waiter, which re-reads its
            # new version and locks that (EvalPlanQual): one more statement's CPU, row held
            yield from self._statement()
        elif self.woke and self.host_cpu is not None:
            yield from self._wake()
            yield from self._core_turn()
        return step

    def _lock_waited(self) -> Generator:
        """An optimistic write woken by the commit it waited for needs a core again."""
        if self.host_cpu is not None:
            yield from self._wake()
            yield from self._core_turn()

    def _in_window(self) -> bool:
        return self.win.start <= self.env.now < self.win.end

    def _core_turn(self) -> Generator:
        """A woken process's turn on one of the host's cores to go on (no CPU modelled)."""
        asked = self.env.now
        with self.host_cpu.request() as req:
            yield req
            self._waited(asked)

    def _waited(self, asked: float) -> None:
        if self._in_window():
            self.run_wait[0] += self.env.now - asked
            self.run_wait[1] += 1

    def _service(self, resource: simpy.Resource, mean_s: float) -> Generator:
        """``mean_s`` of work on ``resource``; on the host's cores, its wait is counted."""
        if resource is not self.host_cpu:
            yield from super()._service(resource, mean_s)
            return
        asked = self.env.now
        with resource.request() as req:
            yield req
            self._waited(asked)
            yield self.env.timeout(mean_s * self.svc())

    def host_wait_ms(self) -> float:
        """The window's mean wait of a CPU burst on the host, run queue and a core (ms): the
        model's counterpart of the live ``schedstat`` wait per time scheduled in."""
        waited, bursts = self.run_wait
        return 1000 * waited / bursts if bursts else math.nan

    def _wake(self) -> Generator:
        """A process that blocked (on its socket, a lock) is woken: it waits on the OS run
        queue behind the machine's other load (``host.wakeup_ms``) before it can run."""
        if self.wake > 0:
            wait = self.wake * self.wake1()
            if self._in_window():
                self.run_wait[0] += wait
            yield self.env.timeout(wait)

    def _flush(self) -> Generator:
        """The WAL flush. On a shared host with ``database.commit_wakeups`` = k, the backend
        sleeps k times in it (the WAL write and ``fdatasync`` wait for the disk) and each time
        is woken and needs a core again before the commit goes on: the flush's I/O is
        ``commit_ms`` less the k light-load wake-ups it was measured with, then k run-queue
        waits and k turns for a core, which grow with the host's load while the row stays
        locked (live: 3 sleeps per synchronous commit, 1 per statement without one)."""
        k = self.spec.database.commit_wakeups
        if not k or self.host_cpu is None:
            yield from super()._flush()
            return
        io_s = max(0.0, self.lat.commit_ms / 1000 - k * self.wake)
        yield self.env.timeout(io_s * self.svc())
        for _ in range(k):
            yield from self._wake()
            yield from self._core_turn()

    def _server_cpu(self, resource: simpy.Resource, mean_s: float) -> Generator:
        """A server's CPU work: one of the server's own slots (``resource``), and on a shared
        host also one of the host's cores while it runs.

        Woken how: a PostgreSQL backend is a process per connection, woken by each statement;
        a single-threaded server (Redis: ``resource`` of capacity 1) is woken only when the
        request finds it idle, and then serves whatever queued meanwhile without sleeping."""
        if self.host_cpu is None:
            yield from self._service(resource, mean_s)
            return
        per_connection = resource.capacity > 1 or resource is self.cpu
        if per_connection:
            yield from self._wake()
        idle = resource.count == 0 and not resource.queue
        with resource.request() as req:
            yield req
            if idle and not per_connection:
                yield from self._wake()  # the event loop was asleep: it is woken first
            yield from self._service(self.host_cpu, mean_s)

    def _send(self) -> Generator:
        """The client sends a statement or command: its CPU for it (if modelled, on the
        clients' shared cores, woken from waiting for the last reply on a shared host),
        then half a round trip to the server."""
        if self.send_cpu > 0:
            if self.client_cpu is None:
                yield self.env.timeout(self.send_cpu * self.svc())
            else:
                if self.host_cpu is not None:
                    yield from self._wake()
                yield from self._service(self.client_cpu, self.send_cpu)
        yield self.env.timeout(self.half)

    def _reply_then_send(self) -> Generator:
        yield self.env.timeout(self.half)
        yield from self._send()

    def _consume(self) -> Generator:
        consumer_s = self.lat.consumer_ms / 1000
        if self.host_cpu is None:
            yield self.env.timeout(consumer_s * self.svc())
        else:  # the consumer is a process on the shared host: it needs a core to serve
            if not self.woke:  # served at once: the consumer was idle, asleep on the list
                yield from self._wake()
            yield from self._service(self.host_cpu, consumer_s)

    def _over_capacity(self, cid: int, row: int) -> None:
        # refused, and spuriously so if the surplus is others' in-flight INCRs
        self.spurious[cid] = self.core.held(row) < self.spec.workload.capacity

    # -- processes --------------------------------------------------------------------------
    def _arrivals(self) -> Generator:
        env, gap, row = self.env, self.gap, self._row
        cid = 0
        while True:
            yield env.timeout(gap())
            self.arrival.append(env.now)
            self.answer.append(math.nan)
            self.code.append(OPEN)
            self.conflicts.append(0)
            self.blocked.append(False)
            self.spurious.append(False)
            env.process(self._claim(cid, row()))
            cid += 1

    def _claim(self, cid: int, row: int) -> Generator:
        if self.lanes:
            lane = self.lane_of[cid] = min(int(self.pick() * len(self.lanes)), len(self.lanes) - 1)
            with self.lanes[lane].request() as req:  # behind its process's earlier requests
                yield req
                step = yield from self._claim_body(cid, row)
        else:
            step = yield from self._claim_body(cid, row)
        self.answer[cid] = self.env.now
        self.code[cid] = OUTCOME_CODE[step.status]
        if step.status is Status.GRANTED:
            yield self.env.timeout(self.stay_mean[row] * self.stay1())
            yield from self._release(cid)

    def _release(self, cid: int) -> Generator:
        """A release, on the process that granted the unit (prefilled ones: round robin)."""
        if not self.lanes:
            yield from self._release_body(cid)
            return
        lane = self.lane_of.pop(cid, (-cid) % len(self.lanes))
        with self.lanes[lane].request() as req:
            yield req
            yield from self._release_body(cid)

    def _prefill(self) -> None:
        """Rows start at their offered occupancy (Poisson, capped), held by earlier claims."""
        w = self.spec.workload
        cid = -1
        for row, stay in enumerate(self.stay_mean):
            if math.isinf(stay):
                continue
            for _ in range(min(w.capacity, int(self.rng_init.poisson(w.occupancy * w.capacity)))):
                self.row_of[cid] = self.granted_row[cid] = row
                step = self.core.begin(cid, row, 0.0)
                while not step.status.final:
                    step = self.core.step(cid, 0.0)
                self.env.process(self._prefilled(cid, stay))
                cid -= 1

    def _prefilled(self, cid: int, stay: float) -> Generator:
        yield self.env.timeout(stay * self.stay1())
        yield from self._release(cid)

    def _traced(
        self, cid: int, row: int, kind: int, begun: float, first: float, asked: float
    ) -> None:
        trace = self.trace
        assert trace is not None
        if kind == 0:  # a claim: its row, for its release's record
            self.row_of[cid] = row
        else:
            known = self.row_of.pop(cid, None)
            if known is None:
                return
            row = known
        trace.append((row, kind, begun, first, self.env.now, (asked,)))

    # -- run and measure --------------------------------------------------------------------
    def run(self) -> dict[str, object]:
        self._prefill()
        self.env.process(self._arrivals())
        self.env.run(until=self.win.stop)
        return self._measure()

    def _measure(self) -> dict[str, object]:
        return measure_point(
            self.spec,
            self.name,
            self.offered,
            self.win,
            arrival=self.arrival,
            answer=self.answer,
            code=self.code,
            conflicts=self.conflicts,
            blocked=self.blocked,
            spurious=self.spurious,
        )


def simulate_point(spec: LockingStudySpec, strategy: str, offered_tps: float) -> dict[str, object]:
    """Simulate one strategy at one offered claim rate; one row of the study's table."""
    if strategy not in CLAIM_STRATEGIES:
        raise ValueError(f"unknown claim strategy {strategy!r}")
    if offered_tps <= 0:
        raise ValueError("offered_tps must be > 0")
    return _Point(spec, strategy, offered_tps).run()


def trace_point(
    spec: LockingStudySpec, offered_tps: float
) -> tuple[dict[str, object], list[tuple]]:
    """:func:`simulate_point` for ``pessimistic``, with each claim's and release's trace
    ``(row, kind, start, first, done, (asked,))`` as the live clients record it (kind 0 a
    claim, 1 a release; the locking statement's answer and the COMMIT's at the client, and
    when the locking statement was sent): see :mod:`twin.sim.locking_chain`."""
    if offered_tps <= 0:
        raise ValueError("offered_tps must be > 0")
    point = _Point(spec, "pessimistic", offered_tps)
    point.trace = []
    row = point.run()
    row["host_wait_ms"] = point.host_wait_ms()  # the host's wait per CPU burst, in the window
    return row, point.trace


@dataclass
class LockingStudyResult:
    """The study's tidy table (one row per strategy × offered rate) and ceilings."""

    spec: LockingStudySpec
    table: pd.DataFrame
    ceilings: pd.DataFrame

    def write(self, out_dir: str | Path, fmt: str = "parquet") -> list[Path]:
        """Write ``locking_study`` and ``locking_ceilings`` (parquet or csv) and the PNG."""
        if fmt not in ("parquet", "csv"):
            raise ValueError(f"unknown format {fmt!r}; allowed: parquet, csv")
        with claim(out_dir) as out:
            written = [
                write_frame(frame, out / f"{name}.{fmt}", fmt)
                for name, frame in (
                    ("locking_study", self.table),
                    ("locking_ceilings", self.ceilings),
                )
            ]
            written.append(plot_locking_study(self, out / "locking_study.png"))
        return written


def choose_strategies(spec: LockingStudySpec, asked: list[str] | None = None) -> list[str]:
    """The strategies a study runs: the asked ones (in order, each once), else the study's.
    An unknown name is a ValueError naming the allowed ones (checked before anything runs)."""
    chosen = list(dict.fromkeys(asked)) if asked else list(spec.strategies)
    unknown = [s for s in chosen if s not in CLAIM_STRATEGIES]
    if unknown:
        raise ValueError(
            f"unknown strategy {unknown[0]!r} (allowed: {', '.join(CLAIM_STRATEGIES)})"
        )
    return chosen


def run_locking_study(
    spec: LockingStudySpec,
    *,
    strategies: list[str] | None = None,
    progress: Progress | None = None,
    point: Callable[[LockingStudySpec, str, float], dict[str, object]] = simulate_point,
) -> LockingStudyResult:
    """Sweep every strategy over the offered rates of ``spec``; same spec → same result.

    A strategy's sweep stops ``measure.points_past_ceiling`` rates after its first failing one.
    ``point`` makes one row of the table: simulated by default; ``twin.locking_live`` passes
    one that measures a real store, so both sweeps stop and summarise by the same rules.
    """
    names = list(strategies or spec.strategies)
    for name in names:
        if name not in CLAIM_STRATEGIES:
            raise ValueError(f"unknown claim strategy {name!r}")
    rates = spec.offered_tps
    total = len(names) * len(rates)
    past_limit = spec.measure.points_past_ceiling
    rows = []
    for k, name in enumerate(names):
        failing = 0
        for j, rate in enumerate(rates):
            if progress is not None:
                progress(k * len(rates) + j, total, f"{name} at {rate:g} TPS")
            row = point(spec, name, rate)
            rows.append(row)
            failing += failing > 0 or not passes(row)
            if past_limit is not None and failing > past_limit:
                break  # saturated: higher rates only cost time
    if progress is not None:
        progress(total, total, "done")
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return LockingStudyResult(spec, table, ceilings(table))
