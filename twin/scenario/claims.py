"""The ``claims:`` section of a scenario: how gates claim a unit of a lot from a shared store.

Off by default (no ``claims:`` key): a car that reaches the barrier takes a spot from the
core's :class:`~twin.core.lot.Lot` at once, as if the store answered in no time. With a
``claims:`` section, the gate first claims one unit of its lot's counter row (capacity: the
lot's spots) from a store run with one of the core's claim strategies
(:mod:`twin.core.locking`); the claim takes the time the latency model below gives it, can
wait for a lock, conflict and retry, be refused or fail, and only a granted claim lets the
car take a spot. Departures give the unit back through the same store. App reservations
(``operations.reservations``) claim their holds' units from the same store; permits are not
covered yet (a scenario with both is refused).

The fields and defaults are the locking study's (:mod:`twin.scenario.locking`, whose
``database``, ``pessimistic``, ``optimistic``, ``atomic`` and ``queue`` sections they mirror,
flattened to one level; ``tests/sim/test_claims.py`` checks the defaults agree). They are
written out here, not imported, because the study's module reads files through the scenario
loader, which imports this schema (an import cycle).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from twin.core.locking import CLAIM_STRATEGIES
from twin.scenario.common import LatencyMs, Spec

ClaimStrategyName = Literal["pessimistic", "optimistic", "atomic", "queue"]
assert set(ClaimStrategyName.__args__) == set(CLAIM_STRATEGIES)  # schema and core in step

__all__ = ["ClaimStrategyName", "ClaimsSpec"]


class ClaimsSpec(Spec):
    """Gates claim a unit of their lot from a store with a claim strategy (off by default)."""

    strategy: ClaimStrategyName = Field(
        description="pessimistic (row lock), optimistic (version check), atomic (counter) "
        "or queue (one serialising consumer); see docs/locking.md"
    )
    rtt_ms: LatencyMs = Field(default=1.0, description="gate controller ↔ store round trip")
    app_ms: LatencyMs = Field(
        default=0.5, description="controller work between reading the row and writing it"
    )
    service_cv: float = Field(
        default=0.5, ge=0, le=3, description="coefficient of variation of every service time"
    )
    connections: int = Field(
        default=20, ge=1, description="database connection pool (pessimistic, optimistic)"
    )
    workers: int = Field(default=8, ge=1, description="database statements executing at once")
    statement_ms: LatencyMs = Field(default=0.25, description="database CPU per statement")
    commit_ms: LatencyMs = Field(default=1.0, description="WAL flush per committing write")
    statements_in_lock: int = Field(
        default=3,
        ge=1,
        description="pessimistic: statements after SELECT ... FOR UPDATE, COMMIT included, "
        "each a round trip with the row locked",
    )
    max_retries: int = Field(
        default=5, ge=0, description="optimistic: retries after a conflict, then the claim fails"
    )
    backoff_base_ms: LatencyMs = Field(default=1.0, description="optimistic: first back-off window")
    backoff_cap_ms: LatencyMs = Field(
        default=50.0, description="optimistic: largest back-off window"
    )
    redis_servers: int = Field(
        default=1, ge=1, description="atomic: commands the counter store executes at once"
    )
    redis_op_ms: LatencyMs = Field(default=0.05, description="atomic: service per command")
    consumer_ms: LatencyMs = Field(
        default=0.5, description="queue: the single consumer's time per request"
    )
