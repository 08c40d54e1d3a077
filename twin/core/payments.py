"""Payments at the exit lane and their failures: processor, offline batch, invoices, blocklist.

Pure production logic like the rest of :mod:`twin.core`: time is passed in (core seconds), money
is ``int`` cents, and nothing here draws a random number. What the outside world does to each
payment request -- the network is down, the card is declined, the card only has $7 left, the
processor is slow, the response got lost -- arrives as data, a :class:`Condition` per request.
The simulator draws conditions from the scenario's ``payments:`` settings; a live gate adapter
builds them from what actually happened. Both then drive the same state machine.

Three layers
------------
:class:`PaymentProcessor`
    The card processor as the terminal sees it: ``authorize``, ``capture``, ``void``,
    ``refund``, each under an idempotency key. A retried request with the same key returns the
    original result and never charges twice -- also when the first response was lost on the way
    back. Reusing a key for a different request raises :class:`IdempotencyConflict`.
:class:`ExitPaymentPolicy`
    What the exit lane does with those answers. Rule one of the reference design: **never trap
    a car**. Every :class:`ExitDecision` opens the barrier; what could not be collected becomes
    an invoice (or waits in the terminal's offline batch until the network returns), the plate
    is flagged, and repeat offenders go on a blocklist that makes them prepay next time.
:class:`Ledger`
    Where every priced session's money went. For every bill, at every moment after its exit was
    settled::

        expected = collected + pending_offline + invoiced (outstanding) + written_off

    where ``collected = captured (card, at the lane or from the offline batch) + invoice_paid``.
    Refunds are reported next to it (``net_collected = collected - refunded``); they do not
    change where the priced amount went.

Retry rules (why the keys look the way they do)
-----------------------------------------------
* A *decision* of the processor (approved, partial, declined) is final for its key, as with
  real processors: re-sending the key replays it.
* A *transport failure* (network down, or no response within the terminal's timeout) tells the
  terminal nothing -- the processor may or may not have acted. The terminal therefore retries
  with the **same** key after a back-off, and if it gives up it stores the payment under that
  same key in its offline batch. Whatever the processor did is replayed, never repeated.
* After a received decline the driver presents a card again: that is a new request with a new
  key (``<ref>/<n>``), made at once (no back-off).

Everything here is deterministic: the same calls with the same conditions give the same ids,
decisions and ledger.
"""

from __future__ import annotations

import math
from bisect import insort
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
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


def _check_cents(name: str, value: object, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be int cents, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum} cents, got {value}")
    return value


def _check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return value


