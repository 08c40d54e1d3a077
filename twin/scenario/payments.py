"""The ``payments:`` settings of a scenario: how often payments fail, and how the lot reacts.

A scenario's ``operations.payments`` (read by :mod:`twin.sim.ops_payments`). This module
validates the section and turns it into the core objects (:meth:`PaymentsSpec.policy_config`,
:meth:`PaymentsSpec.processor`) and into the per-request :class:`~twin.core.payments.Condition`
data the core consumes (:meth:`PaymentsSpec.sample_conditions`,
:meth:`PaymentsSpec.sample_condition_draws`, :meth:`PaymentsSpec.sample_outages`), because the
core itself never draws a random number.

Example (every key optional; these are the defaults except where noted)::

    payments:
      decline_probability: 0.02        # per attempt: the issuer says no
      lost_response_probability: 0.0   # per request: the processor acted, the answer got lost
      partial_probability: 0.01        # per attempt: the card has a limit drawn from card_limit
      card_limit: {type: uniform, low: 0, high: 20}     # currency units (required with partial)
      latency: {type: lognormal, mean: 2, sd: 1, unit: s}  # processor round trip
      outages:                         # network outages of the exit terminals (default: none)
        between: {type: exponential, mean: 72, unit: h}
        duration: {type: exponential, mean: 20, unit: min}
      retry: {max_attempts: 3, backoff_s: 1, backoff_factor: 2, timeout_s: 15}
      strikes: {threshold: 3, window_days: 30, prepay: true, debt_at_entry: true}
      write_off_days: 90
      lost_ticket_probability: 0.005
      plate_read_probability: 0.9      # entry camera read: a lost ticket pays the actual stay
      lost_ticket_fee: null            # without a read: this, or the lot's daily maximum
      plate_pool: 200                  # repeat customers: distinct plates per demand stream
      offline_forward_minutes: 5       # forwarding of payments stored after a timeout
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from twin.core.payments import Condition, PaymentProcessor, PolicyConfig, RetryPolicy
from twin.scenario.common import Spec
from twin.scenario.dists import UNIT_SECONDS, Constant, Dist

DAY_S = 86_400.0


def _probability(name: str, value: float) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a probability between 0 and 1, got {value!r}")
    return float(value)


class OutageSpec(Spec):
    """Network outages of the exit terminals, as an alternating up/down renewal process."""

    between: Dist = Field(description="up time from the end of one outage to the next outage")
    duration: Dist = Field(description="how long an outage lasts")

    @model_validator(mode="after")
    def _positive_means(self) -> OutageSpec:
        for name in ("between", "duration"):
            dist = getattr(self, name)
            if not dist.mean_value > 0:
                raise ValueError(f"outages.{name} must have a mean > 0, got {dist.mean_value}")
        return self

    @property
    def availability(self) -> float:
        """Long-run fraction of time the network is up: E[between] / (E[between] + E[duration])."""
        up = self.between.mean_value * UNIT_SECONDS[self.between.unit]
        down = self.duration.mean_value * UNIT_SECONDS[self.duration.unit]
        return up / (up + down)


class RetrySpec(Spec):
    """How hard an exit terminal tries before it falls back to the offline batch or an invoice."""

    max_attempts: int = Field(default=3, description="authorization requests per exit, 1..10")
    backoff_s: float = Field(default=1.0, description="wait before the first retry, seconds")
    backoff_factor: float = Field(default=2.0, description="each further wait is this much longer")
    timeout_s: float = Field(default=15.0, description="how long the terminal waits for an answer")

    @field_validator("max_attempts")
    @classmethod
    def _attempts(cls, v: int) -> int:
        if not 1 <= v <= 10:
            raise ValueError(f"max_attempts must be between 1 and 10, got {v}")
        return v

    @field_validator("backoff_s")
    @classmethod
    def _backoff(cls, v: float) -> float:
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"backoff_s must be >= 0 seconds, got {v}")
        return v

    @field_validator("backoff_factor")
    @classmethod
    def _factor(cls, v: float) -> float:
        if not (math.isfinite(v) and v >= 1):
            raise ValueError(f"backoff_factor must be >= 1 (waits never shrink), got {v}")
        return v

    @field_validator("timeout_s")
    @classmethod
    def _timeout(cls, v: float) -> float:
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"timeout_s must be > 0 seconds, got {v}")
        return v


class StrikesSpec(Spec):
    """Repeat offenders: ``threshold`` unpaid exits within ``window_days`` -> blocklist.

    A blocklisted plate must prepay at the entry (``prepay``): the quoted price of the intended
    stay, plus with ``debt_at_entry`` what the plate still owes on open invoices, so the gate
    never lets an untrusted card in on credit. Paying the debt lifts the block for the next
    visit when ``unblock_when_paid`` (the core's rule).
    """

    threshold: int = Field(default=3, description="strikes that put a plate on the blocklist")
    window_days: float = Field(default=30.0, description="the strikes must fall within this span")
    count_partial: bool = Field(default=True, description="does a partly paid exit count?")
    unblock_when_paid: bool = Field(
        default=True, description="paying every open invoice lifts the blocklist"
    )
    prepay: bool = Field(
        default=True,
        description="blocklisted plates prepay the quoted stay at the entry; false: let in",
    )
    debt_at_entry: bool = Field(
        default=True,
        description="a blocklisted driver also pays the plate's open invoices with the prepayment",
    )

    @field_validator("threshold")
    @classmethod
    def _threshold(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"threshold must be at least 1 strike, got {v}")
        return v

    @field_validator("window_days")
    @classmethod
    def _window(cls, v: float) -> float:
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"window_days must be > 0, got {v}")
        return v


class PaymentsSpec(Spec):
    """Payment failure settings and the exit policy's parameters (see the module docstring)."""

    decline_probability: float = Field(default=0.0, description="per attempt")
    lost_response_probability: float = Field(default=0.0, description="per request")
    partial_probability: float = Field(
        default=0.0, description="per attempt: the card can only pay a limit from card_limit"
    )
    card_limit: Dist | None = Field(
        default=None, description="what a limited card can still pay, currency units"
    )
    partial_approvals: bool = Field(
        default=True, description="issuers approve part of an amount above the limit"
    )
    latency: Dist = Field(
        default=Constant(type="constant", value=2.0, unit="s"),
        description="processor round trip per request",
    )
    outages: OutageSpec | None = None
    retry: RetrySpec = RetrySpec()
    strikes: StrikesSpec = StrikesSpec()
    write_off_days: float = Field(
        default=90.0, description="open invoices this old are written off"
    )
    lost_ticket_probability: float = Field(default=0.0, description="per exit")
    plate_read_probability: float = Field(
        default=0.0,
        description="the entry camera read the plate: a lost ticket then pays the actual stay",
    )
    lost_ticket_fee: float | None = Field(
        default=None,
        description="lost ticket without a plate read, currency units (default: daily maximum)",
    )
    plate_pool: int | None = Field(
        default=None,
        description="distinct plates per demand stream (repeat customers); none: all different",
    )
    offline_forward_minutes: float = Field(
        default=5.0,
        description="payments stored after a timeout are forwarded this much later",
    )

    @field_validator(
        "decline_probability",
        "lost_response_probability",
        "partial_probability",
        "lost_ticket_probability",
        "plate_read_probability",
    )
    @classmethod
    def _probabilities(cls, v: float, info: ValidationInfo) -> float:
        return _probability(info.field_name, v)

    @field_validator("write_off_days")
    @classmethod
    def _horizon(cls, v: float) -> float:
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"write_off_days must be > 0, got {v}")
        return v

    @field_validator("lost_ticket_fee")
    @classmethod
    def _fee(cls, v: float | None) -> float | None:
        if v is not None and not (math.isfinite(v) and v >= 0):
            raise ValueError(f"lost_ticket_fee must be >= 0 currency units, got {v}")
        return v

    @field_validator("plate_pool")
    @classmethod
    def _pool(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"plate_pool must be at least 1 plate per stream, got {v}")
        return v

    @field_validator("offline_forward_minutes")
    @classmethod
    def _forward(cls, v: float) -> float:
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"offline_forward_minutes must be > 0, got {v}")
        return v

    @model_validator(mode="after")
    def _limit_given(self) -> PaymentsSpec:
        if self.partial_probability > 0 and self.card_limit is None:
            raise ValueError(
                "partial_probability > 0 needs card_limit: the distribution of what a limited "
                "card can still pay, in currency units"
            )
        return self

    # ------------------------------------------------------------------ core objects

    def policy_config(self) -> PolicyConfig:
        """The core exit-policy settings."""
        r = self.retry
        return PolicyConfig(
            retry=RetryPolicy(r.max_attempts, r.backoff_s, r.backoff_factor),
            strike_threshold=self.strikes.threshold,
            strike_window_s=self.strikes.window_days * DAY_S,
            strike_on_partial=self.strikes.count_partial,
            write_off_horizon_s=self.write_off_days * DAY_S,
            unblock_when_paid=self.strikes.unblock_when_paid,
        )

    def processor(self) -> PaymentProcessor:
        """A fresh processor with this scenario's terminal timeout and partial-approval rule."""
        return PaymentProcessor(self.retry.timeout_s, self.partial_approvals)

    # ------------------------------------------------------------------ drawing the conditions

    def sample_condition_draws(self, gen: np.random.Generator, n: int) -> ConditionDraws:
        """The random parts of ``n`` requests' conditions as arrays (the bulk form).

        A simulator draws every request of a run at once and builds the
        :class:`~twin.core.payments.Condition` of request ``j`` only when it is sent
        (:meth:`ConditionDraws.condition`): millions of requests cost four arrays, not millions
        of objects. Same draws, in the same order, as :meth:`sample_conditions`.
        """
        n = max(int(n), 0)
        # latency from ``gen``, the rest each from a child spawned from it (from its seed, not
        # its draws): request j's draws do not depend on how many requests there are, so a
        # longer horizon keeps a shorter one's (runs of n draws from one generator would not)
        u_declined, u_limited, u_lost, u_limit = gen.spawn(4)
        latency = np.maximum(self.latency.sample_seconds(gen, n), 0.0) if n else np.zeros(0)
        declined = u_declined.random(n) < self.decline_probability
        limited = u_limited.random(n) < self.partial_probability
        lost = u_lost.random(n) < self.lost_response_probability
        limit = np.full(n, -1, dtype=np.int64)
        if self.card_limit is not None and limited.any():
            drawn = self.card_limit.sample(u_limit, n)
            cents = np.floor(np.maximum(drawn, 0.0) * 100).astype(np.int64)
            limit[limited] = cents[limited]
        return ConditionDraws(latency, declined, limit, lost)

    def sample_conditions(
        self, gen: np.random.Generator, n: int, network_up: bool = True
    ) -> list[Condition]:
        """Conditions for ``n`` consecutive requests (e.g. the ``max_attempts`` of one exit).

        Each request independently: latency from ``latency``; with ``network_up`` False it
        never arrives; declined with ``decline_probability``; otherwise with
        ``partial_probability`` the card can only pay a limit drawn from ``card_limit``
        (rounded down to whole cents); its answer is lost with ``lost_response_probability``.
        """
        if n <= 0:
            return []
        draws = self.sample_condition_draws(gen, n)
        return [draws.condition(j, network_up) for j in range(n)]

    def sample_outages(
        self, gen: np.random.Generator, horizon_s: float
    ) -> list[tuple[float, float]]:
        """Outage intervals ``[start, end)`` in core seconds over ``[0, horizon_s)``.

        The network starts up; up times are drawn from ``outages.between`` and outage lengths
        from ``outages.duration``, alternately. Empty without ``outages``.
        """
        out: list[tuple[float, float]] = []
        spec = self.outages
        if spec is None:
            return out
        # Up and down times are drawn in chunks (one scipy call per chunk, not per outage),
        # sized to cover about a day at the mean cycle length: not the horizon, so that a
        # longer horizon has the same first outages as a shorter one.
        cycle = (
            spec.between.mean_value * UNIT_SECONDS[spec.between.unit]
            + spec.duration.mean_value * UNIT_SECONDS[spec.duration.unit]
        )
        chunk = int(min(max(1.2 * 86400.0 / cycle, 0.0), 1e4)) + 8
        t = 0.0
        while True:
            ups = spec.between.sample_seconds(gen, chunk).tolist()
            downs = spec.duration.sample_seconds(gen, chunk).tolist()
            for up, down in zip(ups, downs, strict=True):
                t += up
                if t >= horizon_s:
                    return out
                end = t + down
                out.append((t, min(end, horizon_s)))
                t = end


@dataclass(frozen=True, slots=True)
class ConditionDraws:
    """Per-request random draws (:meth:`PaymentsSpec.sample_condition_draws`).

    ``latency_s``: round trip; ``declined``, ``lost``: flags; ``limit_cents``: what a limited
    card can pay, -1 where the card has no limit.
    """

    latency_s: np.ndarray
    declined: np.ndarray
    limit_cents: np.ndarray
    lost: np.ndarray

    def __len__(self) -> int:
        return len(self.latency_s)

    def condition(self, j: int, network_up: bool = True) -> Condition:
        """The condition of request ``j``, sent while the network is up or down."""
        limit = int(self.limit_cents[j])
        return Condition(
            network_up=network_up,
            latency_s=float(self.latency_s[j]),
            declined=bool(self.declined[j]),
            limit_cents=None if limit < 0 else limit,
            response_lost=bool(self.lost[j]),
        )
