"""The locking study against real stores: measured ceilings, and the model held to them.

``parktwin locking --backend postgres://... --backend redis://...`` sweeps the study's offered
rates with ``clients`` client *processes*, each with its own connection, driving the claim
stores of :mod:`adapters.stores` (the core decides, the server performs). Each client draws its
share of the Poisson arrivals (``rate / clients``) with the study's rows, hot share and stays,
runs them open-loop in order on its one connection, and releases granted units after their
stays. A claim's latency is from its *scheduled* arrival to its answer, so a client that falls
behind shows the wait (no coordinated omission). The rows of the table are computed by the
study's own ``measure_point`` and the sweep stops by the study's own rule, so the simulated
and the measured tables have the same columns and mean the same things. Not observable on a
real server: ``blocked`` and ``refused_while_free`` (left 0).

:func:`measure_inputs` measures the latencies the study's model takes as inputs (round trips,
statement and commit time, Redis's CPU per command, the consumer's time per request) so that
:func:`predicted_spec` can rerun the simulated study with this machine's numbers.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing as mp
import os
import statistics
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np

from parktwin.adapters.stores import (
    STORE_OF,
    StoreUnavailable,
    open_store,
    run_claim,
    run_release,
)
from parktwin.adapters.stores.load import client_main, target_name
from twin.core.locking import RemoteClaim, Status
from twin.locking_probe import (
    host_busy_s,
    pg_workload_pids,
    redis_cpu_s,
    run_queue_s,
    server_cpu_ms,
    sum_cpu_s,
    voluntary_switches,
    wakeup_ms,
)
from twin.scenario.locking import LockingStudySpec
from twin.sim.locking_chain import wakeups_from_round_trips
from twin.sim.locking_measure import (
    OPEN,
    OUTCOME_CODE,
    Progress,
    measure_point,
    measure_window,
    passes,
    round_trips,
    round_trips_per_answer,
    row_shares_and_stays,
)
from twin.sim.locking_study import LockingStudyResult, run_locking_study

__all__ = [
    "LiveStudy",
    "live_cpu_probe",
    "measure_inputs",
    "model_cpu_ms",
    "parse_backends",
    "predicted_spec",
    "round_trips",
    "run_live_study",
    "wakeup_ms",
]

_SCHEMES = {
    "postgres": ("postgres://", "postgresql://"),
    "redis": ("redis://", "rediss://", "unix://"),
}
_START_S = 0.3  # clients start a point this long after the order, all at the same instant


def parse_backends(urls: list[str]) -> dict[str, str]:
    """``{"postgres": url, "redis": url}`` from connection strings; ValueError naming a bad one."""
    found: dict[str, str] = {}
    for url in urls:
        server = next((k for k, v in _SCHEMES.items() if url.startswith(v)), None)
        if server is None:
            raise ValueError(f"--backend {url!r}: expected postgres://... or redis://...")
        if server in found:
            raise ValueError(f"--backend: two {server} servers given ({found[server]}, {url})")
        found[server] = url
    return found


# -- the coordinator -------------------------------------------------------------------------
class LiveStudy:
    """Runs the study's points on real stores; use as ``point=`` of ``run_locking_study``.

    Client processes (and the queue's consumer) are started once per strategy and reused for
    all its points; each point starts from an empty store prefilled to the offered occupancy.
    Use as a context manager: leaving it stops the processes and drops the schema / keys.
    """

    def __init__(
        self, backends: Mapping[str, str], clients: int = 8, *, trace: Collection[str] = ()
    ) -> None:
        if clients < 1:
            raise ValueError("clients must be >= 1")
        self.backends = dict(backends)
        self.clients = clients
        self.ns = f"parktwin_live_{uuid.uuid4().hex[:8]}"
        self._ctx = mp.get_context("forkserver")
        self._ctx.set_forkserver_preload(
            ["parktwin.adapters.stores.load", "parktwin.adapters.stores.redis_store"]
        )
        self._strategy: str | None = None
        self._store = None
        self._procs: list = []
        self._pipes: list = []
        self._consumer = None
        self._stop = None
        self._consumer_stats = None
        self.consumer_ms: float | None = None  # the queue consumer's measured time per request
        #: per point: CPU seconds of the clients and of the servers' processes, the host's busy
        #: CPU seconds (all processes, ours and others'), wall seconds and claims answered
        self.cpu: list[dict[str, Any]] = []
        #: per point of a strategy in ``trace``: every claim's and release's ``(row, kind, start,
        #: first, done, answers)`` from all clients (``adapters/stores/load.py``), for
        #: ``twin.sim.locking_chain``
        self.trace = frozenset(trace)
        self.traces: list[dict[str, Any]] = []

    def supports(self, strategy: str) -> bool:
        return STORE_OF[strategy] in self.backends

    def __enter__(self) -> LiveStudy:
        return self

    def __exit__(self, *exc: object) -> None:
        self._teardown()

    def __call__(self, spec: LockingStudySpec, strategy: str, offered: float) -> dict[str, Any]:
        if strategy != self._strategy:
            self._teardown()
            self._start(spec, strategy)
        return self._point(spec, strategy, offered)

    def _start(self, spec: LockingStudySpec, strategy: str) -> None:
        url = self.backends[STORE_OF[strategy]]
        if STORE_OF[strategy] == "postgres":  # name our connections, to find their backends
            url += ("&" if "?" in url else "?") + f"application_name={self.ns}"
        w = spec.workload
        store = open_store(strategy, url, namespace=self.ns)
        store.setup({target_name(r): w.capacity for r in range(w.rows)})
        self._store, self._strategy = store, strategy
        if strategy == "queue":
            from parktwin.adapters.stores.redis_store import serve_until

            self._stop, self._consumer_stats = self._ctx.Event(), self._ctx.Queue()
            self._consumer = self._ctx.Process(
                target=serve_until, args=(url, self.ns, self._stop, self._consumer_stats)
            )
            self._consumer.start()
        params = {
            "shares": row_shares_and_stays(w, 1.0)[0],
            "seed": spec.seed,
            "max_retries": spec.optimistic.max_retries,
            "backoff_ms": (spec.optimistic.backoff_base_ms, spec.optimistic.backoff_cap_ms),
        }
        for _ in range(self.clients):
            mine, theirs = self._ctx.Pipe()
            proc = self._ctx.Process(
                target=client_main, args=(strategy, url, self.ns, params, theirs), daemon=True
            )
            proc.start()
            self._procs.append(proc)
            self._pipes.append(mine)
        for pipe in self._pipes:  # connected, before any point's clock starts
            if not pipe.poll(120) or pipe.recv() != "ready":
                raise RuntimeError("a load client did not start (see its error above)")

    def _point(self, spec: LockingStudySpec, strategy: str, offered: float) -> dict[str, Any]:
        store, w = self._store, spec.workload
        win = measure_window(spec, offered)
        _, stays = row_shares_and_stays(w, offered)
        if strategy == "queue":  # drop a backlog left by an overloaded point, then start empty
            store.r.delete(store.k_queue)
            time.sleep(0.05)
        store.reset()
        rng = np.random.Generator(np.random.PCG64(spec.seed))
        holders, releases = {}, [[] for _ in range(self.clients)]
        for row, stay in enumerate(stays):
            for k in range(min(w.capacity, int(rng.poisson(w.occupancy * w.capacity)))):
                cid = f"p{row}-{k}"
                holders[cid] = target_name(row)
                releases[len(holders) % self.clients].append((stay * rng.exponential(), row, cid))
        store.prefill(holders)
        t0 = time.monotonic() + _START_S
        for index, pipe in enumerate(self._pipes):
            pipe.send(
                {
                    "rate": offered / self.clients,
                    "stop": win.stop,
                    "t0": t0,
                    "index": index,
                    "mtps": round(offered * 1000),
                    "stays": stays,
                    "releases": releases[index],
                    "trace": strategy in self.trace,
                }
            )
        meter = _CpuMeter(self, strategy, t0)
        records: dict[str, list] = {"arrival": [], "answer": [], "code": [], "conflicts": []}
        trace: list = []
        for pipe in self._pipes:
            got = pipe.recv()
            trace += got.get("trace", [])
            records["arrival"] += got["arrival"]
            records["answer"] += got["answer"]
            records["conflicts"] += got["conflicts"]
            records["code"] += [OUTCOME_CODE[Status(s)] if s else OPEN for s in got["status"]]
        answered = sum(c != OPEN for c in records["code"])
        cpu = {"strategy": strategy, "offered_tps": offered, **meter.stop(answered)}
        zeros = [False] * len(records["arrival"])
        row = measure_point(spec, strategy, offered, win, blocked=zeros, spurious=zeros, **records)
        self.cpu.append({**cpu, "passes": passes(row)})
        if strategy in self.trace:
            self.traces.append(
                {"strategy": strategy, "offered_tps": offered, "window": win, "trace": trace}
            )
        return row

    def _server_pids(self, strategy: str) -> list[int]:
        """Our PostgreSQL backends and the server's own processes (WAL writer, checkpointer,
        ...: ``twin.locking_probe.pg_workload_pids``, the set the paced probe counts too), or
        the queue's consumer process; Redis's own CPU comes from INFO."""
        if STORE_OF[strategy] == "redis":
            return [self._consumer.pid] if self._consumer is not None else []
        with self._store.pool.connection() as conn:
            return pg_workload_pids(conn, application_name=self.ns)

    def _teardown(self) -> None:
        for pipe in self._pipes:
            pipe.send(None)
        for proc in self._procs:
            proc.join(10)
        self._procs, self._pipes = [], []
        if self._consumer is not None:
            self._stop.set()
            served, busy = self._consumer_stats.get(timeout=10)
            self.consumer_ms = 1000 * busy / served if served else None
            self._consumer.join(10)
            self._consumer = None
        if self._store is not None:
            self._store.drop()
            self._store.close()
            self._store = None
        self._strategy = None


def run_live_study(
    spec: LockingStudySpec,
    backend_urls: list[str],
    *,
    strategies: list[str] | None = None,
    clients: int = 8,
    progress: Progress | None = None,
) -> LockingStudyResult:
    """The study's sweep measured on real stores: the strategies the given servers run
    (``strategies`` limits them; asking for one no given server runs is a ValueError)."""
    backends = parse_backends(backend_urls)
    wanted = list(strategies or spec.strategies)
    missing = [s for s in strategies or [] if STORE_OF[s] not in backends]
    if missing:
        need = STORE_OF[missing[0]]
        raise ValueError(f"strategy {missing[0]!r} runs on {need}: give --backend {need}://...")
    chosen = [s for s in wanted if STORE_OF[s] in backends]
    with LiveStudy(backends, clients) as live:
        return run_locking_study(spec, strategies=chosen, progress=progress, point=live)


def run_study(
    spec: LockingStudySpec,
    strategies: list[str],
    *,
    backend_urls: list[str] | None = None,
    only_asked: bool = False,
    clients: int = 8,
    progress: Progress | None = None,
) -> LockingStudyResult:
    """`parktwin locking`: the study simulated, or measured on real stores when
    ``backend_urls`` are given. ``strategies`` as chosen by
    :func:`twin.sim.locking_study.choose_strategies`; with ``only_asked`` (the user named them)
    a strategy no given server runs is an error, else such strategies are left out. Bad URLs
    and unreachable servers raise ValueError (one line for the user)."""
    if not backend_urls:
        return run_locking_study(spec, strategies=strategies, progress=progress)
    try:
        return run_live_study(
            spec,
            backend_urls,
            strategies=strategies if only_asked else None,
            clients=clients,
            progress=progress,
        )
    except StoreUnavailable as exc:
        raise ValueError(str(exc)) from exc


# -- the model's inputs, measured -------------------------------------------------------------
def _mean_ms(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """Mean wall time and mean CPU time of this process per call of ``fn``, in ms: means,
    because the model's service times are means."""
    for _ in range(min(50, n)):  # warm caches, plans, connections
        fn()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    return 1000 * (time.perf_counter() - wall) / n, 1000 * (time.process_time() - cpu) / n