def _check_time(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    return float(value)


def _check_text(name: str, value: object) -> str:
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
        _check_time("latency_s", self.latency_s)
        if self.latency_s < 0:
            raise ValueError(f"latency_s must be >= 0, got {self.latency_s}")
        if self.limit_cents is not None:
            _check_cents("limit_cents", self.limit_cents)


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
_Outcome = tuple[Status, int, str, str]


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


# --------------------------------------------------------------------------- processor


class AuthStatus(StrEnum):
    AUTHORIZED = "authorized"  # funds held, not yet captured
    CAPTURED = "captured"
    VOIDED = "voided"
    DECLINED = "declined"


@dataclass(slots=True)
class Authorization:
    id: str
    key: str
    account: str
    requested_cents: int
    amount_cents: int  # approved (0 if declined)
    t: float
    status: AuthStatus
    payment_id: str | None = None


@dataclass(slots=True)
class Payment:
    """A capture: money actually taken from the card."""

    id: str
    authorization_id: str
    account: str
    amount_cents: int
    t: float
    refunded_cents: int = 0


@dataclass(frozen=True, slots=True)
class Refund:
    id: str
    payment_id: str
    amount_cents: int
    t: float


class PaymentProcessor:
    """The card processor with idempotency keys, as the terminal sees it over the network.

    State changes only when a request reaches it (``cond.network_up``). Each key is bound to
    its first request (operation and payload) and that request's result; the same request
    again returns that result with ``replayed=True``, a different one raises
    :class:`IdempotencyConflict`. Malformed requests raise :class:`InvalidPaymentRequest`
    and bind nothing, so they can be corrected and re-sent under the same key.

    ``timeout_s``: how long the terminal waits for an answer; a transport failure costs the
    terminal that long. ``partial_approvals``: whether issuers approve part of an amount above
    the card's limit (otherwise such authorizations are declined). One capture per
    authorization, at most the authorized amount; the rest of the hold is released.
    """

    def __init__(self, timeout_s: float = 15.0, partial_approvals: bool = True) -> None:
        if not _check_time("timeout_s", timeout_s) > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.timeout_s = float(timeout_s)
        self.partial_approvals = partial_approvals
        self.authorizations: dict[str, Authorization] = {}
        self.payments: dict[str, Payment] = {}
        self.refunds: dict[str, Refund] = {}
        self._keys: dict[str, tuple[tuple, PaymentResult]] = {}
        self.requests_received = 0  # requests that reached the processor, replays included

    # ------------------------------------------------------------------ public API

    def authorize(
        self, idempotency_key: str, account: str, amount_cents: int, t: float, cond: Condition = OK
    ) -> PaymentResult:
        """Hold ``amount_cents`` on ``account``: approved, partially approved or declined."""
        _check_text("account", account)
        _check_cents("amount_cents", amount_cents, 1)

        def run() -> _Outcome:
            amount = amount_cents
            reason = ""
            limit = cond.limit_cents
            if cond.declined:
                amount, reason = 0, "declined by issuer"
            elif limit is not None and amount_cents > limit:
                if limit > 0 and self.partial_approvals:
                    amount, reason = limit, f"card limit {limit} cents"
                else:
                    amount, reason = 0, "insufficient funds"
            auth_id = f"auth-{len(self.authorizations) + 1}"
            if amount == 0:
                status, auth_status = Status.DECLINED, AuthStatus.DECLINED
            elif amount < amount_cents:
                status, auth_status = Status.PARTIAL, AuthStatus.AUTHORIZED
            else:
                status, auth_status = Status.APPROVED, AuthStatus.AUTHORIZED
            self.authorizations[auth_id] = Authorization(
                auth_id, idempotency_key, account, amount_cents, amount, t, auth_status
            )
            return status, amount, auth_id, reason

        return self._call(
            Operation.AUTHORIZE, idempotency_key, (account, amount_cents), t, cond, run
        )

    def capture(
        self,
        idempotency_key: str,
        authorization_id: str,
        amount_cents: int,
        t: float,
        cond: Condition = OK,
    ) -> PaymentResult:
        """Take ``amount_cents`` (at most the authorized amount) of an open authorization."""
        _check_cents("amount_cents", amount_cents, 1)

        def run() -> _Outcome:
            auth = self._open_authorization(authorization_id, "capture")
            if amount_cents > auth.amount_cents:
                raise InvalidPaymentRequest(
                    f"capture of {amount_cents} cents exceeds the {auth.amount_cents} cents "
                    f"authorized on {authorization_id}"
                )
            pay_id = f"pay-{len(self.payments) + 1}"
            self.payments[pay_id] = Payment(pay_id, auth.id, auth.account, amount_cents, t)
            auth.status = AuthStatus.CAPTURED
            auth.payment_id = pay_id
            return Status.APPROVED, amount_cents, pay_id, ""

        return self._call(
            Operation.CAPTURE, idempotency_key, (authorization_id, amount_cents), t, cond, run
        )

    def void(
        self, idempotency_key: str, authorization_id: str, t: float, cond: Condition = OK
    ) -> PaymentResult:
        """Release an authorization that will not be captured (e.g. a cancelled reservation)."""

        def run() -> _Outcome:
            auth = self._open_authorization(
                authorization_id, "void (refund a captured payment instead)"
            )
            auth.status = AuthStatus.VOIDED
            return Status.APPROVED, auth.amount_cents, auth.id, ""

        return self._call(Operation.VOID, idempotency_key, (authorization_id,), t, cond, run)

    def _open_authorization(self, authorization_id: str, action: str) -> Authorization:
        """The authorization, if it exists and is still open for ``action``; else refuse."""
        auth = self.authorizations.get(authorization_id)
        if auth is None:
            raise InvalidPaymentRequest(f"unknown authorization {authorization_id!r}")
        if auth.status is not AuthStatus.AUTHORIZED:
            raise InvalidPaymentRequest(
                f"authorization {authorization_id} is {auth.status.value}, cannot {action}"
            )
        return auth

    def refund(
        self,
        idempotency_key: str,
        payment_id: str,
        amount_cents: int,
        t: float,
        cond: Condition = OK,
    ) -> PaymentResult:
        """Give back part or all of a captured payment (never more than is left of it)."""
        _check_cents("amount_cents", amount_cents, 1)

        def run() -> _Outcome:
            pay = self.payments.get(payment_id)
            if pay is None:
                raise InvalidPaymentRequest(f"unknown payment {payment_id!r}")
            left = pay.amount_cents - pay.refunded_cents
            if amount_cents > left:
                raise InvalidPaymentRequest(
                    f"refund of {amount_cents} cents exceeds the {left} cents left on {payment_id}"
                )
            ref_id = f"ref-{len(self.refunds) + 1}"
            self.refunds[ref_id] = Refund(ref_id, payment_id, amount_cents, t)
            pay.refunded_cents += amount_cents
            return Status.APPROVED, amount_cents, ref_id, ""

        return self._call(
            Operation.REFUND, idempotency_key, (payment_id, amount_cents), t, cond, run
        )

    # ------------------------------------------------------------------ queries

    def captured_cents(self, account: str | None = None) -> int:
        """Money taken from cards (before refunds), for one account or all."""
        return sum(
            p.amount_cents
            for p in self.payments.values()
            if account is None or p.account == account
        )

    def refunded_cents(self) -> int:
        return sum(r.amount_cents for r in self.refunds.values())

    def open_authorizations(self) -> list[Authorization]:
        """Holds neither captured nor voided: money blocked on a card for nothing, if left over."""
        return [a for a in self.authorizations.values() if a.status is AuthStatus.AUTHORIZED]

    def result_for(self, idempotency_key: str) -> PaymentResult | None:
        """The stored result bound to a key (what a replay would return), if any."""
        stored = self._keys.get(idempotency_key)
        return None if stored is None else stored[1]

    # ------------------------------------------------------------------ internals

    def _call(
        self,
        op: Operation,
        key: str,
        payload: tuple,
        t: float,
        cond: Condition,
        run: Callable[[], _Outcome],
    ) -> PaymentResult:
        _check_text("idempotency_key", key)
        t = _check_time("t", t)
        if not isinstance(cond, Condition):
            raise TypeError(f"cond must be a Condition, got {type(cond).__name__}")
        amount = payload[-1] if op is not Operation.VOID else 0
        if not cond.network_up:
            return PaymentResult(
                op,
                key,
                Status.UNAVAILABLE,
                amount,
                t=t,
                latency_s=self.timeout_s,
                reason="network down",
            )
        self.requests_received += 1
        fingerprint = (op, payload)
        stored = self._keys.get(key)
        if stored is not None:
            if stored[0] != fingerprint:
                raise IdempotencyConflict(
                    f"idempotency key {key!r} was used for {stored[0][0].value} {stored[0][1]}, "
                    f"not {op.value} {payload}"
                )
            result = replace(stored[1], replayed=True)
        else:
            status, approved, obj_id, reason = run()
            result = PaymentResult(op, key, status, amount, approved, obj_id, t, reason=reason)
            self._keys[key] = (fingerprint, result)
        if cond.response_lost or cond.latency_s > self.timeout_s:
            why = "response lost" if cond.response_lost else "processor slower than the timeout"
            return PaymentResult(
                op, key, Status.TIMEOUT, amount, t=t, latency_s=self.timeout_s, reason=why
            )
        return replace(result, latency_s=cond.latency_s)


# --------------------------------------------------------------------------- ledger


class InvoiceStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    WRITTEN_OFF = "written_off"


@dataclass(slots=True)
class Invoice:
    """What a driver owes after the barrier opened without full payment."""

    id: str
    ref: str
    plate: str
    amount_cents: int
    issued_t: float
    reason: str  # declined, partial, offline_declined, offline_partial, no_attempt
    paid_cents: int = 0
    written_off_cents: int = 0
    status: InvoiceStatus = InvoiceStatus.OPEN
    closed_t: float | None = None

    @property
    def outstanding_cents(self) -> int:
        return self.amount_cents - self.paid_cents - self.written_off_cents


@dataclass(slots=True)
class Bill:
    """One priced session (or reservation) and where its money went."""

    ref: str
    plate: str
    t: float
    expected_cents: int
    basis: str = "ticket"  # ticket, plate_read (lost ticket) or daily_max (lost ticket)
    captured_cents: int = 0
    invoice_paid_cents: int = 0
    pending_cents: int = 0
    invoiced_cents: int = 0  # outstanding on invoices
    written_off_cents: int = 0
    refunded_cents: int = 0
    payment_ids: list[str] = field(default_factory=list)
    invoice_ids: list[str] = field(default_factory=list)

    @property
    def collected_cents(self) -> int:
        return self.captured_cents + self.invoice_paid_cents

    @property
    def unaccounted_cents(self) -> int:
        """Priced but not yet assigned anywhere; 0 for every settled bill (the ledger identity)."""
        return self.expected_cents - (
            self.collected_cents + self.pending_cents + self.invoiced_cents + self.written_off_cents
        )


@dataclass(frozen=True, slots=True)
class LedgerTotals:
    """Money summed over bills (all, or one plate's). ``expected = collected + pending_offline
    + invoiced + written_off`` holds whenever every bill is settled."""

    bills: int = 0
    expected_cents: int = 0
    collected_cents: int = 0
    captured_cents: int = 0
    invoice_paid_cents: int = 0
    pending_offline_cents: int = 0
    invoiced_cents: int = 0
    written_off_cents: int = 0
    refunded_cents: int = 0

    @property
    def net_collected_cents(self) -> int:
        return self.collected_cents - self.refunded_cents

    @property
    def balanced(self) -> bool:
        return self.expected_cents == (
            self.collected_cents
            + self.pending_offline_cents
            + self.invoiced_cents
            + self.written_off_cents
        )

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "net_collected_cents": self.net_collected_cents}


