"""What reservations are made of: states and transitions, errors, the payment gateway, the
policy and the records.

See :mod:`twin.core.reservations` for the lifecycle, the time rules, capacity and money.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from typing import Protocol

from twin.core.errors import InvalidTransition, ParkingError
from twin.core.types import SpotType

# --------------------------------------------------------------------------- states & errors


class ReservationStatus(Enum):
    """Where a reservation is in its life; see the module docstring for the diagram."""

    PENDING = "pending"  # capacity taken, payment not yet authorised
    CONFIRMED = "confirmed"  # authorised; holds a spot from start - hold_lead
    ARRIVED = "arrived"  # parked in the lot
    COMPLETED = "completed"  # left and paid
    NO_SHOW = "no_show"  # did not arrive before start + grace
    CANCELLED = "cancelled"  # by the holder, or bumped (no spot at arrival)
    EXPIRED = "expired"  # never confirmed: payment declined or confirmation too late

    @property
    def live(self) -> bool:
        """Still takes capacity (PENDING, CONFIRMED, ARRIVED)."""
        return self in _LIVE


RS = ReservationStatus
_LIVE = frozenset({RS.PENDING, RS.CONFIRMED, RS.ARRIVED})

#: The only legal transitions; every other one raises :class:`InvalidReservationTransition`.
TRANSITIONS: dict[ReservationStatus, frozenset[ReservationStatus]] = {
    RS.PENDING: frozenset({RS.CONFIRMED, RS.CANCELLED, RS.EXPIRED}),
    RS.CONFIRMED: frozenset({RS.ARRIVED, RS.NO_SHOW, RS.CANCELLED}),
    RS.ARRIVED: frozenset({RS.COMPLETED}),
    RS.COMPLETED: frozenset(),
    RS.NO_SHOW: frozenset(),
    RS.CANCELLED: frozenset(),
    RS.EXPIRED: frozenset(),
}


class RejectReason(Enum):
    """Why a booking request was refused (the statistics count each)."""

    INVALID_WINDOW = "invalid_window"  # start in the past, end not after start, not finite
    TOO_FAR_AHEAD = "too_far_ahead"  # start beyond the booking horizon
    NOT_RESERVABLE = "not_reservable"  # no reserved share for this spot type in this lot
    BLOCKED = "blocked"  # the account has too many no-show strikes
    RATE_LIMITED = "rate_limited"  # too many bookings by this account in the window
    CAP_REACHED = "cap_reached"  # reserved-share cap (times overbooking) reached
    EXPECTED_FULL = "expected_full"  # the forecast walk-in occupancy leaves no room
    PAYMENT_DECLINED = "payment_declined"  # authorisation refused at confirmation


class ReservationError(ParkingError):
    """Base of every refusal of the reservation system."""


class BookingRejected(ReservationError):
    """A booking request was refused; ``reason`` says why (one :class:`RejectReason`)."""

    def __init__(self, reason: RejectReason, message: str, reservation: Reservation | None = None):
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.reservation = reservation


class UnknownReservation(ReservationError):
    """No reservation with that id was ever made in this book."""


class InvalidReservationTransition(InvalidTransition):
    """A status change the lifecycle forbids, e.g. arriving after a no-show or cancelling twice."""


class ArrivalTooEarly(ReservationError):
    """The holder came before ``start - early_arrival``; nothing changed (park as a walk-in)."""


class ReservationNotHonoured(ReservationError):
    """The holder arrived but no spot of the type was free: bumped (CANCELLED, voided)."""


# --------------------------------------------------------------------------- payments protocol


class AuthorizationResult(Protocol):
    """What an authorisation answer must carry."""

    @property
    def ok(self) -> bool: ...

    @property
    def authorization_id(self) -> str | None: ...


class CaptureResult(Protocol):
    @property
    def ok(self) -> bool: ...


class PaymentGateway(Protocol):
    """The payment calls a reservation needs; every call carries an idempotency key."""

    def authorize(
        self, idempotency_key: str, account: str, amount_cents: int, t: float
    ) -> AuthorizationResult: ...

    def capture(
        self, idempotency_key: str, authorization_id: str, amount_cents: int, t: float
    ) -> CaptureResult: ...

    def void(self, idempotency_key: str, authorization_id: str, t: float) -> object: ...


@dataclass(frozen=True, slots=True)
class GatewayResult:
    """``ok``/``authorization_id`` view of a processor answer (see :class:`ProcessorGateway`)."""

    ok: bool
    authorization_id: str | None = None


class ProcessorGateway:
    """Adapts a processor answering with ``.status``/``.id`` (``twin.core.payments``) to
    :class:`PaymentGateway`.

    Only a full approval is ok: a partial authorisation (card limit) is voided at once and
    reported as not ok, because a reservation needs its whole hold. Transport failures
    (timeout, network down) are not ok either; the processor's idempotency makes a retry with
    the same key safe, which is the caller's decision.
    """

    def __init__(self, processor: object) -> None:
        self.processor = processor

    @staticmethod
    def _status(result: object) -> str:
        status = getattr(result, "status", None)
        return str(getattr(status, "value", status))

    def authorize(
        self, idempotency_key: str, account: str, amount_cents: int, t: float
    ) -> GatewayResult:
        result = self.processor.authorize(idempotency_key, account, amount_cents, t)  # type: ignore[attr-defined]
        status, auth_id = self._status(result), getattr(result, "id", None)
        if status == "partial" and auth_id is not None:
            self.processor.void(f"{idempotency_key}/void-partial", auth_id, t)  # type: ignore[attr-defined]
        ok = status == "approved"
        return GatewayResult(ok, auth_id if ok else None)

    def capture(
        self, idempotency_key: str, authorization_id: str, amount_cents: int, t: float
    ) -> GatewayResult:
        result = self.processor.capture(idempotency_key, authorization_id, amount_cents, t)  # type: ignore[attr-defined]
        return GatewayResult(self._status(result) == "approved")

    def void(self, idempotency_key: str, authorization_id: str, t: float) -> GatewayResult:
        result = self.processor.void(idempotency_key, authorization_id, t)  # type: ignore[attr-defined]
        return GatewayResult(self._status(result) == "approved")


#: ``forecast(spot_type, start, end)``: expected peak number of spots of that type occupied by
#: drivers without a reservation during ``[start, end)``.
OccupancyForecast = Callable[[SpotType, float, float], float]


# --------------------------------------------------------------------------- policy, records


def _check_seconds(name: str, value: float, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def check_cents(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be int cents >= 0, got {value!r}")


def half_up(x: Decimal) -> int:
    return int(x.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class ReservationPolicy:
    """The rules of a lot's reservation system (times in seconds, money in cents).

    ``reserved_share``: per spot type, the largest share of its spots that may be held for
    reservations at once; types left out cannot be booked. ``overbooking_factor`` (>= 1)
    accepts that many times the bookings the spots allow, betting on no-shows and
    cancellations. ``early_arrival_s`` defaults to ``hold_lead_s``. ``pending_ttl_s``: how long
    an unconfirmed booking keeps its capacity. ``max_lead_s``: booking horizon (None: any).
    ``rate_limit_max`` bookings per account per ``rate_limit_window_s`` (None: no limit).
    ``strike_threshold`` no-shows block an account (None: never).
    """

    reserved_share: Mapping[SpotType, float]
    overbooking_factor: float = 1.0
    grace_s: float = 900.0
    hold_lead_s: float = 900.0
    early_arrival_s: float | None = None
    pending_ttl_s: float = 900.0
    max_lead_s: float | None = None
    deposit_cents: int = 0
    no_show_penalty_cents: int = 0
    free_cancel_before_s: float = 3600.0
    late_cancel_refund_share: float = 0.0
    rate_limit_max: int | None = None
    rate_limit_window_s: float = 86_400.0
    strike_threshold: int | None = None

    def __post_init__(self) -> None:
        shares = {}
        for stype, share in dict(self.reserved_share).items():
            if not (isinstance(share, int | float) and 0.0 <= share <= 1.0):
                raise ValueError(f"reserved_share[{SpotType(stype).name}] must be in [0, 1]")
            shares[SpotType(stype)] = float(share)
        object.__setattr__(self, "reserved_share", shares)
        if not (math.isfinite(self.overbooking_factor) and self.overbooking_factor >= 1.0):
            raise ValueError(f"overbooking_factor must be >= 1, got {self.overbooking_factor}")
        for name in ("grace_s", "hold_lead_s", "pending_ttl_s", "free_cancel_before_s"):
            _check_seconds(name, getattr(self, name))
        for name in ("early_arrival_s", "max_lead_s"):
            _check_seconds(name, getattr(self, name), allow_none=True)
        if self.pending_ttl_s <= 0:
            raise ValueError("pending_ttl_s must be > 0")
        _check_seconds("rate_limit_window_s", self.rate_limit_window_s)
        check_cents("deposit_cents", self.deposit_cents)
        check_cents("no_show_penalty_cents", self.no_show_penalty_cents)
        if not 0.0 <= self.late_cancel_refund_share <= 1.0:
            raise ValueError("late_cancel_refund_share must be in [0, 1]")
        for name in ("rate_limit_max", "strike_threshold"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{name} must be an int >= 1 or None, got {v!r}")

    @property
    def early_s(self) -> float:
        return self.hold_lead_s if self.early_arrival_s is None else self.early_arrival_s


@dataclass(slots=True, eq=False)
class Reservation:
    """One booking and everything that happened to it."""

    id: int
    account: str
    spot_type: SpotType
    start: float
    end: float
    created_t: float
    quote_cents: int = 0
    status: ReservationStatus = RS.PENDING
    #: capacity window in the concurrency index, and its handle there (None once removed)
    window: tuple[float, float] = (0.0, 0.0)
    handle: int | None = None
    authorized_cents: int = 0
    authorization_id: str | None = None
    #: the held (then occupied) spot; ``hold_t`` while the hold lasts
    spot_index: int | None = None
    hold_t: float | None = None
    #: when the reservation first held a spot (kept after the hold ends, for the record)
    held_from: float | None = None
    waiting: bool = False
    #: units from a claim store (``ReservationBook(units_from_store=True)``): a unit for the
    #: hold has been asked for and not answered yet
    unit_pending: bool = False
    ticket: int | None = None
    arrived_t: float | None = None
    closed_t: float | None = None
    captured_cents: int = 0
    refunded_cents: int = 0
    #: no-show instant, ``start + grace`` (set by the book)
    deadline: float = math.inf
    note: str = ""


@dataclass
class ReservationStats:
    """Counters a planner reads; ``requested == accepted + sum(rejected.values())`` always."""

    requested: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    confirmed: int = 0
    payment_declined: int = 0
    expired: int = 0
    arrivals: int = 0
    completed: int = 0
    no_shows: int = 0
    cancellations: int = 0
    late_cancellations: int = 0
    bumped: int = 0
    hold_waits: int = 0
    held_idle_s: float = 0.0
    walk_ins_turned_away: int = 0
    deposit_revenue_cents: int = 0
    penalty_revenue_cents: int = 0
    exit_revenue_cents: int = 0
    refunded_cents: int = 0
    unpaid_cents: int = 0

    @property
    def held_idle_hours(self) -> float:
        """Spot-hours held for reservations but not occupied (closed holds only)."""
        return self.held_idle_s / 3600.0

    def as_dict(self) -> dict[str, float]:
        """Flat figures (``rejected_<reason>`` per reason), for a results frame."""
        out: dict[str, float] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "rejected":
                out["rejected"] = sum(value.values())
                for reason in RejectReason:
                    out[f"rejected_{reason.value}"] = value.get(reason.value, 0)
            else:
                out[f.name] = value
        out["held_idle_hours"] = self.held_idle_hours
        return out
