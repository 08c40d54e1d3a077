"""Payments at the exit barrier, wired into the SimPy model (``operations.payments``).

Every car that leaves a priced spot is settled by the production exit policy,
:class:`twin.core.payments.ExitPaymentPolicy`, with conditions drawn from the scenario's
``payments:`` settings. The policy never traps a car: whatever happens, the barrier opens, and
the money goes to the ledger as collected, pending in the terminal's offline batch, invoiced or
(past the write-off horizon) written off. What the car does feel is time: the round trips,
timeouts and back-offs of its payment are returned to the model as extra seconds at the exit
barrier, so exit-lane queues grow when the processor is slow or the network is down.

Choices the twin has to make, and why
-------------------------------------
* **Plates.** A plate stands for a customer (a car and its card). Without ``plate_pool`` every
  driver is a new customer (``<stream>#<driver>``), so a plate can never collect two strikes.
  With ``plate_pool: N`` each driver of a demand stream is one of ``N`` regulars of that stream
  (``<stream>#<0..N-1>``, drawn uniformly): the same card comes back, strikes add up and the
  blocklist can fill. Two drivers of one plate may be parked at the same time; the twin lets
  them (a plate is an account here, not a single vehicle).
* **Network.** One network serves every terminal (entry and exit) of every lot. An exit is
  judged when the car reaches the exit barrier's service (``ctx.exit_barrier_time``: after any
  queue at the barrier), and all its attempts see the network as it is then; its bill is dated
  then. The payment is still computed when the car leaves its spot (the model needs its time
  at once), so a forwarding of the offline batch never takes a payment whose barrier moment has
  not come yet: such a payment stays queued until its own forwarding.
* **Offline batch.** When an outage ends the batch is forwarded at once; a payment stored
  after a timeout while the network was up is forwarded ``offline_forward_minutes`` later. A
  forwarded payment the processor never saw is decided with the card of the driver's last
  attempt (same decline and limit draws); one the processor had already decided is replayed.
  Batches still waiting at the horizon are reported as pending.
* **Lost tickets.** With ``lost_ticket_probability`` a driver has lost the ticket of a stay the
  tariff priced. If the entry camera read the plate (``plate_read_probability``) the stay is
  charged as priced; otherwise ``lost_ticket_fee``, or the lot's daily maximum, or (a tariff
  without one) the price of a 24-hour stay. The charge replaces ``session.amount_cents``, so
  the model's revenue is what was billed. A stay another component made free (a permit) has
  no ticket to lose.
* **Prepayment** (``strikes.prepay``). A driver whose plate is on the blocklist when they reach
  a lot must pay before the barrier: the lot's quote for the intended stay (arrival to arrival
  + dwell, as the model quotes it) plus, with ``strikes.debt_at_entry``, what the plate owes on
  open invoices. It is one authorization with the driver's own pre-drawn entry conditions
  (stream ``payments/prepay``; retries as at the exit). A decline, a card limit below the
  amount (the partial hold is voided) or no answer at all turns the driver away (``TURN_AWAY``).
  An approved hold is captured when the car parks; a driver who then balks, is refused or
  reneges never parks, and the hold is voided at the horizon (the model has no moment for
  "drove off before the barrier"). The capture pays the invoices (``pay_invoice``; with
  ``unblock_when_paid`` the plate leaves the blocklist) and opens a bill ``<driver>/prepay``
  for the quote. At the exit the stay's price ``A`` is settled against the prepaid quote ``Q``:
  the car pays ``A - Q`` if it stayed longer than quoted, and nothing if not -- the prepayment
  is the price of the stay as quoted at the gate and is not refunded, so the session's amount
  becomes ``max(A, Q)``. Revenue is counted once: ``Q`` in the prepay bill, the rest in the
  exit bill. A prepaid driver was identified by the plate, so has no ticket to lose.
* **Write-off** is applied once, at the horizon: open invoices at least ``write_off_days`` old
  are written off (shorter runs write off nothing). Invoices are paid only at an entry, by
  blocklisted drivers (above).

Figures (``payments.<name>`` in the metrics and ``summary.json``) count exits after the
warm-up, like the model's ``revenue``, so ``payments.revenue_expected`` equals ``revenue``
(a prepaid driver's prepay bill counts with their exit); entry figures count entries after the
warm-up. ``blocklisted_plates`` is the blocklist at the horizon. Money is in currency units.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from twin.core.payments import (
    OK,
    Condition,
    ExitDecision,
    ExitOutcome,
    ExitPaymentPolicy,
    OfflinePayment,
    PaymentProcessor,
    Status,
)
from twin.sim.components import TURN_AWAY, Component, ModelContext, register

if TYPE_CHECKING:
    from twin.core.lot import Session
    from twin.scenario.model import Scenario
    from twin.scenario.payments import PaymentsSpec

DAY_S = 86_400.0

#: Outcome codes of the per-exit record (index into this tuple).
OUTCOMES: tuple[ExitOutcome, ...] = tuple(ExitOutcome)
_CODE = {o: k for k, o in enumerate(OUTCOMES)}
#: Lost-ticket code of the per-exit record, by the bill's basis (0: the ticket was there).
_LOST = {"daily_max": 1, "plate_read": 2}
#: What became of a prepayment asked at an entry (the ``prepay`` table's ``outcome``).
PREPAY_OUTCOMES = ("held", "prepaid", "refused", "released")


@dataclass(slots=True)
class _Prepay:
    """One entry of a blocklisted plate: what was asked, the hold, and what became of it."""

    driver: int
    lot: int
    t: float
    plate: str
    quote_cents: int
    debt_cents: int
    key: str = ""
    authorization_id: str | None = None
    attempts: int = 0
    declines: int = 0
    outcome: str = "held"
    captured_cents: int = 0
    debt_paid_cents: int = 0
    settled_t: float = math.nan
    invoices: list[str] = field(default_factory=list)


@register("payments", order=40)
class PaymentsComponent(Component):
    """Settles every priced exit through the core exit policy; see the module docstring."""

    name = "payments"

    def __init__(self, spec: PaymentsSpec, scenario: Scenario) -> None:
        self.spec = spec
        self.scenario = scenario
        self.attempts = spec.retry.max_attempts

    # ------------------------------------------------------------------ set-up

    def start(self, ctx: ModelContext) -> None:
        """Build the policy and draw everything random for the whole run in bulk."""
        super().start(ctx)
        spec, d = self.spec, ctx.drivers
        n = len(d)
        self.policy = ExitPaymentPolicy(
            spec.processor(), pricing=self._plate_read_price, config=spec.policy_config()
        )
        outages = spec.sample_outages(ctx.streams.get("payments/outages"), ctx.horizon)
        self._down_start = [a for a, _ in outages]
        self._down_end = [b for _, b in outages]
        for end in self._down_end:
            if end < ctx.horizon:
                ctx.call_at(end, self._network_back)
        # request j of driver i is draw i * attempts + j
        self.draws = spec.sample_condition_draws(
            ctx.streams.get("payments/attempts"), n * self.attempts
        )
        draws = self.draws
        self._clean = (
            ~draws.declined
            & (draws.limit_cents < 0)
            & ~draws.lost
            & (draws.latency_s <= spec.retry.timeout_s)
        ).tolist()
        tickets = ctx.streams.get("payments/tickets").random((n, 2))  # a row per driver
        self._lost = tickets[:, 0] < spec.lost_ticket_probability
        self._read = tickets[:, 1] < spec.plate_read_probability
        self._stream = d.stream.tolist()
        self._stream_names = [s.name for s in ctx.scenario.demand]
        if spec.plate_pool is not None:
            pool = ctx.streams.get("payments/plates")
            self._plate_no = pool.integers(0, spec.plate_pool, size=n).tolist()
        else:
            self._plate_no = list(range(n))
        # Only repeat customers can come back blocklisted: without a plate pool every plate
        # is seen once, so there is nothing to prepay and nothing to draw.
        self._prepay_on = spec.strikes.prepay and spec.plate_pool is not None
        self._entry = spec.sample_condition_draws(
            ctx.streams.get("payments/prepay"), n * self.attempts if self._prepay_on else 0
        )
        self._dwell = d.dwell
        self._fees = [self._lost_ticket_fee(lot) for lot in ctx.lots]
        self._forward_at: float | None = None  # next forwarding of the offline batch
        self._settle_t = math.inf  # time of the forwarding running now
        self._lot_now = 0
        self._session_now: Session | None = None
        self._leave_now = 0.0
        # one row per settled exit (plain lists: O(1) appends on the hot path)
        self._rows: list[tuple[int, int, float, int, int, float, int, int]] = []
        self._blocklisted_exits: list[float] = []  # leave times of plates already blocklisted
        self._settlements = 0
        self._holds: dict[int, _Prepay] = {}  # driver -> approved prepayment, car not parked
        self._prepaid: dict[int, _Prepay] = {}  # driver -> captured prepayment, car not left
        self._entries: list[_Prepay] = []  # every prepayment asked, in time order
        self._unblocked: list[float] = []  # when a paid debt lifted a plate's block

    def _lost_ticket_fee(self, lot: object) -> int | None:
        """Cents for a lost ticket without a plate read at ``lot`` (None: no tariff)."""
        tariff = getattr(lot, "tariff", None)
        if tariff is None:
            return None
        if self.spec.lost_ticket_fee is not None:
            return round(self.spec.lost_ticket_fee * 100)
        cap = tariff.daily_max_cents
        if cap is None:
            cap = tariff.default.daily_max_cents
        return cap  # None: priced per exit as a 24 h stay

    @property
    def processor(self) -> PaymentProcessor:
        """The card processor of the run; other components (reservations) pay through it."""
        return self.policy.processor  # type: ignore[return-value]

    # ------------------------------------------------------------------ per car

    def plate(self, i: int) -> str:
        """Driver ``i``'s plate: its demand stream and its number in that stream's pool."""
        return f"{self._stream_names[self._stream[i]]}#{self._plate_no[i]}"

    def network_up(self, t: float) -> bool:
        """Is the terminals' network up at ``t``? O(log outages)."""
        j = bisect_right(self._down_start, t) - 1
        return j < 0 or t >= self._down_end[j]

    def on_arrival(self, i: int, k: int, t: float) -> str | None:
        """A blocklisted plate prepays its quoted stay (and its debt) or is turned away."""
        if not self._prepay_on:
            return None
        plate = self.plate(i)
        policy = self.policy
        if not policy.requires_prepay(plate):
            return None
        lot = self.ctx.lots[k]
        tariff = lot.tariff
        if tariff is None:  # nothing is priced here
            return None
        old = self._holds.pop(i, None)
        if old is not None:  # diverted from a lot where it had prepaid: release that hold
            self._release(old, t)
        quote = tariff.quote(t, t + float(self._dwell[i]), lot.n_occupied / lot.capacity)
        invoices: list[str] = []
        debt = 0
        if self.spec.strikes.debt_at_entry:
            invoices = [inv.id for inv in policy.ledger.open_invoices(plate)]
            ledger = policy.ledger
            debt = sum(ledger.invoice(inv).outstanding_cents for inv in invoices)
        if quote + debt <= 0:
            return None
        entry = _Prepay(i, k, t, plate, quote, debt, invoices=invoices)
        self._entries.append(entry)
        if not self._authorize_entry(entry, quote + debt):
            entry.outcome = "refused"
            return TURN_AWAY
        self._holds[i] = entry
        return None

    def _authorize_entry(self, entry: _Prepay, amount: int) -> bool:
        """Hold ``amount`` on the driver's card as the exit terminal would try it.

        Same key after a transport failure, a new one after a decline; a partial approval is
        voided (the whole amount is owed) and counts as a decline.
        """
        proc = self.processor
        t, i = entry.t, entry.driver
        up = self.network_up(t)
        condition = self._entry.condition
        base = i * self.attempts
        number = 1
        key = f"entry-{i}@{entry.lot}/{number}"
        for j in range(base, base + self.attempts):
            entry.attempts += 1
            result = proc.authorize(key, entry.plate, amount, t, condition(j, up))
            if not result.status.decided:
                continue
            if result.status is Status.APPROVED:
                entry.key, entry.authorization_id = key, result.id
                return True
            if result.status is Status.PARTIAL and result.id is not None:
                proc.void(f"{key}/void-partial", result.id, t)
            entry.declines += 1
            number += 1
            key = f"entry-{i}@{entry.lot}/{number}"
        return False

    def _release(self, entry: _Prepay, t: float) -> None:
        """The driver never parked: void the hold."""
        assert entry.authorization_id is not None
        self.processor.void(f"{entry.key}/void", entry.authorization_id, t)
        entry.outcome, entry.settled_t = "released", t

    def on_park(self, i: int, k: int, session: Session, t: float) -> None:
        """A prepaid car parked: capture the hold, pay the plate's invoices, open its bill."""
        holds = self._holds
        if not holds:
            return
        entry = holds.pop(i, None)
        if entry is None:
            return
        policy, ledger = self.policy, self.policy.ledger
        # another car of the plate may have paid some of the same invoices since the entry
        owed = [(inv, ledger.invoice(inv).outstanding_cents) for inv in entry.invoices]
        owed = [(inv, cents) for inv, cents in owed if cents > 0]
        debt = sum(cents for _, cents in owed)
        amount = entry.quote_cents + debt
        assert entry.authorization_id is not None
        entry.settled_t = t
        if amount == 0:  # no quote, and the debt was paid meanwhile: nothing to take
            self.processor.void(f"{entry.key}/void", entry.authorization_id, t)
            entry.outcome = "prepaid"
            return
        cap = self.processor.capture(f"{entry.key}/capture", entry.authorization_id, amount, t, OK)
        entry.outcome, entry.captured_cents, entry.debt_paid_cents = "prepaid", amount, debt
        for inv, cents in owed:
            policy.pay_invoice(inv, cents, t)
        if owed and not policy.requires_prepay(entry.plate):
            self._unblocked.append(t)
        if entry.quote_cents:  # (a debt alone paid at the entry leaves a normal exit)
            ref = f"{i}/prepay"
            ledger.open(ref, entry.plate, entry.quote_cents, t, basis="prepay")
            ledger.capture(ref, entry.quote_cents, cap.id or "")
            self._prepaid[i] = entry

    def on_leave(self, i: int, k: int, session: Session, t: float) -> float:
        """Settle the stay; the barrier always opens. Returns the payment time in seconds."""
        amount = session.amount_cents
        if amount is None:  # the lot has no tariff: nothing to pay
            return 0.0
        policy = self.policy
        plate = self.plate(i)
        if policy.requires_prepay(plate):  # on the blocklist (prepaid, or let in: counted)
            self._blocklisted_exits.append(t)
        at = self.ctx.exit_barrier_time(k, t)  # the terminal is reached after the queue
        up = self.network_up(at)
        base = i * self.attempts
        condition, clean = self.draws.condition, self._clean
        conds = []
        for j in range(base, base + self.attempts):
            conds.append(condition(j, up))
            if up and clean[j]:  # approved for sure: the policy sends no further request
                break
        ref = str(i)
        prepaid = self._prepaid.pop(i, None) if self._prepaid else None
        if prepaid is not None:
            # the quote was paid at the entry: an overstay pays the rest, nothing is refunded
            q = prepaid.quote_cents
            if amount < q:
                session.amount_cents = amount = q
            decision = policy.settle(ref, plate, amount - q, at, conds, basis="prepaid")
        elif self._lost[i] and amount == self.ctx.lots[k].price(session, t):
            # a ticketed stay (no other component changed its price) whose ticket is lost
            if self._read[i]:
                policy.record_entry(plate, session.entry_t)
            fee = self._fees[k]
            policy.lost_ticket_cents = (
                fee if fee is not None else self.ctx.lots[k].tariff.price(t, t + DAY_S)
            )
            self._lot_now, self._session_now, self._leave_now = k, session, t
            decision = policy.settle_lost_ticket(ref, plate, at, conds)
            self._session_now = None
            session.amount_cents = decision.amount_cents
        else:
            decision = policy.settle(ref, plate, amount, at, conds)
        self._record(i, k, t, decision)
        if decision.outcome is ExitOutcome.OFFLINE and up:
            self._schedule_forward(at + self.spec.offline_forward_minutes * 60.0)
        return decision.latency_s

    def _record(self, i: int, k: int, t: float, dec: ExitDecision) -> None:
        lost = _LOST.get(dec.basis, 0)
        self._rows.append(
            (i, k, t, _CODE[dec.outcome], dec.attempts, dec.latency_s, dec.declines, lost)
        )

    def _plate_read_price(self, entry_s: float, exit_s: float) -> int:
        """A lost ticket with an entry read pays the actual stay, priced as the lot prices it:
        up to when the car left its spot (``exit_s`` is the barrier moment), as the model does."""
        session = self._session_now
        if session is None:  # only called from settle_lost_ticket, inside on_leave
            raise RuntimeError("plate-read pricing outside an exit")
        return self.ctx.lots[self._lot_now].price(session, self._leave_now)

    # ------------------------------------------------------------------ offline batch

    def _schedule_forward(self, t: float) -> None:
        if t >= self.ctx.horizon or (self._forward_at is not None and self._forward_at <= t):
            return
        self._forward_at = t
        self.ctx.call_at(t, self._forward)

    def _forward(self, t: float) -> None:
        if self._forward_at != t:  # superseded by an earlier forwarding
            return
        self._forward_at = None
        self._network_back(t)

    def _network_back(self, t: float) -> None:
        """Forward the offline batch (if the network is up; an outage's end forwards it)."""
        queue = self.policy.offline_queue
        if not queue or not self.network_up(t):
            return
        self._settlements += 1
        self._settle_t = t
        self.policy.settle_offline(t, self._replay_condition)
        self._settle_t = math.inf
        later = [item.exit_t for item in self.policy.offline_queue]
        if later:  # payments whose barrier moment had not come: forward them after it
            self._schedule_forward(min(later) + self.spec.offline_forward_minutes * 60.0)

    def _replay_condition(self, item: OfflinePayment) -> Condition:
        """The card of the driver's last attempt, now reached over a working network.

        A payment dated after this forwarding (its car is still queueing for the barrier) is
        not in the terminal's batch yet: it gets no answer and stays queued.
        """
        if item.exit_t > self._settle_t:
            return Condition(network_up=False)
        j = int(item.ref) * self.attempts + self.attempts - 1
        c = self.draws.condition(j, True)
        return Condition(declined=c.declined, limit_cents=c.limit_cents)

    # ------------------------------------------------------------------ results

    def finish(self, t: float) -> dict[str, float]:
        """Void holds of drivers who never parked, write off overdue invoices, then the
        figures of exits (and entries) after the warm-up."""
        for entry in list(self._holds.values()):
            self._release(entry, t)
        self._holds.clear()
        self.policy.write_off_overdue(t)
        warm = self.scenario.warmup_s
        rows = np.array(self._rows, dtype=float).reshape(-1, 8)
        after = rows[:, 2] >= warm
        rows = rows[after]
        refs = {str(int(i)) for i in rows[:, 0]}
        money = {"expected": 0, "collected": 0, "invoiced": 0, "written_off": 0, "pending": 0}
        for bill in self.policy.ledger.bills():
            ref = bill.ref
            if bill.basis == "prepay":  # a prepaid quote counts with its driver's exit
                ref = ref.removesuffix("/prepay")
            if ref in refs:
                money["expected"] += bill.expected_cents
                money["collected"] += bill.collected_cents
                money["invoiced"] += bill.invoiced_cents
                money["written_off"] += bill.written_off_cents
                money["pending"] += bill.pending_cents
        reasons: dict[str, int] = {}
        for inv in self.policy.ledger.invoices():
            if inv.ref in refs:
                reasons[inv.reason] = reasons.get(inv.reason, 0) + 1
        code = rows[:, 3]
        paying = code != _CODE[ExitOutcome.FREE]
        latency = rows[paying, 5]
        expected = money["expected"]
        asked = [e for e in self._entries if e.t >= warm]
        prepaid = [e for e in self._entries if e.outcome == "prepaid" and e.settled_t >= warm]
        return {
            "exits": float(len(rows)),
            "revenue_expected": expected / 100.0,
            "revenue_collected": money["collected"] / 100.0,
            "revenue_invoiced": money["invoiced"] / 100.0,
            "revenue_written_off": money["written_off"] / 100.0,
            "revenue_pending_offline": money["pending"] / 100.0,
            "collected_pct": 100.0 * money["collected"] / expected if expected else math.nan,
            "declines": float(rows[:, 6].sum()),
            "declined_exits": float((code == _CODE[ExitOutcome.INVOICED]).sum()),
            "offline_payments": float((code == _CODE[ExitOutcome.OFFLINE]).sum()),
            "offline_declined": float(reasons.get("offline_declined", 0)),
            "partial_payments": float(
                reasons.get("partial", 0) + reasons.get("offline_partial", 0)
            ),
            "lost_tickets": float((rows[:, 7] > 0).sum()),
            "lost_tickets_plate_read": float((rows[:, 7] == 2).sum()),
            "blocklisted_plates": float(len(self.policy.blocklist)),
            "blocklisted_exits": float(sum(1 for x in self._blocklisted_exits if x >= warm)),
            "prepay_asked": float(len(asked)),
            "prepay_refused": float(sum(e.outcome == "refused" for e in asked)),
            "prepay_released": float(sum(e.outcome == "released" for e in asked)),
            "prepaid_entries": float(len(prepaid)),
            "prepaid_revenue": sum(e.quote_cents for e in prepaid if e.captured_cents) / 100.0,
            "debt_collected_at_entry": sum(e.debt_paid_cents for e in prepaid) / 100.0,
            "plates_unblocked": float(sum(1 for x in self._unblocked if x >= warm)),
            "latency_s.mean": float(latency.mean()) if len(latency) else 0.0,
            "latency_s.p95": float(np.percentile(latency, 95)) if len(latency) else 0.0,
        }

    def frames(self) -> dict[str, pd.DataFrame]:
        """``bills``: the ledger's exit bills, one row per settled exit, with what happened at
        the barrier; ``prepay``: one row per prepayment asked at an entry."""
        rows = pd.DataFrame(
            self._rows,
            columns=[
                "driver", "lot", "leave_s", "outcome", "attempts", "latency_s", "declines", "lost",
            ],
        )  # fmt: skip
        lot_names = [spec.name for spec in self.scenario.lot_specs]
        rows["lot"] = pd.Categorical.from_codes(rows["lot"].to_numpy(), categories=lot_names)
        rows["outcome"] = pd.Categorical.from_codes(
            rows["outcome"].to_numpy(), categories=[o.value for o in OUTCOMES]
        )
        rows = rows.drop(columns=["lost"]).astype(
            {"driver": "int64", "leave_s": "float64", "attempts": "int64", "latency_s": "float64",
             "declines": "int64"}
        )  # fmt: skip
        # column by column from the bills (dataclasses.asdict per bill costs seconds per run);
        # exit bills were opened one per settled exit, in the order of the rows
        bills = [b for b in self.policy.ledger.bills() if b.basis != "prepay"]
        cols: dict[str, list] = {
            name: [getattr(b, name) for b in bills]
            for name in (
                "ref", "plate", "t", "basis", "expected_cents", "captured_cents",
                "invoice_paid_cents", "pending_cents", "invoiced_cents", "written_off_cents",
            )
        }  # fmt: skip
        cols["collected_cents"] = [b.collected_cents for b in bills]
        cols["payment_ids"] = [";".join(b.payment_ids) for b in bills]
        cols["invoice_ids"] = [";".join(b.invoice_ids) for b in bills]
        frame = (
            pd.DataFrame(cols)
            .rename(columns={"t": "exit_s"})
            .astype(
                {"ref": "str", "plate": "str", "exit_s": "float64", "basis": "str"}
                | {c: "int64" for c in cols if c.endswith("_cents")}
                | {"payment_ids": "str", "invoice_ids": "str"}
            )
        )  # typed: a replication without an exit gives the same dtypes as any other
        entries = self._entries
        prepay = pd.DataFrame(
            {
                "driver": np.array([e.driver for e in entries], dtype=np.int64),
                "lot": pd.Categorical.from_codes(
                    np.array([e.lot for e in entries], dtype=np.int64), categories=lot_names
                ),
                "arrival_s": np.array([e.t for e in entries], dtype=float),
                "plate": pd.array([e.plate for e in entries], dtype="str"),
                "quote_cents": np.array([e.quote_cents for e in entries], dtype=np.int64),
                "debt_cents": np.array([e.debt_cents for e in entries], dtype=np.int64),
                "attempts": np.array([e.attempts for e in entries], dtype=np.int64),
                "declines": np.array([e.declines for e in entries], dtype=np.int64),
                "outcome": pd.Categorical(
                    [e.outcome for e in entries], categories=list(PREPAY_OUTCOMES)
                ),
                "settled_s": np.array([e.settled_t for e in entries], dtype=float),
                "captured_cents": np.array([e.captured_cents for e in entries], dtype=np.int64),
                "debt_paid_cents": np.array([e.debt_paid_cents for e in entries], dtype=np.int64),
            }
        )
        return {"bills": pd.concat([rows, frame], axis=1), "prepay": prepay}
