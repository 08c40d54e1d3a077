"""Claiming a spot, or one unit of a lot/type counter, when many claimants race for it.

Claims reach the store concurrently from entry lanes and from app reservations. Four ways of
keeping them from granting the same unit twice are modelled here, behind one interface:

``pessimistic``  per-row lock (``SELECT ... FOR UPDATE``): the claimant holds the row from its
                 read to its commit; a second claimant blocks, FIFO, until the holder commits
                 or rolls back.
``optimistic``   version check: read (value, version), later compare-and-set on the version; a
                 mismatch is a *conflict* and the caller retries after a back-off, up to
                 ``max_retries`` times, then gives up (*failed*).
``atomic``       atomic counter (Redis ``INCR``/``DECR``): ``INCR`` and look at the result; if
                 it exceeds the capacity, ``DECR`` and refuse. Releases ``DECR`` with a floor
                 at zero.
``queue``        a single serialising queue: one consumer decides claims (and releases) one at
                 a time, in arrival order.

Why a step machine and not threads or a lock object: this package is the production logic and
must stay pure (no threads, no wall clock), and the point of the study is *interleaving*. A
claim is therefore a sequence of atomic steps against a shared store. ``begin`` registers a
claim and names its first operation; each ``step`` performs the claim's next operation at the
injected time ``t`` and says what happened (another step to do, blocked, conflict, or a final
answer). Whoever calls ``step`` decides the interleaving: the SimPy study puts network and
service latencies between steps; the property tests pick a random schedule. A step that frees
a lock (or the queue's consumer) hands it to the next waiter at once and reports that waiter in
``Step.woken``; the caller then continues it.

Invariants every strategy keeps, under any interleaving (``tests/core/test_locking.py`` checks them
with random schedules): a unit is never granted to more claimants than the target's capacity
(for a spot, capacity 1: never to two claimants); the store's count never goes below zero; and
with bounded retries every claim resolves (granted, refused or failed). One nuance, by design
of the INCR-then-check pattern: the raw counter of ``atomic`` can stand above the capacity for
the moment between a losing ``INCR`` and its compensating ``DECR``; that surplus is never
granted, but it can make a concurrent claim see "full" when one unit is in fact free (counted
as ``spurious_refusals``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Protocol, runtime_checkable

__all__ = [
    "CLAIM_STRATEGIES",
    "AtomicCounter",
    "ClaimError",
    "ClaimStats",
    "ClaimStrategy",
    "Kind",
    "Op",
    "OptimisticVersion",
    "Outcome",
    "PessimisticLock",
    "RemoteClaim",
    "SerialQueue",
    "Status",
    "Step",
    "after_cas_conflict",
    "after_locked_read",
    "backoff_delay",
    "free_at_read",
    "incr_grants",
    "make_claim_strategy",
    "serve_request",
]


class Op(StrEnum):
    """An atomic operation a claim (or a release) performs against the store."""

    LOCK = "lock"  # SELECT ... FOR UPDATE: take the row lock and read the row under it
    COMMIT = "commit"  # write under the lock and commit (releases the lock)
    ABORT = "abort"  # roll back without writing (releases the lock)
    READ = "read"  # optimistic: read value and version, no lock
    CAS = "cas"  # optimistic: UPDATE ... WHERE version = seen
    UPDATE = "update"  # single-statement write (a release); waits for a row lock if held
    INCR = "incr"  # atomic increment, returns the new value
    DECR = "decr"  # atomic decrement, floored at zero
    ENQUEUE = "enqueue"  # put the request on the serialising queue
    SERVE = "serve"  # the queue's consumer decides the request


class Status(StrEnum):
    """What a step left the claim in. The last four are final."""

    PENDING = "pending"  # performed; ``next_op`` is to be performed next
    BLOCKED = "blocked"  # waiting for a lock or the consumer; it comes back in a ``woken``
    CONFLICT = "conflict"  # version mismatch; back off, then perform ``next_op`` (a new read)
    GRANTED = "granted"
    REFUSED = "refused"  # nothing free on the target
    FAILED = "failed"  # gave up after ``max_retries`` conflicts
    RELEASED = "released"  # a release finished: the unit is free again

    @property
    def final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset({Status.GRANTED, Status.REFUSED, Status.FAILED, Status.RELEASED})


class Kind(StrEnum):
    """A transaction either claims a unit or gives a granted one back."""

    CLAIM = "claim"
    RELEASE = "release"


@dataclass(frozen=True, slots=True)
class Step:
    """The result of ``begin``, ``release`` or ``step``: where the transaction now stands."""

    claim_id: Hashable
    kind: Kind
    status: Status
    t: float
    next_op: Op | None = None
    attempt: int = 0  # conflicts so far (optimistic); the retry number of the next read
    woken: tuple[Step, ...] = ()  # waiters this step handed the lock/consumer to


class ClaimError(ValueError):
    """The caller misused the protocol (a programming error, never a refusal)."""


@dataclass(slots=True)
class ClaimStats:
    """Counters a dashboard (or the study) reads; all since construction."""

    claims: int = 0
    granted: int = 0
    refused: int = 0
    failed: int = 0
    released: int = 0
    conflicts: int = 0  # version mismatches seen at compare-and-set
    retries: int = 0  # conflicts followed by a new attempt (the rest became failures)
    blocks: int = 0  # times a claim or release had to wait for a lock or the consumer
    wait_s: float = 0.0  # total time spent blocked, in the caller's time unit
    spurious_refusals: int = 0  # atomic: refused while a unit was in fact free


@runtime_checkable
class ClaimStrategy(Protocol):
    """One way of claiming units of targets (spots: capacity 1; counters: capacity n)."""

    name: ClassVar[str]
    stats: ClaimStats

    def begin(self, claim_id: Hashable, target: Hashable, t: float) -> Step:
        """Register a claim on ``target``; nothing is touched until its first ``step``."""
        ...

    def step(self, claim_id: Hashable, t: float) -> Step:
        """Perform the transaction's next operation atomically at time ``t``."""
        ...

    def release(self, claim_id: Hashable, t: float) -> Step:
        """Start giving back the unit granted to ``claim_id``; continue it with ``step``."""
        ...

    def capacity(self, target: Hashable) -> int: ...

    def held(self, target: Hashable) -> int:
        """Units of ``target`` granted and not yet released."""
        ...

    def holders(self, target: Hashable) -> frozenset[Hashable]: ...

    def store_value(self, target: Hashable) -> int:
        """The number the store itself holds for ``target`` (row value, counter)."""
        ...


