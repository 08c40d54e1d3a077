"""The locking study's parameters as a validated YAML file.

The shipped one is ``scenarios/studies/locking_study.yaml`` (not in ``scenarios/`` itself: files
there are parking scenarios, which CI runs and gates against baselines).

Every latency the study's ceilings come from is a named field here, in the units engineers
quote them in (milliseconds, transactions per second), so a reader can trace any ceiling back
to the one or two numbers that set it. Unknown keys are errors, as in parking scenarios, and a
broken file gives one readable line per problem (``ScenarioError``).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from twin.core.locking import CLAIM_STRATEGIES
from twin.scenario.common import LatencyMs, Spec
from twin.scenario.loader import (
    ScenarioError,
    apply_overrides,
    check_kind,
    format_errors,
    read_yaml,
)

StrategyName = Literal["pessimistic", "optimistic", "atomic", "queue"]
assert set(StrategyName.__args__) == set(CLAIM_STRATEGIES)  # keep the schema and the core in step

#: Offered rates in 1-1.5-2-3-5-7 steps per decade: fine enough to place a ceiling within ~40 %.
DEFAULT_SWEEP: tuple[float, ...] = (
    *(50, 70, 100, 150, 200, 300, 500, 700, 1000, 1500),
    *(2000, 3000, 5000, 7000, 10000, 15000, 20000, 30000),
)

__all__ = [
    "LockingStudySpec",
    "StrategyName",
    "WorkloadSpec",
    "load_locking_study",
    "validate_locking_study",
]


class WorkloadSpec(Spec):
    """What is claimed: counter rows (lot × spot type), how skewed, how full."""

    rows: int = Field(default=12, ge=1, description="counter rows claims spread over")
    hot_share: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="share of claims on row 0, the hot row; the rest spread evenly (1/rows: even)",
    )
    capacity: int = Field(default=50, ge=1, description="units per row")
    occupancy: float = Field(
        default=0.8,
        gt=0,
        le=2,
        description="offered occupancy of each row; stays are scaled to keep it at every load",
    )


class NetworkSpec(Spec):
    rtt_ms: LatencyMs = Field(default=1.0, description="app ↔ store round trip")


class ClientSpec(Spec):
    """The application side. ``cpu_ms`` and ``cores`` matter when clients are CPU-bound, as
    when they run on the same small machine as the servers (the live benchmark)."""

    app_ms: LatencyMs = Field(
        default=0.5, description="app work between reading the row and writing it"
    )
    cpu_ms: LatencyMs = Field(
        default=0.0,
        description="client CPU per command or statement sent (driver, protocol, syscalls); "
        "0: not modelled",
    )
    cores: int | None = Field(
        default=None,
        ge=1,
        description="cores all clients' CPU work shares; null: every client has its own",
    )
    processes: int | None = Field(
        default=None,
        ge=1,
        description="client processes, each with its own share of the arrivals and its own "
        "connection, serving its claims and its grants' releases one at a time in arrival "
        "order (the live benchmark's clients); null: any free connection of the pool takes "
        "the next request",
    )


class HostSpec(Spec):
    """One machine running the clients *and* the servers (the live benchmark's VM).

    With ``cores`` set, every CPU term of the model queues for the same ``cores`` servers: the
    clients' CPU per call (``client.cpu_ms``), each SQL statement (``database.statement_ms``,
    still limited to ``database.workers`` at once), each Redis command (``atomic.op_ms``, still
    one at a time on ``atomic.servers``) and the queue consumer (``queue.consumer_ms``). The
    commit's WAL flush (``database.commit_ms``) and the network stay waits that use no core.
    Null (the default): every party has its own CPU, as on separate machines. ``wakeup_ms``
    adds the OS scheduler: each of those CPU bursts first waits that long on average (measured
    per wake-up from ``/proc/<pid>/schedstat`` by the live benchmark)."""

    cores: int | None = Field(
        default=None,
        ge=1,
        description="cores shared by clients and servers; null: each has its own CPU",
    )
    wakeup_ms: LatencyMs = Field(
        default=0.0,
        description="mean wait on the OS run queue before each CPU burst on the host (a process "
        "woken by its socket, behind the machine's other load); exponential; needs cores",
    )
    wakeup_cv: float = Field(
        default=1.0,
        gt=0,
        le=20,
        description="coefficient of variation of those waits: 1, exponential; above 1, gamma "
        "with most waits short and a few long (a process descheduled for a time slice)",
    )

    @model_validator(mode="after")
    def _wakeup_needs_cores(self) -> HostSpec:
        if self.wakeup_ms > 0 and self.cores is None:
            raise ValueError("wakeup_ms needs cores: the run queue is the shared host's")
        return self


class DatabaseSpec(Spec):
    """The SQL store behind ``pessimistic`` and ``optimistic``."""

    connections: int = Field(default=20, ge=1, description="connection pool size")
    workers: int = Field(default=8, ge=1, description="statements executing at once (cores)")
    statement_ms: LatencyMs = Field(default=0.25, description="CPU per statement")
    commit_ms: LatencyMs = Field(default=1.0, description="WAL flush per committing write")
    commit_wakeups: int = Field(
        default=0,
        ge=0,
        le=20,
        description="times the committing backend sleeps in its WAL flush (write, fdatasync) "
        "and is woken again: on a shared host each such wake-up waits on the run queue and for "
        "a core before the commit goes on, with the row still locked; commit_ms (measured at "
        "light load) includes them at their light-load wait. 0: the flush is one plain delay",
    )


class PessimisticSpec(Spec):
    """The row-lock transaction's round trips. The defaults are the reference design's; a
    driver that sends ``BEGIN`` on its own and releases in a transaction (psycopg, as
    ``adapters/stores`` does) sets ``begin_round_trip`` and ``release_statements: 2``."""

    statements_in_lock: int = Field(
        default=3,
        ge=1,
        description="statements sent after SELECT ... FOR UPDATE, COMMIT included; "
        "each is a round trip with the row locked",
    )
    begin_round_trip: bool = Field(
        default=False,
        description="BEGIN is a round trip of its own before a transaction's first statement "
        "(claim and release); false: it travels with that statement",
    )
    release_statements: int = Field(
        default=1,
        ge=1,
        description="statements of a release from its locking UPDATE on, COMMIT included; "
        "1: one autocommitted UPDATE (the row locked for its WAL flush); 2: UPDATE, then "
        "COMMIT a round trip later with the row still locked",
    )
    relock_on_wake: bool = Field(
        default=False,
        description="a waiter woken by the holder's commit re-reads the row's new version and "
        "locks it (PostgreSQL's EvalPlanQual): one more statement's CPU with the row held; "
        "false: it only needs a core again",
    )
    waiter_order: Literal["fifo", "random"] = Field(
        default="fifo",
        description="which waiter a freed row goes to: fifo, the oldest (a lock manager's "
        "queue); random, any of them alike (PostgreSQL: a commit that updated the row leaves "
        "its waiters to chase the new version, and whichever gets there first locks it)",
    )


class OptimisticSpec(Spec):
    max_retries: int = Field(default=5, ge=0, description="retries after a conflict, then fail")
    backoff_base_ms: LatencyMs = Field(default=1.0, description="first back-off window")
    backoff_cap_ms: LatencyMs = Field(default=50.0, description="largest back-off window")
    row_lock_on_write: bool = Field(
        default=False,
        description="the CAS and the release lock the row from their write to their commit, "
        "as PostgreSQL's UPDATE does: a write behind an uncommitted one waits for its commit; "
        "a CAS that then finds a newer version fails at once, with no write and no WAL flush",
    )


class AtomicSpec(Spec):
    """The in-memory counter store (Redis): one thread executes commands one at a time."""

    servers: int = Field(default=1, ge=1, description="commands executing at once")
    op_ms: LatencyMs = Field(default=0.05, description="service time per command")


class QueueSpec(Spec):
    consumer_ms: LatencyMs = Field(
        default=0.5, description="the single consumer's time per request"
    )


class SloSpec(Spec):
    """Where a strategy's ceiling is: the first load it stops tracking or breaks the p95."""

    p95_ms: float = Field(default=50.0, gt=0, description="claim latency p95 objective")
    tracking: float = Field(
        default=0.95, gt=0, le=1, description="achieved / offered below this = saturated"
    )


