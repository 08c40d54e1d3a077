"""Where every priced session's money went: collected, pending offline, invoiced, written off.

The ledger's invariant is in :mod:`twin.core.payments`; invoices and bills live here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from twin.core.payments_base import (
    PaymentError,
    check_cents,
    check_text,
    check_time,
)

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
        check_text("ref", ref)
        if ref in self._bills:
            raise PaymentError(f"bill {ref!r} already exists")
        expected = check_cents("expected_cents", expected_cents)
        bill = Bill(ref, check_text("plate", plate), check_time("t", t), expected, basis)
        self._bills[ref] = bill
        return bill

    def capture(self, ref: str, cents: int, payment_id: str) -> None:
        bill = self.bill(ref)
        bill.captured_cents += check_cents("cents", cents)
        bill.payment_ids.append(payment_id)

    def queue_offline(self, ref: str, cents: int) -> None:
        self.bill(ref).pending_cents += check_cents("cents", cents)

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
            check_cents("cents", cents, 1),
            check_time("t", t),
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
        check_cents("cents", cents, 1)
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
            inv.status, inv.closed_t = InvoiceStatus.PAID, check_time("t", t)
        return inv

    def write_off(self, invoice_id: str, t: float) -> Invoice:
        """Give up on what is outstanding on an open invoice (uncollectable or too old)."""
        inv = self.invoice(invoice_id)
        if inv.status is not InvoiceStatus.OPEN:
            raise PaymentError(f"invoice {invoice_id} is {inv.status.value}")
        left = inv.outstanding_cents
        inv.written_off_cents += left
        inv.status, inv.closed_t = InvoiceStatus.WRITTEN_OFF, check_time("t", t)
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
