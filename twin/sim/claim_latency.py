"""The claim strategies' transactions as SimPy processes: one latency model, two users.

The core (:mod:`twin.core.locking`) decides every change of a store's state; this module only
decides *when* each step happens. :class:`ClaimTransactions` holds the four strategies'
transactions (claim and release) around one core strategy:

* pessimistic: ``SELECT ... FOR UPDATE``, ``statements_in_lock`` statements with the row
  locked (the last is COMMIT; a full row rolls back at once), a connection from the pool held
  for the whole transaction; a release's UPDATE locks the row until its COMMIT;
* optimistic: READ, the client's work, CAS; a conflict backs off (exponential, full jitter)
  and starts again with a READ, until the core says the claim failed;
* atomic: INCR (and DECR when over capacity), each a round trip to a store of
  ``redis_servers`` threads;
* queue: one message to the broker, the single consumer's work, the reply back.

Half a round trip each way, one of the database's ``workers`` per statement, the WAL flush of
a committing write. Two models use it: the main model's claims at the gates
(:mod:`twin.sim.claims`) and the locking study (:mod:`twin.sim.locking_study`), which overrides
the hooks (``_send``, ``_server_cpu``, ``_lock_step``, ``_consume``, ...) to add the client's
CPU, a shared host and the row lock's wake-up. Each user keeps its own ``_step`` (the per-claim
records differ) and its own random streams (:func:`service_factors`).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np
import simpy

from twin.core.locking import ClaimStrategy, Op, Status, Step, backoff_delay
from twin.sim.rng import BlockDraws

__all__ = ["ClaimTransactions", "Latencies", "service_factors"]


@dataclass(frozen=True)
class Latencies:
    """The latency model's inputs, in the units of the specs (milliseconds)."""

    rtt_ms: float
    app_ms: float
    statement_ms: float
    commit_ms: float
    redis_op_ms: float
    consumer_ms: float
    statements_in_lock: int
    backoff_base_ms: float
    backoff_cap_ms: float
    #: pessimistic: statements of a release (1: autocommitted; 2: UPDATE, then COMMIT)
    release_statements: int = 1
    #: pessimistic: each transaction first sends BEGIN on its own (a round trip, no lock)
    begin_round_trip: bool = False
    #: optimistic: the CAS and the release lock the row from their write to their commit
    row_lock_on_write: bool = False


def service_factors(gen: np.random.Generator, cv: float) -> BlockDraws:
    """Service-time factors of mean 1: gamma with coefficient of variation ``cv`` (1 if 0)."""
    if cv == 0:
        return BlockDraws(np.ones)
    shape = 1.0 / cv**2
    return BlockDraws(lambda n: gen.standard_gamma(shape, n) / shape)