class Ledger:
    """Every bill and invoice; each move keeps ``expected = collected + pending + invoiced +
    written_off`` per bill once the bill's exit is settled.

    The exit policy writes it; a reservation flow may write its own bills the same way (open,
    then capture / invoice). Queries return plain dataclasses and dicts for the simulator to
    turn into frames.
    """

    def __init__(self) -> None:
        self._bills: dict[str, Bill] = {}
        self._invoices: dict[str, Invoice] = {}
        self._plate_invoices: dict[str, list[Invoice]] = {}  # so a plate's debt is O(its own)

    # ------------------------------------------------------------------ writes

    def open(
        self, ref: str, plate: str, expected_cents: int, t: float, basis: str = "ticket"
    ) -> Bill:
        _check_text("ref", ref)
        if ref in self._bills:
            raise PaymentError(f"bill {ref!r} already exists")
        expected = _check_cents("expected_cents", expected_cents)
        bill = Bill(ref, _check_text("plate", plate), _check_time("t", t), expected, basis)
        self._bills[ref] = bill
        return bill

    def capture(self, ref: str, cents: int, payment_id: str) -> None:
        bill = self.bill(ref)
        bill.captured_cents += _check_cents("cents", cents)
        bill.payment_ids.append(payment_id)

    def queue_offline(self, ref: str, cents: int) -> None:
        self.bill(ref).pending_cents += _check_cents("cents", cents)

    def unqueue_offline(self, ref: str, cents: int) -> None:
        bill = self.bill(ref)
        if cents > bill.pending_cents:
            raise PaymentError(f"{ref}: only {bill.pending_cents} cents are pending")
        bill.pending_cents -= cents

    def issue_invoice(self, ref: str, cents: int, t: float, reason: str) -> Invoice:
        bill = self.bill(ref)
        inv = Invoice(
            f"inv-{len(self._invoices) + 1}",
            ref,
            bill.plate,
            _check_cents("cents", cents, 1),
            _check_time("t", t),
            reason,
        )
        self._invoices[inv.id] = inv
        self._plate_invoices.setdefault(inv.plate, []).append(inv)
        bill.invoiced_cents += cents
        bill.invoice_ids.append(inv.id)
        return inv

    def pay_invoice(self, invoice_id: str, cents: int, t: float) -> Invoice:
        """Record ``cents`` paid against an invoice (at most what is outstanding)."""
        inv = self.invoice(invoice_id)
        _check_cents("cents", cents, 1)
        if inv.status is not InvoiceStatus.OPEN:
            raise PaymentError(f"invoice {invoice_id} is {inv.status.value}")
        if cents > inv.outstanding_cents:
            raise PaymentError(
                f"payment of {cents} cents exceeds the {inv.outstanding_cents} cents "
                f"outstanding on {invoice_id}"
            )
        inv.paid_cents += cents
        bill = self._bills[inv.ref]
        bill.invoiced_cents -= cents
        bill.invoice_paid_cents += cents
        if inv.outstanding_cents == 0:
            inv.status, inv.closed_t = InvoiceStatus.PAID, _check_time("t", t)
        return inv

    def write_off(self, invoice_id: str, t: float) -> Invoice:
        """Give up on what is outstanding on an open invoice (uncollectable or too old)."""
        inv = self.invoice(invoice_id)
        if inv.status is not InvoiceStatus.OPEN:
            raise PaymentError(f"invoice {invoice_id} is {inv.status.value}")
        left = inv.outstanding_cents
        inv.written_off_cents += left
        inv.status, inv.closed_t = InvoiceStatus.WRITTEN_OFF, _check_time("t", t)
        bill = self._bills[inv.ref]
        bill.invoiced_cents -= left
        bill.written_off_cents += left
        return inv

    def refund(self, ref: str, cents: int) -> None:
        bill = self.bill(ref)
        if cents > bill.captured_cents - bill.refunded_cents:
            raise PaymentError(f"{ref}: refund of {cents} cents exceeds what was captured")
        bill.refunded_cents += cents

    # ------------------------------------------------------------------ queries

    def bill(self, ref: str) -> Bill:
        try:
            return self._bills[ref]
        except KeyError:
            raise PaymentError(f"no bill {ref!r}") from None

    def invoice(self, invoice_id: str) -> Invoice:
        try:
            return self._invoices[invoice_id]
        except KeyError:
            raise PaymentError(f"no invoice {invoice_id!r}") from None

    def bills(self) -> list[Bill]:
        return list(self._bills.values())

    def invoices(self, status: InvoiceStatus | None = None) -> list[Invoice]:
        return [i for i in self._invoices.values() if status is None or i.status is status]

    def overdue(self, t: float, horizon_s: float) -> list[Invoice]:
        """Open invoices issued at least ``horizon_s`` before ``t``."""
        return [
            i
            for i in self._invoices.values()
            if i.status is InvoiceStatus.OPEN and t - i.issued_t >= horizon_s
        ]

    def outstanding_cents(self, plate: str) -> int:
        return sum(i.outstanding_cents for i in self._plate_invoices.get(plate, ()))

    def open_invoices(self, plate: str) -> list[Invoice]:
        """The plate's open invoices in issue order (what it owes at a gate), O(its own)."""
        return [i for i in self._plate_invoices.get(plate, ()) if i.status is InvoiceStatus.OPEN]

    def totals(self, plate: str | None = None) -> LedgerTotals:
        """Summed money over all bills, or over one plate's."""
        return _sum_bills(b for b in self._bills.values() if plate is None or b.plate == plate)

    def by_plate(self) -> dict[str, LedgerTotals]:
        groups: dict[str, list[Bill]] = {}
        for b in self._bills.values():
            groups.setdefault(b.plate, []).append(b)
        return {plate: _sum_bills(bills) for plate, bills in groups.items()}

    def bill_records(self) -> list[dict[str, object]]:
        """One plain dict per bill (with ``collected_cents``), ready for ``DataFrame(...)``."""
        return [{**asdict(b), "collected_cents": b.collected_cents} for b in self._bills.values()]

    def invoice_records(self) -> list[dict[str, object]]:
        return [
            {**asdict(i), "status": i.status.value, "outstanding_cents": i.outstanding_cents}
            for i in self._invoices.values()
        ]


