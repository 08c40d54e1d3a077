"""Redis claim stores: an atomic counter (INCR/DECR) and a single serialising queue.

Keys live under a prefix (``parktwin`` unless given; tests use a fresh one each), in one hash
slot (``{prefix}``) so the scripts below also work on a cluster:

``{p}:cap``        hash target → capacity
``{p}:used:<t>``   atomic: the counter of target ``t`` (INCR/DECR)
``{p}:used``       queue: hash target → units held (written by the consumer only)
``{p}:avail``      the availability cache a sign or an app reads: hash target → free units
``{p}:avail:level`` the same summed per level (the part of a target before ``/``)
``{p}:queue``      queue: the request list; ``{p}:reply:<claim>`` one reply list per request
``{p}:consumer``   queue: who the single consumer is (SET NX with a lease)

``atomic`` performs the core's two-command pattern: INCR, and when the value it returns is over
the capacity (the core decides that), DECR. Each command runs in a Lua script that also rewrites
the availability cache from the counter it just changed (``free = max(0, capacity − counter)``)
and adjusts the level's sum by the same step, so no reader ever sees the counter and the cache
disagree, and a client killed between two commands cannot leave a count half-updated. The
surplus the core describes is real here: between a losing INCR and its DECR the counter stands
above the capacity and the cache shows 0 free; a concurrent claim is refused (fail closed). A
client killed in that moment leaves the surplus behind: the unit stays unclaimable until
:meth:`AtomicCounterStore.reconcile` (or an operator) sets the counter from the reservations of
record, which this store does not keep.

``queue``: a client LPUSHes its request (ENQUEUE) and waits on its own reply list (SERVE);
one :class:`QueueConsumer` BRPOPs requests in order, asks the core (``serve_request``) for the
decision, and writes the new count, the cache and the reply in one MULTI/EXEC.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping

from twin.core.locking import Kind, Op, Outcome, RemoteClaim, Status, serve_request

from .base import StoreUnavailable, redis_url

try:
    import redis
except ImportError:  # pragma: no cover - the `stores` extra is not installed
    redis = None  # type: ignore[assignment]

__all__ = [
    "AtomicCounterStore",
    "QueueConsumer",
    "QueueStore",
    "level_of",
    "redis_available",
    "serve_until",
]

# KEYS: counter, cap hash, avail hash, level hash; ARGV: target, level, +1 (INCR) or -1 (DECR).
# Returns {counter after, capacity}. DECR floors at zero, as the core's does.
_STEP = """
local before = tonumber(redis.call('GET', KEYS[1]) or '0')
local after
if ARGV[3] == '1' then
  after = redis.call('INCR', KEYS[1])
elseif before > 0 then
  after = redis.call('DECR', KEYS[1])
else
  after = 0
end
local cap = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local free_before = math.max(0, cap - before)
local free_after = math.max(0, cap - after)
redis.call('HSET', KEYS[3], ARGV[1], free_after)
if free_after ~= free_before then
  redis.call('HINCRBY', KEYS[4], ARGV[2], free_after - free_before)
