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

The modules: :mod:`~twin.core.payments_base` (errors, checks, conditions and results),
:mod:`~twin.core.payments_processor`, :mod:`~twin.core.payments_ledger` and, here, the exit
policy. Everything is importable from ``twin.core.payments`` as before.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from twin.core.payments_base import (
    OK,
    Condition,
    IdempotencyConflict,
    InvalidPaymentRequest,
    Operation,
    PaymentError,
    PaymentResult,
    Processor,
    Status,
    check_cents,
    check_count,
    check_text,
    check_time,
)
from twin.core.payments_ledger import (
    Bill,
    Invoice,
    InvoiceStatus,
    Ledger,
    LedgerTotals,
)
from twin.core.payments_processor import (
    Authorization,
    AuthStatus,
    Payment,
    PaymentProcessor,
    Refund,
)

__all__ = [
    "OK",
    "AttemptConditions",
    "AuthStatus",
    "Authorization",
    "Bill",
    "Condition",
    "ExitDecision",
    "ExitOutcome",
    "ExitPaymentPolicy",
    "IdempotencyConflict",
    "InvalidPaymentRequest",
    "Invoice",
    "InvoiceStatus",
    "Ledger",
    "LedgerTotals",
    "OfflinePayment",
    "Operation",
    "Payment",
    "PaymentCounts",
    "PaymentError",
    "PaymentProcessor",
    "PaymentResult",
    "PolicyConfig",
    "Processor",
    "Refund",
    "RetryPolicy",
    "SettlementReport",
    "Status",
]

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
        check_count("max_attempts", self.max_attempts, 1)
        if check_time("backoff_s", self.backoff_s) < 0:
            raise ValueError(f"backoff_s must be >= 0, got {self.backoff_s}")
        if check_time("backoff_factor", self.backoff_factor) < 1:
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
        check_count("strike_threshold", self.strike_threshold, 1)
        if not check_time("strike_window_s", self.strike_window_s) > 0:
            raise ValueError(f"strike_window_s must be > 0, got {self.strike_window_s}")
        if not check_time("write_off_horizon_s", self.write_off_horizon_s) > 0:
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
        self.lost_ticket_cents = check_cents("lost_ticket_cents", lost_ticket_cents)
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
        self._entries[check_text("plate", plate)] = check_time("t", t)

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
        check_text("ref", ref)
        check_text("plate", plate)
        check_cents("amount_cents", amount_cents)
        t = check_time("t", t)
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
        t = check_time("t", t)
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