class MeasureSpec(Spec):
    """How long each (strategy, load) point runs; longer = tighter figures, slower study."""

    warmup_s: float = Field(default=0.2, ge=0, description="not measured")
    window_claims: int = Field(
        default=2000, ge=10, description="expected claims in the measured window"
    )
    min_window_s: float = Field(default=0.5, gt=0, description="measured window at least this")
    drain_s: float = Field(
        default=0.5,
        gt=0,
        description="run on after the window; claims not answered by then count as unfinished",
    )
    points_past_ceiling: int | None = Field(
        default=2,
        ge=0,
        description="offered rates still run after a strategy's first failing one; "
        "null: run the whole sweep (overloaded points are the slowest to simulate)",
    )


class LockingStudySpec(Spec):
    """A sweep of offered claim rates against each claim strategy, with its latency model."""

    kind: Literal["locking_study"] = Field(
        default="locking_study",
        description="marks the file as a locking study, not a parking scenario",
    )
    name: str = "locking study"
    description: str = ""
    seed: int = 1
    strategies: list[StrategyName] = Field(
        default_factory=lambda: list(CLAIM_STRATEGIES), min_length=1
    )
    offered_tps: list[float] = Field(
        default_factory=lambda: list(DEFAULT_SWEEP),
        min_length=1,
        description="offered claim rates (claims per second), ascending",
    )
    service_cv: float = Field(
        default=0.5, ge=0, le=3, description="coefficient of variation of every service time"
    )
    workload: WorkloadSpec = WorkloadSpec()
    network: NetworkSpec = NetworkSpec()
    client: ClientSpec = ClientSpec()
    host: HostSpec = HostSpec()
    database: DatabaseSpec = DatabaseSpec()
    pessimistic: PessimisticSpec = PessimisticSpec()
    optimistic: OptimisticSpec = OptimisticSpec()
    atomic: AtomicSpec = AtomicSpec()
    queue: QueueSpec = QueueSpec()
    slo: SloSpec = SloSpec()
    measure: MeasureSpec = MeasureSpec()

    @field_validator("strategies")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("strategies must not repeat")
        return v

    @field_validator("offered_tps")
    @classmethod
    def _ascending(cls, v: list[float]) -> list[float]:
        if any(x <= 0 for x in v):
            raise ValueError("offered rates must be > 0")
        if any(b <= a for a, b in itertools.pairwise(v)):
            raise ValueError("offered rates must be strictly ascending")
        return v

    @model_validator(mode="after")
    def _drain_covers_slo(self) -> LockingStudySpec:
        if self.measure.drain_s * 1000 <= self.slo.p95_ms:
            raise ValueError(
                "measure.drain_s must be longer than slo.p95_ms, or a p95 above the objective "
                "could not be measured"
            )
        return self


def validate_locking_study(
    data: dict[str, Any], source: str = "<locking study>"
) -> LockingStudySpec:
    """Validate a raw mapping; every problem becomes one line of a ScenarioError."""
    check_kind(data, "locking_study", source)
    try:
        return LockingStudySpec.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(source, format_errors(exc, LockingStudySpec)) from None


def load_locking_study(
    path: str | Path, overrides: dict[str, Any] | None = None
) -> LockingStudySpec:
    """Read a study file, apply dotted overrides (``{"seed": 7}``) and validate it."""
    path = Path(path)
    data = read_yaml(path)
    if overrides:
        data = apply_overrides(data, overrides)
    return validate_locking_study(data, str(path))