end
return {after, cap}
"""


def redis_available(url: str | None = None) -> str | None:
    """None when a Redis server answers at ``url``; otherwise why not, in one line."""
    if redis is None:
        return "redis is not installed (pip install 'parktwin[stores]')"
    try:
        redis.Redis.from_url(redis_url(url), socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return f"no Redis at {redis_url(url)}: {exc}"
    return None


def level_of(target: str) -> str:
    """The level a ``level/type`` target belongs to (the whole name if it has no ``/``)."""
    return target.split("/", 1)[0]


class _RedisStore:
    strategy = ""

    def __init__(
        self, url: str | None = None, *, prefix: str = "parktwin", pool_size: int = 4
    ) -> None:
        if redis is None:
            raise StoreUnavailable("redis is not installed (pip install 'parktwin[stores]')")
        self.url = redis_url(url)
        self.prefix = prefix
        # a pool per process; decode so counts come back as str/int, not bytes
        self.r = redis.Redis.from_url(
            self.url, decode_responses=True, socket_timeout=30, max_connections=pool_size
        )
        try:
            self.r.ping()
        except redis.RedisError as exc:
            raise StoreUnavailable(f"no Redis at {self.url}: {exc}") from exc
        p = "{" + prefix + "}"
        self.k_cap, self.k_avail, self.k_level = f"{p}:cap", f"{p}:avail", f"{p}:avail:level"
        self.k_used, self.k_queue, self.k_consumer = f"{p}:used", f"{p}:queue", f"{p}:consumer"

    def setup(self, capacities: Mapping[str, int]) -> None:
        """Capacities, and a full availability cache for targets not seen before."""
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.k_cap, mapping=dict(capacities))
        for target, cap in capacities.items():
            pipe.hsetnx(self.k_avail, target, cap)
        pipe.execute()
        self._resum_levels()

    def _resum_levels(self) -> None:
        levels: dict[str, int] = {}
        for target, free in self.r.hgetall(self.k_avail).items():
            levels[level_of(target)] = levels.get(level_of(target), 0) + int(free)
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self.k_level)
        if levels:
            pipe.hset(self.k_level, mapping=levels)
        pipe.execute()

    def capacities(self) -> dict[str, int]:
        return {t: int(c) for t, c in self.r.hgetall(self.k_cap).items()}

    def availability(self) -> tuple[dict[str, int], dict[str, int]]:
        """The cache as a reader sees it: free units per target and per level."""
        pipe = self.r.pipeline(transaction=True)
        pipe.hgetall(self.k_avail)
        pipe.hgetall(self.k_level)
        per_target, per_level = pipe.execute()
        return (
            {t: int(v) for t, v in per_target.items()},
            {t: int(v) for t, v in per_level.items()},
        )

    def close(self) -> None:
        self.r.close()

    def drop(self) -> None:
        keys = list(self.r.scan_iter(match="{" + self.prefix + "}:*", count=1000))
        if keys:
            self.r.delete(*keys)


class AtomicCounterStore(_RedisStore):
    """``atomic``: one Redis counter per target, INCR to claim, DECR to back out or release."""

    strategy = "atomic"

    def __init__(
        self, url: str | None = None, *, prefix: str = "parktwin", pool_size: int = 4
    ) -> None:
        super().__init__(url, prefix=prefix, pool_size=pool_size)
        self._step = self.r.register_script(_STEP)

    def _counter(self, target: str) -> str:
        return f"{{{self.prefix}}}:used:{target}"

    def perform(self, claim: RemoteClaim, op: Op) -> Outcome:
        if op not in (Op.INCR, Op.DECR):
            raise ValueError(f"{op} is not an operation of atomic on Redis")
        target = str(claim.target)
        keys = [self._counter(target), self.k_cap, self.k_avail, self.k_level]
        after, cap = self._step(keys, [target, level_of(target), 1 if op is Op.INCR else -1])
        return Outcome(used=int(after), capacity=int(cap))

    def counts(self) -> dict[str, int]:
        return self.snapshot()[0]

    def snapshot(self) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        """Counters, free units per target and per level, read in one MULTI (one instant)."""
        caps = self.capacities()
        pipe = self.r.pipeline(transaction=True)
        pipe.mget([self._counter(t) for t in caps])
        pipe.hgetall(self.k_avail)
        pipe.hgetall(self.k_level)
        values, per_target, per_level = pipe.execute()
        return (
            {t: int(v or 0) for t, v in zip(caps, values, strict=True)},
            {t: int(v) for t, v in per_target.items()},
            {t: int(v) for t, v in per_level.items()},
        )

    def reset(self) -> None:
        caps = self.capacities()
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(*[self._counter(t) for t in caps])
        pipe.delete(self.k_avail)
        pipe.hset(self.k_avail, mapping=caps)
        pipe.execute()
        self._resum_levels()

    def prefill(self, holders: Mapping[str, str]) -> None:
        """Claim a unit for each holder directly (a lot that starts part-full)."""
        for target in holders.values():
            self._step(
                [self._counter(target), self.k_cap, self.k_avail, self.k_level],
                [target, level_of(target), 1],
            )

    def reconcile(self, held: Mapping[str, int]) -> None:
        """Set each counter (and the cache) from the reservations of record, e.g. after a client
        died between a losing INCR and its DECR and left a surplus behind."""
        caps = self.capacities()
        pipe = self.r.pipeline(transaction=True)
        for target, cap in caps.items():
            n = int(held.get(target, 0))
            pipe.set(self._counter(target), n)
            pipe.hset(self.k_avail, target, max(0, cap - n))
        pipe.execute()
        self._resum_levels()


class QueueStore(_RedisStore):
    """``queue``: requests go on one list; the single :class:`QueueConsumer` decides them."""

    strategy = "queue"

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = "parktwin",
        pool_size: int = 4,
        reply_timeout_s: float = 30,
    ) -> None:
        super().__init__(url, prefix=prefix, pool_size=pool_size)
        self.reply_timeout_s = reply_timeout_s

    def perform(self, claim: RemoteClaim, op: Op) -> Outcome:
        reply = f"{{{self.prefix}}}:reply:{claim.claim_id}"
        if op is Op.ENQUEUE:
            request = {
                "id": str(claim.claim_id),
                "kind": claim.kind.value,
                "target": str(claim.target),
                "reply": reply,
            }
            self.r.lpush(self.k_queue, json.dumps(request))
            return Outcome()
        if op is Op.SERVE:
            got = self.r.brpop([reply], timeout=self.reply_timeout_s)
            if got is None:
                raise TimeoutError(
                    f"no answer from the queue's consumer in {self.reply_timeout_s} s"
                )
            return Outcome(status=Status(got[1]))
        raise ValueError(f"{op} is not an operation of queue on Redis")

    def counts(self) -> dict[str, int]:
        return self.snapshot()[0]

    def snapshot(self) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        """Units held, free units per target and per level, read in one MULTI (one instant)."""
        caps = self.capacities()
        pipe = self.r.pipeline(transaction=True)
        pipe.hgetall(self.k_used)
        pipe.hgetall(self.k_avail)
        pipe.hgetall(self.k_level)
        used, per_target, per_level = pipe.execute()
        return (
            {t: int(used.get(t, 0)) for t in caps},
            {t: int(v) for t, v in per_target.items()},
            {t: int(v) for t, v in per_level.items()},
        )

    def reset(self) -> None:
        caps = self.capacities()
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self.k_used, self.k_queue, self.k_avail)
        pipe.hset(self.k_avail, mapping=caps)
        pipe.execute()
        self._resum_levels()

    def prefill(self, holders: Mapping[str, str]) -> None:
        """Hold a unit for each holder directly (only while no consumer is serving)."""
        caps = self.capacities()
        for target in holders.values():
            used = self.r.hincrby(self.k_used, target, 1)
            self.r.hset(self.k_avail, target, max(0, caps[target] - used))
        self._resum_levels()


class QueueConsumer:
    """The one process that decides queued claims, in order, one at a time.

    It takes a lease on ``{p}:consumer`` (SET NX, renewed while it runs), so a second consumer
    refuses to start: two would make the queue's one guarantee, serial decisions, false.
    """

    def __init__(
        self, url: str | None = None, *, prefix: str = "parktwin", lease_s: float = 10
    ) -> None:
        self.store = QueueStore(url, prefix=prefix)
        self.lease_s = lease_s
        self.served = 0
        self.busy_s = 0.0  # time spent deciding (from a request popped to its reply written)

    def run(self, should_stop=lambda: False, *, poll_s: float = 0.05) -> int:
        """Serve until ``should_stop()`` is true; returns the number of requests served."""
        s, r = self.store, self.store.r
        me = f"{os.getpid()}"
        if not r.set(s.k_consumer, me, nx=True, px=int(self.lease_s * 1000)):
            raise RuntimeError(f"another consumer ({r.get(s.k_consumer)}) serves {s.k_queue}")
        renew = time.monotonic() + self.lease_s / 3
        caps = s.capacities()
        try:
            while not should_stop():
                if time.monotonic() > renew:
                    r.pexpire(s.k_consumer, int(self.lease_s * 1000))
                    renew = time.monotonic() + self.lease_s / 3
                got = r.brpop([s.k_queue], timeout=poll_s)
                if got is None:
                    continue
                t0 = time.perf_counter()
                self._serve(json.loads(got[1]), caps)
                self.busy_s += time.perf_counter() - t0
                self.served += 1
        finally:
            if r.get(s.k_consumer) == me:
                r.delete(s.k_consumer)
        return self.served

    def _serve(self, request: dict, caps: dict[str, int]) -> None:
        s, target = self.store, request["target"]
        used = int(s.r.hget(s.k_used, target) or 0)
        status, new = serve_request(Kind(request["kind"]), used, caps[target])
        pipe = s.r.pipeline(transaction=True)
        if new != used:
            pipe.hset(s.k_used, target, new)
            pipe.hset(s.k_avail, target, max(0, caps[target] - new))
            pipe.hincrby(s.k_level, level_of(target), used - new)
        pipe.lpush(request["reply"], status.value)
        pipe.expire(request["reply"], 60)
        pipe.execute()


def serve_until(url: str | None, prefix: str, stop, stats=None) -> None:
    """Process entry point: run the single consumer until ``stop`` (an Event) is set; put
    (served, busy seconds) on ``stats`` (a queue) when given."""
    consumer = QueueConsumer(url, prefix=prefix)
    try:
        consumer.run(stop.is_set)
    finally:
        if stats is not None:
            stats.put((consumer.served, consumer.busy_s))
        consumer.store.close()
