"""What every part of the exit-lane payments shares: errors, input checks, conditions, results.

See :mod:`twin.core.payments` for the design (processor, exit policy, ledger) and the retry
rules. Pure core: time is core seconds, money ``int`` cents, no random numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from twin.core.errors import ParkingError

# --------------------------------------------------------------------------- errors


class PaymentError(ParkingError):
    """A payment request the processor or the policy refuses as malformed."""


class IdempotencyConflict(PaymentError):
    """An idempotency key was reused for a different request (operation or payload)."""


class InvalidPaymentRequest(PaymentError):
    """A request that can never succeed: capture above the authorization, unknown id, ..."""


# --------------------------------------------------------------------------- validation


def check_cents(name: str, value: object, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be int cents, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum} cents, got {value}")
    return value


def check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return value


def check_time(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    return float(value)


def check_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


# --------------------------------------------------------------------------- conditions & results


@dataclass(frozen=True, slots=True)
class Condition:
    """What the outside world does to one payment request (the core has no RNG).

    ``network_up``: False and the request never reaches the processor (nothing happens there).
    ``latency_s``: round trip of the request when the network is up; above the processor's
    ``timeout_s`` the terminal gives up waiting although the processor did act.
    ``declined``: the issuer declines this authorization (applies to ``authorize`` only).
    ``limit_cents``: what the card can still pay (``None`` = no limit); an authorization above
    it is partially approved for the limit, or declined if the limit is 0 or the processor does
    not do partial approvals (``authorize`` only).
    ``response_lost``: the processor acted but its answer never came back.
    """

    network_up: bool = True
    latency_s: float = 0.0
    declined: bool = False
    limit_cents: int | None = None
    response_lost: bool = False

    def __post_init__(self) -> None:
        check_time("latency_s", self.latency_s)
        if self.latency_s < 0:
            raise ValueError(f"latency_s must be >= 0, got {self.latency_s}")
        if self.limit_cents is not None:
            check_cents("limit_cents", self.limit_cents)


#: A request that goes through instantly with no decline and no limit.
OK = Condition()


class Status(StrEnum):
    """The answer the terminal got to one request."""

    APPROVED = "approved"  # done in full (authorization, capture, void or refund)
    PARTIAL = "partial"  # authorization approved for less than asked (card limit)
    DECLINED = "declined"  # the issuer said no
    UNAVAILABLE = "unavailable"  # network down: the request never reached the processor
    TIMEOUT = "timeout"  # no answer in time: the processor may or may not have acted

    @property
    def decided(self) -> bool:
        """True if this is the processor's decision (not a transport failure)."""
        return self not in (Status.UNAVAILABLE, Status.TIMEOUT)


class Operation(StrEnum):
    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"


@dataclass(frozen=True, slots=True)
class PaymentResult:
    """One answer as the terminal received it.

    ``amount_cents`` is what was approved, captured, voided or refunded (0 for a decline or a
    transport failure); ``id`` the authorization, payment or refund it created or acted on.
    ``latency_s`` is how long *this* attempt took from the terminal's point of view (the full
    timeout for transport failures), so an exit-lane model can add it to the service time.
    ``replayed``: the processor returned a stored result for a key it had already seen.
    """

    operation: Operation
    key: str
    status: Status
    requested_cents: int
    amount_cents: int = 0
    id: str | None = None
    t: float = 0.0
    latency_s: float = 0.0
    replayed: bool = False
    reason: str = ""


#: What a processor operation decides: (status, amount, id of the object, reason).
Outcome = tuple[Status, int, str, str]


class Processor(Protocol):
    """What the exit policy needs from a processor; a production gateway adapter implements it."""

    def authorize(
        self, idempotency_key: str, account: str, amount_cents: int, t: float, cond: Condition = OK
    ) -> PaymentResult: ...

    def capture(
        self,
        idempotency_key: str,
        authorization_id: str,
        amount_cents: int,
        t: float,
        cond: Condition = OK,
    ) -> PaymentResult: ...

    def refund(
        self,
        idempotency_key: str,
        payment_id: str,
        amount_cents: int,
        t: float,
        cond: Condition = OK,
    ) -> PaymentResult: ...