def _sum_bills(bills: Iterable[Bill]) -> LedgerTotals:
    n = exp = cap = inv_paid = pend = inv = wo = ref = 0
    for b in bills:
        n += 1
        exp += b.expected_cents
        cap += b.captured_cents
        inv_paid += b.invoice_paid_cents
        pend += b.pending_cents
        inv += b.invoiced_cents
        wo += b.written_off_cents
        ref += b.refunded_cents
    return LedgerTotals(n, exp, cap + inv_paid, cap, inv_paid, pend, inv, wo, ref)


# --------------------------------------------------------------------------- exit policy


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard the exit terminal tries before it falls back.

    ``max_attempts`` requests in all (first try included). After a transport failure the
    terminal waits ``backoff_s * backoff_factor**(k-1)`` before its k-th consecutive retry;
    after a decline the driver re-presents a card at once.
    """

    max_attempts: int = 3
    backoff_s: float = 1.0
    backoff_factor: float = 2.0

    def __post_init__(self) -> None:
        _check_count("max_attempts", self.max_attempts, 1)
        if _check_time("backoff_s", self.backoff_s) < 0:
            raise ValueError(f"backoff_s must be >= 0, got {self.backoff_s}")
        if _check_time("backoff_factor", self.backoff_factor) < 1:
            raise ValueError(f"backoff_factor must be >= 1, got {self.backoff_factor}")

    def backoff(self, consecutive_failures: int) -> float:
        """Wait before the retry that follows ``consecutive_failures`` transport failures."""
        return self.backoff_s * self.backoff_factor ** (consecutive_failures - 1)


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Exit-payment policy settings (built from the scenario's ``payments:`` section).

    ``strike_threshold`` strikes whose exit times lie within ``strike_window_s`` of each other
    put a plate on the blocklist (a strike is an exit that ends with an invoice; with
    ``strike_on_partial=False`` partly paid exits do not count). ``write_off_horizon_s``: open
    invoices at least this old are written off by :meth:`ExitPaymentPolicy.write_off_overdue`.
    ``unblock_when_paid``: paying off every open invoice lifts the blocklist and clears the
    plate's strikes.
    """

    retry: RetryPolicy = RetryPolicy()
    strike_threshold: int = 3
    strike_window_s: float = 30 * 86_400.0
    strike_on_partial: bool = True
    write_off_horizon_s: float = 90 * 86_400.0
    unblock_when_paid: bool = True

    def __post_init__(self) -> None:
        _check_count("strike_threshold", self.strike_threshold, 1)
        if not _check_time("strike_window_s", self.strike_window_s) > 0:
            raise ValueError(f"strike_window_s must be > 0, got {self.strike_window_s}")
        if not _check_time("write_off_horizon_s", self.write_off_horizon_s) > 0:
            raise ValueError(f"write_off_horizon_s must be > 0, got {self.write_off_horizon_s}")