def backoff_delay(attempt: int, base: float, cap: float, u: float) -> float:
    """Exponential back-off with full jitter: ``u * min(cap, base * 2**(attempt - 1))``.

    Full jitter (a uniform draw over the whole window) spreads retrying claimants apart, which
    is what stops them colliding again on the same version. ``u`` in [0, 1) is injected so the
    core stays deterministic; ``attempt`` counts conflicts so far (1 for the first retry).
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    if not 0.0 <= u < 1.0:
        raise ValueError(f"u must be in [0, 1), got {u}")
    if base < 0 or cap < 0:
        raise ValueError("base and cap must be >= 0")
    return u * min(cap, base * 2.0 ** min(attempt - 1, 62))


# -- the decisions ----------------------------------------------------------------------------
# Every choice a claim makes between two operations, as a pure function of what the operation
# saw. The in-memory strategies below call them, and so does ``RemoteClaim`` for stores that
# perform the operations themselves (adapters/stores): one rule, whichever store holds the row.


def after_locked_read(kind: Kind, used: int, capacity: int) -> Op:
    """Pessimistic: the row is locked and read; a claim commits if a unit is left, else aborts."""
    if kind is Kind.RELEASE:
        return Op.COMMIT
    return Op.ABORT if used >= capacity else Op.COMMIT


def free_at_read(used: int, capacity: int) -> bool:
    """Optimistic: a read that finds the target full refuses at once, without a write."""
    return used < capacity


def after_cas_conflict(attempt: int, max_retries: int | None) -> Status:
    """Optimistic: after the ``attempt``-th conflict, retry (CONFLICT) or give up (FAILED)."""
    if max_retries is not None and attempt > max_retries:
        return Status.FAILED
    return Status.CONFLICT


def incr_grants(value: int, capacity: int) -> bool:
    """Atomic: the value INCR returned is a grant when within capacity; otherwise DECR back."""
    return value <= capacity


def serve_request(kind: Kind, used: int, capacity: int) -> tuple[Status, int]:
    """Queue: the consumer's decision on one request and the target's count after it."""
    if kind is Kind.RELEASE:
        return Status.RELEASED, used - 1
    if used < capacity:
        return Status.GRANTED, used + 1
    return Status.REFUSED, used


@dataclass(slots=True)
class _Tx:
    """One in-flight transaction (a claim or a release) and what it has read so far."""

    claim_id: Hashable
    target: Hashable
    kind: Kind
    next_op: Op | None
    attempt: int = 0
    blocked_since: float | None = None
    seen_version: int = -1  # optimistic: version read by the last READ
    full: bool = False  # pessimistic: the row read under the lock had no unit left
    spurious: bool = False  # atomic: this refusal happened while a unit was free


class _Base:
    """Bookkeeping shared by every strategy: transactions, holders, time, stats."""

    name: ClassVar[str] = ""
    _first_op: ClassVar[Op]
    _release_op: ClassVar[Op]

    def __init__(self, capacities: Mapping[Hashable, int]) -> None:
        if not capacities:
            raise ValueError("at least one target is needed")
        caps: dict[Hashable, int] = {}
        for target, cap in capacities.items():
            if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
                raise ValueError(f"capacity of {target!r} must be an int >= 0, got {cap!r}")
            caps[target] = cap
        self._cap = caps
        self._holders: dict[Hashable, set[Hashable]] = {k: set() for k in caps}
        self._granted: dict[Hashable, Hashable] = {}
        self._tx: dict[Hashable, _Tx] = {}
        self._now = float("-inf")
        self.stats = ClaimStats()

    # -- queries ----------------------------------------------------------------------------
    def capacity(self, target: Hashable) -> int:
        return self._cap[target]

    def held(self, target: Hashable) -> int:
        return len(self._holders[target])

    def holders(self, target: Hashable) -> frozenset[Hashable]:
        return frozenset(self._holders[target])

    def targets(self) -> tuple[Hashable, ...]:
        return tuple(self._cap)

    def in_flight(self) -> int:
        """Transactions begun and not finished (blocked ones included)."""
        return len(self._tx)

    def store_value(self, target: Hashable) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    # -- protocol ---------------------------------------------------------------------------
    def begin(self, claim_id: Hashable, target: Hashable, t: float) -> Step:
        self._tick(t)
        if target not in self._cap:
            raise ClaimError(f"unknown target {target!r}")
        if claim_id in self._tx or claim_id in self._granted:
            raise ClaimError(f"claim {claim_id!r} is already in flight or holds a unit")
        self._tx[claim_id] = _Tx(claim_id, target, Kind.CLAIM, self._first_op)
        self.stats.claims += 1
        return Step(claim_id, Kind.CLAIM, Status.PENDING, t, self._first_op)

    def release(self, claim_id: Hashable, t: float) -> Step:
        self._tick(t)
        if claim_id not in self._granted:
            raise ClaimError(f"claim {claim_id!r} holds no unit to release")
        if claim_id in self._tx:
            raise ClaimError(f"claim {claim_id!r} is already being released")
        tx = _Tx(claim_id, self._granted[claim_id], Kind.RELEASE, self._release_op)
        self._tx[claim_id] = tx
        return Step(claim_id, Kind.RELEASE, Status.PENDING, t, self._release_op)

    def step(self, claim_id: Hashable, t: float) -> Step:
        self._tick(t)
        tx = self._tx.get(claim_id)
        if tx is None:
            raise ClaimError(f"claim {claim_id!r} has no transaction in flight")
        if tx.next_op is None:
            raise ClaimError(f"claim {claim_id!r} is blocked; it resumes when woken")
        op, tx.next_op = tx.next_op, None
        return self._perform(tx, op, t)

    # -- for subclasses ---------------------------------------------------------------------
    def _perform(self, tx: _Tx, op: Op, t: float) -> Step:  # pragma: no cover - overridden
        raise NotImplementedError

    def _tick(self, t: float) -> None:
        if t < self._now:
            raise ClaimError(f"time went backwards: {t} after {self._now}")
        self._now = t

    def _pending(self, tx: _Tx, op: Op, t: float, status: Status = Status.PENDING) -> Step:
        tx.next_op = op
        return Step(tx.claim_id, tx.kind, status, t, op, tx.attempt)

    def _block(self, tx: _Tx, t: float) -> Step:
        tx.blocked_since = t
        self.stats.blocks += 1
        return Step(tx.claim_id, tx.kind, Status.BLOCKED, t, None, tx.attempt)

    def _wake(self, tx: _Tx, op: Op, t: float) -> Step:
        if tx.blocked_since is not None:
            self.stats.wait_s += t - tx.blocked_since
            tx.blocked_since = None
        return self._pending(tx, op, t)

    def _finish(self, tx: _Tx, status: Status, t: float, woken: tuple[Step, ...] = ()) -> Step:
        del self._tx[tx.claim_id]
        stats = self.stats
        if status is Status.GRANTED:
            self._holders[tx.target].add(tx.claim_id)
            self._granted[tx.claim_id] = tx.target
            stats.granted += 1
        elif status is Status.RELEASED:
            self._holders[tx.target].discard(tx.claim_id)
            del self._granted[tx.claim_id]
            stats.released += 1
        elif status is Status.REFUSED:
            stats.refused += 1
            stats.spurious_refusals += tx.spurious
        elif status is Status.FAILED:
            stats.failed += 1
        return Step(tx.claim_id, tx.kind, status, t, None, tx.attempt, woken)


class PessimisticLock(_Base):
    """Per-row lock held from the locking read to the commit; waiters queue FIFO per row.

    The claimant reads the row under the lock; if a unit is left it writes and commits,
    otherwise it rolls back. Releases are single ``UPDATE`` statements and wait for the row
    lock like anyone else (a database would make them wait too), then hold it until their own
    commit. Nothing else can touch a locked row, so the decision made at the read still holds
    at the commit.
    """

    name: ClassVar[str] = "pessimistic"
    _first_op: ClassVar[Op] = Op.LOCK
    _release_op: ClassVar[Op] = Op.UPDATE

    def __init__(
        self,
        capacities: Mapping[Hashable, int],
        *,
        pick: Callable[[int], int] | None = None,
    ) -> None:
        super().__init__(capacities)
        self._used = dict.fromkeys(self._cap, 0)
        self._owner: dict[Hashable, Hashable | None] = dict.fromkeys(self._cap)
        self._waiters: dict[Hashable, deque[Hashable]] = {k: deque() for k in self._cap}
        #: which waiter a freed row goes to: ``pick(n)`` is an index into the n waiters, oldest
        #: first; None: the oldest (FIFO). PostgreSQL's is not FIFO: a commit that updated the
        #: row leaves every waiter to chase its new version, and the first there takes it
        self._pick = pick

    def store_value(self, target: Hashable) -> int:
        return self._used[target]

    def lock_owner(self, target: Hashable) -> Hashable | None:
        return self._owner[target]

    def waiting(self, target: Hashable) -> tuple[Hashable, ...]:
        return tuple(self._waiters[target])

    def _acquired(self, tx: _Tx) -> Op:
        """Read the row under the freshly taken lock and choose what to send next."""
        op = after_locked_read(tx.kind, self._used[tx.target], self._cap[tx.target])
        tx.full = op is Op.ABORT
        return op

    def _perform(self, tx: _Tx, op: Op, t: float) -> Step:
        target = tx.target
        if op is Op.LOCK or op is Op.UPDATE:
            if self._owner[target] is None:
                self._owner[target] = tx.claim_id
                return self._pending(tx, self._acquired(tx), t)
            self._waiters[target].append(tx.claim_id)
            return self._block(tx, t)
        if op is Op.COMMIT:
            if tx.kind is Kind.CLAIM:
                self._used[target] += 1
                status = Status.GRANTED
            else:
                self._used[target] -= 1
                status = Status.RELEASED
        elif op is Op.ABORT:
            status = Status.REFUSED
        else:  # pragma: no cover - the machine never schedules other ops here
            raise ClaimError(f"{op} is not an operation of {self.name}")
        return self._finish(tx, status, t, self._unlock(target, t))

    def _unlock(self, target: Hashable, t: float) -> tuple[Step, ...]:
        """Hand the row lock to the longest waiter (FIFO, like a lock manager), or to the one
        ``pick`` chooses, if any waits."""
        waiters = self._waiters[target]
        if not waiters:
            self._owner[target] = None
            return ()
        if self._pick is None or len(waiters) == 1:
            nxt = self._tx[waiters.popleft()]
        else:
            k = self._pick(len(waiters))
            nxt = self._tx[waiters[k]]
            del waiters[k]
        self._owner[target] = nxt.claim_id
        return (self._wake(nxt, self._acquired(nxt), t),)


class OptimisticVersion(_Base):
    """Read (value, version) without a lock; compare-and-set on the version later.

    A claim that finds the target full is refused at the read, without a write. A CAS that
    finds a newer version is a conflict: the caller backs off (see :func:`backoff_delay`) and
    steps again, which re-reads. After ``max_retries`` retries the next conflict fails the
    claim (``None``: retry for ever).

    The CAS increments relatively (``SET used = used + 1, version = version + 1 WHERE version =
    seen``), so the version guards only the *decision* "a unit was free when I read". A release
    (``SET used = used - 1``, one atomic statement that never conflicts) can only make that
    decision truer, so it leaves the version alone: bumping it would make every exit force the
    in-flight claims on that row to retry for nothing.
    """

    name: ClassVar[str] = "optimistic"
    _first_op: ClassVar[Op] = Op.READ
    _release_op: ClassVar[Op] = Op.UPDATE

    def __init__(self, capacities: Mapping[Hashable, int], max_retries: int | None = 5) -> None:
        super().__init__(capacities)
        if max_retries is not None and max_retries < 0:
            raise ValueError(f"max_retries must be >= 0 or None, got {max_retries}")
        self.max_retries = max_retries
        self._used = dict.fromkeys(self._cap, 0)
        self._version = dict.fromkeys(self._cap, 0)

    def store_value(self, target: Hashable) -> int:
        return self._used[target]

    def version(self, target: Hashable) -> int:
        return self._version[target]

    def _perform(self, tx: _Tx, op: Op, t: float) -> Step:
        target = tx.target
        if op is Op.READ:
            if not free_at_read(self._used[target], self._cap[target]):
                return self._finish(tx, Status.REFUSED, t)
            tx.seen_version = self._version[target]
            return self._pending(tx, Op.CAS, t)
        if op is Op.CAS:
            if self._version[target] == tx.seen_version:
                self._used[target] += 1
                self._version[target] += 1
                return self._finish(tx, Status.GRANTED, t)
            self.stats.conflicts += 1
            tx.attempt += 1
            if after_cas_conflict(tx.attempt, self.max_retries) is Status.FAILED:
                return self._finish(tx, Status.FAILED, t)
            self.stats.retries += 1
            return self._pending(tx, Op.READ, t, Status.CONFLICT)
        if op is Op.UPDATE:
            self._used[target] = max(0, self._used[target] - 1)
            return self._finish(tx, Status.RELEASED, t)
        raise ClaimError(f"{op} is not an operation of {self.name}")  # pragma: no cover


class AtomicCounter(_Base):
    """``INCR``, check against the capacity, ``DECR`` to back out; ``DECR`` floors at zero.

    Each operation is atomic on its own (one Redis command), so there is no lock and no
    retry: a claim costs one operation when it wins and two when it loses. Between a losing
    ``INCR`` and its ``DECR`` the counter stands above the capacity; claims that ``INCR`` in
    that moment are refused even if a unit is free (``stats.spurious_refusals``). A Lua script
    doing both in one step would avoid it at the price of one longer operation.
    """

    name: ClassVar[str] = "atomic"
    _first_op: ClassVar[Op] = Op.INCR
    _release_op: ClassVar[Op] = Op.DECR

    def __init__(self, capacities: Mapping[Hashable, int]) -> None:
        super().__init__(capacities)
        self._value = dict.fromkeys(self._cap, 0)

    def store_value(self, target: Hashable) -> int:
        return self._value[target]

    def _perform(self, tx: _Tx, op: Op, t: float) -> Step:
        target = tx.target
        if op is Op.INCR:
            self._value[target] += 1
            if incr_grants(self._value[target], self._cap[target]):
                return self._finish(tx, Status.GRANTED, t)
            tx.spurious = self.held(target) < self._cap[target]
            return self._pending(tx, Op.DECR, t)
        if op is Op.DECR:
            self._value[target] = max(0, self._value[target] - 1)
            status = Status.REFUSED if tx.kind is Kind.CLAIM else Status.RELEASED
            return self._finish(tx, status, t)
        raise ClaimError(f"{op} is not an operation of {self.name}")  # pragma: no cover


class SerialQueue(_Base):
    """One consumer takes claims and releases off one queue, in order, one at a time.

    ``ENQUEUE`` puts the request on the queue; the request at the head is *in service* and its
    ``SERVE`` step is the consumer deciding it (grant or refuse a claim, apply a release) and
    moving on to the next request, which it reports as woken. No request ever sees another's
    half-done work, so there is nothing to lock, but the whole store goes only as fast as the
    one consumer.
    """

    name: ClassVar[str] = "queue"
    _first_op: ClassVar[Op] = Op.ENQUEUE
    _release_op: ClassVar[Op] = Op.ENQUEUE

    def __init__(self, capacities: Mapping[Hashable, int]) -> None:
        super().__init__(capacities)
        self._used = dict.fromkeys(self._cap, 0)
        self._queue: deque[Hashable] = deque()
        self._serving: Hashable | None = None

    def store_value(self, target: Hashable) -> int:
        return self._used[target]

    @property
    def serving(self) -> Hashable | None:
        return self._serving

    def queued(self) -> tuple[Hashable, ...]:
        return tuple(self._queue)

    def _perform(self, tx: _Tx, op: Op, t: float) -> Step:
        target = tx.target
        if op is Op.ENQUEUE:
            if self._serving is None:
                self._serving = tx.claim_id
                return self._pending(tx, Op.SERVE, t)
            self._queue.append(tx.claim_id)
            return self._block(tx, t)
        if op is Op.SERVE:
            status, self._used[target] = serve_request(
                tx.kind, self._used[target], self._cap[target]
            )
            woken: tuple[Step, ...] = ()
            if self._queue:
                nxt = self._tx[self._queue.popleft()]
                self._serving = nxt.claim_id
                woken = (self._wake(nxt, Op.SERVE, t),)
            else:
                self._serving = None
            return self._finish(tx, status, t, woken)
        raise ClaimError(f"{op} is not an operation of {self.name}")  # pragma: no cover


#: Strategy name → class, in the order reports list them.
CLAIM_STRATEGIES: dict[str, type[_Base]] = {
    cls.name: cls for cls in (PessimisticLock, OptimisticVersion, AtomicCounter, SerialQueue)
}


def make_claim_strategy(
    name: str,
    capacities: Mapping[Hashable, int],
    *,
    max_retries: int | None = 5,
    pick: Callable[[int], int] | None = None,
) -> ClaimStrategy:
    """Build a strategy by name; ``max_retries`` applies to ``optimistic`` only, ``pick`` (which
    waiter a freed row goes to; None: the oldest) to ``pessimistic`` only."""
    if name not in CLAIM_STRATEGIES:
        allowed = ", ".join(CLAIM_STRATEGIES)
        raise ValueError(f"unknown claim strategy {name!r} (allowed: {allowed})")
    if name == OptimisticVersion.name:
        return OptimisticVersion(capacities, max_retries=max_retries)
    if name == PessimisticLock.name:
        return PessimisticLock(capacities, pick=pick)
    return CLAIM_STRATEGIES[name](capacities)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a real store reported for one operation (only the fields that operation has)."""

    used: int | None = None  # LOCK, READ: the row's count; INCR: the counter after it
    capacity: int | None = None  # LOCK, READ, INCR: the target's capacity
    version: int | None = None  # READ: the row's version
    matched: bool | None = None  # CAS: the version still matched, the write happened
    status: Status | None = None  # SERVE: the consumer's decision