def measure_inputs(
    backends: Mapping[str, str],
    n: int = 2000,
    *,
    study: LockingStudySpec | None = None,
    clients: int = 8,
    trace: Collection[str] = (),
) -> dict[str, float]:
    """The study's latency inputs on this machine, one client, no contention (means, ms).

    ``pg_rtt_ms``: ``SELECT 1``, of which ``pg_client_cpu_ms`` is this client's own CPU
    (psycopg, the socket calls); ``statement_ms``: a primary-key read beyond ``SELECT 1``;
    ``commit_ms``: an autocommitted one-row UPDATE beyond the same UPDATE inside a transaction
    (the WAL flush); ``lock_hold_ms``: a pessimistic grant from its locking read to its commit
    returning; ``redis_rtt_ms``: PING; ``redis_client_cpu_ms``: this client's CPU per
    INCR script call; ``op_ms``: Redis's own CPU per INCR script (INFO cpu
    over many calls); ``consumer_ms``: the queue consumer's time per request, draining a burst.
    CPU of whole operations, in this client and in all PostgreSQL processes:
    ``pg_claim_{client,server}_cpu_ms`` a pessimistic claim, ``pg_release_*`` its release
    (back to back). Paced like the live clients (:func:`_cycle_probe`), per strategy but the
    queue: ``cycle_<strategy>_{client,server}_cpu_ms`` per claim with its release and
    ``cycle_<strategy>_wakeup_ms`` the run queue's wait per wake-up (``wakeup_ms``: their
    median). CPU counted over the processes a live point counts
    (``twin.locking_probe.pg_workload_pids``). With ``study``, also each strategy's CPU per
    claim in the live benchmark's own shape (:func:`live_cpu_probe`, ``live_<strategy>_*``),
    which :func:`predicted_spec` then prefers to the one-client cycles (``trace``: the
    strategies the live sweep traces, so that the probe's clients do the same work).
    """
    out: dict[str, float] = {"cores": float(os.cpu_count() or 1)}
    ns = f"parktwin_inputs_{uuid.uuid4().hex[:8]}"
    if "postgres" in backends:
        from psycopg import sql

        # one connection, so one backend: the pid it reports is the one every claim below uses
        store = open_store("pessimistic", backends["postgres"], namespace=ns, pool_size=1)
        try:
            store.setup({"r": n * 4})
            with store.pool.connection() as conn:
                out["pg_rtt_ms"], out["pg_client_cpu_ms"] = _mean_ms(
                    lambda: conn.execute("SELECT 1").fetchone(), n
                )
                read = sql.SQL("SELECT used FROM {s}.claim_counter WHERE target = 'r'").format(
                    s=sql.Identifier(ns)
                )
                out["statement_ms"] = max(
                    0.0, _mean_ms(lambda: conn.execute(read).fetchone(), n)[0] - out["pg_rtt_ms"]
                )
                # the server's own CPU per call: the backend process's run time around them
                backend = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
                servers = pg_workload_pids(conn, backend=backend)
                for key, query in (("pg_server_cpu_ms", "SELECT 1"), ("pg_statement_cpu_ms", read)):
                    cpu = server_cpu_ms(backend, lambda q=query: conn.execute(q).fetchone(), n)
                    if cpu is not None:
                        out[key] = cpu
                bump = sql.SQL("UPDATE {s}.claim_counter SET version = version + 1").format(
                    s=sql.Identifier(ns)
                )
                autocommit = _mean_ms(lambda: conn.execute(bump), n // 2)[0]
                conn.execute("BEGIN")
                in_tx = _mean_ms(lambda: conn.execute(bump), n // 2)[0]
                conn.execute("ROLLBACK")
                out["commit_ms"] = max(0.0, autocommit - in_tx)
            holds = []
            server0, client0 = sum_cpu_s(servers), time.process_time()
            for i in range(n // 4):
                marks: list[float] = []
                run_claim(
                    store, f"h{i}", "r", on_step=lambda _s, m=marks: m.append(time.perf_counter())
                )
                holds.append(marks[1] - marks[0])  # locking read answered → commit answered
            out["lock_hold_ms"] = 1000 * statistics.mean(holds)
            # CPU per whole pessimistic claim: this client (driver, core, store) and every
            # PostgreSQL process (backend, WAL writer: the commit's CPU, not its fsync wait)
            out["pg_claim_client_cpu_ms"] = 1000 * (time.process_time() - client0) / (n // 4)
            server1 = sum_cpu_s(servers)
            if server0 is not None and server1 is not None:
                out["pg_claim_server_cpu_ms"] = 1000 * (server1 - server0) / (n // 4)
            # ... and per release of those units (BEGIN, the locking UPDATE, COMMIT)
            client0 = time.process_time()
            for i in range(n // 4):
                run_release(store, f"h{i}", "r")
            out["pg_release_client_cpu_ms"] = 1000 * (time.process_time() - client0) / (n // 4)
            server2 = sum_cpu_s(servers)
            if server1 is not None and server2 is not None:
                out["pg_release_server_cpu_ms"] = 1000 * (server2 - server1) / (n // 4)
        finally:
            store.drop()
            store.close()
        for strategy in ("pessimistic", "optimistic"):
            out.update(_cycle_probe(strategy, backends["postgres"], f"{ns}_{strategy[0]}"))
    if "redis" in backends:
        atomic = open_store("atomic", backends["redis"], namespace=ns, pool_size=2)
        try:
            atomic.setup({"L0/r": 10**9})
            cpu0 = redis_cpu_s(atomic.r)
            out["redis_rtt_ms"], out["redis_ping_cpu_ms"] = _mean_ms(atomic.r.ping, n)
            # Redis's CPU per PING (INFO included once): the server's part of the round trip
            out["redis_ping_server_ms"] = 1000 * (redis_cpu_s(atomic.r) - cpu0) / (n + min(50, n))
            claim = RemoteClaim("atomic", "x", "L0/r")

            def incr() -> None:
                atomic.perform(claim, claim.start(0.0).next_op)

            incr()
            cpu0 = redis_cpu_s(atomic.r)
            calls = 4 * n
            out["redis_client_cpu_ms"] = _mean_ms(incr, calls)[1]
            out["op_ms"] = 1000 * (redis_cpu_s(atomic.r) - cpu0) / (calls + min(50, calls))
            out["queue_consumer_ms"] = _consumer_ms(backends["redis"], ns, n)
            out.update(_cycle_probe("atomic", backends["redis"], ns + "_a"))
        finally:
            atomic.drop()
            atomic.close()
    waits = [v for k, v in out.items() if k.startswith("cycle_") and k.endswith("_wakeup_ms")]
    if waits:
        out["wakeup_ms"] = statistics.median(waits)
    if study is not None:
        for strategy in study.strategies:
            if STORE_OF[strategy] in backends:
                out.update(live_cpu_probe(backends, study, strategy, clients, out, trace=trace))
    return out


#: The live CPU probe's load: this share of the cores, by the one-client cycle's CPU per claim.
#: The ceilings lie where the cores are mostly busy; there the live clients, their backends and
#: the server's own processes (16+ processes on 2 cores) take turns, which one client paced
#: alone on an idle machine does not show. At light load a claim costs more (its processes
#: wake on idle cores, caches cold: 2.5 ms a row-lock claim at 50 TPS, 1.2 at 1,500 in Run 13);
#: past about 80 % the objective fails and claims queue.
LIVE_PROBE_LOAD = 0.6


def live_probe_rate(inputs: Mapping[str, float], strategy: str) -> float:
    """Offered TPS for :func:`live_cpu_probe`: :data:`LIVE_PROBE_LOAD` of the cores at the
    one-client cycle's CPU per claim, and for the queue at most that share of its one
    consumer (a claim and its release are two requests), rounded to 10 TPS."""
    cycle = _cycle_cpu_ms({k: v for k, v in inputs.items() if not k.startswith("live_")}, strategy)
    if cycle is not None:
        cpu_ms = sum(cycle)
    else:  # the queue: two requests of a client and of the consumer
        cpu_ms = 2 * (inputs["redis_client_cpu_ms"] + inputs["queue_consumer_ms"])
    rate = LIVE_PROBE_LOAD * inputs["cores"] * 1000 / cpu_ms
    if strategy == "queue":
        rate = min(rate, LIVE_PROBE_LOAD * 1000 / (2 * inputs["queue_consumer_ms"]))
    return float(max(10.0, round(rate, -1)))


def live_cpu_probe(
    backends: Mapping[str, str],
    study: LockingStudySpec,
    strategy: str,
    clients: int,
    inputs: Mapping[str, float],
    *,
    trace: Collection[str] = (),
) -> dict[str, float]:
    """CPU per answered claim (its release included) as the live points count it: the
    benchmark's own ``clients`` client processes on the study's workload at
    :func:`live_probe_rate`, one point after a warm-up point (``LiveStudy``). Returns, in ms
    per claim: ``live_<s>_client_cpu_ms`` (the client processes), ``live_<s>_server_cpu_ms``
    (our backends and PostgreSQL's own processes, or Redis and the queue's consumer),
    ``live_<s>_other_cpu_ms`` (the rest of the machine's busy CPU, for the record: other load,
    and kernel work charged to no process of ours); ``live_<s>_tps`` the offered rate,
    ``live_<s>_wakeup_ms`` our processes' wait per wake-up there, and ``live_<s>_trips`` the
    round trips those claims made per answered claim, retries included
    (:func:`round_trips_per_answer`), which that CPU is spread over."""
    rate = live_probe_rate(inputs, strategy)
    with LiveStudy(backends, clients, trace=trace) as live:
        live(study, strategy, rate)  # warm: connections, plans, scripts, caches
        row = live(study, strategy, rate)
        point = live.cpu[-1]
    answered = max(1, point["answered"])
    ours = point["clients_cpu_s"] + point["servers_cpu_s"]
    key = f"live_{strategy}_"
    return {
        key + "tps": rate,
        key + "client_cpu_ms": 1000 * point["clients_cpu_s"] / answered,
        key + "server_cpu_ms": 1000 * point["servers_cpu_s"] / answered,
        key + "other_cpu_ms": 1000 * max(0.0, point["host_busy_s"] - ours) / answered,
        key + "wakeup_ms": point["wakeup_ms"],
        key + "trips": round_trips_per_answer(_STORE_PROTOCOL, strategy, row),
    }


#: Cycles of the paced probe (claim and release, 2 ms apart): about 1 s per strategy.
CYCLES = 300


def _cycle_probe(strategy: str, url: str, ns: str, n: int = CYCLES) -> dict[str, float]:
    """One client runs ``n`` claims of ``strategy``, each released at once, 2 ms apart, as
    the live clients do (the core's :func:`run_claim` and :func:`run_release`; the client
    sleeps between them, so it and the server block and are woken). Returns, in ms, per
    cycle (claim and release): this client's CPU (``cycle_<strategy>_client_cpu_ms``), the
    server's (every PostgreSQL process, or Redis's own from INFO:
    ``cycle_<strategy>_server_cpu_ms``), and the mean wait on the run queue per time
    scheduled in of this client and its server (``cycle_<strategy>_wakeup_ms``). The
    pessimistic probe also times its round trips that wait for no lock and no flush and
    turns them into the wait per wake-up a round trip suffers, mean and coefficient of
    variation (``pg_rt_wakeup_ms``, ``pg_rt_wakeup_cv``: ``wakeups_from_round_trips``)."""
    store = open_store(strategy, url, namespace=ns, pool_size=1)
    key = f"cycle_{strategy}_"
    out: dict[str, float] = {}
    try:
        target = "r" if STORE_OF[strategy] == "postgres" else "L0/r"
        store.setup({target: 10 * n})
        for i in range(min(50, n)):  # warm plans, scripts and the connection
            run_claim(store, f"w{i}", target)
            run_release(store, f"w{i}", target)
        if STORE_OF[strategy] == "postgres":
            with store.pool.connection() as conn:  # the pool's one connection: its backend
                backend = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
                # the processes a live point counts (not other sessions' backends)
                servers = pg_workload_pids(conn, backend=backend)
            queued = [backend]

            def server_cpu() -> float | None:
                return sum_cpu_s(servers)
        else:
            queued = [int(store.r.info("server")["process_id"])]

            def server_cpu() -> float | None:
                return redis_cpu_s(store.r)

        pids = [os.getpid(), *queued]
        sleeps0 = voluntary_switches(queued[0]) if STORE_OF[strategy] == "postgres" else None
        answers: list[float] = []
        trips: list[float] = []  # round trips that wait for no lock and no WAL flush
        if strategy == "pessimistic":
            store.marks = answers
        server0, client0, wait0 = server_cpu(), time.process_time(), run_queue_s(pids)
        for i in range(n):
            time.sleep(0.002)
            answers.clear()
            run_claim(store, f"c{i}", target)
            trips += [b - a for a, b in itertools.pairwise(answers[:4])]  # BEGIN → INSERT
            answers.clear()
            run_release(store, f"c{i}", target)
            trips += [b - a for a, b in itertools.pairwise(answers[:2])]  # BEGIN → UPDATE
        out[key + "client_cpu_ms"] = 1000 * (time.process_time() - client0) / n
        server1 = server_cpu()
        if server0 is not None and server1 is not None:
            out[key + "server_cpu_ms"] = 1000 * (server1 - server0) / n
        out[key + "wakeup_ms"] = wakeup_ms(wait0, run_queue_s(pids))
        sleeps1 = voluntary_switches(queued[0]) if sleeps0 is not None else None
        if sleeps0 is not None and sleeps1 is not None:
            # the backend sleeps once per statement it waits for; the rest are its commits'
            # (two per cycle: the claim's and the release's) WAL write and fdatasync
            extra = (sleeps1 - sleeps0) / n - round_trips(_STORE_PROTOCOL, strategy)
            out[key + "commit_wakeups"] = max(0.0, extra / 2)
        if len(trips) > 20:
            mean, cv = wakeups_from_round_trips(trips)
            out["pg_rt_wakeup_ms"], out["pg_rt_wakeup_cv"] = mean, cv
    finally:
        store.drop()
        store.close()
    return out


class _CpuMeter:
    """CPU used during one live point, per party, read from ``/proc`` (and Redis's INFO):
    robust to other load on the machine, which only shows in ``host_busy_s``."""

    def __init__(self, live: LiveStudy, strategy: str, t0: float) -> None:
        self.clients = [p.pid for p in live._procs]
        self.servers = live._server_pids(strategy)
        self.redis = live._store.r if STORE_OF[strategy] == "redis" else None
        # the load starts at t0 (``_START_S`` after the order): seconds count from there, so
        # that cores busy are those of the load (the clients' wait for t0 costs no CPU)
        self.t0 = t0
        self.start = self._read()

    def _read(self) -> tuple[float, float, float, float, float]:
        clients = sum_cpu_s(self.clients) or 0.0
        servers = sum_cpu_s(self.servers) or 0.0
        if self.redis is not None:
            servers += redis_cpu_s(self.redis)
        return clients, servers, host_busy_s(), *run_queue_s(self.clients + self.servers)

    def stop(self, answered: int) -> dict[str, float]:
        end = self._read()
        clients, servers, host, wait, count = (b - a for a, b in zip(self.start, end, strict=True))
        return {
            "seconds": max(0.0, time.monotonic() - self.t0),
            "answered": answered,
            "clients_cpu_s": clients,
            "servers_cpu_s": servers,
            "host_busy_s": host,
            # our processes' mean wait on the run queue per time scheduled in
            "wakeup_ms": 1000 * wait / count if count > 0 else math.nan,
        }


def _consumer_ms(url: str, ns: str, n: int) -> float:
    """Queue a burst of requests, then time one consumer (in this process) draining them."""
    import json

    from parktwin.adapters.stores.redis_store import QueueConsumer, QueueStore

    prefix = ns + "_q"
    store = QueueStore(url, prefix=prefix)
    try:
        store.setup({"L0/r": 10**9})
        pipe = store.r.pipeline(transaction=False)
        for i in range(n):
            reply = f"{{{prefix}}}:reply:{i}"
            pipe.lpush(
                store.k_queue,
                json.dumps({"id": str(i), "kind": "claim", "target": "L0/r", "reply": reply}),
            )
        pipe.execute()
        consumer = QueueConsumer(url, prefix=prefix)
        t = time.perf_counter()
        consumer.run(lambda: consumer.served >= n)
        return 1000 * (time.perf_counter() - t) / n
    finally:
        store.drop()
        store.close()


def model_cpu_ms(spec: LockingStudySpec, strategy: str) -> float:
    """CPU (client and server, ms) the model spends on one granted claim and its release, no
    conflicts: what the live run's measured CPU per claim is to be compared with."""
    per_call = spec.client.cpu_ms
    if strategy in ("pessimistic", "optimistic"):
        return round_trips(spec, strategy) * (per_call + spec.database.statement_ms)
    if strategy == "atomic":  # INCR, and DECR at the release
        return 2 * (per_call + spec.atomic.op_ms)
    return 2 * (per_call + spec.queue.consumer_ms)  # queue: claim and release each served


def _cycle_cpu_ms(inputs: Mapping[str, float], strategy: str) -> tuple[float, float] | None:
    """(client, server) CPU in ms of one claim and its release, from :func:`measure_inputs`:
    the live clients' (:func:`live_cpu_probe`) where measured, else the one-client paced
    cycle's; None where neither was measured (older inputs: the claim alone, no release)."""
    live = f"live_{strategy}_server_cpu_ms"
    if live in inputs:
        return inputs[f"live_{strategy}_client_cpu_ms"], inputs[live]
    paced = f"cycle_{strategy}_server_cpu_ms"
    if paced in inputs:
        return inputs[f"cycle_{strategy}_client_cpu_ms"], inputs[paced]
    if STORE_OF[strategy] != "postgres":
        return None
    if strategy == "optimistic" and "pg_opt_server_cpu_ms" in inputs:
        return inputs["pg_opt_client_cpu_ms"], inputs["pg_opt_server_cpu_ms"]
    if strategy == "pessimistic" and "pg_release_server_cpu_ms" in inputs:
        return (
            inputs["pg_claim_client_cpu_ms"] + inputs["pg_release_client_cpu_ms"],
            inputs["pg_claim_server_cpu_ms"] + inputs["pg_release_server_cpu_ms"],
        )
    if "pg_claim_server_cpu_ms" in inputs:  # older inputs, a pessimistic claim alone: the
        # CPU of its five round trips, per round trip, times the strategy's round trips
        trips = round_trips(_STORE_PROTOCOL, strategy) / 5
        return inputs["pg_claim_client_cpu_ms"] * trips, inputs["pg_claim_server_cpu_ms"] * trips
    return None


def _trips(inputs: Mapping[str, float], spec: LockingStudySpec, strategy: str) -> float:
    """Round trips per answered claim to spread the measured CPU per claim over: those the
    live probe's claims made (``live_<s>_trips``, retries and refusals counted) when its CPU
    is the one used, else the conflict-free count of a granted claim and its release."""
    made = inputs.get(f"live_{strategy}_trips")
    if f"live_{strategy}_server_cpu_ms" in inputs and made is not None and made > 0:
        return made
    return round_trips(spec, strategy) if STORE_OF[strategy] == "postgres" else 2


#: The pessimistic protocol of ``adapters/stores/postgres_store.py``: BEGIN on its own (psycopg),
#: and a release is BEGIN, the locking UPDATE, COMMIT.
_STORE_PROTOCOL = LockingStudySpec.model_validate(
    {
        "pessimistic": {
            "begin_round_trip": True,
            "release_statements": 2,
            "relock_on_wake": True,
            # PostgreSQL hands a freed row to whichever waiter reaches its new version first
            # (measured: twin.sim.locking_chain's waiter order on the live hot row)
            "waiter_order": "random",
        },
        # its UPDATE locks the row to its commit; a CAS finding a newer version writes nothing
        "optimistic": {"row_lock_on_write": True},
    }
)


def predicted_spec(
    spec: LockingStudySpec,
    inputs: Mapping[str, float],
    strategy: str,
    clients: int,
    *,
    shared_host: bool = False,
) -> LockingStudySpec:
    """``spec`` with the latencies measured by :func:`measure_inputs` for ``strategy``'s server
    and the live run's shape (one connection per client, no app work between statements).

    With ``shared_host`` the model puts clients and servers on the machine's cores together
    (``host.cores``), as they are in the live benchmark: a statement's service is then the
    backend's measured CPU per statement, and the round trip only what is left of it once the
    client's and the server's CPU are taken out (the loopback, the wake-ups). The run
    queue's waits are the paced probe's: for PostgreSQL, as its round trips suffered them
    (mean and spread, ``pg_rt_wakeup_*``) where measured, else ``schedstat``'s mean."""
    data = spec.model_dump()
    data["client"]["app_ms"] = 0.0
    data["client"]["cores"] = int(inputs["cores"])
    data["database"]["connections"] = clients
    # the live clients: each serves its own arrivals and releases one at a time
    data["client"]["processes"] = clients
    data["database"]["workers"] = int(inputs.get("cores", data["database"]["workers"]))
    if STORE_OF[strategy] == "postgres":
        # the model's round trip is the client's CPU for the message, then the network
        data["network"]["rtt_ms"] = max(0.0, inputs["pg_rtt_ms"] - inputs["pg_client_cpu_ms"])
        data["client"]["cpu_ms"] = inputs["pg_client_cpu_ms"]
        data["database"]["statement_ms"] = inputs["statement_ms"]
        data["database"]["commit_ms"] = inputs["commit_ms"]
        if shared_host and "pg_statement_cpu_ms" in inputs:
            data["database"]["statement_ms"] = inputs["pg_statement_cpu_ms"]
            data["network"]["rtt_ms"] = max(
                0.0,
                inputs["pg_rtt_ms"] - inputs["pg_client_cpu_ms"] - inputs["pg_server_cpu_ms"],
            )
        # the store's protocol (adapters/stores/postgres_store.py): psycopg sends BEGIN on its
        # own, and a release is BEGIN, the locking UPDATE, COMMIT
        data["pessimistic"]["begin_round_trip"] = _STORE_PROTOCOL.pessimistic.begin_round_trip
        data["pessimistic"]["release_statements"] = _STORE_PROTOCOL.pessimistic.release_statements
        data["pessimistic"]["relock_on_wake"] = _STORE_PROTOCOL.pessimistic.relock_on_wake
        data["pessimistic"]["waiter_order"] = _STORE_PROTOCOL.pessimistic.waiter_order
        data["optimistic"]["row_lock_on_write"] = _STORE_PROTOCOL.optimistic.row_lock_on_write
        cycle = _cycle_cpu_ms(inputs, strategy)
        if shared_host and cycle is not None:
            # CPU per round trip as a whole claim and its release spend it: more than a bare
            # statement, since it includes the driver's and the core's work and the commits'
            # WAL writes, and the release's three round trips load the host as much as a claim
            trips = _trips(inputs, LockingStudySpec.model_validate(data), strategy)
            data["client"]["cpu_ms"] = cycle[0] / trips
            data["database"]["statement_ms"] = cycle[1] / trips
    else:
        data["network"]["rtt_ms"] = max(0.0, inputs["redis_rtt_ms"] - inputs["redis_ping_cpu_ms"])
        data["client"]["cpu_ms"] = inputs["redis_client_cpu_ms"]
        data["atomic"]["op_ms"] = inputs["op_ms"]
        data["queue"]["consumer_ms"] = inputs["queue_consumer_ms"]
        if shared_host and "redis_ping_server_ms" in inputs:
            data["network"]["rtt_ms"] = max(
                0.0, data["network"]["rtt_ms"] - inputs["redis_ping_server_ms"]
            )
        cycle = _cycle_cpu_ms(inputs, strategy)
        if shared_host and cycle is not None and strategy == "atomic":
            # paced like the live clients, the whole client loop and Redis's own CPU, over
            # the cycle's two commands (INCR, the release's DECR)
            data["client"]["cpu_ms"] = cycle[0] / 2
            data["atomic"]["op_ms"] = cycle[1] / 2
        elif shared_host and cycle is not None and strategy == "queue":
            # the clients' CPU per request as the live clients spend it (LPUSH, then a
            # blocking BRPOP woken by the reply); the consumer keeps its measured service time
            data["client"]["cpu_ms"] = cycle[0] / _trips(inputs, _STORE_PROTOCOL, strategy)
    if shared_host:
        data["host"]["cores"] = int(inputs["cores"])
        data["host"]["wakeup_ms"] = inputs.get(
            f"cycle_{strategy}_wakeup_ms", inputs.get("wakeup_ms", 0.0)
        )
        if STORE_OF[strategy] == "postgres" and "pg_rt_wakeup_ms" in inputs:
            # the waits as a round trip suffers them, mean and spread (a lock holder's too)
            data["host"]["wakeup_ms"] = inputs["pg_rt_wakeup_ms"]
            data["host"]["wakeup_cv"] = inputs["pg_rt_wakeup_cv"]
        sleeps = inputs.get(f"cycle_{strategy}_commit_wakeups")
        if STORE_OF[strategy] == "postgres" and sleeps is not None:
            # the backend's wake-ups inside each commit's WAL flush (the row lock held)
            data["database"]["commit_wakeups"] = round(sleeps)
    return LockingStudySpec.model_validate(data)