class ClaimTransactions:
    """The strategies' transactions around ``self.core``; a user calls :meth:`open_store`
    (when its SimPy environment exists) and defines ``_step`` and ``conflicts``."""

    env: simpy.Environment
    core: ClaimStrategy
    #: retries after a conflict, per claim id (the user's per-claim record)
    conflicts: list[int]
    #: pessimistic: set to a list to have :meth:`_traced` told each claim's and release's times
    trace: list[tuple] | None = None

    def open_store(
        self,
        env: simpy.Environment,
        strategy: str,
        lat: Latencies,
        *,
        connections: int,
        workers: int,
        redis_servers: int,
        svc: BlockDraws,
        jitter: BlockDraws,
    ) -> None:
        """The store's resources and latencies, and which transactions ``strategy`` runs."""
        self.pool = simpy.Resource(env, connections)
        self.cpu = simpy.Resource(env, workers)
        self.redis = simpy.Resource(env, redis_servers)
        self.lat = lat
        self.half = lat.rtt_ms / 2000
        self.app = lat.app_ms / 1000
        self.svc = svc
        self.jitter = jitter
        self.row_locks: dict[int, simpy.Resource] = {}  # optimistic writes, with the option
        self.granted_row: dict[int, int] = {}  # optimistic, with the option: a unit's row
        self._claim_body: Callable[[int, int], Generator] = {
            "pessimistic": self._pessimistic,
            "optimistic": self._optimistic,
            "atomic": self._atomic,
            "queue": self._queue,
        }[strategy]
        self._release_body: Callable[[int], Generator] = {
            "pessimistic": self._pessimistic_release,
            "optimistic": self._optimistic_release,
            "atomic": self._atomic_release,
            "queue": self._queue_release,
        }[strategy]

    # -- hooks (the locking study overrides them) -------------------------------------------
    def _step(self, cid: int) -> Generator[simpy.Event, Step, Step]:
        """Perform the claim's next operation now; if it blocks, wait until it is woken."""
        raise NotImplementedError

    def _lock_step(self, cid: int) -> Generator[simpy.Event, Step, Step]:
        """A statement's step that may wait for the row lock."""
        return self._step(cid)

    def _send(self) -> Generator:
        """The client sends a statement or command: half a round trip to the store."""
        yield self.env.timeout(self.half)

    def _reply_then_send(self) -> Generator:
        """The reply comes back and the next statement goes out (a rollback's)."""
        yield self.env.timeout(2 * self.half)

    def _service(self, resource: simpy.Resource, mean_s: float) -> Generator:
        with resource.request() as req:
            yield req
            yield self.env.timeout(mean_s * self.svc())

    def _server_cpu(self, resource: simpy.Resource, mean_s: float) -> Generator:
        """A server's CPU work on one of ``resource``'s slots."""
        return self._service(resource, mean_s)

    def _statement(self) -> Generator:
        return self._server_cpu(self.cpu, self.lat.statement_ms / 1000)

    def _flush(self) -> Generator:
        """A committing write's WAL flush: a wait that uses no core (the locking study adds
        the backend's wake-ups from it on a shared host)."""
        yield self.env.timeout(self.lat.commit_ms / 1000 * self.svc())

    def _consume(self) -> Generator:
        """The queue's single consumer serves one message."""
        yield self.env.timeout(self.lat.consumer_ms / 1000 * self.svc())

    def _over_capacity(self, cid: int, row: int) -> None:
        """An INCR found the row over capacity (the claim backs out with a DECR)."""

    def _lock_waited(self) -> Generator:
        """A write that waited for the row's lock was woken by the holder's commit (the
        locking study makes it wait on a shared host's run queue and for a core)."""
        yield from ()

    def _traced(
        self, cid: int, row: int, kind: int, begun: float, first: float, asked: float
    ) -> None:
        """With ``trace`` set, a pessimistic claim (``kind`` 0) or release (1) of ``row`` ended
        now: it began at ``begun``, sent its locking statement at ``asked`` and had its answer
        at ``first`` (the client's view, as the live clients record it)."""

    def _round_trip(self) -> Generator:
        """A statement that takes no lock (BEGIN sent on its own): send, execute, reply."""
        yield from self._send()
        yield from self._statement()
        yield self.env.timeout(self.half)

    # pessimistic: SELECT ... FOR UPDATE, statements under the lock, COMMIT (or ROLLBACK)
    def _first_statement(self) -> Generator[simpy.Event, object, float]:
        """A transaction's first statement (after BEGIN on its own, if sent so): sent and
        executed; the core performs it next. Returns when it was sent."""
        if self.lat.begin_round_trip:
            yield from self._round_trip()
        asked = self.env.now  # the locking statement goes out
        yield from self._send()
        yield from self._statement()
        return asked

    def _pessimistic(self, cid: int, row: int) -> Generator:
        env, half = self.env, self.half
        begun = env.now
        with self.pool.request() as conn:
            yield conn
            asked = yield from self._first_statement()
            self.core.begin(cid, row, env.now)
            step = yield from self._lock_step(cid)  # LOCK: may wait for the row
            first = env.now + half  # the client has the locking read's answer
            if step.next_op is Op.ABORT:  # the row is full: roll back at once
                yield from self._reply_then_send()
                yield from self._statement()
            else:
                yield env.timeout(half + self.app)
                for _ in range(self.lat.statements_in_lock - 1):
                    yield from self._send()
                    yield from self._statement()
                    yield env.timeout(half)
                yield from self._send()
                yield from self._statement()
                yield from self._flush()
            step = yield from self._step(cid)  # COMMIT / ABORT: frees the row
            yield env.timeout(half)
        if self.trace is not None:
            self._traced(cid, row, 0, begun, first, asked)
        return step

    def _pessimistic_release(self, cid: int) -> Generator:
        env = self.env
        begun = env.now
        with self.pool.request() as conn:
            yield conn
            asked = yield from self._first_statement()
            self.core.release(cid, env.now)
            yield from self._lock_step(cid)  # UPDATE: waits for the row lock
            first = env.now + self.half
            for _ in range(self.lat.release_statements - 1):  # the row stays locked to COMMIT
                yield env.timeout(self.half)
                yield from self._send()
                yield from self._statement()
            yield from self._flush()
            yield from self._step(cid)  # COMMIT
            yield env.timeout(self.half)
        if self.trace is not None:
            self._traced(cid, -1, 1, begun, first, asked)

    # optimistic: READ, controller work, CAS; back off and read again on a conflict
    def _optimistic(self, cid: int, row: int) -> Generator:
        env, half, lat = self.env, self.half, self.lat
        self.core.begin(cid, row, env.now)
        while True:
            with self.pool.request() as conn:
                yield conn
                yield from self._send()
                yield from self._statement()
                step = yield from self._step(cid)  # READ
                # the version it read, for its CAS's re-check behind the row's lock
                seen = self.core.version(row) if lat.row_lock_on_write else None  # type: ignore[attr-defined]
                yield env.timeout(half)
            if step.status.final:
                return step  # refused: the row was full
            yield env.timeout(self.app)
            with self.pool.request() as conn:
                yield conn
                yield from self._send()
                yield from self._statement()
                if seen is None:  # a CAS behind an uncommitted one waits for its commit
                    yield from self._flush()
                    step = yield from self._step(cid)  # CAS
                else:
                    step = yield from self._locked_write(cid, row, seen)
                yield env.timeout(half)
            if step.status is not Status.CONFLICT:
                if seen is not None and step.status is Status.GRANTED:
                    self.granted_row[cid] = row  # its release locks this row
                return step
            self.conflicts[cid] += 1
            wait_ms = backoff_delay(
                step.attempt, lat.backoff_base_ms, lat.backoff_cap_ms, self.jitter()
            )
            yield env.timeout(wait_ms / 1000)

    def _locked_write(self, cid: int, row: int, seen: int | None) -> Generator:
        """An optimistic write as PostgreSQL runs it (``row_lock_on_write``): the UPDATE locks
        the row, waiting behind an uncommitted write until it commits, and re-checks its WHERE
        on the row's newest version. A CAS that finds a version newer than the one it read
        (``seen``) fails at once: it wrote nothing, so its commit needs no WAL flush. Otherwise
        it writes, flushes and commits (the core's step), and the row's lock is freed. A
        release (``seen`` None) never fails and always writes."""
        lock = self.row_locks.get(row)
        if lock is None:
            lock = self.row_locks[row] = simpy.Resource(self.env, 1)
        with lock.request() as req:
            waited = not req.triggered
            yield req
            if waited:
                yield from self._lock_waited()
            if seen is None or self.core.version(row) == seen:  # type: ignore[attr-defined]
                yield from self._flush()
            return (yield from self._step(cid))

    def _optimistic_release(self, cid: int) -> Generator:
        env = self.env
        with self.pool.request() as conn:
            yield conn
            yield from self._send()
            yield from self._statement()
            if self.lat.row_lock_on_write:
                self.core.release(cid, env.now)
                yield from self._locked_write(cid, self.granted_row.pop(cid), None)
            else:
                yield from self._flush()
                self.core.release(cid, env.now)
                yield from self._step(cid)  # UPDATE used = used - 1 (the version untouched)
            yield env.timeout(self.half)

    # atomic: INCR (and DECR when over capacity), each a round trip to a single-threaded store
    def _redis(self, cid: int) -> Generator:
        yield from self._send()
        yield from self._server_cpu(self.redis, self.lat.redis_op_ms / 1000)
        step = yield from self._step(cid)
        yield self.env.timeout(self.half)
        return step

    def _atomic(self, cid: int, row: int) -> Generator:
        self.core.begin(cid, row, self.env.now)
        step = yield from self._redis(cid)  # INCR
        if step.next_op is Op.DECR:
            self._over_capacity(cid, row)
            step = yield from self._redis(cid)  # over capacity: DECR back, refused
        return step

    def _atomic_release(self, cid: int) -> Generator:
        self.core.release(cid, self.env.now)
        yield from self._redis(cid)

    # queue: publish, wait for the one consumer, reply
    def _queued(self, cid: int) -> Generator:
        yield from self._step(cid)  # ENQUEUE: in service at once, or wait in line
        yield from self._consume()
        step = yield from self._step(cid)  # SERVE: decide, hand the consumer on
        yield self.env.timeout(self.half)
        return step

    def _queue(self, cid: int, row: int) -> Generator:
        yield from self._send()
        self.core.begin(cid, row, self.env.now)
        return (yield from self._queued(cid))

    def _queue_release(self, cid: int) -> Generator:
        yield from self._send()
        self.core.release(cid, self.env.now)
        yield from self._queued(cid)