class RemoteClaim:
    """One claim (or release) against a store that performs each operation itself.

    The store (a PostgreSQL row, a Redis counter, a queue's single consumer) holds the shared
    state and performs each operation atomically; this object makes every decision between two
    operations, with the functions the in-memory strategies use. ``start`` names the first
    operation; the store performs ``step.next_op`` and reports an :class:`Outcome`; ``observe``
    says what comes next. A CONFLICT means: wait ``backoff_delay(step.attempt, ...)``, then
    perform ``next_op`` (a new READ). The store never chooses, so the decisions running against
    PostgreSQL or Redis are the ones the study and the property tests exercise.
    """

    __slots__ = (
        "_next",
        "attempt",
        "claim_id",
        "kind",
        "max_retries",
        "seen_version",
        "strategy",
        "target",
    )

    def __init__(
        self,
        strategy: str,
        claim_id: Hashable,
        target: Hashable,
        kind: Kind = Kind.CLAIM,
        *,
        max_retries: int | None = 5,
    ) -> None:
        if strategy not in CLAIM_STRATEGIES:
            allowed = ", ".join(CLAIM_STRATEGIES)
            raise ValueError(f"unknown claim strategy {strategy!r} (allowed: {allowed})")
        self.strategy, self.claim_id, self.target, self.kind = strategy, claim_id, target, kind
        self.max_retries = max_retries
        self.attempt = 0
        self.seen_version = -1
        cls = CLAIM_STRATEGIES[strategy]
        self._next: Op | None = cls._first_op if kind is Kind.CLAIM else cls._release_op

    def start(self, t: float) -> Step:
        return Step(self.claim_id, self.kind, Status.PENDING, t, self._next)

    def observe(self, outcome: Outcome, t: float) -> Step:
        """The store performed ``next_op`` and saw ``outcome``: decide the next move."""
        op, self._next = self._next, None
        if op is None:
            raise ClaimError(f"claim {self.claim_id!r} has nothing left to perform")
        kind, status, nxt = self.kind, Status.PENDING, None
        if op is Op.LOCK or (op is Op.UPDATE and self.strategy == PessimisticLock.name):
            nxt = after_locked_read(kind, _need(outcome.used), _need(outcome.capacity))
        elif op is Op.COMMIT:
            status = Status.GRANTED if kind is Kind.CLAIM else Status.RELEASED
        elif op is Op.ABORT:
            status = Status.REFUSED
        elif op is Op.READ:
            if free_at_read(_need(outcome.used), _need(outcome.capacity)):
                self.seen_version, nxt = _need(outcome.version), Op.CAS
            else:
                status = Status.REFUSED
        elif op is Op.CAS:
            if outcome.matched:
                status = Status.GRANTED
            else:
                self.attempt += 1
                status = after_cas_conflict(self.attempt, self.max_retries)
                nxt = Op.READ if status is Status.CONFLICT else None
        elif op is Op.UPDATE or (op is Op.DECR and kind is Kind.RELEASE):
            status = Status.RELEASED
        elif op is Op.INCR:
            if incr_grants(_need(outcome.used), _need(outcome.capacity)):
                status = Status.GRANTED
            else:
                nxt = Op.DECR
        elif op is Op.DECR:
            status = Status.REFUSED
        elif op is Op.ENQUEUE:
            nxt = Op.SERVE
        elif op is Op.SERVE:
            status = outcome.status or Status.PENDING
            if not status.final:
                raise ClaimError(f"the consumer answered {outcome.status!r}, not a decision")
        self._next = nxt
        return Step(self.claim_id, kind, status, t, nxt, self.attempt)


def _need(value: int | None) -> int:
    if value is None:
        raise ClaimError("the store did not report a value this operation needs")
    return value