class ExitOutcome(StrEnum):
    FREE = "free"  # nothing to pay
    PAID = "paid"  # captured in full
    PARTIAL = "partial"  # card limit: part captured, rest invoiced
    INVOICED = "invoiced"  # every attempt declined (or no attempt): all invoiced
    OFFLINE = "offline"  # no answer from the processor: queued in the offline batch


@dataclass(frozen=True, slots=True)
class ExitDecision:
    """What happened at the exit barrier. ``barrier_open`` is True for every decision: the
    policy never traps a car; unpaid money is ``pending_cents`` (offline batch) or
    ``invoiced_cents``, and ``paid + pending + invoiced == amount``."""

    ref: str
    plate: str
    t: float
    amount_cents: int
    outcome: ExitOutcome
    paid_cents: int = 0
    pending_cents: int = 0
    invoiced_cents: int = 0
    barrier_open: bool = True
    flagged: bool = False
    blocklisted: bool = False  # the plate is on the blocklist after this exit
    attempts: int = 0  # requests the terminal sent (authorizations)
    declines: int = 0
    latency_s: float = 0.0  # payment time to add to the barrier service time
    invoice_id: str | None = None
    basis: str = "ticket"
    replayed: bool = False  # settle() called again for the same ref


@dataclass(frozen=True, slots=True)
class OfflinePayment:
    """A payment stored by the terminal while the processor was unreachable."""

    ref: str
    plate: str
    key: str
    amount_cents: int
    exit_t: float


