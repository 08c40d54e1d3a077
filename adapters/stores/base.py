"""What every claim store shares: where its server is, and the loop that runs one claim.

A store *performs* operations (a locking read, a compare-and-set, an INCR, a queue message) and
reports what it saw; :class:`twin.core.locking.RemoteClaim` *decides* what to do next with the
same rules as the in-memory strategies of the study. :func:`run_claim` is the whole client side:
ask the core for the next operation, have the store perform it, hand the outcome back, back off
on a conflict with the core's :func:`~twin.core.locking.backoff_delay`. Nothing in a store
chooses between granting and refusing.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Protocol, runtime_checkable

from twin.core.locking import Kind, Op, Outcome, RemoteClaim, Status, Step, backoff_delay

__all__ = [
    "DEFAULT_PG_DSN",
    "DEFAULT_REDIS_URL",
    "PG_ENV",
    "REDIS_ENV",
    "ClaimStore",
    "StoreUnavailable",
    "pg_dsn",
    "redis_url",
    "run_claim",
    "run_release",
]

#: Environment variables naming the servers when no connection string is passed.
PG_ENV = "PARKTWIN_PG_DSN"
REDIS_ENV = "PARKTWIN_REDIS_URL"
#: The development and CI machines' local services (trust auth; database ``test``).
DEFAULT_PG_DSN = "postgresql://127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class StoreUnavailable(RuntimeError):
    """The server is not reachable (or the client library is not installed)."""


def pg_dsn(dsn: str | None = None) -> str:
    """The PostgreSQL connection string: the argument, else ``$PARKTWIN_PG_DSN``, else local."""
    return dsn or os.environ.get(PG_ENV) or DEFAULT_PG_DSN


def redis_url(url: str | None = None) -> str:
    """The Redis URL: the argument, else ``$PARKTWIN_REDIS_URL``, else the local server."""
    return url or os.environ.get(REDIS_ENV) or DEFAULT_REDIS_URL


@runtime_checkable
class ClaimStore(Protocol):
    """A real store for one claim strategy: it performs operations, the core decides."""

    strategy: str

    def setup(self, capacities: Mapping[str, int]) -> None:
        """Create the schema or keys if missing (idempotent) and set each target's capacity."""
        ...

    def reset(self) -> None:
        """Every target back to nothing held (between benchmark points)."""
        ...

    def perform(self, claim: RemoteClaim, op: Op) -> Outcome:
        """Perform ``op`` of ``claim`` atomically on the server and report what it saw."""
        ...

    def counts(self) -> dict[str, int]:
        """The number the store holds per target (rows' ``used``, counters' values)."""
        ...

    def close(self) -> None: ...

    def drop(self) -> None:
        """Remove everything the store created (schema, keys)."""
        ...


def run_claim(
    store: ClaimStore,
    claim_id: Hashable,
    target: str,
    *,
    max_retries: int | None = 5,
    backoff_ms: tuple[float, float] = (1.0, 50.0),
    rng: random.Random | None = None,
    on_step: Callable[[Step], None] | None = None,
) -> Step:
    """Claim one unit of ``target``; returns the final step (GRANTED, REFUSED or FAILED).

    ``backoff_ms`` is the core's (base, cap) back-off window after a version conflict;
    ``on_step`` sees every step (the load driver counts conflicts with it).
    """
    claim = RemoteClaim(store.strategy, claim_id, target, max_retries=max_retries)
    return _drive(store, claim, backoff_ms, rng or random.Random(), on_step)


def run_release(
    store: ClaimStore,
    claim_id: Hashable,
    target: str,
    *,
    on_step: Callable[[Step], None] | None = None,
) -> Step:
    """Give back the unit ``claim_id`` was granted on ``target``; returns the RELEASED step."""
    claim = RemoteClaim(store.strategy, claim_id, target, Kind.RELEASE)
    return _drive(store, claim, (0.0, 0.0), random.Random(), on_step)


def _drive(
    store: ClaimStore,
    claim: RemoteClaim,
    backoff_ms: tuple[float, float],
    rng: random.Random,
    on_step: Callable[[Step], None] | None,
) -> Step:
    step = claim.start(time.monotonic())
    while not step.status.final:
        if step.status is Status.CONFLICT:
            time.sleep(backoff_delay(step.attempt, *backoff_ms, rng.random()) / 1000)
        assert step.next_op is not None  # a PENDING or CONFLICT step always names one
        step = claim.observe(store.perform(claim, step.next_op), time.monotonic())
        if on_step is not None:
            on_step(step)
    return step