@dataclass(frozen=True, slots=True)
class SettlementReport:
    """One :meth:`ExitPaymentPolicy.settle_offline` run."""

    t: float
    settled: int = 0
    collected_cents: int = 0
    invoiced_cents: int = 0
    declined: int = 0
    partial: int = 0
    still_pending: int = 0
    latency_s: float = 0.0


@dataclass(slots=True)
class PaymentCounts:
    """Event counts of the exit policy (plain ints; ``asdict`` for a frame row)."""

    exits: int = 0
    free_exits: int = 0
    paid_in_full: int = 0
    partial_payments: int = 0  # exits or offline settlements that captured part of the amount
    invoiced_exits: int = 0  # exits where every attempt was declined
    declined_attempts: int = 0  # declines received (at lanes and in offline settlement)
    transport_failures: int = 0  # attempts with network down or timed out
    retries: int = 0
    offline_batched: int = 0
    offline_settled: int = 0
    offline_declined: int = 0
    lost_tickets: int = 0
    lost_tickets_priced_by_plate: int = 0
    flagged_exits: int = 0
    invoices_issued: int = 0
    invoices_paid: int = 0
    invoices_written_off: int = 0
    blocklist_additions: int = 0
    blocklisted_plates: int = 0
    refunds: int = 0


AttemptConditions = Condition | Sequence[Condition]


class ExitPaymentPolicy:
    """Payment at the exit lane under the rule *never trap a car*.

    ``processor``: the card processor (a :class:`PaymentProcessor` in the twin). ``pricing``:
    ``(entry_s, exit_s) -> cents``, e.g. ``Tariff.price``, used for lost tickets with an entry
    plate read; ``lost_ticket_cents``: the charge for a lost ticket without one (the daily
    maximum). ``config``: retries, strikes, write-off horizon.
    """

    def __init__(
        self,
        processor: Processor,
        pricing: Callable[[float, float], int] | None = None,
        lost_ticket_cents: int = 0,
        config: PolicyConfig | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.processor = processor
        self.pricing = pricing
        self.lost_ticket_cents = _check_cents("lost_ticket_cents", lost_ticket_cents)
        self.config = config or PolicyConfig()
        self.ledger = ledger or Ledger()
        self._counts = PaymentCounts()
        self._entries: dict[str, float] = {}
        self._decisions: dict[str, ExitDecision] = {}
        self._offline: dict[str, OfflinePayment] = {}  # insertion order = batch order
        self._strikes: dict[str, list[float]] = {}
        self._blocklist: set[str] = set()
        self._flags: dict[str, int] = {}
        self._refund_keys: set[str] = set()

    # ------------------------------------------------------------------ entry side

    def record_entry(self, plate: str, t: float) -> None:
        """An entry camera read ``plate`` at ``t``: a lost ticket can then be priced exactly."""
        self._entries[_check_text("plate", plate)] = _check_time("t", t)

    def requires_prepay(self, plate: str) -> bool:
        """Blocklisted plates must pay before they are let in (the entry gate asks this)."""
        return plate in self._blocklist

    # ------------------------------------------------------------------ exit side

    def lost_ticket_price(self, plate: str, t: float) -> tuple[int, str]:
        """``(cents, basis)`` for a lost ticket at ``t``: the actual stay if the entry camera
        read the plate (basis ``plate_read``), else the daily maximum (``daily_max``)."""
        entry = self._entries.get(plate)
        if entry is not None and entry <= t and self.pricing is not None:
            return int(self.pricing(entry, t)), "plate_read"
        return self.lost_ticket_cents, "daily_max"

    def settle_lost_ticket(
        self, ref: str, plate: str, t: float, attempts: AttemptConditions = OK
    ) -> ExitDecision:
        """Exit without a ticket: price it with :meth:`lost_ticket_price`, then :meth:`settle`."""
        done = self._decisions.get(ref)
        if done is not None:
            return self._replay(done, plate, None)
        amount, basis = self.lost_ticket_price(plate, t)
        self._counts.lost_tickets += 1
        if basis == "plate_read":
            self._counts.lost_tickets_priced_by_plate += 1
        return self.settle(ref, plate, amount, t, attempts, basis=basis)

    def settle(
        self,
        ref: str,
        plate: str,
        amount_cents: int,
        t: float,
        attempts: AttemptConditions = OK,
        *,
        basis: str = "ticket",
    ) -> ExitDecision:
        """Take payment of ``amount_cents`` for session ``ref`` at the exit; open the barrier.

        ``attempts``: the condition of the 1st, 2nd, ... authorization request; at most
        ``config.retry.max_attempts`` are used (fewer if the sequence is shorter; an empty one
        means no card was presented). Calling again for the same ``ref`` and amount returns
        the first decision (``replayed=True``) without charging again.
        """
        _check_text("ref", ref)
        _check_text("plate", plate)
        _check_cents("amount_cents", amount_cents)
        t = _check_time("t", t)
        done = self._decisions.get(ref)
        if done is not None:
            return self._replay(done, plate, amount_cents)
        conds = [attempts] if isinstance(attempts, Condition) else list(attempts)
        conds = conds[: self.config.retry.max_attempts]
        c = self._counts
        c.exits += 1
        self._entries.pop(plate, None)
        self.ledger.open(ref, plate, amount_cents, t, basis)
        if amount_cents == 0:
            c.free_exits += 1
            blocked = plate in self._blocklist
            return self._decide(
                ExitDecision(ref, plate, t, 0, ExitOutcome.FREE, blocklisted=blocked, basis=basis)
            )

        retry = self.config.retry
        proc = self.processor
        latency = 0.0
        declines = 0
        tries = 0
        consecutive_failures = 0
        key = f"{ref}/1"
        result: PaymentResult | None = None
        for cond in conds:
            if tries:
                c.retries += 1
                if consecutive_failures:
                    latency += retry.backoff(consecutive_failures)
            tries += 1
            result = proc.authorize(key, plate, amount_cents, t + latency, cond)
            latency += result.latency_s
            if not result.status.decided:
                c.transport_failures += 1
                consecutive_failures += 1
                continue
            consecutive_failures = 0
            if result.status is Status.DECLINED:
                declines += 1
                c.declined_attempts += 1
                key = f"{ref}/{declines + 1}"  # a fresh request: the driver presents a card again
                continue
            break  # approved or partially approved

        def decide(outcome: ExitOutcome, **money: int | str | None) -> ExitDecision:
            return self._decide(
                ExitDecision(
                    ref, plate, t, amount_cents, outcome,
                    flagged=money.get("invoiced_cents", 0) != 0,
                    blocklisted=plate in self._blocklist,
                    attempts=tries, declines=declines, latency_s=latency, basis=basis,
                    **money,
                )
            )  # fmt: skip

        if result is not None and result.status in (Status.APPROVED, Status.PARTIAL):
            cap = proc.capture(
                f"{result.key}/capture", result.id, result.amount_cents, t + latency,
                Condition(latency_s=result.latency_s),
            )  # fmt: skip
            latency += cap.latency_s
            self.ledger.capture(ref, cap.amount_cents, cap.id)
            rest = amount_cents - cap.amount_cents
            if rest == 0:
                c.paid_in_full += 1
                return decide(ExitOutcome.PAID, paid_cents=amount_cents)
            c.partial_payments += 1
            inv = self._invoice(ref, plate, rest, t, t, "partial", self.config.strike_on_partial)
            return decide(
                ExitOutcome.PARTIAL,
                paid_cents=cap.amount_cents,
                invoiced_cents=rest,
                invoice_id=inv.id,
            )
        if result is not None and not result.status.decided:
            # The processor never answered: store and forward under the same key, so whatever
            # it may already have done is replayed at settlement, not repeated.
            c.offline_batched += 1
            self._offline[ref] = OfflinePayment(ref, plate, key, amount_cents, t)
            self.ledger.queue_offline(ref, amount_cents)
            return decide(ExitOutcome.OFFLINE, pending_cents=amount_cents)
        # every attempt declined, or no card was presented at all
        c.invoiced_exits += 1
        reason = "declined" if declines else "no_attempt"
        inv = self._invoice(ref, plate, amount_cents, t, t, reason, True)
        return decide(ExitOutcome.INVOICED, invoiced_cents=amount_cents, invoice_id=inv.id)

    # ------------------------------------------------------------------ offline batch

    @property
    def offline_queue(self) -> tuple[OfflinePayment, ...]:
        return tuple(self._offline.values())

    def settle_offline(
        self, t: float, condition: Condition | Callable[[OfflinePayment], Condition] = OK
    ) -> SettlementReport:
        """Replay the offline batch (oldest first) once the network is back.

        Each payment is authorized under the key it was stored with, so one the processor had
        already seen is replayed, not charged again; approvals are captured, partial approvals
        captured and the rest invoiced, declines invoiced (a strike at the exit time). Payments
        that still get no answer stay queued; calling this again settles only those.
        ``condition``: one for every request, or a function of the queued payment.
        """
        t = _check_time("t", t)
        c = self._counts
        settled = collected = invoiced = declined = partial = 0
        latency = 0.0
        for item in list(self._offline.values()):
            cond = condition(item) if callable(condition) else condition
            res = self.processor.authorize(item.key, item.plate, item.amount_cents, t, cond)
            latency += res.latency_s
            if not res.status.decided:
                c.transport_failures += 1
                continue
            del self._offline[item.ref]
            self.ledger.unqueue_offline(item.ref, item.amount_cents)
            settled += 1
            c.offline_settled += 1
            captured = 0
            if res.status in (Status.APPROVED, Status.PARTIAL):
                cap = self.processor.capture(
                    f"{item.key}/capture",
                    res.id,
                    res.amount_cents,
                    t,
                    Condition(latency_s=res.latency_s),
                )
                latency += cap.latency_s
                captured = cap.amount_cents
                self.ledger.capture(item.ref, captured, cap.id)
                collected += captured
            rest = item.amount_cents - captured
            if rest:
                if captured:
                    partial += 1
                    c.partial_payments += 1
                    reason, strike = "offline_partial", self.config.strike_on_partial
                else:
                    declined += 1
                    c.declined_attempts += 1
                    c.offline_declined += 1
                    reason, strike = "offline_declined", True
                self._invoice(item.ref, item.plate, rest, t, item.exit_t, reason, strike)
                invoiced += rest
        return SettlementReport(
            t, settled, collected, invoiced, declined, partial, len(self._offline), latency
        )

    # ------------------------------------------------------------------ after the exit

    def pay_invoice(self, invoice_id: str, cents: int, t: float) -> Invoice:
        """A driver pays (part of) an invoice; paying everything owed may lift the blocklist."""
        inv = self.ledger.pay_invoice(invoice_id, cents, t)
        if inv.status is InvoiceStatus.PAID:
            self._counts.invoices_paid += 1
        if self.config.unblock_when_paid and self.ledger.outstanding_cents(inv.plate) == 0:
            self._blocklist.discard(inv.plate)
            self._strikes.pop(inv.plate, None)
        return inv

    def mark_uncollectable(self, invoice_id: str, t: float) -> Invoice:
        """Write off one invoice now (collection agency gave up, disputed charge, ...)."""
        inv = self.ledger.write_off(invoice_id, t)
        self._counts.invoices_written_off += 1
        return inv

    def write_off_overdue(self, t: float) -> list[Invoice]:
        """Write off every open invoice at least ``config.write_off_horizon_s`` old at ``t``."""
        due = self.ledger.overdue(t, self.config.write_off_horizon_s)
        return [self.mark_uncollectable(inv.id, t) for inv in due]

    def refund(
        self, ref: str, cents: int, t: float, cond: Condition = OK, key: str | None = None
    ) -> PaymentResult:
        """Refund ``cents`` of what session ``ref`` paid by card (idempotent under ``key``,
        default ``<ref>/refund/<cents>``: one refund of that size per session)."""
        bill = self.ledger.bill(ref)
        if not bill.payment_ids:
            raise PaymentError(f"{ref}: nothing was paid by card, nothing to refund")
        pay_id = bill.payment_ids[0]
        key = key or f"{ref}/refund/{cents}"
        res = self.processor.refund(key, pay_id, cents, t, cond)
        # book once per key: a replay after a lost response is booked then, not twice
        if res.status is Status.APPROVED and key not in self._refund_keys:
            self._refund_keys.add(key)
            self.ledger.refund(ref, cents)
            self._counts.refunds += 1
        return res

    # ------------------------------------------------------------------ queries

    @property
    def blocklist(self) -> frozenset[str]:
        return frozenset(self._blocklist)

    def strikes(self, plate: str) -> tuple[float, ...]:
        """Exit times of the plate's strikes (since its last pay-off), ascending."""
        return tuple(self._strikes.get(plate, ()))

    def flags(self) -> dict[str, int]:
        """Plate -> number of exits (or settlements) that left it owing money."""
        return dict(self._flags)

    def decision(self, ref: str) -> ExitDecision | None:
        return self._decisions.get(ref)

    def counts(self) -> PaymentCounts:
        return replace(self._counts, blocklisted_plates=len(self._blocklist))

    # ------------------------------------------------------------------ internals

    def _decide(self, decision: ExitDecision) -> ExitDecision:
        self._decisions[decision.ref] = decision
        return decision

    def _replay(self, done: ExitDecision, plate: str, amount: int | None) -> ExitDecision:
        if done.plate != plate or (amount is not None and done.amount_cents != amount):
            raise PaymentError(
                f"session {done.ref!r} already exited as {done.plate} for {done.amount_cents} "
                f"cents; refusing a second settlement as {plate} for {amount} cents"
            )
        return replace(done, replayed=True, latency_s=0.0)

    def _invoice(
        self, ref: str, plate: str, cents: int, t: float, strike_t: float, reason: str, strike: bool
    ) -> Invoice:
        inv = self.ledger.issue_invoice(ref, cents, t, reason)
        self._counts.invoices_issued += 1
        self._counts.flagged_exits += 1
        self._flags[plate] = self._flags.get(plate, 0) + 1
        if strike:
            self._strike(plate, strike_t)
        return inv

    def _strike(self, plate: str, t: float) -> None:
        times = self._strikes.setdefault(plate, [])
        insort(times, t)
        n = self.config.strike_threshold
        if plate in self._blocklist or len(times) < n:
            return
        w = self.config.strike_window_s
        if any(times[i + n - 1] - times[i] <= w for i in range(len(times) - n + 1)):
            self._blocklist.add(plate)
            self._counts.blocklist_additions += 1
